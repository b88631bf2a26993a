"""Seeded fuzz of damaged project files: every case must end in one clear line or a recovery.

Cases (kinds): truncations at several points (a fraction of the file, the last byte, the
header), zeroed blocks (64 B to 64 KiB), flipped bytes in pixel/mask chunks, flipped bytes
anywhere, and journals that are foreign (another project's), damaged (a flipped byte, garbage,
invalid UTF-8), legacy (no project id), for a missing part, or valid but not yet applied.

Each case runs in a forked child: open the project for writing (which replays or rejects the
journal), read every view, mask and model, then `check_project`. Outcomes:
  recovered  everything read, pixels and labels equal to what was written (or, for a valid
             pending journal, with that change applied)
  clear      a ProjectError: one line naming the file
  unclear    a ProjectError that is not one line naming the file
  silent     read without an error but the data differ (damage went unnoticed)
  traceback  any other exception
  crash      the child died (signal)
  timeout    no answer within --timeout seconds
Every case is timed; `over_1s` counts the cases slower than a second.

    nice -n 15 .venv/bin/python bench/fuzz_project.py [--cases 400] [--seed 0]

Prints ONE JSON line. tests/labeling/test_project_fuzz.py runs a small subset in CI.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

KINDS = ("truncate", "zero_block", "flip_pixels", "flip_any", "journal_foreign", "journal_flipped",
         "journal_garbage", "journal_legacy", "journal_missing_part", "journal_pending")


@dataclass
class Base:
    """The undamaged project every case starts from, and what reading it must give."""
    path: Path
    images: dict[int, list[np.ndarray]]
    masks: dict[int, list[np.ndarray | None]]
    verdicts: dict[int, int]
    models: dict[str, bytes]
    project_id: str


def make_base(folder: Path, seed: int = 0) -> Base:
    from labeling.store import Project
    from labeling.types import DefectClass, Settings
    rng = np.random.default_rng(seed)
    p = Project.create(folder / "base.h5", Settings(name="fuzz", classes=[DefectClass("scratch")]))
    images, masks, verdicts = {}, {}, {}
    for k in range(5):
        dtype = np.uint16 if k == 4 else np.uint8  # one X-ray-like part: lzf-compressed
        views = [rng.integers(0, 200, (24, 32), dtype=dtype) for _ in range(2)]
        ms = [(rng.random((24, 32)) > 0.8).astype(np.uint8) if (k + v) % 2 == 0 else None
              for v in range(2)]
        pid = p.add_part(views, cameras=["cam0", "cam1"], masks=ms)
        verdict = "NG" if k % 2 else "OK"
        p.set_label(pid, verdict, "scratch" if verdict == "NG" else 0)
        images[pid], masks[pid], verdicts[pid] = views, ms, 2 if verdict == "NG" else 1
    blob = rng.integers(0, 255, 3000, dtype=np.uint8).tobytes()
    p.save_model("m1", {"arch": "tiny", "created": 1.0}, blob)
    return Base(p.path, images, masks, verdicts, {"m1": blob}, p.project_id)


def _journal_line(record: dict[str, Any], project_id: str | None) -> str:
    from labeling import journal
    if project_id is None:
        return json.dumps(record, separators=(",", ":")) + "\n"
    return journal.seal(record, project_id)


def damage(base: Base, kind: str, rng: random.Random, dest: Path) -> dict[str, Any]:
    """Write a damaged copy of the base at `dest`; returns the case description and what a
    recovery must read (expected verdicts)."""
    import h5py

    from labeling import journal
    shutil.copyfile(base.path, dest)
    size = dest.stat().st_size
    case: dict[str, Any] = {"kind": kind, "verdicts": dict(base.verdicts)}
    if kind == "truncate":
        at = rng.choice([rng.randint(1, size - 1), size - 1, rng.randint(0, 96),
                         int(size * rng.choice([0.1, 0.25, 0.5, 0.75, 0.9, 0.99]))])
        os.truncate(dest, at)
        case["at"] = at
    elif kind == "zero_block":
        n = rng.choice([64, 512, 4096, 65536])
        off = rng.randint(0, max(0, size - 1))
        with open(dest, "r+b") as fh:
            fh.seek(off)
            fh.write(b"\0" * min(n, size - off))
        case.update(offset=off, length=n)
    elif kind in ("flip_pixels", "flip_any"):
        if kind == "flip_pixels":
            with h5py.File(dest, "r") as f:
                keys = [f"parts/{pid}/v{v}/{name}" for pid in base.images for v in range(2)
                        for name in ("image", "mask") if f"parts/{pid}/v{v}/{name}" in f]
                key = rng.choice(keys)
                info = f[key].id.get_chunk_info(0)
                lo, hi = info.byte_offset, info.byte_offset + info.size
            case["dataset"] = key
        else:
            lo, hi = 0, size
        with open(dest, "r+b") as fh:
            for _ in range(rng.randint(1, 8)):
                at = rng.randrange(lo, hi)
                fh.seek(at)
                b = fh.read(1)[0]
                fh.seek(at)
                fh.write(bytes([b ^ (1 << rng.randrange(8))]))
    else:
        pid = rng.choice(list(base.images))
        seq = len(base.verdicts) + sum(1 for m in base.masks.values() for x in m if x is not None) + 5
        flip = 2 if base.verdicts[pid] == 1 else 1
        rec = {"op": "label", "part": pid, "seq": seq, "time": 1.0,
               "label": {"verdict": flip, "defect_class": 1 if flip == 2 else 0,
                         "user": {"name": "fuzz", "role": "inspector"}, "time": 1.0, "comment": ""}}
        with h5py.File(dest, "r") as f:
            rec["seq"] = int(f.attrs["journal_seq"]) + 1
        jp = journal.journal_path(dest)
        if kind == "journal_foreign":
            text = _journal_line(rec, "f" * 32)
        elif kind == "journal_legacy":
            text = _journal_line(rec, None)
        elif kind == "journal_missing_part":
            text = _journal_line(dict(rec, part=999), base.project_id)
            case["expect_warning"] = True
        elif kind == "journal_pending":
            text = _journal_line(rec, base.project_id)
            case["verdicts"][pid] = flip
        elif kind == "journal_flipped":
            line = bytearray(_journal_line(rec, base.project_id).encode())
            i = rng.randrange(0, len(line) - 1)   # not the newline: a torn line is legitimate
            line[i] = (line[i] ^ (1 << rng.randrange(7))) or 0x20
            if line[i] == 0x0A:
                line[i] = 0x21
            text = line.decode("latin-1")
            case["journal_flipped_at"] = i
        else:  # garbage
            junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
            text = (junk.replace(b"\n", b"") + b"\n").decode("latin-1")
        jp.write_bytes(text.encode("latin-1") if kind in ("journal_flipped", "journal_garbage")
                       else text.encode())
        case["journal"] = kind
    return case


def _exercise(path: Path, base: Base, case: dict[str, Any]) -> dict[str, Any]:
    """What a user does with the file: open (replay), read everything, check. In the child."""
    from labeling.h5io import ProjectError
    from labeling.integrity import check_project
    from labeling.store import Project
    out: dict[str, Any] = {}
    try:
        p = Project.open(path)
        out["warnings"] = list(p.warnings)
        diffs = []
        for pid, views in base.images.items():
            got = p.read_views(pid)
            if any(not np.array_equal(a, b) for a, b in zip(got, views)):
                diffs.append(f"part {pid} pixels")
            for v, m in enumerate(base.masks[pid]):
                gm = p.read_mask(pid, v)
                if (gm is None) != (m is None) or (m is not None and not np.array_equal(gm, m)):
                    diffs.append(f"part {pid} view {v} mask")
            if int(p.part(pid).verdict) != case["verdicts"][pid]:
                diffs.append(f"part {pid} label")
        for mid, blob in base.models.items():
            if p.load_checkpoint(mid) != blob:
                diffs.append(f"model {mid}")
        p.stats()
        out["outcome"] = "silent" if diffs else "recovered"
        out["diffs"] = diffs
        if case.get("journal") in ("journal_foreign", "journal_flipped", "journal_garbage", "journal_legacy") \
                and not any(x.name.startswith(path.name + ".journal.rejected-") for x in path.parent.iterdir()):
            out["outcome"], out["diffs"] = "silent", diffs + ["journal not quarantined"]
    except ProjectError as exc:
        msg = str(exc)
        out["message"] = msg
        out["outcome"] = "clear" if "\n" not in msg and path.name in msg else "unclear"
    except Exception as exc:  # noqa: BLE001 - the very thing this bench counts
        out["outcome"] = "traceback"
        out["message"] = f"{type(exc).__name__}: {exc}"
        out["trace"] = traceback.format_exc()[-800:]
    try:
        rep = check_project(path)
        out["check_ok"] = rep.ok
    except Exception as exc:  # noqa: BLE001
        out["outcome"] = "traceback"
        out["message"] = f"check: {type(exc).__name__}: {exc}"
    return out


def _child(conn, path: str, base: Base, case: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    res = _exercise(Path(path), base, case)
    res["elapsed_s"] = round(time.perf_counter() - t0, 4)
    conn.send(res)
    conn.close()


def run_case(base: Base, case: dict[str, Any], path: Path, timeout: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(child, str(path), base, case))
    proc.start()
    child.close()
    res: dict[str, Any] | None = None
    if parent.poll(timeout):
        try:
            res = parent.recv()
        except EOFError:
            res = None
    proc.join(2)
    if proc.is_alive():
        proc.kill()
        proc.join()
        if res is None:
            res = {"outcome": "timeout"}
    if res is None:
        res = {"outcome": "crash", "exitcode": proc.exitcode}
    res.setdefault("elapsed_s", round(time.perf_counter() - t0, 4))
    return res


def generate(seed: int, n: int) -> list[tuple[str, int]]:
    """(kind, case seed) for n cases, kinds in turn so every kind is covered."""
    rng = random.Random(seed)
    return [(KINDS[i % len(KINDS)], rng.randrange(2**31)) for i in range(n)]


def run(n: int, seed: int, timeout: float = 10.0, keep: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="okng-fuzz-") as tmp:
        tmp = Path(tmp)
        base = make_base(tmp / "base", seed)
        outcomes: dict[str, int] = {}
        by_kind: dict[str, dict[str, int]] = {}
        bad: list[dict[str, Any]] = []
        slowest, over = 0.0, 0
        for i, (kind, cseed) in enumerate(generate(seed, n)):
            d = tmp / f"case{i:04d}"
            d.mkdir()
            path = d / "p.h5"
            case = damage(base, kind, random.Random(cseed), path)
            res = run_case(base, case, path, timeout)
            o = res["outcome"]
            outcomes[o] = outcomes.get(o, 0) + 1
            by_kind.setdefault(kind, {})
            by_kind[kind][o] = by_kind[kind].get(o, 0) + 1
            slowest = max(slowest, res["elapsed_s"])
            over += res["elapsed_s"] > 1.0
            if o not in ("clear", "recovered"):
                bad.append({"case": i, "seed": cseed, **{k: v for k, v in case.items() if k != "verdicts"},
                            **{k: v for k, v in res.items() if k != "warnings"}})
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    for x in d.iterdir():
                        shutil.copyfile(x, keep / f"case{i:04d}-{x.name}")
            shutil.rmtree(d)
    return {"bench": "fuzz_project", "seed": seed, "cases": n, "outcomes": outcomes, "by_kind": by_kind,
            "slowest_s": round(slowest, 3), "over_1s": over, "bad": bad[:20]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--keep", type=Path, help="copy the files of bad cases here")
    args = ap.parse_args()
    import logging
    logging.disable(logging.WARNING)  # replay warnings are expected here, one per journal case
    print(json.dumps(run(args.cases, args.seed, args.timeout, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
