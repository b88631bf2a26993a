"""Geometry, preprocessing, snapshot and by-part splits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from labeling.store import Project
from labeling.types import ROI, Verdict
from training.config import AugmentConfig, TrainConfig
from training.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    fit_geometry,
    preprocess_view,
    white_level,
)
from training.errors import TrainingError
from training.preview import preview_augmentations
from training.snapshot import load_snapshot, stratified_kfold, stratified_split
from training.transforms import augment


@pytest.mark.parametrize("mode", ["letterbox", "resize"])
def test_geometry_maps_content_back_onto_roi_exactly(mode):
    roi = ROI(30, 10, 100, 50)
    _, g = preprocess_view(np.zeros((120, 200), np.uint8), roi, (64, 64), mode=mode)
    hm = np.zeros((64, 64), np.float32)
    top, left = g.pad
    ch, cw = g.content_size
    hm[top:top + ch, left:left + cw] = 1.0
    full = g.to_image(hm)
    assert full.shape == (120, 200) and full.dtype == np.float32
    assert np.allclose(full[10:60, 30:130], 1.0)
    assert full.sum() == pytest.approx(100 * 50)  # zero outside the ROI
    if mode == "letterbox":
        assert g.scale == pytest.approx(0.64) and g.pad == (16, 0) and g.content_size == (32, 64)


def test_heatmap_blob_lands_on_the_mask_blob():
    """A blob drawn in the image, pushed through preprocess, comes back where it was."""
    img = np.zeros((90, 160), np.uint8)
    img[40:60, 100:130] = 255
    roi = ROI(60, 20, 90, 60)
    x, g = preprocess_view(img, roi, (48, 48))
    inp = (x[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]).numpy()  # back to [0, 1] in input space
    low = torch.nn.functional.avg_pool2d(torch.from_numpy(inp)[None, None], 2)[0, 0].numpy()  # a coarser "CAM"
    back = g.to_image(low)
    on = back > 0.5
    mask = img > 0
    iou = (on & mask).sum() / (on | mask).sum()
    assert iou > 0.8


def test_uint16_keeps_its_range_and_gray_becomes_three_channels():
    img = np.full((20, 20), 4095, np.uint16)
    img[:10] = 0
    assert white_level(img) == 4095.0
    x, _ = preprocess_view(img, None, (20, 20), mean=(0, 0, 0), std=(1, 1, 1))
    assert torch.allclose(x[:, 15, 5], torch.ones(3))  # 12-bit white is 1.0, not 4095/65535
    assert torch.allclose(x[:, 2, 5], torch.zeros(3))
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_bad_fit_mode_and_image_shape_are_refused():
    with pytest.raises(ValueError, match="fit mode"):
        fit_geometry((10, 10), None, (8, 8), "stretchy")
    with pytest.raises(ValueError, match="neither gray nor RGB"):
        preprocess_view(np.zeros((4, 4, 2), np.uint8), None, (8, 8))


def test_split_is_stratified_and_by_part(tmp_path):
    path = make_toy_project(tmp_path / "p.okng", n_ok=9, n_ng=7, size=(24, 24), views=3)
    snap = load_snapshot(path, (16, 16))
    t = snap.part_targets()
    tr, va = stratified_split(t, 0.25, seed=3)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == 16
    assert set(t[va]) == {0, 1} and set(t[tr]) == {0, 1}
    train_parts = {snap.views[v].part_id for v in snap.view_indices(tr)}
    val_parts = {snap.views[v].part_id for v in snap.view_indices(va)}
    assert train_parts.isdisjoint(val_parts)  # views of one part never straddle
    assert all(len(snap.parts[i].views) == 3 for i in range(16))
    seen = []
    for ftr, fva in stratified_kfold(t, 4, seed=0):
        assert set(ftr).isdisjoint(fva) and set(t[fva]) == {0, 1}
        seen += list(fva)
    assert sorted(seen) == list(range(16))  # every part validated exactly once
    with pytest.raises(TrainingError, match="at least 8"):
        stratified_kfold(t, 8, 0)


def test_snapshot_view_targets_follow_masks_and_needs_both_verdicts(tmp_path):
    path = make_toy_project(tmp_path / "m.okng", n_ok=2, n_ng=3, size=(32, 32), views=2, masks=True)
    snap = load_snapshot(path, (16, 16))
    for p in snap.parts:
        targets = [snap.views[v].target for v in p.views]
        assert sum(targets) == (1 if p.verdict == Verdict.NG else 0)  # only the view with the blob
    meta = snap.meta()
    assert meta["n_ok"] == 2 and meta["n_ng"] == 3 and len(meta["hash"]) == 16
    proj = Project.open(path)
    for p in proj.parts():
        if p.verdict == Verdict.NG:
            proj.set_label(p.id, "OK")
    with pytest.raises(TrainingError, match="at least 2 OK and 2 NG"):
        load_snapshot(path, (16, 16))


def test_augmentations_and_preview(toy_project):
    cfg = TrainConfig(arch="resnet18", input_size=40, augment=AugmentConfig.preset("strong"))
    imgs = preview_augmentations(toy_project, 1, cfg, n=4, seed=1)
    assert len(imgs) == 4 and all(i.shape == (40, 40, 3) and i.dtype == np.uint8 for i in imgs)
    assert not all(np.array_equal(imgs[0], i) for i in imgs[1:])
    assert imgs[0][:5].max() == 0  # letterbox padding (64x48 view in a 40x40 input) stays visible
    rng = np.random.default_rng(0)
    x = np.random.default_rng(1).random((20, 30, 3), dtype=np.float32)
    for name in ("rotate", "crop", "brightness", "contrast", "noise", "clahe"):
        cfg1 = AugmentConfig(hflip=0.0, **{name: 1.0 if name == "clahe" else 0.3 if name != "rotate" else 15})
        y = augment(x, cfg1, rng)
        assert y.shape == x.shape and y.dtype == np.float32 and 0 <= y.min() and y.max() <= 1
        assert not np.allclose(y, x), name
    y = augment(x, AugmentConfig(hflip=1.0), rng)
    assert np.array_equal(y, x[:, ::-1])
    assert not AugmentConfig.preset("light").flips_only() and AugmentConfig.preset("flips").flips_only()
