"""The `okng` console script.

Subcommands live in small modules, one per room of the product; each exposes
`register(subparsers)` which adds its commands with `set_defaults(func=...)`. Nothing here
imports Qt: every subcommand but the GUI works without PyQt6 installed.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Registry of command modules, in the order their commands appear in --help.
COMMAND_MODULES = ("app.cli.project", "app.cli.check", "app.cli.classes", "app.cli.train", "app.cli.tune", "app.cli.prune", "app.cli.pretrain",
                   "app.cli.predict", "app.cli.explain", "app.cli.plc", "app.cli.sort", "app.cli.gui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okng",
        description="okng inspection workstation. Without a command, opens the workstation window.")
    parser.add_argument("--version", action="version", version="okng 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        # A registry of subcommand modules by name (each imports its room lazily, inside its
        # commands); a missing module is a broken install and fails loudly here.
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].lower().endswith((".h5", ".hdf5")):
        argv = ["gui", *argv]  # `okng PROJECT.h5` opens that project in the window
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    args.argv = argv  # what was asked, as typed: a launcher passes it on (okng train --nproc)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("okng: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from app.cli.common import user_error_types
        if isinstance(exc, user_error_types()):
            print(f"okng {args.command}: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
