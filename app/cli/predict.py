"""`okng predict`: pre-label parts with a model (verdict, per-view P(NG) and heatmaps stored)."""
from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.common import ProgressBar, print_json
from app.cli.explain import parse_parts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="pre-label parts with a model: verdicts and heatmaps for the Label view")
    p.add_argument("project", type=Path)
    p.add_argument("--model", default="active", help="model id, or 'active' (default)")
    p.add_argument("--parts", default=None, help="part ids, e.g. 1,2,5-9 (default: all parts)")
    p.add_argument("--redo", action="store_true", help="also parts this model has already predicted")
    p.add_argument("--no-heatmaps", action="store_true", help="verdicts only (faster, no Grad-CAM)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--map-cameras", default=None, metavar="PART=MODEL,...",
                   help="map the parts' cameras onto the model's (e.g. Viky-0=cam0): without it, parts from "
                        "cameras the model does not know are an error")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    parts = parse_parts(args.parts)
    if not args.project.exists():
        raise FileNotFoundError(f"no project at {args.project}")
    from training.cameras import parse_camera_map
    from training.predict_session import PredictSpec, run_session
    spec = PredictSpec(str(args.project), args.model, tuple(parts) if parts is not None else None,
                       redo=args.redo, heatmaps=not args.no_heatmaps, device=args.device,
                       camera_map=tuple(parse_camera_map(args.map_cameras).items()))
    bar = ProgressBar("predict", quiet=args.json)
    try:  # the same session the Label view runs in its child process
        out = run_session(spec, progress=lambda p: bar.update(p.done, p.total))
    finally:
        bar.close()
    if args.json:
        print_json(out)
    else:
        v = out["verdicts"]
        print(f"model {out['model_id']}: {out['predicted']} of {out['parts']} parts predicted "
              f"(OK {v.get('OK', 0)}, NG {v.get('NG', 0)}) in {out['seconds']:.1f} s"
              + (f"; heatmaps at {out['layer']}" if out["layer"] else ""))
        for line in out["failed"]:
            print(f"  not predicted: {line}")
    return 1 if out["failed"] and not out["predicted"] else 0
