"""Training commands: train, evaluate, models, activate, export-onnx, weights import.

torch is imported inside each command, so `okng --help` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli.common import ProgressBar, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on the project's labelled parts")
    p.add_argument("project", type=Path)
    p.add_argument("--arch", default="resnet18", help="backbone (resnet18, mobilenet_v3_small, vgg16, ...)")
    p.add_argument("--freeze", default="last-block", choices=("head", "last-block", "none", "scratch"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--folds", type=int, default=0, help="k-fold cross-validation by part (mean +- std)")
    p.add_argument("--input-size", type=int, default=None, help="model input side in pixels")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--augment", default="default",
                   help="preset: none, default (horizontal flips), flips (h+v), light, strong")
    p.add_argument("--target-ng-recall", type=float, default=None,
                   help="choose the threshold reaching this NG recall on validation")
    p.add_argument("--warm-start", default=None, help="continue from this model id of the project")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a model on the project's labelled parts")
    p.add_argument("project", type=Path)
    p.add_argument("--model", default="active", help="model id, or 'active'")
    p.add_argument("--all", action="store_true", help="score every labelled part (default: the model's validation parts)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("models", help="the project's models, compared")
    p.add_argument("project", type=Path)
    p.add_argument("--lineage", metavar="ID", default=None,
                   help="a model's pruning lineage: params / FLOPs / latency / held-out metric per model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("activate", help="make a model the one live sort uses")
    p.add_argument("project", type=Path)
    p.add_argument("model")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default=None,
                   help="run it on torch or on ONNX Runtime (its ONNX export, checked equal on stored parts)")
    p.set_defaults(func=cmd_activate)

    p = sub.add_parser("export-onnx", help="export a model to ONNX (verified equal to torch)")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--model", default="active")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("weights", help="manage pretrained (ImageNet) weights")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    w = wsub.add_parser("import", help="install a weights file for an architecture")
    w.add_argument("file", type=Path)
    w.add_argument("--arch", required=True)
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_weights_import)
    w = wsub.add_parser("list", help="which architectures have local ImageNet weights")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_weights_list)


def form_values(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as the training session's form values (training.session.make_config
    turns them into the config, as it does the Train view's)."""
    return {"arch": args.arch, "freeze": args.freeze, "epochs": args.epochs, "folds": args.folds,
            "input_size": args.input_size, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "lr": args.lr, "augment": args.augment, "target_ng_recall": args.target_ng_recall,
            "warm_start": args.warm_start, "seed": args.seed, "patience": args.patience, "device": args.device}


def cmd_train(args: argparse.Namespace) -> int:
    from training.metrics import table2
    from training.session import TrainSpec, run_session
    bar = ProgressBar("train", quiet=args.json)
    res = run_session(TrainSpec(str(args.project), form_values(args)), progress=bar.report)
    bar.close()
    for w in res.warnings:  # said loudly, also with --json (on stderr)
        print(f"okng train: WARNING: {w}", file=sys.stderr)
    if res.cancelled:
        print("okng train: cancelled, nothing stored", file=sys.stderr)
        return 1
    summary = {"model_id": res.model_id, "pretrained": res.pretrained, "pretrained_source": res.pretrained_source,
               "activated": res.activated, "threshold": res.threshold, "seconds": round(res.seconds, 2),
               "metrics": res.metrics, "history": res.to_dict()["history"], "warnings": res.warnings}
    if args.json:
        print_json(summary)
        return 0
    print(f"model {res.model_id} ({'ImageNet start' if res.pretrained else 'trained from scratch'}) "
          f"in {res.seconds:.0f} s{', now active' if res.activated else ''}")
    print(table2(res.metrics["val"], "validation (parts)"))
    cv = res.metrics.get("cv")
    if cv:
        s = cv["summary"]
        print(f"{cv['folds']}-fold CV: " + ", ".join(f"{k} {v['mean']:.3f} +- {v['std']:.3f}" for k, v in s.items()))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_model
    from training.metrics import table2
    bar = ProgressBar("evaluate", quiet=args.json)
    rep = evaluate_model(args.project, args.model, all_parts=args.all, progress=bar.report)
    bar.close()
    if args.json:
        print_json(rep)
        return 0
    print(f"model {rep['model_id']} on {rep['scope']} ({rep['parts']['n']} parts)")
    print(table2(rep["parts"], "parts (NG if any view NG)"))
    print(table2(rep["views"], "views"))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from labeling.store import Project
    from training.card import read_cards
    from training.registry import comparison_rows, comparison_table
    proj = Project.open(args.project, readonly=True)
    models = read_cards(proj)
    if args.lineage:
        from training.lineage import lineage_rows, lineage_table
        mid = proj.active_model_id if args.lineage == "active" else args.lineage
        if mid not in {c.id for c in models}:
            print(f"okng models: error: no model {args.lineage!r} in {args.project}", file=sys.stderr)
            return 1
        if args.json:
            print_json({"active": proj.active_model_id, "lineage": lineage_rows(models, mid, proj.active_model_id)})
        else:
            print(lineage_table(models, mid, proj.active_model_id))
        return 0
    if args.json:
        print_json({"active": proj.active_model_id, "models": comparison_rows(models, proj.active_model_id)})
        return 0
    print(comparison_table(models, proj.active_model_id))
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    from training.registry import activate
    activate(args.project, args.model, args.runtime)
    print(f"active model: {args.model}" + (f" (runtime {args.runtime})" if args.runtime else ""))
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from training.inference import load_model
    from training.onnx_export import export_onnx
    rep = export_onnx(load_model(args.project, args.model, device="cpu"), args.out)
    if args.json:
        print_json(rep)
    else:
        print(f"wrote {rep['path']} ({rep['bytes'] / 1e6:.1f} MB), max |onnx - torch| = {rep['max_abs_diff']:.2e}")
    return 0


def cmd_weights_import(args: argparse.Namespace) -> int:
    from training.weights import import_weights
    dest = import_weights(args.file, args.arch)
    if args.json:
        print_json({"arch": args.arch, "path": str(dest)})
    else:
        print(f"installed {args.arch} weights: {dest}")
    return 0


def cmd_weights_list(args: argparse.Namespace) -> int:
    from training.backbones import BACKBONES
    from training.weights import candidate_paths
    rows = []
    for arch in BACKBONES:
        found = next((str(p) for p in candidate_paths(arch) if p.is_file()), None)
        rows.append({"arch": arch, "weights": found})
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['arch']:<20} {r['weights'] or '- (trains from scratch)'}")
    return 0
