"""`okng prune`: structural filter pruning of a stored model in rounds (training.prune).

torch is imported inside the command, so `okng --help` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.common import ProgressBar, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="prune a model's filters in rounds (each round a child model)",
                       description="Remove the smallest-norm filters of every layer (channels really removed), "
                                   "fine-tune on the project's training parts, register each round as a child "
                                   "model; compare with `okng models PROJECT --lineage ID`.")
    p.add_argument("project", type=Path)
    p.add_argument("--model", default="active", help="model id (default: the active one)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=0.3, help="fraction of each layer's filters removed per round")
    p.add_argument("--norm", choices=("l1", "l2"), default="l1", help="filter norm ranked")
    p.add_argument("--method", choices=("l1", "asfp"), default="l1",
                   help="l1: hard rounds; asfp: soft pruning with a growing rate, filters removed at the end")
    p.add_argument("--fine-tune-epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the model's / 10)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: the fair share of the cores among the runs on this PC)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    from training.card import read_cards
    from training.lineage import lineage_table
    from training.prune import PruneSpec, prune

    spec = PruneSpec(str(args.project), args.model, args.rounds, args.rate, args.norm, args.method,
                     args.fine_tune_epochs, lr=args.lr, num_threads=args.threads)
    bar = ProgressBar("prune", quiet=args.json)
    res = prune(spec, progress=bar.report)
    bar.close()
    if args.json:
        print_json(res.to_dict())
        return 0 if not res.cancelled else 1
    from labeling.store import Project
    proj = Project.open(args.project, readonly=True)
    print(lineage_table(read_cards(proj), res.parent_id, proj.active_model_id))
    if res.rounds:
        print(f"activate one with: okng activate {args.project} MODEL_ID")
    return 0 if not res.cancelled else 1
