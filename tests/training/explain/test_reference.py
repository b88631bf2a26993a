"""Reference masks for the Grad-CAM comparison: the inspectors', or a segmentation model's
stored proposals (used only when every view of the part has one from that model)."""
from __future__ import annotations

import numpy as np

from labeling.store import Project
from labeling.types import DefectClass, Settings
from training.explain.reference import INSPECTOR, reference_caption, reference_masks


def test_reference_masks_read_the_inspectors_or_the_models(tmp_path):
    p = Project.create(tmp_path / "r.h5", Settings(classes=[DefectClass("crack")]))
    drawn = np.zeros((8, 8), np.uint8)
    drawn[2:4, 2:4] = 1
    pid = p.add_part([np.zeros((8, 8), np.uint8)] * 2, masks=[drawn, None])
    proposed = np.zeros_like(drawn)
    proposed[5:7, 5:7] = 1
    p.set_proposal(pid, 0, proposed, "seg-1")
    p.set_proposal(pid, 1, proposed, "seg-1")
    part = p.part(pid)
    assert np.array_equal(reference_masks(INSPECTOR)(p, part, 0), drawn)
    assert reference_masks(None)(p, part, 1) is None
    seg = reference_masks("seg-1")
    assert np.array_equal(seg(p, part, 0), proposed) and np.array_equal(seg(p, part, 1), proposed)
    assert reference_caption("seg-1") == "Mask of seg-1" and reference_caption(INSPECTOR) == "Inspector mask"
