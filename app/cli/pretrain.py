"""`okng pretrain`: self-supervised pretraining of an encoder on the project's own images.

torch is imported inside the command, so `okng --help` stays fast.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from app.cli.common import ProgressBar, print_json


def parse_duration(text: str) -> float:
    """Seconds from '30m', '90s', '1h', '1h30m' or a bare number of seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise ValueError(f"bad duration {text!r} (examples: 30m, 90s, 1h30m)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining on every view of the project (no labels)")
    p.add_argument("project", type=Path)
    p.add_argument("--budget", default="30m", type=parse_duration, help="wall-clock time (30m, 90s, 1h)")
    p.add_argument("--arch", default="resnet18", help="backbone (resnet18, mobilenet_v3_small, ...)")
    p.add_argument("--method", default="mim", choices=("mim", "simclr"),
                   help="mim (default): masked-image reconstruction, which learns even where every part looks "
                        "alike; simclr: contrastive (views of one image told from those of others)")
    p.add_argument("--short", type=int, default=None,
                   help="short side views are scaled to, aspect kept (never upscaled); default: views "
                        "stretched into the square okng train uses from scratch (224 px on most projects)")
    p.add_argument("--crop", type=int, default=96, help="side of the square crops the encoder sees")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hold-out", default=None, metavar="MODEL",
                   help="leave out the views of this model's test parts (its card's split), so a model "
                        "trained from the encoder with the same split settings has test figures the "
                        "encoder never saw; without it a training from the encoder warns when it did")
    p.add_argument("--id", default=None, help="encoder id (default encoder-ARCH-TIMESTAMP)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.add_argument("--list", action="store_true",
                   help="list the project's encoders (id, backbone, method, whether it learned) and stop")
    p.set_defaults(func=cmd_pretrain)


def _list(args: argparse.Namespace) -> int:
    from training.pretrain import encoders
    found = encoders(args.project)
    if args.json:
        print_json(found)
        return 0
    if not found:
        print(f"no encoders in {args.project.name} (run `okng pretrain {args.project}`)")
    verdict = {True: "learned", False: "DID NOT LEARN", None: "too short to tell"}
    for m in found:
        print(f"{m['id']}: {m.get('arch')} ({m.get('method', 'simclr')}), {m.get('n_images')} images, "
              f"{m.get('steps')} steps in {m.get('seconds', 0):.0f}s, {verdict[m.get('learned')]}; "
              f"views {m.get('input') or '-'}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args)
    from training.pretrain import PretrainSpec, pretrain
    parts = None
    if args.hold_out:
        parts = _without_test_of(args.project, args.hold_out)
        if parts is None:
            return 2
    spec = PretrainSpec(project=str(args.project), arch=args.arch, method=args.method, budget_s=args.budget,
                        short=args.short, crop=args.crop, batch_size=args.batch_size, encoder_id=args.id,
                        seed=args.seed, part_ids=parts)  # threads: the cores' fair share (training.core_share)
    bar = ProgressBar("pretrain", quiet=args.json)
    res = pretrain(spec, lambda p: bar.update(p.done, p.total, p.message))
    bar.close()
    if args.json:
        print_json(res.to_dict() | {"losses": res.losses[-20:]})
    else:
        loss = f"{res.losses[-1]:.3f}" if res.losses else "-"
        print(f"encoder {res.encoder_id}: {res.arch} ({res.method}), {res.source}, {res.steps} steps in {res.seconds:.0f}s, "
              f"final loss {loss}; views {res.input}")
        # Said plainly: an encoder that learned nothing is stored (it is what was asked for) but
        # a model started from it is no better than one from scratch.
        print(("warning: " if res.learned is False else "") + res.note)
    return 0


def _without_test_of(project: Path, model_id: str) -> tuple[int, ...] | None:
    """Every part but the model's test parts; None (said on stderr) when there is no such model
    or it has no test split to hold out."""
    import sys

    from training.errors import TrainingError
    from training.pretrain import parts_without_test_of
    try:
        keep, n_test = parts_without_test_of(project, model_id)
    except TrainingError as exc:
        print(f"okng pretrain: error: --hold-out: {exc}", file=sys.stderr)
        return None
    print(f"pretrain: holding out the {n_test} test parts of {model_id}: {len(keep)} parts left", file=sys.stderr)
    return keep
