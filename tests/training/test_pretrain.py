"""Self-supervised pretraining: runs on a real HDF5 project, stores an encoder, the encoder
loads into a backbone with the same weights, and a cancel returns what was finished."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from toykit import make_toy_project

from app.cli import main as cli_main
from app.cli.pretrain import parse_duration
from labeling.progress import Progress
from labeling.store import Project
from training.backbones import build_from_encoder, encoder_state, get_backbone, load_encoder_state
from training.errors import TrainingError
from training.pretrain import (
    PretrainResult,
    PretrainSpec,
    encoders,
    learning_check,
    load_encoder,
    nt_xent,
    pretrain,
    pretrain_images,
    project_images,
    save_encoder,
)

TINY = {"arch": "resnet18", "short": 32, "crop": 24, "batch_size": 8}  # method: the default (mim)


@pytest.fixture
def gray_project(tmp_path):
    return make_toy_project(tmp_path / "toy.okng", n_ok=4, n_ng=4, size=(40, 56), views=2)


def test_pretrain_stores_an_encoder_that_loads_with_the_same_weights(gray_project):
    seen: list[Progress] = []
    steps = iter(range(1000))
    # Stop after 3 steps instead of waiting for a budget: seconds-free and deterministic.
    res = pretrain(PretrainSpec(project=str(gray_project), budget_s=600, encoder_id="enc1", **TINY),
                   seen.append, lambda: next(steps) >= 3)
    assert res.steps == 3 and res.stopped and res.encoder_id == "enc1"
    assert res.n_images == 16 and res.channels == 1  # every view of every part, grayscale stem
    assert res.source == "self-supervised on 16 images of this project"
    assert all(np.isfinite(res.losses))
    assert {p.stage for p in seen} >= {"load", "pretrain", "save"}

    proj = Project.open(gray_project, readonly=True)
    assert [m["id"] for m in encoders(proj)] == ["enc1"]
    assert proj.models() == []  # never listed, activated or predicted with as a classifier
    state, meta = load_encoder(proj, "latest")
    assert meta["kind"] == "encoder" and meta["arch"] == "resnet18" and meta["steps"] == 3
    model = build_from_encoder("resnet18", 2, state)
    own = model.state_dict()
    assert model.conv1.in_channels == 1 and model.fc.out_features == 2
    assert not any(k.startswith("fc.") for k in state)
    for k, v in state.items():
        assert torch.equal(own[k], v), k
    model.eval()
    assert model(torch.zeros(2, 1, 40, 56)).shape == (2, 2)


def test_cancel_before_the_first_step_stores_nothing(gray_project):
    res = pretrain(PretrainSpec(project=str(gray_project), budget_s=600, **TINY), should_stop=lambda: True)
    assert res.steps == 0 and res.stopped and res.encoder_id is None
    assert encoders(gray_project) == []
    with pytest.raises(TrainingError, match="okng pretrain"):
        load_encoder(gray_project)


def test_budget_ends_the_run(gray_project):
    res = pretrain(PretrainSpec(project=str(gray_project), budget_s=0.0, save=False, **TINY))
    assert res.steps == 0 and not res.stopped and res.encoder_id is None


def test_rgb_encoder_loads_into_a_gray_stem_and_back():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (3, 30, 30), dtype=np.uint8) for _ in range(4)]
    steps = iter(range(100))
    state, res = pretrain_images(images, PretrainSpec(project="", **TINY), should_stop=lambda: next(steps) >= 1)
    assert res.channels == 3 and state["conv1.weight"].shape[1] == 3
    spec = get_backbone("resnet18")
    gray = spec.build(2)
    from training.backbones import single_channel_stem
    single_channel_stem(gray, spec)
    load_encoder_state(gray, state, spec)
    assert torch.allclose(gray.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    rgb = build_from_encoder("resnet18", 3, state)
    assert torch.equal(rgb.conv1.weight, state["conv1.weight"])
    assert encoder_state(rgb, spec).keys() == state.keys()


def test_an_encoder_of_another_architecture_is_refused():
    spec = get_backbone("resnet18")
    with pytest.raises(TrainingError):
        load_encoder_state(spec.build(2), encoder_state(get_backbone("resnet34").build(2), spec), spec)


def test_nt_xent_prefers_matching_pairs():
    z = torch.eye(4)
    assert nt_xent(z, z, 0.2) < nt_xent(z, z.roll(1, 0), 0.2)


def test_cli_pretrain_json(gray_project, capsys):
    assert cli_main(["pretrain", str(gray_project), "--budget", "1s", "--short", "32", "--crop", "24",
                     "--batch-size", "8", "--id", "cli-enc", "--method", "simclr", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"encoder_id":"cli-enc"' in out and '"chance_loss":2.7081' in out
    assert encoders(gray_project)[0]["source"].startswith("self-supervised on 16 images")


def test_parse_duration():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    with pytest.raises(ValueError):
        parse_duration("ten minutes")


def test_learning_check_compares_the_end_of_the_run_with_chance():
    """NT-Xent of embeddings that tell no pair apart is ln(2N - 1): a run ending there learned
    nothing (KolektorSDD, measured), one well below it did, and a handful of steps says neither."""
    chance = float(np.log(2 * 32 - 1))
    at_chance = [chance + 0.02 * (-1) ** i for i in range(150)]
    falling = list(np.linspace(chance, 0.8 * chance, 150))
    assert learning_check(at_chance, 32)[:2] == (pytest.approx(chance), False)
    assert "did not learn" in learning_check(at_chance, 32)[2]
    assert learning_check(falling, 32)[1] is True
    assert learning_check(falling[:10], 32)[1] is None


def test_views_are_stretched_into_the_square_okng_train_uses(gray_project):
    """Default sizing: the from-scratch training square (40x56 views -> 32x32), not the short
    side with the aspect kept, so pretraining sees defects at the classifier's scale."""
    res = pretrain(PretrainSpec(project=str(gray_project), budget_s=600, encoder_id="sq", arch="resnet18",
                                crop=24, batch_size=8, method="simclr"), should_stop=iter([False, True]).__next__)
    assert res.input == "32x32 stretched" and res.steps == 1 and res.learned is None
    meta = encoders(gray_project)[0]
    assert (meta["input"], meta["learned"], meta["chance_loss"]) == ("32x32 stretched", None, round(np.log(15), 4))
    images, gray = project_images(Project.open(gray_project, readonly=True), None, fit=(32, 32))
    assert gray and {im.shape for im in images} == {(1, 32, 32)}
    kept, _ = project_images(Project.open(gray_project, readonly=True), 32)
    assert {im.shape for im in kept} == {(1, 32, 45)}  # --short: aspect kept (56 * 32 / 40)


def test_training_from_an_encoder_that_learned_nothing_says_so(gray_project):
    from training.config import TrainConfig
    from training.loop import train
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (1, 32, 32), dtype=np.uint8) for _ in range(4)]
    state, _ = pretrain_images(images, PretrainSpec(project="", **TINY), should_stop=iter([False, True]).__next__)
    chance = round(float(np.log(15)), 4)
    res = PretrainResult("resnet18", None, 16, 1, 150, 60.0, False, [chance] * 150, "self-supervised on 16 images",
                         *learning_check([chance] * 150, 8), input="32x32 stretched")
    eid = save_encoder(Project.open(gray_project), state, res,
                       PretrainSpec(project=str(gray_project), encoder_id="flat", method="simclr"))
    out = train(gray_project, TrainConfig(arch="resnet18", encoder=eid, epochs=1, input_size=32, batch_size=8))
    assert any("encoder flat did not learn" in w and "at chance level" in w for w in out.warnings), out.warnings


def test_a_model_says_when_its_encoder_saw_its_test_parts_and_names_the_encoder(gray_project):
    from training.card import read_card
    from training.config import TrainConfig
    from training.loop import train
    pretrain(PretrainSpec(project=str(gray_project), budget_s=600, encoder_id="all", **TINY),
             should_stop=iter([False, True]).__next__)
    cfg = TrainConfig(arch="resnet18", encoder="latest", epochs=1, input_size=32, batch_size=8, test_fraction=0.25)
    out = train(gray_project, cfg)
    card = read_card(Project.open(gray_project, readonly=True), out.model_id)
    test = card.split["test"]
    assert card.config["encoder"] == "all" and len(test) == 2  # the id "latest" stood for
    assert any("encoder all saw the views of 2 of the 2 test parts" in w for w in out.warnings), out.warnings
    assert any("saw the views" in w for w in card.warnings)

    rest = tuple(p.id for p in Project.open(gray_project, readonly=True).parts() if p.id not in test)
    res = pretrain(PretrainSpec(project=str(gray_project), budget_s=600, encoder_id="held", part_ids=rest, **TINY),
                   should_stop=iter([False, True]).__next__)
    assert res.n_images == 2 * len(rest)
    again = train(gray_project, cfg)  # the same seed: the same test parts, none of them seen
    assert read_card(Project.open(gray_project, readonly=True), again.model_id).split["test"] == test
    assert read_card(Project.open(gray_project, readonly=True), again.model_id).config["encoder"] == "held"
    assert not any("saw the views" in w for w in again.warnings), again.warnings


# ---------------------------------------------------------------- masked-image (SimMIM)

def test_random_mask_hides_whole_patches_at_the_ratio():
    from training.pretrain_mim import MASK_PATCH, MASK_RATIO, random_mask
    m = random_mask(5, 96, torch.Generator().manual_seed(0))
    assert m.shape == (5, 1, 96, 96) and set(m.unique().tolist()) == {0.0, 1.0}
    cells = m[:, :, ::MASK_PATCH, ::MASK_PATCH]
    # Every pixel of a patch shares its patch's state: the mask is whole squares, not speckle.
    assert torch.equal(m, cells.repeat_interleave(MASK_PATCH, 2).repeat_interleave(MASK_PATCH, 3))
    assert cells.sum(dim=(1, 2, 3)).tolist() == [round(MASK_RATIO * 36)] * 5
    assert not torch.equal(m[0], m[1])  # drawn per image


def test_mean_fill_error_is_the_error_of_the_visible_mean():
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16:] = 1.0  # right half bright
    mask = torch.zeros_like(x)
    mask[..., :16, 16:] = 1.0  # hide the top-right square (bright)
    from training.pretrain_mim import mean_fill_error
    visible_mean = (16 * 16 * 1.0) / (32 * 32 - 16 * 16)  # one bright square of three visible
    assert mean_fill_error(x, mask) == pytest.approx(1.0 - visible_mean)


def test_mim_check_compares_the_reconstruction_with_the_mean_fill():
    from training.pretrain_mim import mim_check
    refs = [0.2] * 150
    assert mim_check([0.21] * 150, refs)[:2] == (pytest.approx(0.2), False)
    assert "no better than" in mim_check([0.21] * 150, refs)[2]
    assert mim_check(list(np.linspace(0.3, 0.1, 150)), refs)[1] is True
    assert mim_check([0.1] * 10, refs[:10])[1] is None


def test_mim_learns_to_rebuild_hidden_patches_of_a_structured_surface():
    """A dark and a bright region split at a different column in every image: a hidden patch is
    predictable from where the visible edge lies, not from the image mean. A 20 s run must end
    well below the mean fill (measured: 0.40 against 0.98), and its encoder loads into the
    classifier."""
    rng = np.random.default_rng(0)
    images = []
    for _ in range(16):
        img = np.full((1, 64, 64), 50, np.uint8)
        img[..., int(rng.integers(16, 48)):] = 200
        images.append(img)
    # A budget, not a step count: the learning rate follows elapsed time (warm-up, cosine).
    state, res = pretrain_images(images, PretrainSpec(project="", method="mim", arch="resnet18", crop=32,
                                                      batch_size=16, budget_s=20, bf16=False))
    assert res.method == "mim" and res.steps >= 20 and res.channels == 1
    assert res.learned is True, res.note
    assert "below filling hidden patches with the image mean" in res.note
    model = build_from_encoder("resnet18", 2, state)
    assert model.conv1.in_channels == 1 and all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_mim_encoder_is_stored_with_its_method_and_a_flat_one_warns_in_training(gray_project):
    from training.config import TrainConfig
    from training.loop import train
    from training.pretrain_mim import mim_check
    res = pretrain(PretrainSpec(project=str(gray_project), budget_s=600, encoder_id="mim1", method="mim", **TINY),
                   should_stop=iter([False, False, True]).__next__)
    assert res.steps == 2 and res.method == "mim"
    state, meta = load_encoder(gray_project, "mim1")
    assert meta["method"] == "mim"
    flat = PretrainResult("resnet18", None, 16, 1, 150, 60.0, False, [0.2] * 150, "self-supervised on 16 images",
                          *mim_check([0.2] * 150, [0.2] * 150), input="32x32 stretched", method="mim")
    eid = save_encoder(Project.open(gray_project), state, flat,
                       PretrainSpec(project=str(gray_project), encoder_id="mimflat", method="mim"))
    out = train(gray_project, TrainConfig(arch="resnet18", encoder=eid, epochs=1, input_size=32, batch_size=8))
    assert any("encoder mimflat did not learn" in w and "no better than the image mean" in w
               for w in out.warnings), out.warnings


def test_unknown_method_is_refused_before_any_work():
    with pytest.raises(TrainingError, match="unknown pretraining method 'mae'.*simclr, mim"):
        pretrain_images([np.zeros((1, 8, 8), np.uint8)] * 2, PretrainSpec(project="", method="mae"))


def test_cli_pretrain_mim(gray_project, capsys):
    assert cli_main(["pretrain", str(gray_project), "--method", "mim", "--budget", "1s", "--short", "32",
                     "--crop", "32", "--batch-size", "8", "--id", "cli-mim"]) == 0
    out = capsys.readouterr().out
    assert "encoder cli-mim: resnet18 (mim)" in out
    assert encoders(gray_project)[0]["method"] == "mim"
    assert cli_main(["pretrain", str(gray_project), "--list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("cli-mim: resnet18 (mim), 16 images,")
    said = {True: "learned", False: "DID NOT LEARN", None: "too short to tell"}[encoders(gray_project)[0]["learned"]]
    assert f"{said}; views short side 32 (aspect kept)" in listed


def test_cli_pretrain_list_of_a_project_without_encoders(gray_project, capsys):
    assert cli_main(["pretrain", str(gray_project), "--list"]) == 0
    assert "no encoders in toy.okng" in capsys.readouterr().out
    assert encoders(gray_project) == []  # listing pretrains nothing


def test_cli_pretrain_holds_out_a_models_test_parts(gray_project, capsys):
    from training.card import read_card
    from training.config import TrainConfig
    from training.loop import train
    base = {"arch": "resnet18", "epochs": 1, "input_size": 32, "batch_size": 8}
    model = train(gray_project, TrainConfig(**base, test_fraction=0.25)).model_id
    no_test = train(gray_project, TrainConfig(**base, test_fraction=0.0)).model_id
    test = read_card(Project.open(gray_project, readonly=True), model).split["test"]
    tiny = ["--budget", "1s", "--short", "32", "--crop", "24", "--batch-size", "8"]
    assert cli_main(["pretrain", str(gray_project), *tiny, "--hold-out", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err
    assert cli_main(["pretrain", str(gray_project), *tiny, "--hold-out", no_test]) == 2
    assert "has no test split" in capsys.readouterr().err
    assert encoders(gray_project) == []  # refused before any work
    assert cli_main(["pretrain", str(gray_project), *tiny, "--hold-out", model, "--id", "held"]) == 0
    assert f"holding out the 2 test parts of {model}: 6 parts left" in capsys.readouterr().err
    assert encoders(gray_project)[0]["n_images"] == 12  # two views of each of the six
    out = train(gray_project, TrainConfig(**base, test_fraction=0.25, encoder="held"))
    assert read_card(Project.open(gray_project, readonly=True), out.model_id).split["test"] == test
    assert not any("saw the views" in w for w in out.warnings), out.warnings
