"""Project commands: demo, import, export, info."""
from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.common import ProgressBar, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="create a demo project (simulated bolts or X-ray wool)")
    p.add_argument("project", type=Path)
    p.add_argument("--kind", choices=("bolts", "xray"), default="bolts")
    p.add_argument("--parts", type=int, default=40)
    p.add_argument("--size", default="640x480", help="bolt view size WxH (default 640x480)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", help="import images, labels and masks into a project (created if missing)")
    p.add_argument("project", type=Path)
    p.add_argument("source", type=Path)
    p.add_argument("--format", required=True, dest="fmt", help="imagefolder, masks, labelme, coco, severstal")
    p.add_argument("--strict", action="store_true", help="import nothing if any file has an error")
    p.add_argument("--add-classes", action="store_true", help="add unknown defect classes to the project")
    p.add_argument("--user", default="import", help="user name recorded with the labels")
    p.add_argument("--resize-masks", action="store_true",
                   help="scale masks of another size than their image (nearest) instead of rejecting them")
    p.add_argument("--dry-run", action="store_true", help="check everything and print what would be imported; "
                   "write nothing (no project, no report unless --report)")
    p.add_argument("--report", type=Path, default=None,
                   help="where to write the full JSON report (default: PROJECT.import-report.json beside the project)")
    p.add_argument("--max-pixels", type=float, default=None, metavar="MPIX",
                   help="refuse views over this many megapixels, by their header before decoding (default 64)")
    p.add_argument("--min-side", type=int, default=None, metavar="PX",
                   help="refuse images narrower or lower than this (default 2)")
    p.add_argument("--max-polygon-points", type=int, default=None, metavar="N",
                   help="refuse polygons with more points (default 100000)")
    p.add_argument("--allow-outside", action="store_true",
                   help="read files a source names outside its folder (../x.png, absolute paths)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export a project's images, labels and masks")
    p.add_argument("project", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--format", required=True, dest="fmt")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="summary of a project: parts, views, labels, masks, reviews, models")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 32 or h < 32:
        raise ValueError(f"--size {text!r}: at least 32x32")
    return w, h


def cmd_demo(args: argparse.Namespace) -> int:
    from labeling.demo.build import make_demo_project

    if args.parts < 1:
        raise ValueError("--parts must be at least 1")
    bar = ProgressBar(f"demo {args.kind}", args.parts, quiet=args.json)
    project = make_demo_project(args.project, kind=args.kind, parts=args.parts, seed=args.seed,
                                size=_size(args.size), overwrite=args.overwrite,
                                progress=bar.report)
    bar.close()
    return _report(project.stats(), args.json)


def _limits(args: argparse.Namespace):  # -> labeling.formats.safety.ImportLimits
    from labeling.formats.safety import ImportLimits

    given = {"max_pixels": None if args.max_pixels is None else int(args.max_pixels * 1e6),
             "min_side": args.min_side, "max_polygon_points": args.max_polygon_points}
    return ImportLimits(allow_outside=args.allow_outside, **{k: v for k, v in given.items() if v is not None})


def cmd_import(args: argparse.Namespace) -> int:
    import tempfile

    from labeling.formats import get_format, import_into
    from labeling.store import Project
    from labeling.types import Role, Settings, User

    get_format(args.fmt)  # fail on an unknown format before creating anything
    limits = _limits(args)  # and on a bad limit
    if not args.source.exists():
        raise FileNotFoundError(f"{args.source}: no such file or folder")
    created = not args.project.exists()
    with tempfile.TemporaryDirectory(prefix="okng-dry-") as tmp:
        where = Path(tmp) / args.project.name if args.dry_run and created else args.project
        settings = Settings(name=args.project.stem, cameras=["cam0"])
        project = Project.create(where, settings) if created else Project.open(where, readonly=args.dry_run)
        bar = ProgressBar(f"import {args.fmt}", quiet=args.json)
        report = import_into(project, args.source, args.fmt, strict=args.strict,
                             user=User(args.user, Role.INSPECTOR),
                             add_classes=True if args.add_classes else None,
                             resize_masks=args.resize_masks, dry_run=args.dry_run, limits=limits,
                             progress=lambda p: bar.update(p.done, p.total))
        bar.close()
    # The full list (every error) goes to a file; the terminal gets errors grouped by kind.
    report_path = args.report
    if report_path is None and not args.dry_run:
        report_path = args.project.with_name(args.project.stem + ".import-report.json")
    if report_path is not None:
        report.write_json(report_path, project=str(args.project), source=str(args.source), format=args.fmt)
    out = dict(report.to_dict(groups=True), project=str(args.project), created=created and not args.dry_run,
               report=str(report_path) if report_path else None)
    if args.json:
        print_json(out)
    else:
        for line in report.summary_lines():
            print(line)
        where = "(dry run: nothing written)" if args.dry_run else f"-> {args.project}"
        print(f"{where}" + (f"; full report {report_path}" if report_path else ""))
    return 1 if report.errors and (args.strict or report.imported == 0) else 0


def cmd_export(args: argparse.Namespace) -> int:
    from labeling.formats import export_project
    from labeling.store import Project

    project = Project.open(args.project, readonly=True)
    bar = ProgressBar(f"export {args.fmt}", len(project), quiet=args.json)
    report = export_project(project, args.dest, args.fmt, progress=lambda p: bar.update(p.done, p.total))
    bar.close()
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"exported {report.exported} parts ({report.files} files) to {report.dest}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from labeling.store import Project
    from training.card import read_cards

    project = Project.open(args.project, readonly=True)
    stats = project.stats()
    try:
        stats["models"] = [{"id": c.id, "task": c.task, "arch": c.arch, "freeze": c.freeze,
                            "pretrained": c.pretrained, "start": c.origin, "created": c.created,
                            "on": c.headline_split, "balanced_accuracy": c.headline.get("balanced_accuracy")}
                           for c in read_cards(project)]
    except Exception as exc:  # noqa: BLE001 - a damaged model group must not hide the rest
        stats["models_error"] = str(exc)
    return _report(stats, args.json)


def _report(stats: dict, as_json: bool) -> int:
    if as_json:
        print_json(stats)
        return 0
    print(f"{stats['name']} ({stats['kind']}): {stats['path']}")
    print(f"  parts {stats['parts']}, views {stats['views']}, masks {stats['masks']} "
          f"(parts with a mask {stats['parts_with_mask']})")
    print("  labels: " + ", ".join(f"{k} {v}" for k, v in stats["labels"].items()))
    if stats["defect_classes"]:
        print("  defect classes: " + ", ".join(f"{k} {v}" for k, v in stats["defect_classes"].items()))
    print("  reviews: " + ", ".join(f"{k} {v}" for k, v in stats["reviews"].items()))
    print(f"  predictions {stats['predictions']}, active model {stats['active_model'] or 'none'}")
    for m in stats.get("models", []):
        bal = m["balanced_accuracy"]
        score = f", {'test' if m['on'] == 'test' else 'validation'} balanced accuracy {bal:.3f}" if bal is not None else ""
        print(f"  model {m['id']}: {m['arch']} freeze={m['freeze']} ({m['start']}){score}")
    print(f"  file size {stats['file_bytes'] / 1e6:.1f} MB")
    return 0
