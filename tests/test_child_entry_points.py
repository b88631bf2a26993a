"""Every child entry point of the workstation runs where PyQt6 and pyqtgraph cannot be imported:
pre-labeling (training.predict_session), explain (training.explain.session), pruning
(training.prune, the Prune panel's child), tuning (training.tune, the Tune panel's child) and live sort
(hardware.sort.session) are run end to end, on a real project with a really trained tiny model,
in a process with Qt blocked (the same blocker as test_boundaries.py)."""
from __future__ import annotations

import json
import textwrap

from test_boundaries import _run


def test_child_entry_points_run_with_qt_blocked(tmp_path):
    code = textwrap.dedent("""
        import json, sys, threading, time
        import torch
        torch.set_num_threads(1)
        from labeling.demo import make_demo_project
        from training.config import AugmentConfig, TrainConfig
        from training.loop import train
        path = sys.argv[1]
        project = make_demo_project(path, "bolts", parts=6, size=(64, 48))
        cfg = TrainConfig(arch="mobilenet_v3_small", freeze="scratch", epochs=1, batch_size=8,
                          input_size=(32, 32), augment=AugmentConfig.none(), patience=0)
        res = train(path, cfg)
        project.reload()
        project.set_active_model(res.model_id)

        from training.predict_session import PredictSpec, run_session as predict
        seen = []
        pre = predict(PredictSpec(path, parts=(1, 2)), progress=seen.append)
        from training.explain.session import ExplainSpec, run_session as explain
        rep = explain(ExplainSpec(path))
        from training.prune import PruneSpec, prune
        pruned = prune(PruneSpec(path, res.model_id, rounds=1, fine_tune_epochs=0, latency_batch=1))
        from training.tune import TuneSpec, tune
        tuned = tune(TuneSpec(path, {"arch": "mobilenet_v3_small", "epochs": 1, "batch_size": 8, "num_threads": 1},
                              trials=1, space={"input_short": 32}, final=False))
        from hardware.sort.session import SessionSpec, run_session as sort
        reports, stop = [], threading.Event()
        def note(p):
            reports.append(p)
            if p.stage == "sort" and p.payload.part is not None:
                stop.set()
        out = sort(SessionSpec(path, source="sim:64x48", threads=1, period=0.05, views_period=0.05,
                               thumb_px=32), progress=note, should_stop=stop.is_set)
        qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PyQt6", "pyqtgraph"))
        print(json.dumps({"predicted": pre["predicted"], "progress": len(seen), "rows": len(rep["rows"]), "pruned": len(pruned.model_ids),
                          "tuned": len(tuned.trials),
                          "sorted": out["triggers"], "qt": qt}))
    """)
    res = _run(code, str(tmp_path / "child.h5"))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["qt"] == []
    assert out["predicted"] == 2 and out["progress"] == 2
    assert out["rows"] > 0 and out["sorted"] >= 1 and out["pruned"] == 1 and out["tuned"] == 1
