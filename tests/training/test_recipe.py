"""Issue 11's defaults: every layer trains without pretrained weights (a frozen policy asked for
is warned about), the input size comes from the data, gray views get a one-channel stem, a
time budget ends a run by its epoch logic, and a self-supervised encoder start is on the card.

Real HDF5 projects, tiny images; the budget is checked with an injected clock (no timing)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from app.cli import main as cli_main
from labeling.progress import Progress
from labeling.store import Project
from training.backbones import GrayConv2d, first_conv_name, get_backbone
from training.card import read_card
from training.config import AugmentConfig, TrainConfig
from training.evaluate import evaluate_model
from training.loop import fit_split, train
from training.recipe import (
    SHORT_CAP,
    SHORT_MIN,
    SHORT_RUN_STEPS,
    RunClock,
    batch_size_for,
    input_size_for,
    lr_factor,
    resolve,
    short_side_for,
    short_steps,
)
from training.snapshot import load_snapshot, stratified_split

TINY = {"arch": "mobilenet_v3_small", "epochs": 1, "batch_size": 8, "seed": 1}


@pytest.fixture
def no_imagenet(monkeypatch, tmp_path):
    """No local ImageNet file, whatever this machine holds."""
    import training.weights as w
    monkeypatch.setattr(w, "candidate_paths", lambda arch: [tmp_path / "absent.pth"])
    monkeypatch.setattr(w, "find_pretrained", lambda arch: (None, None))


def test_input_size_rule_keeps_aspect_never_upscales_and_fits_the_stride():
    assert input_size_for([(1263, 500)] * 3 + [(1000, 400)], short=128) == (320, 128)  # portrait, aspect kept
    assert input_size_for([(460, 1130)], short=128) == (128, 288)  # short side 128, aspect kept
    assert input_size_for([(100, 150)]) == (96, 128)  # small crops: never upscaled, rounded down
    assert input_size_for([(20, 20)]) == (32, 32)  # one stride at least
    assert input_size_for([(640, 480)], short=256) == (320, 256)


def test_scratch_input_is_a_square_from_the_data():
    """The scratch recipe stretches views into a square: 224 px for the development sets, less for
    a project whose epoch would exceed the pixel budget (never under 128), never upscaled."""
    from training.recipe import square_size_for
    assert square_size_for([(460, 1130)] * 1104) == (224, 224)  # bsdata
    assert square_size_for([(1259, 500)] * 335) == (224, 224)  # KolektorSDD: the short side's 500 px
    assert square_size_for([(460, 1130)] * 2000) == (160, 160)
    assert square_size_for([(460, 1130)] * 100_000) == (128, 128)
    assert square_size_for([(100, 150)] * 10) == (96, 96)  # small crops keep their short side
    assert square_size_for([(20, 20)]) == (32, 32)


def test_input_size_follows_the_number_of_views_within_its_bounds():
    # bsdata-like: 1,104 crops of 460x1130 -> the measured 128 px; KolektorSDD-like: 310 views of
    # 1259x500 can afford ~1.7x the side; a handful of views stop at the cap
    assert input_size_for([(460, 1130)] * 1104) == (128, 288)
    assert input_size_for([(1259, 500)] * 310) == (544, 224)
    assert input_size_for([(1259, 500)] * 4) == (960, 384)
    assert input_size_for([(460, 1130)] * 100_000) == (128, 288)  # never below SHORT_MIN
    assert short_side_for(1, 1.0) == SHORT_CAP and short_side_for(10**6, 3.0) == SHORT_MIN


def test_batch_gives_a_small_set_enough_steps_an_epoch():
    # KolektorSDD's ~270 training views: 16 (17 steps an epoch, not 8); bsdata's ~770 keep 32
    assert batch_size_for(270) == 16 and batch_size_for(770) == 32 and batch_size_for(5000) == 32
    assert batch_size_for(400) == 25 and batch_size_for(10) == 16  # the floor: BatchNorm needs views
    assert batch_size_for(270, asked=8) == 8  # a smaller batch the user chose stays


def test_lr_warms_up_then_falls_to_its_floor():
    assert lr_factor(0.0) == pytest.approx(0.1) and lr_factor(0.1) == pytest.approx(1.0)
    assert lr_factor(0.55) < lr_factor(0.3) < 1.0 and lr_factor(1.0) == pytest.approx(0.02)


def test_auto_resolves_to_every_layer_and_the_scratch_recipe_without_weights():
    warnings: list[str] = []
    cfg, note = resolve(TrainConfig(), False, lambda: ([(48, 64)] * 4, True), warnings)
    assert cfg.freeze == "none" and note["name"] == "scratch" and "every layer" in note["freeze_why"]
    assert (cfg.optimizer, cfg.schedule, cfg.sampler, cfg.class_weights) == ("adamw", "warmup-cosine", "balanced", None)
    assert cfg.input_size == (32, 32) and cfg.fit == "resize"  # stretched to a square, never upscaled
    assert cfg.gray_stem is True and cfg.budget_s == 600.0 and cfg.epochs is None
    assert "4 views" in note["input_size_why"] and "M input pixels" in note["input_size_why"]
    assert cfg.batch_size == 16 and "steps an epoch" in note["batch_why"]
    assert cfg.ema_epochs == 1.0 and "average of the last ~1 epoch(s)" in note["ema_why"]
    assert not warnings
    cfg, note = resolve(TrainConfig(ema_epochs=0), False, lambda: ([(48, 64)] * 4, True), [])
    assert cfg.ema_epochs == 0 and "ema_why" not in note and "averag" not in note["why"]  # asked off: off
    # colour views: three-channel stem; ImageNet weights: the fine-tuning settings as they were
    cfg, _ = resolve(TrainConfig(), False, lambda: ([(48, 64)], False), [])
    assert cfg.gray_stem is False
    cfg, note = resolve(TrainConfig(), True, lambda: pytest.fail("no data look-up"), [])
    assert (cfg.freeze, cfg.optimizer, cfg.epochs, cfg.budget_s, note["name"]) == ("last-block", "adam", 10, None, "manual")
    assert not cfg.ema_epochs  # fine-tuning delivers its weights as they are


def test_short_runs_keep_flips_only_and_small_batches_scale_the_lr():
    """Few optimiser steps (epochs given, no budget): the model is still fitting, so photometric and
    shift augmentations go; a batch under the recipe's 32 takes a square-root-scaled lr."""
    views = lambda: ([(48, 64)] * 100, True)
    cfg, note = resolve(TrainConfig(epochs=6, batch_size=8), False, views, [])
    assert cfg.augment.active() == ["hflip", "vflip"] and "short run" in note["augment_why"]
    assert cfg.lr == pytest.approx(1e-3) and "batch 8" in note["lr_why"]
    cfg, note = resolve(TrainConfig(epochs=200), False, views, [])  # 200 x 3 steps: a long run
    assert "brightness" in cfg.augment.active() and cfg.lr == pytest.approx(2e-3) and "lr_why" not in note
    cfg, _ = resolve(TrainConfig(budget_s=60, batch_size=8), False, views, [])  # budgeted: steps unknown
    assert "shift" in cfg.augment.active() and cfg.short_run_steps == SHORT_RUN_STEPS  # counted after epoch 1
    cfg, _ = resolve(TrainConfig(epochs=200), False, views, [])
    assert cfg.short_run_steps == 0  # counted ahead: nothing left to decide


def test_a_budgeted_run_too_short_for_its_augmentations_keeps_flips_from_epoch_two(tmp_path, monkeypatch):
    """A fake clock moves 10 s per epoch: in a 25 s budget, 2 steps an epoch project 5 steps, under
    the limit, so epochs 2 and 3 draw flips only; with a limit of 5 the run keeps everything."""
    from training import features
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(32, 32))
    snap = load_snapshot(path, (32, 32))
    tr, va = stratified_split(snap.part_targets(), 0.25, 0)
    now, epoch, drawn = [0.0], [1], {}
    real = features.augment

    def spy(x, cfg, rng, gray=False):  # the real augmentation, noting what each epoch drew
        drawn.setdefault(epoch[0], set()).update(cfg.active())
        return real(x, cfg, rng, gray)
    monkeypatch.setattr(features, "augment", spy)

    def progress(p: Progress) -> None:
        if p.stage == "eval":
            now[0] += 10.0
            epoch[0] += 1
    full = AugmentConfig(hflip=0.5, vflip=0.5, brightness=0.2, contrast=0.2, shift=0.06)
    cfg = TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=None, budget_s=25.0, batch_size=8,
                      augment=full, short_run_steps=SHORT_RUN_STEPS, patience=0)
    spec = get_backbone(cfg.arch)
    info: dict = {}
    fit_split(snap, tr, va, cfg, lambda: spec.build(2), progress, None, now=lambda: now[0], info=info)
    assert drawn[1] == {"hflip", "vflip", "brightness", "contrast", "shift"}
    assert drawn[2] == drawn[3] == {"hflip", "vflip"}
    assert "about 5 steps" in info["augment_why"] and "flips only from epoch 2" in info["augment_why"]
    assert info["augment"].active() == ["hflip", "vflip"]
    assert cfg.augment == full  # the caller's config is left as it was
    now[0], epoch[0], info = 0.0, 1, {}
    drawn.clear()
    cfg.short_run_steps = 5  # 5 projected steps are not fewer than 5
    fit_split(snap, tr, va, cfg, lambda: spec.build(2), progress, None, now=lambda: now[0], info=info)
    assert drawn[3] == drawn[1] and "augment_why" not in info
    assert short_steps(30, 60.0, 600.0, 300) is None and short_steps(24, 57.0, 600.0, 300) == 252


def test_the_short_run_projection_leaves_out_the_first_steps_one_off_costs():
    """A GPU-like first epoch: 10 s until the first step is done (CUDA context, autotuning), then
    0.2 s a step, 2.2 s of validation. From the epoch alone a 120 s budget looks like 176 steps;
    at the steady pace it is ~470, not a short run. Even steps (this CPU) project as before."""
    gpu = [10.0 + 0.2 * i for i in range(25)]
    assert short_steps(25, 17.0, 120.0, 300) == 176
    assert short_steps(25, 17.0, 120.0, 300, gpu) is None
    assert short_steps(25, 17.0, 120.0, 600, gpu) == 25 + int(103 / (0.2 * 17.0 / 14.8))
    cpu = [2.2 * (i + 1) for i in range(24)]  # 52.8 s of steps, 57 s with validation
    assert short_steps(24, 57.0, 600.0, 300, cpu) == short_steps(24, 57.0, 600.0, 300) == 252


def test_a_short_budgeted_run_says_so_on_its_card(tmp_path, no_imagenet, capsys, monkeypatch):
    """A 4 s budget on a toy project: its first epoch shows a handful of steps, far under the
    recipe's limit, and the card and `okng train` say the run kept flips only. The loop's clock
    moves 0.05 s each time it is read, so the run is the same however busy the machine is (with
    the wall clock, a loaded machine spent the whole budget on the first epoch: no decision)."""
    import types

    from training import loop
    ticks = [0.0]

    def monotonic() -> float:
        ticks[0] += 0.05
        return ticks[0]
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(monotonic=monotonic))
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(32, 32))
    assert cli_main(["train", str(path), "--arch", "mobilenet_v3_small", "--budget", "4s", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    proj = Project.open(path, readonly=True)
    card = read_card(proj, proj.models()[-1]["id"])
    why = card.extra["recipe"]["augment_why"]
    assert why.startswith("short run: the first epoch took") and "flips only from epoch 2" in why
    assert f"augmentation: {why}" in out and card.config["short_run_steps"] == SHORT_RUN_STEPS
    assert card.config["ema_epochs"] == 1.0 and f"weights: {card.extra['recipe']['ema_why']}" in out
    # the card's config records the flips that trained from epoch 2, not the full set resolved before
    assert TrainConfig.from_dict(card.config).augment.active() == ["hflip", "vflip"]


def test_balanced_sampler_gives_ok_half_and_each_defect_class_an_equal_share():
    from training.sampling import balanced_p as _balanced_p
    t = np.array([0] * 6 + [1] * 6 + [2] * 2 + [3] * 1)
    share = [float(_balanced_p(t)[t == c].sum()) for c in range(4)]
    assert share == pytest.approx([0.5, 1 / 6, 1 / 6, 1 / 6])
    assert _balanced_p(np.array([0, 0, 0, 1]))[3] == pytest.approx(0.5)  # verdicts: 50/50 as before
    no_ok = np.array([1, 1, 1, 2])  # neu_det: no OK part, the classes share everything
    assert [float(_balanced_p(no_ok)[no_ok == c].sum()) for c in (1, 2)] == pytest.approx([0.5, 0.5])
    multi = np.array([[0, 0], [0, 0], [0, 0], [1, 1]])  # multilabel rows: OK or NG
    assert _balanced_p(multi)[3] == pytest.approx(0.5)


def test_frozen_policy_without_weights_is_warned_in_the_cli_and_kept(tmp_path, no_imagenet, capsys):
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(40, 48))
    rc = cli_main(["train", str(path), "--arch", "mobilenet_v3_small", "--freeze", "last-block", "--epochs", "1",
                   "--input-size", "32", "--batch-size", "8", "--ema-epochs", "0.5", "--json"])
    assert rc == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "freeze policy 'last-block' without pretrained weights" in line]
    assert len(said) == 1 and "WARNING" in said[0]  # once, before the run
    proj = Project.open(path, readonly=True)
    card = read_card(proj, proj.models()[0]["id"])
    assert card.freeze == "last-block" and any("freeze policy" in w for w in card.warnings)
    assert card.extra["recipe"]["name"] == "manual"  # what the user asked for, as asked
    assert card.config["ema_epochs"] == 0.5  # an average asked for on the command line, also outside the recipe


def test_train_view_form_warns_before_a_frozen_run(no_imagenet):
    from training.recipe import frozen_warning
    assert "last-block" in frozen_warning({"arch": "resnet18", "freeze": "last-block"})
    assert frozen_warning({"arch": "resnet18", "freeze": "auto"}) == ""
    assert frozen_warning({"arch": "resnet18", "freeze": "head", "encoder": "latest"}) == ""


def test_the_form_knows_before_a_run_whether_the_scratch_recipe_sets_its_fields(tmp_path, monkeypatch):
    """training.recipe.planned_scratch_recipe: what resolve() will decide, from the form's values
    and the local weight files alone (the Train view greys out what the recipe replaces)."""
    from training.recipe import planned_scratch_recipe
    monkeypatch.setenv("OKNG_HOME", str(tmp_path))
    import training.weights as w
    monkeypatch.setattr(w, "_torchvision_filename", lambda arch: None)  # this machine's hub cache aside
    base = {"task": "verdict", "arch": "resnet18", "freeze": "auto", "recipe": "auto"}
    assert planned_scratch_recipe(base) and planned_scratch_recipe({**base, "encoder": "latest"})
    for other in ({"recipe": "manual"}, {"warm_start": "m1"}, {"task": "segment"}, {"freeze": "last-block"}):
        assert not planned_scratch_recipe({**base, **other}), other  # the user's own settings run
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "resnet18.pth").write_bytes(b"weights")
    assert not planned_scratch_recipe(base)  # an ImageNet fine-tune keeps the form's settings
    assert planned_scratch_recipe({**base, "arch": "mobilenet_v3_small"})  # no file for that one
    assert planned_scratch_recipe({**base, "freeze": "scratch"}) and planned_scratch_recipe({**base, "recipe": "scratch"})


def test_gray_views_train_a_one_channel_stem_that_inference_feeds_as_any_model(tmp_path, no_imagenet):
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(40, 72))
    res = train(path, TrainConfig(**TINY))
    card = res.card
    assert card.freeze == "none" and card.extra["recipe"]["name"] == "scratch"
    assert card.input_size == (32, 32) and card.config["gray_stem"] is True  # from the data, not 224
    assert card.fit == "resize"  # inference stretches as training did
    from training.checkpoint import from_bytes
    from training.inference import load_model
    loaded = load_model(path, res.model_id, device="cpu")
    stem = loaded.model.get_submodule(first_conv_name(loaded.model))
    assert isinstance(stem, GrayConv2d) and stem.in_channels == 1
    proj = Project.open(path, readonly=True)
    state = from_bytes(proj.load_checkpoint(res.model_id), card.checkpoint_sha256, "m")["state_dict"]
    assert state[first_conv_name(loaded.model) + ".weight"].shape[1] == 1
    rep = evaluate_model(path, res.model_id)  # the 3-channel pipeline feeds it unchanged
    assert rep["parts"]["n"] == len(card.val_part_ids)


def test_budget_ends_a_run_by_its_epoch_logic(tmp_path):
    """A fake clock moves 10 s per finished epoch: a 25 s budget runs exactly three epochs (the
    third starts at 20 s), and the LR follows the clock's fraction, not an epoch count."""
    path = make_toy_project(tmp_path / "toy.okng", n_ok=6, n_ng=6, size=(32, 32))
    snap = load_snapshot(path, (32, 32))
    tr, va = stratified_split(snap.part_targets(), 0.25, 0)
    now = [0.0]
    lrs: list[float] = []

    def progress(p: Progress) -> None:
        if p.stage == "eval":
            now[0] += 10.0
            lrs.append(p.payload.lr)
    cfg = TrainConfig(arch="mobilenet_v3_small", freeze="none", epochs=None, budget_s=25.0, batch_size=8,
                      optimizer="adamw", lr=2e-3, schedule="warmup-cosine", sampler="balanced", patience=0)
    spec = get_backbone(cfg.arch)
    _, _, history, best, _ = fit_split(snap, tr, va, cfg, lambda: spec.build(2), progress, None, now=lambda: now[0])
    assert len(history) == 3 and 1 <= best <= 3
    # the LR at t = 0 (warm-up), 10 and 20 s of 25: a time schedule, not an epoch count
    assert lrs[0] == pytest.approx(2e-4) and lrs[1] > lrs[2] and lrs[2] == pytest.approx(2e-3 * lr_factor(0.8))
    # epochs and budget together: whichever ends first
    now[0] = 0.0
    cfg.epochs = 2
    _, _, history, _, _ = fit_split(snap, tr, va, cfg, lambda: spec.build(2), progress, None, now=lambda: now[0])
    assert len(history) == 2


def test_run_clock_fraction_is_the_larger_of_time_and_epochs():
    t = [0.0]
    c = RunClock(100.0, 4, lambda: t[0]).start()
    assert c.fraction(1.0) == 0.25
    t[0] = 50.0
    assert c.fraction(1.0) == 0.5 and c.more_epochs(1)
    t[0] = 100.0
    assert not c.more_epochs(1) and c.out_of_time()
    assert not RunClock(None, 3).start().more_epochs(3)


def test_encoder_start_is_recorded_on_the_card(tmp_path, no_imagenet):
    from training.pretrain import PretrainSpec, pretrain
    path = make_toy_project(tmp_path / "toy.okng", n_ok=4, n_ng=4, size=(40, 56), views=2)
    steps = iter(range(1000))
    enc = pretrain(PretrainSpec(project=str(path), budget_s=600, arch="resnet18", short=32, crop=24,
                                batch_size=8), lambda p: None, lambda: next(steps) >= 2)
    res = train(path, TrainConfig(arch="resnet18", encoder="latest", epochs=1, batch_size=8, input_size=32))
    card = res.card
    assert card.pretrained and card.pretrained_source == enc.source == "self-supervised on 16 images of this project"
    assert card.origin == enc.source and card.freeze == "none" and card.config["encoder"] == enc.encoder_id  # not "latest"
    assert card.extra["recipe"]["name"] == "scratch" and card.config["gray_stem"] is True


def test_shift_augmentation_moves_the_view_and_keeps_its_range():
    from training.config import AugmentConfig
    from training.transforms import augment
    x = np.zeros((32, 32, 3), np.float32)
    x[10:20, 10:20] = 1.0
    rng = np.random.default_rng(0)
    outs = [augment(x, AugmentConfig(hflip=0.0, shift=0.2), rng, True) for _ in range(8)]
    assert any(not np.array_equal(o, x) for o in outs) and all(o.min() >= 0 and o.max() <= 1 for o in outs)
    assert torch.is_tensor(torch.from_numpy(outs[0]))


def test_a_gray_stem_is_no_pruned_structure_and_a_pruned_gray_model_loads():
    from training.backbones import single_channel_stem
    from training.checkpoint import build_model, from_bytes, to_bytes
    from training.pruning import structure_of
    spec = get_backbone("resnet18")
    model = single_channel_stem(spec.build(2), spec)
    obj = from_bytes(to_bytes(model, "resnet18", 2, structure_of(model)))
    again = build_model(obj).eval()
    assert isinstance(again.conv1, GrayConv2d) and again(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
