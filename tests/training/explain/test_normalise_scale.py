"""normalise_map's eps is relative to the map's scale: tiny-range maps are not blanked."""
from __future__ import annotations

import numpy as np
import pytest

from training.explain.agreement import normalise_map


@pytest.mark.parametrize("mode", ["minmax", "max"])
@pytest.mark.parametrize("scale", [1.0, 1e-9, 1e-20])
def test_a_map_normalises_the_same_at_any_scale(mode, scale):
    base = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    out = normalise_map(base * np.float32(scale), mode)
    np.testing.assert_allclose(out, base, atol=1e-5)


@pytest.mark.parametrize("mode", ["minmax", "max"])
def test_flat_and_zero_maps_give_zeros_not_nan(mode):
    for m in (np.zeros((3, 3), np.float32), np.full((3, 3), 1e-12, np.float32)):
        out = normalise_map(m, mode)
        assert np.isfinite(out).all() and out.max() <= 1.0
    assert not normalise_map(np.zeros((3, 3), np.float32), mode).any()
