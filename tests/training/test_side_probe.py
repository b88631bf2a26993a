"""The input side a time budget affords (training.side_probe): the projection's arithmetic, the
timed step on the run's own network, and a real budgeted `okng train` whose side is fitted.

Real HDF5 projects, tiny networks. The integration run's budget is a few seconds: no machine
makes MIN_BUDGET_STEPS steps of 192 px views in it, so the side shrinks whatever the load."""
from __future__ import annotations

import itertools

import pytest
from toykit import make_toy_project

from app.cli import main as cli_main
from labeling.store import Project
from training.backbones import get_backbone
from training.card import read_card
from training.config import TrainConfig
from training.recipe import SHORT_MIN, STRIDE
from training.side_probe import MIN_BUDGET_STEPS, PROBE_BATCH, choose_side, projected_steps, time_step


@pytest.fixture
def no_imagenet(monkeypatch, tmp_path):
    import training.weights as w
    monkeypatch.setattr(w, "candidate_paths", lambda arch: [tmp_path / "absent.pth"])
    monkeypatch.setattr(w, "find_pretrained", lambda arch: (None, None))


def test_projected_steps_scale_with_the_pixels_the_budget_and_validation():
    base = projected_steps(0.01, 224, 224, 32, 600, 800, 0)
    assert projected_steps(0.01, 112, 224, 32, 600, 800, 0) == pytest.approx(4 * base, rel=0.01)
    assert projected_steps(0.01, 224, 224, 32, 1200, 800, 0) == pytest.approx(2 * base, rel=0.01)
    assert projected_steps(0.01, 224, 224, 32, 600, 800, 300) < base  # validation takes its share
    assert projected_steps(0.01, 224, 224, 32, 600, 800, 0, world_size=2) == pytest.approx(2 * base, rel=0.01)


def test_the_side_is_the_largest_stride_step_that_affords_enough_steps():
    # fast enough: the recipe's side stays
    fast = choose_side(1e-4, 224, 32, 600, 800, 160)
    assert (fast.side, fast.full_side) == (224, 224) and fast.steps >= MIN_BUDGET_STEPS
    assert "fits about" in fast.why(600)
    # slower: the largest side that still affords the steps, and the next larger one does not
    sides = []
    for per_view in (0.1, 0.15, 0.2):
        c = choose_side(per_view, 224, 32, 600, 800, 160)
        sides.append(c.side)
        assert c.side % STRIDE == 0 and SHORT_MIN <= c.side < 224
        assert c.steps >= MIN_BUDGET_STEPS
        assert projected_steps(per_view, c.side + STRIDE, 224, 32, 600, 800, 160) < MIN_BUDGET_STEPS
        assert c.why(600).startswith("fitted to the budget") and f"at {c.side} px" in c.why(600)
    assert sides == sorted(sides, reverse=True) and len(set(sides)) == 3  # slower machine, smaller side
    # hopeless: never under SHORT_MIN, and the projection says how few
    slow = choose_side(10.0, 224, 32, 600, 800, 160)
    assert slow.side == SHORT_MIN and slow.steps < MIN_BUDGET_STEPS


def test_a_timed_step_is_the_clocks_reading_per_view_of_the_runs_own_network():
    ticks = itertools.count()  # each reading one second later: every step "takes" 1 s
    cfg = TrainConfig(arch="mobilenet_v3_small", gray_stem=True, bf16=True)
    init = lambda: get_backbone(cfg.arch).build(2)
    assert time_step(init, cfg, 64, 2, now=lambda: float(next(ticks))) == pytest.approx(1 / PROBE_BATCH)
    # on the real clock: a positive figure, the gray stem fed one channel (an RGB input would raise)
    assert 0 < time_step(init, cfg, 64, 2) < 10


def test_a_short_budget_on_large_views_trains_a_smaller_side_and_says_why(tmp_path, no_imagenet, capsys):
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(192, 192))
    assert cli_main(["train", str(path), "--arch", "mobilenet_v3_small", "--budget", "3s", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    proj = Project.open(path, readonly=True)
    card = read_card(proj, proj.models()[-1]["id"])
    note = card.extra["recipe"]
    assert tuple(card.input_size) == (SHORT_MIN, SHORT_MIN) and card.config["input_size"] == [SHORT_MIN, SHORT_MIN]
    assert note["side_why"].startswith("fitted to the budget") and "at 192 px" in note["side_why"]
    assert note["side_probe_ms"] > 0 and f"views stretched to {SHORT_MIN}x{SHORT_MIN}" in note["input_size_why"]
    assert f"input side: {note['side_why']}" in out and f"input {SHORT_MIN}x{SHORT_MIN}" in out


def test_epochs_or_a_users_size_are_never_refitted(tmp_path, no_imagenet):
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(192, 192))
    for extra in (["--epochs", "1"], ["--budget", "3s", "--input-size", "160"]):
        assert cli_main(["train", str(path), "--arch", "mobilenet_v3_small", "--batch-size", "8", *extra]) == 0
        proj = Project.open(path, readonly=True)
        card = read_card(proj, proj.models()[-1]["id"])
        assert "side_why" not in card.extra["recipe"]
    assert tuple(card.input_size) == (160, 160)
