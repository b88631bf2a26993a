"""The sort classifier shares training's view preparation (letterbox, as models are trained)
and training's one decision rule and type (training.inference.decide -> PartDecision)."""
from __future__ import annotations

import numpy as np
import torch

from hardware.sort.classifier import TorchViewClassifier, tiny_net
from labeling.types import ROI, Verdict
from training.data import preprocess_view
from training.inference import PartDecision, decide


def test_views_are_prepared_exactly_as_training_prepares_them():
    img = np.random.default_rng(0).integers(0, 255, (48, 64), dtype=np.uint8)
    roi = ROI(8, 4, 40, 20)
    clf = TorchViewClassifier(tiny_net(), input_size=(32, 32), rois={"cam0": roi})
    t, geom = clf.preprocess(img, "cam0")
    ref, ref_geom = preprocess_view(img, roi, (32, 32))
    assert torch.equal(t, ref) and geom == ref_geom
    assert geom.pad != (0, 0)  # a 40x20 ROI letterboxed into 32x32, not stretched


def test_one_decision_type_with_the_defect_class_of_the_worst_view():
    clf = TorchViewClassifier(tiny_net(classes=3, seed=1), input_size=(24, 32), threshold=0.0)
    img = np.full((48, 64, 3), 128, np.uint8)
    dec = clf.predict_views([img, img], ["cam0", "cam1"])
    assert isinstance(dec, PartDecision) and dec.verdict == Verdict.NG and 1 <= dec.defect_class <= 3
    probs = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    d = decide([0.3, 0.9], 0.5, class_probs=probs)
    assert d.verdict == Verdict.NG and d.defect_class == 1 and d.confidence == 0.9
    ok = decide([0.3, 0.2], 0.5, class_probs=probs)
    assert ok.verdict == Verdict.OK and ok.defect_class == 0 and abs(ok.confidence - 0.7) < 1e-9
