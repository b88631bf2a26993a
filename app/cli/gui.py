"""`okng gui [PROJECT]` (and plain `okng`): open the workstation window.

PyQt6 is imported only inside func, so `okng --help` and every other command work without it.
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui", help="open the workstation window (the default without a command)",
        description="Open the workstation. Without PROJECT: the last project, or on first start a demo "
                    "project in $OKNG_HOME with the simulated rig and PLC simulator running.")
    p.add_argument("project", nargs="?", help="project file (.h5) to open")
    p.add_argument("--demo", action="store_true", help="(re)create and open the bolts demo project")
    p.add_argument("--no-rig", action="store_true", help="do not start the cameras and PLC simulator")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from app.main import run
    return run(args.project, rig=not args.no_rig, demo=args.demo)
