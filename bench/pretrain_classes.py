"""Self-supervised start against scratch for a defect-class model, at equal total minutes (issue 11).

neu_det (six steel defect classes): the train+val pool and the held-out test parts of
bench/train_classes.py (20 % by class; the test parts are in another project, so pretraining never
sees them). Two arms run side by side, one thread each, each on its own copy of the pool:

  scratch : `okng train --task classes --budget T` as the CLI runs it (training.session);
  ssl     : `okng pretrain --budget T*frac` (training.pretrain's default method, MIM), then
            `okng train --task classes --budget T*(1-frac) --ssl-encoder latest`.

With --amortised the pretraining is not counted (a plant pretrains once and retrains often): the
ssl arm's supervised run gets the whole T. Test macro F1 per arm; each keeps its best validation
epoch (okng's own 15 % validation split of the pool).

    .venv/bin/python bench/pretrain_classes.py [--per-class 300] [--total 600] [--frac 0.5] [--amortised]

Prints ONE JSON line on stdout (progress notes go to stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import note


def ssl_pretrain(project: Path, budget_s: float) -> dict:
    """`okng pretrain PROJECT --budget B` on one thread; what it learned."""
    from training.pretrain import PretrainSpec, pretrain
    res = pretrain(PretrainSpec(str(project), budget_s=budget_s, num_threads=1))
    return {"method": res.method, "steps": res.steps, "seconds": round(res.seconds, 1), "images": res.n_images,
            "input": res.input, "learned": res.learned, "note": res.note,
            "loss_first_last": [round(res.losses[0], 4), round(res.losses[-1], 4)] if res.losses else None,
            "chance_loss": None if res.chance_loss is None else round(res.chance_loss, 4)}


def arm(name: str, project: Path, test: Path, total: float, frac: float, amortised: bool) -> dict:
    import torch
    torch.set_num_threads(1)
    from train_classes import okng_arm
    t0 = time.monotonic()
    if name == "scratch":
        return {**okng_arm(project, test, total), "wall_s": round(time.monotonic() - t0, 1)}
    pre = ssl_pretrain(project, total * frac)
    sup = total if amortised else max(total - pre["seconds"], 1.0)
    out = okng_arm(project, test, sup, {"encoder": "latest"})
    return {**out, "pretrain": pre, "supervised_budget_s": round(sup, 1), "wall_s": round(time.monotonic() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--total", type=float, default=600.0, help="seconds per arm")
    ap.add_argument("--frac", type=float, default=0.5, help="share of the total spent pretraining")
    ap.add_argument("--amortised", action="store_true", help="pretraining not counted")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/okng-bench-pretrain-classes"))
    ap.add_argument("--arm", choices=("both", "scratch", "ssl"), default="both")
    a = ap.parse_args()
    work = a.workdir
    if a.arm != "both":
        res = arm(a.arm, work / f"{a.arm}.okng", work / "neu_det-test.okng", a.total, a.frac, a.amortised)
        print(json.dumps(res))
        return
    from train_classes import prepare
    trainval, _, info = prepare(types.SimpleNamespace(workdir=work, data="neu_det", per_class=a.per_class,
                                                      box_masks=False, parts=0))
    for name in ("scratch", "ssl"):
        shutil.copy(trainval, work / f"{name}.okng")
    note({"train_val_parts": info["train_val_parts"], "test_parts": info["test_parts"], "arm_s": a.total})
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    base = [sys.executable, __file__, "--total", str(a.total), "--frac", str(a.frac), "--workdir", str(work),
            *(["--amortised"] if a.amortised else [])]
    procs = {n: subprocess.Popen([*base, "--arm", n], stdout=subprocess.PIPE, env=env, text=True)
             for n in ("scratch", "ssl")}
    res = {n: json.loads(p.communicate()[0].strip().splitlines()[-1]) for n, p in procs.items()}
    f1 = {n: r["test_macro_f1"] for n, r in res.items()}
    print(json.dumps({"bench": "pretrain_classes", "data": "neu_det", **info, "total_s": a.total, "frac": a.frac,
                      "amortised": a.amortised, "threads_per_arm": 1, "test_macro_f1": f1,
                      "ssl_minus_scratch": round(f1["ssl"] - f1["scratch"], 4),
                      "val_best": {n: r["val_best"] for n, r in res.items()},
                      "load_1min": os.getloadavg()[0], **res}))


if __name__ == "__main__":
    main()
