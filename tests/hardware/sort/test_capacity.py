"""Can the model keep up with the line: the capacity sentence before and while parts flow, and a
real run against the PLC simulator with a model fast enough and one too slow for the line."""
from __future__ import annotations

import time

import pytest
from sortkit import brightness_classifier

from hardware.sort import SortConfig
from hardware.sort.capacity import Capacity, assess
from hardware.sort.rig import run_on_simulator
from hardware.sort.stats import LatencyStats
from hardware.sources import make_source


def test_levels_follow_the_share_of_the_trigger_period_a_part_takes():
    assert Capacity(100.0, 2.0, "warm-up forward").level == "ok"  # 20 % of a 500 ms period
    assert Capacity(100.0, 6.5, "warm-up forward").level == "tight"  # 65 %
    assert Capacity(100.0, 9.0, "warm-up forward").level == "over"  # 90 %
    assert Capacity(100.0, None, "warm-up forward").level == "unknown"
    assert Capacity(0.0, 5.0, "warm-up forward").level == "unknown"
    over = Capacity(250.0, 5.0, "measured p50")
    assert over.max_rate == pytest.approx(4.0)
    assert over.text().startswith("⚠ Cannot keep up: 250 ms a part (measured p50): at most 4.0 parts/s")
    assert "the line triggers 5.0 parts/s" in over.text() and "rejected" in over.text()
    assert "Little headroom" in Capacity(130.0, 5.0, "measured p50").text()
    assert Capacity(20.0, None, "warm-up forward").text().endswith("the line's rate shows once triggers come.")
    assert Capacity(0.0, None, "warm-up forward").text() == "Speed: not measured yet."


def test_assess_prefers_measured_parts_and_the_real_trigger_rate():
    # Before parts: the warm-up forward and the planned rate.
    before = assess(120.0, {}, 0.0, planned_rate=4.0)
    assert (before.part_ms, before.basis, before.line_rate) == (120.0, "warm-up forward", 4.0)
    # A few parts measured: their p50, and the rate triggers really came at.
    during = assess(120.0, {"p50": 180.0, "n": 5}, 6.0, planned_rate=4.0)
    assert (during.part_ms, during.basis, during.line_rate, during.level) == (180.0, "measured p50", 6.0, "over")
    # Two parts are not yet a p50 to trust.
    assert assess(120.0, {"p50": 180.0, "n": 2}, 0.0).basis == "warm-up forward"


def test_trigger_rate_counts_missed_triggers_and_the_decided_rate_does_not():
    stats = LatencyStats()
    for _ in range(6):
        stats.seen(2)  # each poll reveals two triggers: one decided, one missed
        stats.add({"total": 0.01})
        time.sleep(0.02)
    assert stats.trigger_rate() == pytest.approx(2 * stats.rate(), rel=0.25)
    assert stats.trigger_rate(None) > 0


def heavy_classifier(layers: int = 8):
    """A real convolution stack, slow on purpose: many 64-channel 3x3 convolutions."""
    import torch
    from torch import nn

    from hardware.sort.classifier import TorchViewClassifier

    class Heavy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1),
                                      *[nn.Conv2d(64, 64, 3, padding=1) for _ in range(layers)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x).mean(dim=(1, 2, 3)).unsqueeze(1)

    return TorchViewClassifier(Heavy(), input_size=(96, 128), mean=(0, 0, 0), std=(1, 1, 1), model_id="heavy")


def _sim_source():
    src = make_source("sim", resolution=(128, 96))
    src.open()
    return src


def test_a_fast_model_keeps_up_and_says_so(project):
    res = run_on_simulator(project, brightness_classifier(0.285), _sim_source(), parts=8, rate=5.0,
                           travel_s=0.4, config=SortConfig(poll_period=0.002, log_parts=False))
    s = res.summary
    assert s.missed == 0 and s.forward_ms > 0
    cap = s.capacity
    assert cap["level"] == "ok" and cap["basis"] == "measured p50", cap
    assert cap["line_rate"] == pytest.approx(5.0, rel=0.2)  # the triggers' own rate
    assert "parts/s on this PC" in cap["text"] and not cap["text"].startswith("⚠")


def test_a_model_too_slow_for_the_line_is_called_out_and_misses_parts(project):
    import numpy as np
    clf, source = heavy_classifier(), _sim_source()
    cams = list(source.info().cameras)
    views = [np.zeros((96, 128, 3), np.uint8) for _ in cams]
    clf.predict_views(views, cams)  # the first forward pays one-off costs
    t0 = time.perf_counter()
    clf.predict_views(views, cams)
    forward_s = time.perf_counter() - t0
    rate = 2.5 / forward_s  # triggers 2.5 times as fast as the model decides
    res = run_on_simulator(project, clf, source, parts=12, rate=rate, travel_s=0.4,
                           config=SortConfig(poll_period=0.002, log_parts=False))
    s = res.summary
    assert s.missed > 0, "the line outran the model: some parts must have been missed"
    assert s.capacity["level"] == "over", s.capacity
    assert s.capacity["text"].startswith("⚠ Cannot keep up") and s.capacity["max_rate"] < s.capacity["line_rate"]


def test_a_capture_bound_line_is_told_a_lighter_model_will_not_help():
    """An X-ray product still being scanned (or a slow camera) takes most of a part's time: the
    advice is about the source and the line, not the model."""
    cap = assess(60.0, {"p50": 631.0, "n": 20}, 3.9, capture_p50_ms=560.0)
    assert cap.capture_bound and cap.level == "over"
    assert cap.text().startswith("⚠ Cannot keep up: 631 ms a part (measured p50, capture 560 ms of it)")
    assert "not a lighter model" in cap.text() and "pruned" not in cap.text()
    model_bound = assess(60.0, {"p50": 631.0, "n": 20}, 3.9, capture_p50_ms=20.0)
    assert not model_bound.capture_bound and "pruned model" in model_bound.text()
    assert "capture" not in model_bound.text()
