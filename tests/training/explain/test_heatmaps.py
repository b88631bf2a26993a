"""The one heatmap convention: producers store full-image maps under "heatmaps" (0..255), the
reader gives 0..1 maps, and the sort logger's old "gradcam" maps (model-input frame) are mapped
back through the ROI on read."""
from __future__ import annotations

import numpy as np

from labeling.types import ROI, Part, PartSource, Prediction, Settings, Verdict, ViewInfo
from training.data import fit_geometry
from training.explain.heatmaps import (
    HEAT_PX,
    decode,
    encode,
    model_geometry,
    read_heatmaps,
    to_full_image,
)


def _part(extra: dict, shape=(48, 64), views: int = 1) -> Part:
    p = Part(1, "p", 0.0, PartSource.SORT, [ViewInfo(i, f"cam{i}", shape, "uint8") for i in range(views)])
    p.prediction = Prediction("untrained-tiny", Verdict.NG, (0.9,) * views, 0.9, 1, extra=extra)
    return p


def test_encode_keeps_the_aspect_and_the_range():
    heat = np.zeros((480, 640), np.float32)
    heat[100:200, 300:400] = 1.0
    small = np.asarray(encode(heat), np.uint8)
    assert small.shape == (48, HEAT_PX) and small.max() == 255 and small.min() == 0
    back = decode(small.tolist())
    assert back.dtype == np.float32 and back.max() == 1.0
    assert decode("an error text") is None and decode(None) is None


def test_input_frame_maps_land_on_the_roi_of_the_full_image():
    roi = ROI(40, 10, 20, 30)
    geom = fit_geometry((48, 64), roi, (32, 32), "letterbox")
    cam = np.ones((1, 32, 32), np.float32)
    cam[0, :, :16] = 0.0  # hot on the right half of the model input
    (full,) = to_full_image(cam, [geom])
    assert full.shape == (48, 64)
    ys, xs = np.nonzero(full > 0.5)
    assert ys.min() >= roi.y and ys.max() < roi.y + roi.h
    assert xs.min() >= roi.x + roi.w // 2 - 2 and xs.max() < roi.x + roi.w
    assert full[:, :roi.x].max() == 0.0  # nothing outside the ROI


def test_old_gradcam_key_is_migrated_through_the_roi_on_read():
    class Store:  # what model_geometry reads of a project: settings and model metadata
        settings = Settings(cameras=["cam0"], rois={"cam0": ROI(32, 0, 32, 24)})

        def model_meta(self, mid):
            raise KeyError(mid)  # the untrained demo network is not a project model

    old = np.full((16, 16), 255, np.uint8).tolist()  # model-input frame: all of the ROI is hot
    (h,) = read_heatmaps(_part({"gradcam": [old]}), model_geometry(Store()))
    assert h is not None and h.shape == (48, 64)  # now in the full-image frame
    assert h[:24, 32:].min() > 0.9 and h[24:, :].max() == 0.0 and h[:, :32].max() == 0.0
    assert read_heatmaps(_part({"gradcam": {"error": "no Conv2d"}})) == []
    assert read_heatmaps(_part({"gradcam": [old]})) == [None]  # no geometry: nothing, not misplaced


def test_new_key_is_read_as_stored():
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 3:5] = 255
    (h, none) = read_heatmaps(_part({"heatmaps": [m.tolist(), None]}, views=2))
    assert none is None and h.shape == (6, 8) and h.max() == 1.0 and h[2, 3] == 1.0
