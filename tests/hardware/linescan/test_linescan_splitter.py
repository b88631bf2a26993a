"""StripAssembler and ProductSplitter on synthetic strips whose boundaries are known exactly."""
from __future__ import annotations

import numpy as np
import pytest

from hardware.linescan import ProductSplitter, StripAssembler


def _strip(spans, total, level=1000.0, product=500.0, width=16, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((total, width), level, np.float32) + rng.normal(0, 5, (total, width)).astype(np.float32)
    for a, b in spans:
        img[a:b] = product + rng.normal(0, 5, (b - a, width))
    return img


def _split(img, chunk, **kw):
    sp = ProductSplitter(level=1000.0, min_gap=4, min_length=20, **kw)
    out = []
    for i in range(0, len(img), chunk):
        out += sp.feed(100 + i, img[i:i + chunk])
    return out + sp.flush(), sp


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_products_found_exactly_whatever_the_chunking(chunk):
    spans = [(30, 130), (180, 181 + 250), (500, 560)]
    img = _strip(spans, 600)
    found, sp = _split(img, chunk)
    assert [(p.start_line - 100, p.end_line - 100) for p in found] == [(a, b) for a, b in spans]
    for p, (a, b) in zip(found, spans):
        np.testing.assert_array_equal(p.image, img[a:b])
    assert sp.stats.products == 3


def test_hysteresis_debris_and_long_products():
    img = _strip([(50, 150), (200, 205), (300, 800)], 900)
    img[100:102] = 940  # a line inside the product between the two thresholds: no split
    img[120] = 990  # one bright line inside: shorter than min_gap, no split
    found, sp = _split(img, 33, max_length=300)
    spans = [(p.start_line - 100, p.end_line - 100) for p in found]
    assert spans[0] == (50, 150)
    assert sp.stats.too_short == 1  # the 5-line speck at 200 is debris
    assert spans[1:] == [(300, 600), (600, 800)] and sp.stats.cut_too_long == 1


def test_level_is_estimated_when_not_given():
    img = _strip([(40, 140)], 200, level=30000, product=12000)
    sp = ProductSplitter(min_gap=4, min_length=20)
    found = sp.feed(0, img) + sp.flush()
    assert [(p.start_line, p.end_line) for p in found] == [(40, 140)]
    assert sp.level == pytest.approx(30000, rel=0.01)
    with pytest.raises(ValueError):
        ProductSplitter(enter=0.95, leave=0.9)


def test_assembler_fills_dropped_lines_and_keeps_history():
    asm = StripAssembler(width=4, history=10)
    raw = np.arange(40, dtype=np.uint16).reshape(10, 4)
    first, out = asm.push(np.arange(5, 10), raw[:5])
    assert first == 5 and len(out) == 5
    # lines 10 and 11 were dropped by the detector: repeated from line 9 so lengths stay true
    first, out = asm.push(np.array([12, 13, 14]), raw[5:8])
    assert first == 10 and len(out) == 5 and asm.filled == 2 and list(asm.gaps) == [(10, 2)]
    np.testing.assert_array_equal(out[0], raw[4])
    np.testing.assert_array_equal(out[2], raw[5])
    assert asm.lines == 10 and asm.next_line == 15
    np.testing.assert_array_equal(asm.strip(3), out[-3:])
    asm.push(np.arange(15, 27), np.zeros((12, 4), np.uint16))
    assert asm.strip().shape == (10, 4) and not asm.strip().any()
