"""The full import fuzz: seeded hostile sources for all five formats, each imported in a child process.

Cases come from tests/labeling/formats/fuzzkit.py (the suite runs a small subset of the same
generator). A worker process runs cases one after another and answers one JSON line per case;
this parent gives each case a time limit, so a hang is a `timeout` and a segfault or abort (which
would kill an in-process run) is a `crash` of that case, after which a fresh worker goes on with
the next one. Prints one JSON line: cases per format, outcomes overall and per format, the failing
cases (format, seed, mutations, detail) and the seconds taken.

Usage: .venv/bin/python bench/fuzz_import.py [--cases-per-format 220] [--seed0 0] [--timeout 60] [--code DIR]
(--code: import labeling/ from another checkout, e.g. to run the same cases against main)
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "tests" / "labeling" / "formats"


def worker() -> None:
    """Read 'fmt seed' lines, answer one JSON outcome line each."""
    sys.path[:0] = [os.environ.get("OKNG_FUZZ_CODE") or str(ROOT), str(KIT)]
    from fuzzkit import make_case, run_case
    with tempfile.TemporaryDirectory(prefix="okng-fuzz-") as d:
        for line in sys.stdin:
            fmt, seed = line.split()
            case_dir = Path(d) / f"{fmt}-{seed}"
            try:
                case = make_case(case_dir / "src", fmt, int(seed))
            except Exception as exc:  # noqa: BLE001 - the generator's fault, not the importer's
                out = {"fmt": fmt, "seed": int(seed), "mutations": [], "outcome": "generator_error",
                       "detail": f"{type(exc).__name__}: {exc}"[:300]}
            else:
                out = run_case(case, case_dir)
            shutil.rmtree(case_dir, ignore_errors=True)  # keep the disk small over a thousand cases
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()


class Pool:
    """One worker child at a time; restarted after a crash or a timeout."""

    def __init__(self, code: Path) -> None:
        self.proc: subprocess.Popen | None = None
        self.code = code

    def ask(self, fmt: str, seed: int, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            env = dict(os.environ, OKNG_FUZZ_CODE=str(self.code),
                       PYTHONPATH=f"{self.code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
            # The worker's stderr goes to a file: a pipe nobody reads could fill and stall it.
            self.err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as its worker
            self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.err, env=env, text=True,
                                         bufsize=1)
        assert self.proc.stdin and self.proc.stdout
        base = {"fmt": fmt, "seed": seed, "mutations": []}
        try:
            self.proc.stdin.write(f"{fmt} {seed}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._dead(base)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return {**base, "outcome": "timeout", "detail": f"no answer in {timeout:.0f} s"}
        line = self.proc.stdout.readline()
        if not line:
            return self._dead(base)
        return json.loads(line)

    def _dead(self, base: dict) -> dict:
        assert self.proc is not None
        self.proc.wait()
        self.err.seek(0)
        err = self.err.read().decode("utf-8", "replace")[-300:]
        out = {**base, "outcome": "crash", "detail": f"worker exit {self.proc.returncode}: {err}"}
        self.proc = None
        return out

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cases-per-format", type=int, default=220)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose labeling/ is fuzzed")
    args = ap.parse_args()
    if args.worker:
        worker()
        return
    sys.path[:0] = [str(ROOT), str(KIT)]
    from fuzzkit import FORMATS

    t0 = time.perf_counter()
    pool = Pool(args.code.resolve())
    outcomes: collections.Counter[str] = collections.Counter()
    per_format: dict[str, collections.Counter[str]] = {f: collections.Counter() for f in FORMATS}
    mutations: collections.Counter[str] = collections.Counter()
    sums = collections.Counter()  # parts imported, per-file errors, cases that reported errors
    failing: list[dict] = []
    slowest = (0.0, "")
    try:
        for seed in range(args.seed0, args.seed0 + args.cases_per_format):
            for fmt in FORMATS:
                t = time.perf_counter()
                out = pool.ask(fmt, seed, args.timeout)
                dt = time.perf_counter() - t
                slowest = max(slowest, (dt, f"{fmt} {seed} {out.get('mutations')}"))
                outcomes[out["outcome"]] += 1
                per_format[fmt][out["outcome"]] += 1
                mutations.update(out.get("mutations") or [])
                sums.update(parts_imported=out.get("imported", 0), file_errors=out.get("errors", 0),
                            cases_with_errors=int(bool(out.get("errors"))))
                if out["outcome"] != "ok":
                    failing.append({k: out.get(k) for k in ("fmt", "seed", "mutations", "outcome", "detail")})
    finally:
        pool.close()
    total = sum(outcomes.values())
    print(json.dumps({"bench": "fuzz_import", "cases": total,
                      "cases_per_format": {f: sum(c.values()) for f, c in per_format.items()},
                      "outcomes": dict(outcomes), **dict(sums), "code": str(args.code), "per_format": {f: dict(c) for f, c in per_format.items()},
                      "mutations": dict(sorted(mutations.items())), "failing": failing[:50],
                      "slowest_case_s": round(slowest[0], 2), "slowest_case": slowest[1],
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
