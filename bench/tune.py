"""`okng tune` on bsdata within a fixed budget: the best trial's TEST figure against the default
configuration's, ONE JSON line on stdout (notes per trial on stderr).

The real set is split 70/15/15 by capture as bench/train.py --real does (bench/train_real.py:
split_rows): the train+val rows become the project okng tunes (its own validation split picks
trials and epochs; no test split inside it), the test rows a separate project that neither arm
sees until the end. Both arms train from the same start (no ImageNet weights on this machine:
okng's from-scratch recipe) for the same time per run:

- default: `okng train` with the recipe's settings, one run of --trial-budget seconds;
- tuned:   `okng tune --trials 12`: 12 trials of --trial-budget seconds (no new trial after
           --budget seconds), then the best trial's settings train the final model.

Both models score the same test images (balanced accuracy per image, threshold 0.5).

    nice -n 19 .venv/bin/python bench/tune.py --budget 1200 --trial-budget 90
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import note, score_test_project
from train_real import make_projects


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="bsdata")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--budget", type=float, default=1200.0, help="seconds after which no trial starts")
    ap.add_argument("--trial-budget", type=float, default=None, help="seconds per run (default budget / trials)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = ap.parse_args()
    import os

    import torch

    from training.session import TrainSpec, run_session
    from training.tune import TuneSpec, tune
    load0 = list(os.getloadavg())  # the shared machine's load: figures under load are not speed figures
    threads = args.threads or max(1, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    per_run = args.trial_budget or args.budget / args.trials
    values = {"budget_s": per_run, "num_threads": threads, "test_fraction": 0.0}
    with tempfile.TemporaryDirectory(prefix="okng-bench-tune-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        pool, test, label, n_pool, _ = make_projects(args.data, work)
        load_s = time.monotonic() - t0

        def on_trial(p) -> None:
            if p.stage == "trial":
                last = p.payload.trials[-1]
                note({"trial": last.number, "state": last.state, "value": last.value, "params": last.params,
                       "t": round(time.monotonic() - t1, 1)})

        t1 = time.monotonic()
        default = run_session(TrainSpec(str(pool), values))
        default_s = time.monotonic() - t1
        d_score = score_test_project(pool, default.model_id, test, label)
        note({"default": d_score, "val": default.metrics["val"]["balanced_accuracy"]})
        t1 = time.monotonic()
        res = tune(TuneSpec(str(pool), values, trials=args.trials, timeout_s=args.budget), on_trial)
        tune_s = time.monotonic() - t1
        t_score = score_test_project(pool, res.model_id, test, label) if res.model_id else {}
    states = [t.state for t in res.trials]
    out = {"bench": "tune", "data": args.data, "load_avg_start": load0, "load_avg_end": list(os.getloadavg()), "trials": len(res.trials), "complete": states.count("COMPLETE"),
           "pruned": states.count("PRUNED"), "failed": states.count("FAIL"), "budget_s": args.budget,
           "trial_budget_s": per_run, "threads": threads, "n_pool": n_pool,
           "default_val_balanced_accuracy": round(default.metrics["val"]["balanced_accuracy"], 4),
           "default_test_balanced_accuracy": d_score["test_balanced_accuracy"],
           "default_test_ng_recall": d_score["test_ng_recall"],
           "tuned_best_trial": res.best.number if res.best else None,
           "tuned_val_balanced_accuracy": round(res.best.value, 4) if res.best and res.best.value is not None else None,
           "tuned_test_balanced_accuracy": t_score.get("test_balanced_accuracy"),
           "tuned_test_ng_recall": t_score.get("test_ng_recall"), "n_test": d_score["n_test"],
           "best_params": res.best.params if res.best else None, "importances": res.importances,
           "import_s": round(load_s, 1), "default_s": round(default_s, 1), "tune_s": round(tune_s, 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
