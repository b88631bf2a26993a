"""The live-sort preprocessing (views written straight into the batch memory) gives the same
tensors as training's letterbox path (data.preprocess_view), for every kind of view."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from labeling.types import ROI
from training.backbones import get_backbone
from training.card import ModelCard
from training.data import preprocess_into, preprocess_view
from training.inference import LoadedModel

RNG = np.random.default_rng(0)
VIEWS = {
    "rgb8": RNG.integers(0, 256, (96, 128, 3), dtype=np.uint8),
    "gray8": RNG.integers(0, 256, (96, 128), dtype=np.uint8),
    "gray8x1": RNG.integers(0, 256, (96, 128, 1), dtype=np.uint8),
    "xray12": RNG.integers(0, 4096, (96, 128), dtype=np.uint16),
}


@pytest.mark.parametrize("kind", list(VIEWS))
@pytest.mark.parametrize("roi", [None, ROI(10, 5, 60, 30), ROI(0, 0, 20, 90)])
@pytest.mark.parametrize("mode", ["letterbox", "resize"])
@pytest.mark.parametrize("size", [(32, 32), (40, 24), (128, 160)])  # shrink and grow
def test_same_tensor_as_training(kind, roi, mode, size):
    img = VIEWS[kind]
    ref, ref_geom = preprocess_view(img, roi, size, mode=mode)
    out = np.full((3, *size), np.nan, dtype=np.float32)  # garbage must not survive
    geom = preprocess_into(img, roi, out, mode=mode)
    assert geom == ref_geom
    np.testing.assert_allclose(out, ref.numpy(), atol=2e-6, rtol=0)


def test_loaded_model_batches_views_as_training_prepares_them():
    card = ModelCard("m", "mobilenet_v3_small", input_size=(32, 48), rois={"cam1": [10, 5, 60, 30]})
    model = LoadedModel(get_backbone("mobilenet_v3_small").build(2), card, torch.device("cpu"))
    views, cams = [VIEWS["rgb8"], VIEWS["gray8"], VIEWS["rgb8"]], ["cam0", "cam1", "cam1"]
    batch, geoms = model.prepare_batch(views, cams)
    ref = torch.stack([preprocess_view(v, model.rois.get(c), (32, 48))[0] for v, c in zip(views, cams)])
    assert batch.shape == (3, 3, 32, 48) and geoms[1].roi == ROI(10, 5, 60, 30)
    torch.testing.assert_close(batch, ref, atol=2e-6, rtol=0)
