"""`okng check PROJECT` and `okng salvage PROJECT NEW.h5`: a damaged project, named and rescued."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import ProgressBar, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="verify a project: every part's pixels and masks (checksums), "
                                     "the audit trail, models and the journal")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON report")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("salvage", help="copy every readable part, label, mask and model of a damaged "
                                       "project into a new file and list what was lost")
    p.add_argument("project", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON report")
    p.set_defaults(func=cmd_salvage)


def _progress(bar: ProgressBar):
    return lambda p: bar.update(p.done, p.total, p.message)


def cmd_check(args: argparse.Namespace) -> int:
    from labeling.integrity import check_project

    bar = ProgressBar("check", quiet=args.json or not sys.stderr.isatty())
    rep = check_project(args.project, _progress(bar))
    if not bar.quiet:
        bar.close()
    if args.json:
        print_json(rep.to_dict())
    else:
        name = args.project.name
        sums = f"checksums on {rep.checksummed} of {rep.datasets} datasets"
        state = "OK" if rep.ok else f"{len(rep.problems)} problem(s)"
        print(f"{name}: {state}: {rep.parts} parts, {rep.views} views, {rep.masks} masks, "
              f"{rep.models} models, {rep.events} events; {sums}; journal {rep.journal.get('state', '?')}")
        for line in rep.problems:
            print(f"  {line}")
    return 0 if rep.ok else 1


def cmd_salvage(args: argparse.Namespace) -> int:
    from labeling.integrity import salvage_project

    bar = ProgressBar("salvage", quiet=args.json or not sys.stderr.isatty())
    rep = salvage_project(args.project, args.dest, _progress(bar))
    if not bar.quiet:
        bar.close()
    if args.json:
        print_json(rep.to_dict())
    else:
        print(f"{args.dest.name}: {rep.parts} parts ({rep.views} views, {rep.masks} masks), "
              f"{rep.labels} labels, {rep.events} events, {rep.models} models, "
              f"{rep.journal_records} journal records copied from {args.project.name}")
        print(f"lost: {len(rep.lost)}" + (":" if rep.lost else " (nothing)"))
        for line in rep.lost:
            print(f"  {line}")
    return 0
