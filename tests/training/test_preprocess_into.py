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


def _smooth(h: int, w: int, dtype, top: int) -> np.ndarray:
    """A smooth view (low frequencies, as a lit part is): the two resizes may only round apart."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    v = 0.5 + 0.25 * np.sin(x / 17.0) * np.cos(y / 23.0) + 0.2 * np.sin((x + 2 * y) / 41.0)
    return (v * top).astype(dtype)


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 4095)])
@pytest.mark.parametrize("src,dst", [((564, 291), (224, 116)), ((300, 400), (120, 170)), ((960, 1280), (96, 128))])
def test_resize_content_is_an_area_shrink(dtype, top, src, dst):
    import cv2

    from training.data import resize_content
    img = _smooth(*src, dtype, top)
    ref = cv2.resize(img, dst[::-1], interpolation=cv2.INTER_AREA).astype(np.int64)
    got = resize_content(img, dst[1], dst[0])
    assert got.shape == ref.shape and got.dtype == img.dtype
    assert np.abs(got.astype(np.int64) - ref).max() <= top // 255 + 1  # one grey level of the 8-bit scale


@pytest.mark.parametrize("phase", range(8))
def test_resize_content_keeps_a_one_pixel_crack(phase):
    """A crack one pixel wide keeps its contrast wherever it falls at a ~0.35 shrink (area
    averaging); a plain bilinear shrink loses it at some phases: the reason for area."""
    import cv2

    from training.data import resize_content
    img = np.full((200, 280), 40, np.uint8)
    img[:, 100 + phase] = 240
    area = cv2.resize(img, (98, 70), interpolation=cv2.INTER_AREA).max(axis=0).max() - 40
    got = resize_content(img, 98, 70).max(axis=0).max() - 40
    assert got >= 0.8 * area > 0


def test_views_are_shared_between_the_caller_and_the_pool_in_order():
    import threading

    from training.inference import shared_map
    seen = []
    out = shared_map(lambda i: (seen.append(threading.get_ident()), i * i)[1], 9)
    assert out == [i * i for i in range(9)] and len(seen) == 9

    def bad(i):
        if i == 5:
            raise ValueError("view 5 is neither gray nor RGB")
        return i
    with pytest.raises(ValueError, match="view 5"):
        shared_map(bad, 8)
