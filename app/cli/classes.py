"""`okng classes PROJECT ...`: the class editor (labeling/classes.py) from the command line;
`okng label-issues PROJECT`: the out-of-fold label check (training/label_check.py)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.cli.common import print_json
from app.cli.pretrain import parse_duration

ACTIONS = ("list", "add", "rename", "color", "hotkey", "merge", "retire", "restore")  # _edits has all but list


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classes", help="list or edit a project's defect classes (add, rename, color, hotkey, merge, retire)",
        description="Examples: okng classes P.h5 list | add rust --color '#aa5500' --hotkey 5 | "
                    "rename rust corrosion | color 2 '#00ff00' | hotkey rust 6 | merge 'no coating' "
                    "'short coating' | retire rust | restore rust. A class is named or given by its "
                    "1-based number; merged and retired classes keep their number (it is the mask value).")
    p.add_argument("project", type=Path)
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("args", nargs="*", help="the class, then the new name / colour / key / target class")
    p.add_argument("--color", default="", help="add: #rrggbb (default: the next palette colour)")
    p.add_argument("--hotkey", default=None, help="add: one key (default: the next free digit)")
    p.add_argument("--user", default="supervisor", help="user name recorded in the audit trail")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_classes)

    p = sub.add_parser(
        "label-issues", help="out-of-fold label check: parts whose label the other folds confidently reject",
        description="Trains K models (each part is predicted by the one that never saw it), then lists the "
                    "likely label errors by confident learning, least believed first, and records them in the "
                    "project (the Label view's 'Likely label errors' filter).")
    p.add_argument("project", type=Path)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--task", default="verdict", choices=("verdict", "classes", "multilabel"),
                   help="multilabel: every class of a part checked one-vs-rest")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--freeze", default="auto", choices=("auto", "head", "last-block", "none", "scratch"),
                   help="as okng train: auto fine-tunes the last block on ImageNet weights and trains every "
                        "layer (the from-scratch recipe) without them")
    p.add_argument("--budget", type=parse_duration, default=None,
                   help="the whole check's time, shared by the folds (default from scratch: 10m; with "
                        "ImageNet weights: 10 epochs a fold)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of each fold's model")
    p.add_argument("--group-by", default="auto", metavar="FIELD",
                   help="pictures sharing this imported field's value (e.g. item) stay in one fold, so that "
                        "no sibling picture vouches for a label; auto (default): the parts' item field "
                        "where they have one; none: each part alone")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-record", action="store_true", help="only list them; write nothing into the project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label_issues)


def _want(args: argparse.Namespace, n: int, usage: str) -> list[str]:
    if len(args.args) != n:
        raise ValueError(f"okng classes PROJECT {args.action} {usage}")
    return list(args.args)


def _edits(ce: Any) -> dict[str, tuple[int, str, str, Callable[..., Any]]]:
    """action -> (number of words, usage, key in the JSON answer, the labeling.classes call)."""
    return {
        "add": (1, "NAME [--color #rrggbb] [--hotkey K]", "class",
                lambda p, a, o, u: ce.add_class(p, a[0], o.color, o.hotkey, u)),
        "rename": (2, "CLASS NEW_NAME", "class", lambda p, a, o, u: ce.rename_class(p, a[0], a[1], u)),
        "color": (2, "CLASS #rrggbb", "class", lambda p, a, o, u: ce.recolor_class(p, a[0], a[1], u)),
        "hotkey": (2, "CLASS KEY", "class", lambda p, a, o, u: ce.set_hotkey(p, a[0], a[1], u)),
        "merge": (2, "CLASS INTO_CLASS", "merge", lambda p, a, o, u: ce.merge_classes(p, a[0], a[1], u)),
        "retire": (1, "CLASS", "class", lambda p, a, o, u: ce.retire_class(p, a[0], u)),
        "restore": (1, "CLASS", "class", lambda p, a, o, u: ce.restore_class(p, a[0], u)),
    }


def cmd_classes(args: argparse.Namespace) -> int:
    from labeling import classes as ce
    from labeling.store import Project
    from labeling.types import Role, User

    user = User(args.user, Role.SUPERVISOR)
    project = Project.open(args.project, readonly=args.action == "list")
    out: dict[str, object] = {"action": args.action}
    if args.action == "list":
        _want(args, 0, "")
    else:
        n, usage, key, edit = _edits(ce)[args.action]
        out[key] = asdict(edit(project, _want(args, n, usage), args, user))
    table = ce.class_table(project)
    out["classes"] = [asdict(r) for r in table]
    if args.json:
        print_json(out)
        return 0
    if "merge" in out:
        m = out["merge"]
        print(f"merged {m['source']!r} into {m['into']!r}: {m['labels']} labels, {m['masks']} masks")  # type: ignore[index]
    from training.metrics import column_width
    w = column_width("name", *(r.name for r in table), gap=0)
    print(f"{'#':>3}  {'name':<{w}} {'colour':<8} key  parts  main")
    for r in table:
        state = "  (retired)" if r.retired else ""
        print(f"{r.index:>3}  {r.name:<{w}} {r.color:<8} {r.hotkey or '-':<4} {r.parts:>5} {r.main:>5}{state}")
    return 0


def cmd_label_issues(args: argparse.Namespace) -> int:
    from app.cli.common import ProgressBar
    from training.grouping import resolve as resolve_group_by
    from training.label_check import LabelCheckSpec, run_label_check
    group_by, _ = resolve_group_by(args.group_by, args.project)
    if group_by and args.group_by == "auto":
        print(f"okng label-issues: folds grouped by the parts' {group_by!r} field: the pictures of one {group_by} "
              "are judged by a model that saw none of them (--group-by none: each part alone)", file=sys.stderr)
    values = {"task": args.task, "arch": args.arch, "freeze": args.freeze, "epochs": args.epochs,
              "budget_s": args.budget, "input_size": args.input_size, "batch_size": args.batch_size,
              "seed": args.seed, "device": args.device, "patience": 0, "group_by": group_by}
    bar = ProgressBar("label-issues", quiet=args.json)
    res = run_label_check(LabelCheckSpec(str(args.project), values, args.folds, not args.no_record),
                          progress=bar.report)
    bar.close()
    for w in res.warnings:  # trained from scratch, a frozen policy without weights...
        print(f"okng label-issues: warning: {w}", file=sys.stderr)
    if args.json:
        print_json(res.to_dict())
        return 1 if res.stopped else 0
    grouped = f", grouped by {res.group_by}" if res.group_by else ""
    print(f"{len(res.issues)} likely label errors in {res.parts} parts ({res.folds} folds of "
          f"{'/'.join(map(str, res.fold_parts))} parts{grouped}, task {res.task}"
          f"{', recorded as ' + res.run if res.recorded else ''})")
    for r in res.issues:
        print(f"  part {r.part_id:>6} {r.name:<24} labelled {r.given!r}, the other folds say {r.suggested!r} "
              f"(P(label) {r.self_confidence:.2f}{'; ' + ', '.join(r.disputed) if r.disputed else ''})")
    return 1 if res.stopped else 0
