"""Pre-labeling (training.predict) on a real project file, with the "oracle" network whose
Grad-CAM follows brightness: NG parts carry a bright masked defect on cam0, so the stored
verdicts, per-view scores and heatmaps can be checked against what must come out."""
from __future__ import annotations

import numpy as np
from test_dataset import loaded, oracle

from labeling.store import Project
from labeling.types import Verdict
from training.explain.heatmaps import encode as small_heatmap
from training.predict import predict_loaded


def test_predictions_are_stored_with_heatmaps_on_the_defect(tmp_path, make_project):
    proj = make_project(tmp_path / "p.h5", jig=False, n=6)
    seen = []
    out = predict_loaded(proj, loaded(oracle()), progress=seen.append)
    assert out["predicted"] == out["parts"] == 6 and out["failed"] == [] and not out["stopped"]
    assert [p.done for p in seen] == list(range(1, 7))
    again = Project.open(proj.path, readonly=True)  # stored, not just in memory
    for part in again.parts():
        pred = part.prediction
        assert pred is not None and pred.model_id == "oracle-1"
        assert pred.verdict == part.verdict  # the oracle sees the bright defect, nothing else
        assert len(pred.scores) == 2 and pred.verdict == (Verdict.NG if max(pred.scores) >= 0.5 else Verdict.OK)
        maps = pred.extra["heatmaps"]
        assert len(maps) == 2 and max(np.asarray(maps[0]).shape) == 64
        if part.verdict == Verdict.NG:
            heat = np.asarray(maps[0], np.float32)
            mask = again.read_mask(part.id, 0)
            y, x = np.unravel_index(int(heat.argmax()), heat.shape)
            sy, sx = mask.shape[0] / heat.shape[0], mask.shape[1] / heat.shape[1]
            ys, xs = np.nonzero(mask)
            # the hottest cell lies on the defect (within one heatmap cell)
            assert ys.min() - sy <= y * sy <= ys.max() + sy and xs.min() - sx <= x * sx <= xs.max() + sx


def test_already_predicted_parts_are_skipped_unless_redo(tmp_path, make_project):
    proj = make_project(tmp_path / "p.h5", jig=False, n=4)
    model = loaded(oracle())
    assert predict_loaded(proj, model, parts=[1, 2], heatmaps=False)["predicted"] == 2
    out = predict_loaded(proj, model, heatmaps=False)
    assert out["parts"] == 2 and out["predicted"] == 2  # only 3 and 4 were left
    assert predict_loaded(proj, model, heatmaps=False)["parts"] == 0
    assert predict_loaded(proj, model, parts=[1], redo=True, heatmaps=False)["predicted"] == 1
    assert len(proj.predictions(1)) == 2 and len(proj.predictions(3)) == 1


def test_cancel_keeps_what_was_finished(tmp_path, make_project):
    proj = make_project(tmp_path / "p.h5", jig=False, n=5)
    done = []
    out = predict_loaded(proj, loaded(oracle()), heatmaps=False, progress=done.append,
                         should_stop=lambda: len(done) >= 2)
    assert out["stopped"] and out["predicted"] == 2
    assert sum(1 for p in Project.open(proj.path, readonly=True).parts() if p.prediction) == 2


def test_small_heatmap_scales_to_0_255_on_the_longer_side():
    heat = np.zeros((100, 200), np.float32)
    heat[50:, 100:] = 1.0
    small = np.asarray(small_heatmap(heat, 64), np.uint8)
    assert small.shape == (32, 64) and small.max() == 255 and small[0, 0] == 0


def test_cli_predict_needs_an_active_model(tmp_path, make_project, capsys):
    from app.cli import main
    proj = make_project(tmp_path / "p.h5", jig=False, n=2)
    assert main(["predict", str(proj.path)]) == 1
    assert "no active model" in capsys.readouterr().err
    assert main(["predict", str(proj.path), "--parts", "x"]) == 1
    assert "expected ids like 1,2,5-9" in capsys.readouterr().err
