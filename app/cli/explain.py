"""`okng explain`: Grad-CAM of a model over the project and its agreement with the masks."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.common import ProgressBar, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="Grad-CAM agreement with the inspectors' masks, shortcut alarm")
    p.add_argument("project", type=Path)
    p.add_argument("--model", default="active", help="model id, or 'active' (default)")
    p.add_argument("--layer", default=None, help="layer by dotted name (default: the last conv stage)")
    p.add_argument("--list-layers", action="store_true", help="print the model's layer names and exit")
    p.add_argument("--target", choices=("logit", "softmax"), default=None, help="differentiate (default logit)")
    p.add_argument("--class", dest="target_class", default=None,
                   help="class to explain: ng (default; a class model: each part's own defect class), "
                        "predicted, an output index, or a class NAME of a class model (e.g. 'no coating')")
    p.add_argument("--threshold", default=None,
                   help="highlight rule: fixed:T (default fixed:0.5), top:P (percent), otsu")
    p.add_argument("--normalise", choices=("minmax", "max"), default=None)
    p.add_argument("--tolerance", type=_tolerance, default=None, metavar="cell|PX",
                   help="pointing game: a hit is the map's peak inside the mask or within this of it; cell "
                        "(default): half a cell of the layer's map, the finest place it can point at; "
                        "PX: a radius in the view's pixels (0: strictly inside)")
    p.add_argument("--parts", default=None, help="part ids, e.g. 1,2,5-9 (default: all labelled)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--out", type=Path, default=None, help="write one overlay PNG per view here")
    p.add_argument("--rows", action="store_true", help="with --json: include every view's row")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_explain)


def parse_parts(text: str | None) -> list[int] | None:
    """'1,2,5-9' -> [1, 2, 5, 6, 7, 8, 9]."""
    if not text:
        return None
    out: list[int] = []
    for chunk in text.split(","):
        a, _, b = chunk.strip().partition("-")
        try:
            out.extend(range(int(a), int(b) + 1) if b else [int(a)])
        except ValueError:
            raise ValueError(f"--parts {text!r}: expected ids like 1,2,5-9") from None
    return out


def _recipe(args: argparse.Namespace) -> Any:
    """The CAM recipe of the flags; a class NAME is kept in args.class_name and resolved against
    the model's outputs once it is loaded (_class_by_name)."""
    from training.explain.recipe import CLASS_CHOICES, CamRecipe
    cls: str | int | None = args.target_class
    args.class_name = None
    if cls is not None:
        cls = int(cls) if cls.lstrip("-").isdigit() else cls.lower()
        if isinstance(cls, str) and cls not in CLASS_CHOICES:
            args.class_name, cls = args.target_class, None
    return CamRecipe().replace(layer=args.layer, target=args.target, target_class=cls,
                               threshold=args.threshold, normalise=args.normalise)


def _class_by_name(recipe: Any, name: str, class_names: list[str]) -> Any:
    upper = [c.strip().upper() for c in class_names]
    if name.strip().upper() not in upper:
        raise ValueError(f"--class {name!r}: the model's classes are {', '.join(class_names)}")
    return recipe.replace(target_class=upper.index(name.strip().upper()))


def cmd_explain(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    recipe = _recipe(args)  # bad flags fail before the model loads
    parts = parse_parts(args.parts)
    if not args.project.exists():
        raise FileNotFoundError(f"no project at {args.project}")
    from labeling.store import Project
    from training.explain.cam import layer_names
    from training.explain.dataset import explain_loaded
    from training.inference import load_model

    project = Project.open(args.project, readonly=True)
    loaded = load_model(project, args.model, device=args.device)
    if args.class_name:
        recipe = _class_by_name(recipe, args.class_name, list(loaded.class_names))
    if args.list_layers:
        names = layer_names(loaded.model)
        if loaded.target_layer and loaded.target_layer not in names:
            names.append(loaded.target_layer)  # e.g. VGG16's features.29, the ReLU after the last conv
        if args.json:
            print_json({"model_id": loaded.id, "layers": names, "default": loaded.target_layer})
        else:
            print("\n".join(f"{n}{'  (default)' if n == loaded.target_layer else ''}" for n in names))
        return 0
    writer = None
    if args.out is not None:
        from training.explain.overlay import OverlayWriter
        writer = OverlayWriter(args.out)
    bar = ProgressBar("explain", quiet=args.json)
    try:
        report = explain_loaded(project, loaded, loaded.id or str(args.model), recipe, parts,
                                args.batch_size, progress=lambda p: bar.update(p.done, p.total),
                                on_view=writer, tolerance=args.tolerance)
    finally:
        bar.close()
    if args.json:
        d = report.to_dict(rows=args.rows)
        if writer is not None:
            d["overlays"] = {"dir": str(args.out), "count": len(writer.written)}
        print_json(d)
    else:
        print(format_report(report))
        if writer is not None:
            print(f"{len(writer.written)} overlays written to {args.out}")
    return 0


def _ms(d: dict[str, Any]) -> str:
    return "-" if d.get("mean") is None else f"{d['mean']:.3f} +- {d['std']:.3f}"


def _tolerance(text: str) -> float | None:
    """--tolerance: 'cell' (None: training.explain.agreement.cell_tolerance) or pixels >= 0."""
    if text.strip().lower() == "cell":
        return None
    try:
        px = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected cell or a number of pixels") from None
    if not px >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a tolerance is 0 px or more")
    return px


def _xy(v: Any) -> str:
    return "-" if not v else f"({v[0]:.2f}, {v[1]:.2f})"


def format_report(report: Any) -> str:
    """The agreement summary as a plain-text table (the class column as wide as its longest name)."""
    from training.metrics import column_width
    r = report.recipe
    lines = [(f"model {report.model_id}  layer {report.layer}  target {r.target}  class {r.target_class}  "
             f"threshold {r.threshold}  normalise {r.normalise}  upsample {r.upsample}"
             f"{' (align_corners)' if r.align_corners else ''}"),
             (f"{len({x.part_id for x in report.rows})} parts, {len(report.rows)} views, "
             f"{report.totals.masked_views} with a mask"
             f"{'  (stopped early)' if report.stopped else ''}"), ""]
    w = column_width("all masked views", *report.summary)
    lines += [(f"{'class':<{w}}{'views':>6}{'masked':>7}  {'IoU':<16}{'energy in mask':<17}{'lift (x flat)':<16}"
               f"{'pointing':>8}  {'centroid (x,y)':<15}{'spread':<14}")]
    for name, s in report.summary.items():
        pg = "-" if s["pointing"] is None else f"{s['pointing']:.2f}"
        lines.append(f"{name:<{w}}{s['views']:>6}{s['masked_views']:>7}  {_ms(s['iou']):<16}"
                     f"{_ms(s['energy']):<17}{_ms(s.get('lift') or {}):<16}{pg:>8}  {_xy(s['centroid']):<15}"
                     f"{_xy(s['spread']):<14}")
    t = report.totals
    pg = "-" if t.pointing is None else f"{t.pointing:.2f}"
    lines.append(f"{'all masked views':<{w}}{t.views:>6}{t.masked_views:>7}  {_ms(t.iou):<16}{_ms(t.energy):<17}"
                 f"{_ms(t.lift):<16}{pg:>8}")
    lines.append("lift: energy in the mask over the mask's share of the view (1 = no more than a flat map); "
                 "pointing: the map's peak in the mask" + (f" or within {report.tolerance:g} px of it"
                                                           if report.tolerance else
                                                           " (strictly)" if report.tolerance == 0 else
                                                           " or within half a cell of the layer's map of it"))
    if report.looks_away:
        lines += ["", "looks away from the defect (worst first):"]
        for a in report.looks_away[:10]:
            lift = "-" if a.get("lift") is None else f"{a['lift']:.1f}"
            lines.append(f"  part {a['part_id']} view {a['view']} ({a['camera']}, {a['cls']}): "
                         f"IoU {a['iou']:.2f}, energy {a['energy']:.2f}, lift {lift}, "
                         f"peak {'in' if a['pointing'] else 'off'} mask")
    lines += ["", "shortcut alarm: " + ("RAISED" if report.shortcut_flagged else "quiet")]
    for a in report.shortcut:
        lines.append(f"  {a.camera}: {'FLAGGED ' if a.flagged else ''}{a.note}")
    return "\n".join(lines)
