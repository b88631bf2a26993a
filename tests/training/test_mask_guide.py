"""Mask-guided training (training.mask_guide): masks move with the augmentation, the snapshot
knows which views' masks speak, the guide learns where the defect is, and the stored model is
the plain classifier."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from labeling.store import Project
from labeling.types import Label, Verdict
from training.backbones import get_backbone
from training.config import AugmentConfig, TrainConfig
from training.inference import load_model
from training.loop import train
from training.mask_guide import MIN_CELLS, MIN_MASKED_VIEWS, MaskGuide
from training.snapshot import load_snapshot
from training.transforms import augment, augment_with_mask


@pytest.fixture
def no_imagenet(monkeypatch, tmp_path):
    import training.weights as w
    monkeypatch.setattr(w, "candidate_paths", lambda arch: [tmp_path / "absent.pth"])
    monkeypatch.setattr(w, "find_pretrained", lambda arch: (None, None))


def _blob(side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(0.3, 0.05, (side, side, 3)).clip(0, 1).astype(np.float32)
    m = np.zeros((side, side), np.float32)
    y0, x0 = (int(v) for v in rng.integers(4, side - side // 4 - 4, 2))
    x[y0:y0 + side // 4, x0:x0 + side // 4] = 0.95
    m[y0:y0 + side // 4, x0:x0 + side // 4] = 1.0
    return x, m


@pytest.mark.parametrize("cfg", [AugmentConfig(hflip=1.0, vflip=1.0, brightness=0.3, contrast=0.2, noise=0.01),
                                 AugmentConfig(rotate=25, crop=0.2, shift=0.1, hue=10, saturation=0.2, value=0.1)])
def test_the_mask_moves_with_the_view_and_the_pixels_are_what_augment_gives(cfg):
    """Same random draws as augment() (a run with masks sees the same pixels), and after any
    geometric step the mask still covers the bright defect."""
    for seed in range(4):
        x, m = _blob(48, np.random.default_rng(seed))
        alone = augment(x.copy(), cfg, np.random.default_rng(100 + seed))
        px, pm = augment_with_mask(x.copy(), m, cfg, np.random.default_rng(100 + seed))
        assert np.array_equal(alone, px) and pm.shape == m.shape
        if cfg.hflip == 1.0:
            assert np.array_equal(pm, m[::-1, ::-1])
        bright, covered = px.mean(axis=2) > 0.7, pm > 0.5
        assert (bright & covered).sum() / max((bright | covered).sum(), 1) > 0.6


def test_the_snapshot_knows_which_views_masks_speak_for(tmp_path):
    path = make_toy_project(tmp_path / "m.okng", n_ok=2, n_ng=2, size=(40, 40), views=2, masks=True)
    proj = Project.open(path)
    img = np.full((40, 40), 80, np.uint8)
    pid = proj.add_part([img, img], label=Label(Verdict.NG, 1), name="no-mask")
    snap = load_snapshot(path, (20, 20), "resize")
    assert snap is not None
    for part in snap.parts:
        views = [snap.views[i] for i in part.views]
        if part.part_id == pid:  # NG without masks: where is unknown, no guide loss
            assert all(not v.mask_known and v.mask is None for v in views)
        elif part.ng:  # one view holds the blob, the other is known clean
            masked = [v for v in views if v.mask is not None]
            assert len(masked) == 1 and all(v.mask_known for v in views)
            assert masked[0].mask.shape == (20, 20) and masked[0].mask.max() == 255
            assert masked[0].target == 1 and 0.01 < (masked[0].mask > 0).mean() < 0.2
        else:
            assert all(v.mask_known and v.mask is None for v in views)


def test_the_guide_learns_where_the_defect_is_and_leaves_no_hook():
    """A resnet18 from scratch with only the guide's loss: after 40 steps its head scores the
    cells under the mask above the clean ones on images it never saw."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = get_backbone("resnet18")
    model = spec.build(2)
    guide = MaskGuide(model, spec, weight=1.0)
    opt = torch.optim.Adam([*model.parameters(), *guide.parameters()], lr=2e-3)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [_blob(128, rng) for _ in range(n)]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)).contiguous()
        return x, torch.from_numpy(np.stack([p[1] for p in pairs])[:, None])
    known = torch.ones(8, dtype=torch.bool)
    first = None
    for _ in range(40):
        x, m = batch(8)
        model(x)
        loss = guide.loss(m, known)
        assert loss is not None
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model(x)
    assert guide.loss(m, torch.zeros(8, dtype=torch.bool)) is None  # nothing known: no loss
    model.eval()
    x, m = batch(8)
    with torch.no_grad():
        model(x)
        cells = guide.head(guide._feats).flatten()
    target = torch.nn.functional.adaptive_max_pool2d(m, (4, 4)).flatten() > 0.5
    assert cells[target].mean() > cells[~target].mean() + 1.0, (cells[target].mean(), cells[~target].mean())
    assert guide.mean_loss() is not None and guide.mean_loss() < first
    guide.close()
    assert not model.get_submodule(spec.target_layer)._forward_hooks


def test_a_run_with_masks_says_so_and_stores_the_plain_classifier(tmp_path, no_imagenet):
    path = make_toy_project(tmp_path / "m.okng", n_ok=8, n_ng=8, size=(128, 128), views=1, masks=True)
    cfg = {"arch": "resnet18", "epochs": 2, "input_size": 128, "batch_size": 8, "seed": 0}
    on = train(path, TrainConfig(**cfg)).card
    assert on is not None
    why = on.extra["recipe"]["mask_guide"]
    assert why.startswith("on: ") and "weight 1" in why and "mean mask loss" in why
    off = train(path, TrainConfig(**cfg, mask_weight=0)).card
    assert off is not None and off.extra["recipe"]["mask_guide"] == "off (mask weight 0)"
    guided, unguided = (load_model(path, c.id, device="cpu").model for c in (on, off))
    assert set(guided.state_dict()) == set(unguided.state_dict())  # no guide head in the stored model
    assert not any(m._forward_hooks for m in guided.modules())
    small = train(path, TrainConfig(**{**cfg, "input_size": 96, "epochs": 1})).card
    assert small is not None and small.extra["recipe"]["mask_guide"] == (
        f"off: a 96x96 input leaves 3 cell(s) across the last feature map, fewer than {MIN_CELLS}")
    bare = make_toy_project(tmp_path / "b.okng", n_ok=8, n_ng=8, size=(128, 128), views=1, masks=False)
    none = train(bare, TrainConfig(**{**cfg, "epochs": 1})).card
    assert none is not None
    assert none.extra["recipe"]["mask_guide"].startswith(f"off: 0 NG training view(s) with a defect mask, "
                                                          f"fewer than {MIN_MASKED_VIEWS}")


def test_class_models_get_the_guide_when_asked(tmp_path, no_imagenet):
    """On by default for OK/NG models only (where it was measured); a class model gets it with
    an explicit weight."""
    from toykit import make_class_project
    path = make_class_project(tmp_path / "c.okng", per_class=3, n_ok=4, size=(128, 128), views=1)
    cfg = {"task": "classes", "arch": "resnet18", "epochs": 1, "input_size": 128, "batch_size": 8}
    default = train(path, TrainConfig(**cfg)).card
    assert default is not None and default.extra["recipe"]["mask_guide"].startswith(
        "off: measured on OK/NG models only so far (--mask-weight 1 turns it on for a classes model)")
    asked = train(path, TrainConfig(**cfg, mask_weight=0.5)).card
    assert asked is not None and asked.extra["recipe"]["mask_guide"].startswith("on: ")
    assert "weight 0.5" in asked.extra["recipe"]["mask_guide"]
