"""Training commands: train, evaluate, models, activate, export-onnx, weights import.

torch is imported inside each command, so `okng --help` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli.common import ProgressBar, print_json
from app.cli.pretrain import parse_duration
from training.config import TrainConfig

DEFAULTS = TrainConfig()  # the Train view's form starts from the same values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on the project's labelled parts")
    p.add_argument("project", type=Path)
    p.add_argument("--arch", default=DEFAULTS.arch, help=f"backbone (default {DEFAULTS.arch}; mobilenet_v3_small, "
                   "vgg16, ...)")
    p.add_argument("--task", default="verdict", choices=("verdict", "classes", "multilabel", "segment"),
                   help="verdict: OK/NG; classes: OK or one defect class (softmax); multilabel: every "
                        "defect class a part holds (one sigmoid each, thresholds chosen on validation); "
                        "segment: a UNet learning the inspectors' masks")
    p.add_argument("--encoder", default="resnet18",
                   help="segment: encoder (resnet18/34/50, efficientnet-b0..b4, mobilenet_v3_small/large)")
    p.add_argument("--decoder", default="unet", choices=("unet", "unetplusplus", "fpn"), help="segment: decoder")
    p.add_argument("--freeze", default="auto", choices=("auto", "head", "last-block", "none", "scratch"),
                   help="auto: last-block with ImageNet weights, every layer without")
    p.add_argument("--budget", type=parse_duration, default=None,
                   help="train for this long (10m, 90s, 1h): the LR schedule fits the time, the best "
                        "epoch on validation is kept (default for a from-scratch run: 10m)")
    p.add_argument("--epochs", type=int, default=None,
                   help="train this many epochs (default with ImageNet weights: 10); with --budget, "
                        "whichever ends first")
    p.add_argument("--ssl-encoder", default=None,
                   help="start from this project's self-supervised encoder: latest or an id (okng pretrain)")
    p.add_argument("--recipe", default="auto", choices=("auto", "scratch", "manual"),
                   help="auto: the measured from-scratch recipe when no ImageNet weights are used "
                        "(AdamW, warm-up + cosine over the run, input size from the data, 1-channel "
                        "stem for gray views); manual: the optimizer/LR/augment/size given here")
    p.add_argument("--folds", type=int, default=0, help="k-fold cross-validation by part (mean +- std)")
    p.add_argument("--input-size", type=int, default=None,
                   help="model input side in pixels (default: the backbone's with ImageNet weights, "
                   "from the data from scratch: views stretched to a square of 224 px, 128-224)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help="the global batch: with --nproc N (or under torchrun) each optimiser step takes "
                        "this many views split across the processes, so the result does not depend on N")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--augment", default="default",
                   help="preset: none, default (horizontal flips), flips (h+v), light, strong")
    p.add_argument("--head-dropout", type=float, default=0.0,
                   help="dropout before the classifier head's Linear layer(s) (default 0: torchvision's head)")
    p.add_argument("--head-hidden", type=int, default=0,
                   help="units of a hidden dense layer in the classifier head (default 0: none)")
    p.add_argument("--mask-weight", type=float, default=None, metavar="W",
                   help="weight of the defect-mask loss beside the verdict or class loss where the project has "
                        "masks (default: on for OK/NG models where masks allow, see README 'Mask-guided training'; 0: off)")
    p.add_argument("--ema-epochs", type=float, default=None, metavar="E",
                   help="validate and keep the moving average of the weights over about E epochs of steps "
                        "(default: 1 from scratch, 0 = the weights as they are with ImageNet weights)")
    p.add_argument("--target-ng-recall", type=float, default=None,
                   help="choose the threshold reaching this NG recall on validation")
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="share of the parts that choose the best epoch and the threshold (default 0.15)")
    p.add_argument("--test-fraction", type=float, default=0.15,
                   help="share of the parts held out from every choice: the headline figures "
                        "(default 0.15; 0 = no test split). k-fold runs inside the rest")
    p.add_argument("--group-by", default="auto", metavar="FIELD",
                   help="keep parts with the same value of this imported field (e.g. item) on one side "
                        "of every split; auto (default): the parts' item field (item, serial, sample, ...) "
                        "where they have one, a warm start its parent's; none: each part alone")
    p.add_argument("--split-field", default=None, metavar="FIELD",
                   help="a fixed split: this imported field names each part's set (train, val or test; "
                        "parts without a value are split by the fractions)")
    p.add_argument("--warm-start", default=None, help="continue from this model id of the project")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-amp", dest="amp", action="store_false",
                   help="CUDA: train in float32 instead of float16 mixed precision (no effect on a CPU)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel training in N processes on this machine (torchrun; gloo on CPU, "
                        "NCCL with one GPU each); rank 0 stores the one model. Several machines: run "
                        "`torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint "
                        "HOST:PORT -m app.cli train ...` on each")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="train on a Ray cluster: its head's address, HOST or HOST:PORT (Ray Client, port "
                        "10001 by default); the labelled parts go as a snapshot file, the model comes back "
                        "into this project")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.set_defaults(func=cmd_train)

    r = sub.add_parser("seg-rule", help="edit a segmentation model's post-processing for one defect class")
    r.add_argument("project", type=Path)
    r.add_argument("model")
    r.add_argument("cls", help="defect class name")
    r.add_argument("--threshold", type=float, default=None, help="probability threshold")
    r.add_argument("--min-area", type=int, default=None, help="smallest kept component (model-input pixels)")
    r.add_argument("--max-area", type=int, default=None, help="largest kept component (-1: no limit)")
    r.set_defaults(func=cmd_seg_rule)

    p = sub.add_parser("evaluate", help="metrics of a model on the project's labelled parts")
    p.add_argument("project", type=Path)
    p.add_argument("--model", default="active", help="model id, or 'active'")
    p.add_argument("--all", action="store_true",
                   help="score every labelled part, TRAINING PARTS INCLUDED (optimistic); default: the "
                        "model's held-out test parts and parts labelled since it was trained")
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
    w = wsub.add_parser("list", help="which architectures have local weights, and whether each file is "
                                     "torchvision's ImageNet file (sha256 checked) or custom")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_weights_list)


def form_values(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as the training session's form values (training.session.make_config
    turns them into the config, as it does the Train view's)."""
    if getattr(args, "task", "verdict") == "segment":
        return {"task": "segment", "encoder": args.encoder, "decoder": args.decoder, "epochs": args.epochs,
                "time_budget_s": args.budget,
                "input_size": args.input_size, "batch_size": min(args.batch_size, 8) if args.batch_size == DEFAULTS.batch_size
                else args.batch_size, "lr": args.lr, "warm_start": args.warm_start, "seed": args.seed,
                "patience": 0 if args.patience == 5 else args.patience, "device": args.device,
                "pretrained": args.freeze != "scratch", "val_fraction": args.val_fraction,
                "test_fraction": args.test_fraction, "group_by": args.group_by}
    return {"arch": args.arch, "task": args.task, "freeze": args.freeze, "epochs": args.epochs, "folds": args.folds,
            "input_size": args.input_size, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "lr": args.lr, "augment": args.augment, "target_ng_recall": args.target_ng_recall,
            "warm_start": args.warm_start, "seed": args.seed, "patience": args.patience, "device": args.device,
            "val_fraction": args.val_fraction, "test_fraction": args.test_fraction, "group_by": args.group_by,
            "split_field": args.split_field, "budget_s": args.budget, "encoder": args.ssl_encoder, "recipe": args.recipe,
            "amp": getattr(args, "amp", True),
            "head_dropout": args.head_dropout, "head_hidden": args.head_hidden, "mask_weight": args.mask_weight,
            "ema_epochs": args.ema_epochs}


def cmd_train(args: argparse.Namespace) -> int:
    from training.distributed import env_world
    from training.grouping import resolve as resolve_group_by
    from training.recipe import frozen_warning
    from training.session import TrainSpec, run_session
    from training.task_metrics import table
    if args.nproc < 1:
        print("okng train: error: --nproc must be at least 1", file=sys.stderr)
        return 2
    if args.task == "segment" and args.split_field:
        print("okng train: error: --split-field covers verdict, classes and multilabel models; a segment "
              "run splits by --test-fraction and --group-by", file=sys.stderr)
        return 2
    rank, world, _ = env_world()
    # before the launch: every rank resolves it alike
    args.group_by, group_note = resolve_group_by(args.group_by, args.project, args.warm_start)
    if group_note and not rank and args.nproc <= 1:
        print(f"okng train: {group_note}", file=sys.stderr)
    if args.nproc > 1:
        if args.ray:  # the cluster decides its own processes; two launchers for one run would fight
            print("okng train: error: --ray and --nproc exclude each other", file=sys.stderr)
            return 2
        if world > 1:
            print("okng train: error: already one of torchrun's processes: leave out --nproc", file=sys.stderr)
            return 2
        if args.task == "segment":
            print("okng train: error: --nproc covers verdict, classes and multilabel models; train "
                  "segment with one process", file=sys.stderr)
            return 2
        from app.cli.launch import launch
        return launch(getattr(args, "argv", None) or sys.argv[1:], args.nproc)
    should_stop = None
    if world > 1:  # a torchrun rank: a signal stops every rank at the same step, nothing stored
        from app.cli.launch import stop_on_signals
        should_stop = stop_on_signals()
        if rank:  # rank 0 alone speaks; every rank returns the same result and exit code
            res = run_session(TrainSpec(str(args.project), form_values(args)), should_stop=should_stop)
            return 1 if res.cancelled else 0
    values = form_values(args)
    early = frozen_warning(values)
    if early:  # before the run, not after its minutes
        print(f"okng train: WARNING: {early}", file=sys.stderr)
    bar = ProgressBar("train", quiet=args.json)
    spec = TrainSpec(str(args.project), values)
    if args.ray:  # the same session, on the cluster; only this process writes the project
        from training.remote.ray_job import RemoteSpec, run_remote
        res = run_remote(RemoteSpec(spec, args.ray), progress=bar.report)
    else:
        res = run_session(spec, progress=bar.report, should_stop=should_stop)
    bar.close()
    for w in res.warnings:  # said loudly, also with --json (on stderr)
        if w != early:
            print(f"okng train: WARNING: {w}", file=sys.stderr)
    if res.cancelled:
        print("okng train: cancelled, nothing stored", file=sys.stderr)
        return 1
    card = res.card
    summary = {"model_id": res.model_id, "pretrained": res.pretrained, "pretrained_source": res.pretrained_source,
               "activated": res.activated, "threshold": res.threshold, "seconds": round(res.seconds, 2),
               "world_size": getattr(card, "world_size", 1), "global_batch": getattr(card, "global_batch", 0),
               "metrics": res.metrics, "history": res.to_dict()["history"], "warnings": res.warnings,
               "remote": card.extra.get("remote") if card is not None else None}
    if args.json:
        print_json(summary)
        return 0
    split = res.metrics["split"]
    start = res.card.origin if res.card is not None else "trained from scratch"
    procs = f" on {card.world_size} processes (global batch {card.global_batch})" \
        if card is not None and getattr(card, "world_size", 1) > 1 else ""
    print(f"model {res.model_id} ({start}) in {res.seconds:.0f} s{procs}{', now active' if res.activated else ''}")
    if summary["remote"]:
        node = summary["remote"]["node"]
        print(f"trained on the Ray cluster at {summary['remote']['address']}: node {node['host']}, "
              f"{node['gpu'] or 'CPU'}")
    print(f"parts: {split['train_parts']} train, {split['val_parts']} validation, {split.get('test_parts', 0)} test"
          + (f" (grouped by {split['group_by']})" if split.get("group_by") else "")
          + (f" (as the field {split['split_field']!r} says)" if split.get("split_field") else ""))
    if "test" in res.metrics:
        print(table(res.metrics["test"], "TEST (held-out parts, at the validation threshold)"))
    print(table(res.metrics["val"], "validation (chose the best epoch and the threshold: optimistic)"))
    print(_headline(res.metrics))
    if "dice" in res.metrics["val"]:
        per = res.metrics["val"]["seg_per_class"]
        print("dice (pooled / per image): " + ", ".join(
            f"{k} {v['dice']:.3f} / {v['dice_per_image']:.3f}" for k, v in per.items()))
    secs = [h.seconds for h in res.history]
    if secs and res.card is not None:
        card = res.card
        note = card.extra.get("recipe", {})
        recipe = f"recipe {note['name']}, " if note.get("name") else ""  # a segment model records none
        print(f"{len(secs)} epoch(s), {sum(secs) / len(secs):.1f} s per epoch, best epoch {card.best_epoch}; "
              f"{recipe}input {'x'.join(str(v) for v in card.input_size)}, freeze {card.freeze}")
        for key, label in (("input_size_why", "input size"), ("side_why", "input side"), ("augment_why", "augmentation"),
                           ("ema_why", "weights"), ("mask_guide", "mask guide")):
            if note.get(key):
                print(f"{label}: {note[key]}")
    cv = res.metrics.get("cv")
    if cv:
        s = cv["summary"]
        print(f"{cv['folds']}-fold CV: " + ", ".join(f"{k} {v['mean']:.3f} +- {v['std']:.3f}" for k, v in s.items()))
    return 0


def cmd_seg_rule(args: argparse.Namespace) -> int:
    from labeling.store import Project
    from training.card import read_card
    from training.segment.train import seg_info, set_rule
    set_rule(args.project, args.model, args.cls, args.threshold, args.min_area, args.max_area)
    for r in seg_info(read_card(Project.open(args.project, readonly=True), args.model))["rules"]:
        print(f"{r['name']}: threshold {r['threshold']:.2f}, area {r['min_area']}..{r['max_area'] or 'no limit'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_model
    from training.task_metrics import table
    bar = ProgressBar("evaluate", quiet=args.json)
    rep = evaluate_model(args.project, args.model, all_parts=args.all, progress=bar.report)
    bar.close()
    if args.json:
        print_json(rep)
        return 0
    print(f"model {rep['model_id']} on {rep['scope']}: {rep['parts']['n']} parts")
    print(table(rep["parts"], "parts (NG if any view NG; a class model: the deciding view's classes)"))
    print(table(rep["views"], "views"))
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
    from training.onnx_export import export_onnx
    from training.segment.inference import load_any  # a classifier or a segmentation model, by card
    rep = export_onnx(load_any(args.project, args.model, device="cpu"), args.out)
    if args.json:
        print_json(rep)
    else:
        print(f"wrote {rep['path']} ({rep['bytes'] / 1e6:.1f} MB), max |onnx - torch| = {rep['max_abs_diff']:.2e}")
    return 0


def cmd_weights_import(args: argparse.Namespace) -> int:
    from training.weights import import_weights
    prov = import_weights(args.file, args.arch)
    if args.json:
        print_json({"arch": args.arch, "path": prov.path, "imagenet": prov.imagenet, "source": prov.label,
                    "sha256": prov.sha256, "verified": prov.verified})
    else:
        print(f"installed {args.arch} weights: {prov.path}\n  {prov.label}\n  {prov.verified}")
    return 0


def cmd_weights_list(args: argparse.Namespace) -> int:
    from training.backbones import BACKBONES
    from training.weights import installed
    rows = []
    for arch in BACKBONES:
        files = installed(arch)  # in the order training looks: the first one is used
        rows.append({"arch": arch, "weights": files[0].path if files else None,
                     "files": [{"path": f.path, "imagenet": f.imagenet, "source": f.label, "sha256": f.sha256,
                                "verified": f.verified, "used": i == 0} for i, f in enumerate(files)]})
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            if not r["files"]:
                print(f"{r['arch']:<20} - (trains from scratch)")
            for f in r["files"]:
                used = "used   " if f["used"] else "ignored"
                print(f"{r['arch']:<20} {used} {f['source']}\n{'':28}{f['path']}\n{'':28}{f['verified']}")
    return 0


def _headline(metrics: dict[str, Any]) -> str:
    """One line: the test split's balanced accuracy first, validation's beside it."""
    def fig(rep: dict[str, Any], key: str) -> str:
        v = rep.get(key)
        return "-" if v is None else f"{v:.3f}"
    parts = []
    for name, shown in (("test", "TEST"), ("val", "validation")):
        if name in metrics:
            rep = metrics[name]
            v = rep.get("verdict") or rep  # a class model: its derived verdict, and its macro F1
            mf1 = f", macro F1 {fig(rep, 'macro_f1')}" if "macro_f1" in rep else ""
            parts.append(f"{shown}: balanced accuracy {fig(v, 'balanced_accuracy')}, ROC-AUC {fig(v, 'roc_auc')}, "
                         f"NG recall {fig(v, 'ng_recall')}{mf1} ({rep.get('n', v.get('n', '?'))} parts)")
    return " | ".join(parts)
