"""`okng tune`: hyperparameter search with Optuna, then the best trial's model (training.tune).

torch and optuna are imported inside the command, so `okng --help` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli.common import ProgressBar, print_json
from app.cli.pretrain import parse_duration


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="search training settings with Optuna (TPE, median pruning), train the best",
        description="Each trial trains with settings drawn by Optuna's TPE sampler (learning rate, weight "
                    "decay, freeze policy, head dropout and hidden units, augmentation strength, input size) and "
                    "is judged on the validation parts only; trials trailing the median at an epoch are pruned. "
                    "The study is stored next to the project (PROJECT.okng-tune.sqlite3) or in --storage, and "
                    "the same command resumes it after a cancel or a crash. The best trial's settings then "
                    "train the final model, registered with the study's name and the trial's number.")
    p.add_argument("project", type=Path)
    p.add_argument("--task", default="verdict", choices=("verdict", "classes", "multilabel"))
    p.add_argument("--arch", default="resnet18", help="backbone (fixed for the study)")
    p.add_argument("--trials", type=int, default=12, help="finished trials (complete or pruned) the study ends with")
    p.add_argument("--timeout", type=parse_duration, default=None,
                   help="start no trial after this long (90s, 30m, 2h); the best so far trains the model")
    p.add_argument("--space", type=Path, default=None,
                   help="JSON or YAML file: ranges that replace the default search space "
                        "(e.g. {\"lr\": {\"low\": 1e-4, \"high\": 1e-2, \"log\": true}, \"input_short\": 128})")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (default: sqlite next to the project); a shared "
                        "postgresql://user:pw@host/db lets several machines work on one study")
    p.add_argument("--study", default=None, help="study name (default: PROJECT-TASK)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 10)")
    p.add_argument("--trial-budget", type=parse_duration, default=None,
                   help="wall-clock time per trial (with --epochs: whichever ends first)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15,
                   help="held out from the search; the final model's headline figures")
    p.add_argument("--group-by", default="auto", metavar="FIELD",
                   help="as `okng train --group-by`: auto (default) groups by the parts' item field where "
                        "they have one; none: each part alone")
    p.add_argument("--split-field", default=None, metavar="FIELD",
                   help="an imported field naming each part's set (train, val or test): every trial and the "
                        "final model use that split, as `okng train --split-field` does")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ssl-encoder", default=None,
                   help="every trial and the final model start from this project's self-supervised encoder: "
                        "latest or an id (okng pretrain)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: the fair share of the cores among the runs on this PC)")
    p.add_argument("--no-final", action="store_true",
                   help="only run trials (a helper machine of a shared study); the final model is left "
                        "to the machine that runs without it")
    p.add_argument("--grace", type=int, default=60,
                   help="seconds without a heartbeat after which a running trial counts as crashed and "
                        "its settings are tried again")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.set_defaults(func=cmd_tune)


def spec_of(args: argparse.Namespace) -> Any:
    from training.grouping import resolve as resolve_group_by
    from training.tune import TuneSpec, read_space_file
    args.group_by = resolve_group_by(args.group_by, args.project)[0]  # auto/none as okng train reads them
    values: dict[str, Any] = {"task": args.task, "arch": args.arch, "epochs": args.epochs,
                              "budget_s": args.trial_budget, "batch_size": args.batch_size,
                              "val_fraction": args.val_fraction, "test_fraction": args.test_fraction,
                              "group_by": args.group_by, "split_field": args.split_field, "seed": args.seed}
    if args.ssl_encoder:
        values["encoder"] = args.ssl_encoder
    if args.threads:
        values["num_threads"] = args.threads
    return TuneSpec(str(args.project), values, trials=args.trials, timeout_s=args.timeout,
                    space=read_space_file(args.space) if args.space else {}, storage=args.storage,
                    study=args.study, final=not args.no_final, grace_s=args.grace)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def cmd_tune(args: argparse.Namespace) -> int:
    from labeling.store import Project
    from training.grouping import resolve as resolve_group_by
    from training.tune import tune
    Project.open(args.project, readonly=True)  # a clear error for a wrong path before optuna & torch load
    args.group_by, group_note = resolve_group_by(args.group_by, args.project)
    if group_note:
        print(f"okng tune: {group_note}", file=sys.stderr)
    bar = ProgressBar("tune", quiet=args.json)
    res = tune(spec_of(args), progress=bar.report)
    bar.close()
    if args.json:
        print_json(res.to_dict())
        return 1 if res.cancelled else 0
    print(f"study {res.study} ({res.storage}): {len(res.trials)} trials, metric {res.metric}")
    for t in res.trials:
        value = f"{t.value:.4f}" if t.value is not None else "-"
        params = ", ".join(f"{k}={_cell(v)}" for k, v in t.params.items())
        print(f"  #{t.number:<3} {t.state:<8} {value:>7}  {params}")
    if res.importances:
        print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in res.importances.items()))
    if res.best is not None:
        print(f"best: trial {res.best.number}, {res.metric} {res.best.value:.4f}")
    if res.model_id:
        test = res.final_metrics.get("test") or {}
        ba = test.get("balanced_accuracy")
        print(f"model {res.model_id} registered" + (f": test balanced accuracy {ba:.3f}" if ba is not None else ""))
    if res.cancelled:
        print("stopped: run the same command again to resume the study")
        return 1
    return 0
