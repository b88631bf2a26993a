"""`okng tune`: a real Optuna study on a toy project (SQLite next to it), killed and resumed,
cancelled and resumed; the best trial's model registered once, its card naming the study."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toykit import make_toy_project

from labeling.store import Project
from training.card import read_cards
from training.errors import TrainingError
from training.tune import TuneSpec, default_storage, parse_space, read_space_file, tune
from training.tune.space import config_values

ROOT = Path(__file__).resolve().parents[2]
# Tiny and quick: 32 px inputs, 2 epochs a trial, one thread.
VALUES = {"epochs": 2, "batch_size": 8, "num_threads": 1, "arch": "resnet18"}
SPACE = {"input_short": 32}


def _study(path: Path, name: str):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=default_storage(path))


def _states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def _tuned_cards(path: Path):
    return [c for c in read_cards(Project.open(path, readonly=True)) if "tune" in c.extra]


def test_study_resumes_after_the_process_is_killed(tmp_path):
    path = make_toy_project(tmp_path / "kill.okng", n_ok=10, n_ng=10)
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "app.cli", "tune", str(path), "--trials", "3", "--epochs", "3",
           "--batch-size", "8", "--threads", "1", "--space", str(space), "--grace", "2", "--json"]
    child = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sqlite = Path(default_storage(path).removeprefix("sqlite:///"))
    try:
        # Kill it mid-study: one trial finished, the next one training (an epoch reported, so it
        # drew all its settings: a kill between two draws would leave it with part of them).
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and child.poll() is None:
            if sqlite.exists():
                try:
                    trials = _study(path, "kill-verdict").get_trials(deepcopy=False)
                except Exception:  # noqa: BLE001 - the study is being created
                    trials = []
                states = [t.state.name for t in trials]
                if states.count("COMPLETE") >= 1 and any(t.state.name == "RUNNING" and t.intermediate_values
                                                         for t in trials):
                    break
            time.sleep(0.2)
        assert child.poll() is None, child.stderr.read().decode()[-2000:] if child.stderr else ""
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    study = _study(path, "kill-verdict")
    before = _states(study)
    assert "RUNNING" in before and before.count("COMPLETE") >= 1
    assert not _tuned_cards(path), "nothing is registered before the study ends"
    killed = next(t.number for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING")
    time.sleep(3)  # past the 2 s grace: the killed trial's heartbeat is stale
    res = tune(TuneSpec(str(path), {**VALUES, "epochs": 3}, trials=3, space=SPACE, grace_s=2))
    study = _study(path, "kill-verdict")
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 3
    assert trials[killed].state.name == "FAIL" and "RUNNING" not in states
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retry) == 1 and retry[0].params == trials[killed].params  # the crashed settings tried again
    cards = _tuned_cards(path)
    assert len(cards) == 1 and cards[0].id == res.model_id and not res.cancelled
    tuned = cards[0].extra["tune"]
    assert tuned["study"] == "kill-verdict" and tuned["trial"] == res.best.number
    assert tuned["study_id"] == study._study_id and tuned["value"] == res.best.value
    assert cards[0].metrics.get("test") is not None  # the final model is scored on the test parts


def test_cancel_stops_the_study_and_the_same_call_resumes_it(tmp_path):
    path = make_toy_project(tmp_path / "cancel.okng", n_ok=10, n_ng=10)
    epochs: list[int] = []

    def progress(p) -> None:
        if p.stage == "eval":
            epochs.append(p.payload.epoch)

    stop = lambda: len(epochs) >= 3  # mid trial 1 (trial 0 ran epochs 1, 2)
    res = tune(TuneSpec(str(path), VALUES, trials=3, space=SPACE), progress, stop)
    assert res.cancelled and res.model_id is None
    assert not _tuned_cards(path)
    study = _study(path, "cancel-verdict")
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "WAITING"]
    assert sorted(trials[0].intermediate_values) == [1, 2]  # each epoch's validation figure, for the pruner
    assert trials[1].user_attrs.get("okng_stopped") and trials[2].user_attrs["okng_retry_of"] == 1
    res = tune(TuneSpec(str(path), VALUES, trials=3, space=SPACE))
    trials = _study(path, "cancel-verdict").get_trials(deepcopy=False)
    assert trials[2].params == trials[1].params  # the stopped settings came first
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 3
    assert res.model_id and len(_tuned_cards(path)) == 1
    # A finished study run again trains nothing new: its model is there.
    again = tune(TuneSpec(str(path), VALUES, trials=3, space=SPACE))
    assert again.model_id == res.model_id and len(_tuned_cards(path)) == 1
    # Other fixed settings would make the trials incomparable: refused.
    with pytest.raises(TrainingError, match=r"other settings \(config\.epochs\)"):
        tune(TuneSpec(str(path), {**VALUES, "epochs": 5}, trials=3, space=SPACE))


def test_space_file_json_and_yaml_override_the_defaults(tmp_path):
    (tmp_path / "s.yaml").write_text("lr: {low: 1.0e-3, high: 1.0e-2, log: true}\nhead_hidden: {choices: [0, 64]}\n"
                                     "input_short: 64\n")
    raw = read_space_file(tmp_path / "s.yaml")
    space = parse_space(raw, pretrained=False)
    assert space["lr"].low == 1e-3 and space["lr"].log and space["head_hidden"].choices == (0, 64)
    assert space["input_short"].fixed() and space["input_short"].value == 64
    assert space["freeze"].fixed() and space["freeze"].value == "none"  # nothing to freeze without weights
    assert parse_space({}, pretrained=True)["freeze"].choices == ("head", "last-block", "none")
    (tmp_path / "s.json").write_text('{"dropout": 0.1}')
    with pytest.raises(TrainingError, match="unknown settings dropout"):
        parse_space(read_space_file(tmp_path / "s.json"), False)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(TrainingError, match="not a readable search space"):
        read_space_file(tmp_path / "bad.json")


def test_from_scratch_the_input_searched_is_a_stretched_square_and_the_recipes_comes_first(tmp_path):
    """From scratch the tuner searches squares stretched like okng train's recipe (an aspect-kept
    size is what measured badly on KolektorSDD); never upscaled; a file naming input_short
    replaces the search; with ImageNet weights input_short stays."""
    scratch = parse_space({}, pretrained=False)
    assert "input_short" not in scratch and scratch["input_square"].choices == (128, 160, 224)
    assert "input_square" not in parse_space({}, pretrained=True)
    shapes = [(200, 500)] * 3
    assert config_values({"input_square": 160}, shapes) == {"input_size": (160, 160), "fit": "resize"}
    assert config_values({"input_square": 224}, shapes)["input_size"] == (192, 192)  # short side 200
    named = parse_space({"input_short": 64}, pretrained=False)
    assert "input_square" not in named and named["input_short"].value == 64
    path = make_toy_project(tmp_path / "sq.okng", n_ok=8, n_ng=8, size=(40, 56), views=1)
    tune(TuneSpec(str(path), {**VALUES, "input_size": None}, trials=1, final=False))
    (first,) = _study(path, "sq-verdict").get_trials(deepcopy=False)
    assert first.user_attrs["okng_seed"] and first.params["input_square"] == 32  # the recipe's square
    assert first.user_attrs["split"]


def test_a_study_starts_from_the_projects_self_supervised_encoder(tmp_path):
    from app.cli import build_parser
    from app.cli.tune import spec_of
    from training.pretrain import PretrainSpec, pretrain
    path = make_toy_project(tmp_path / "ssl.okng", n_ok=6, n_ng=6)
    spec = spec_of(build_parser().parse_args(["tune", str(path), "--ssl-encoder", "latest", "--epochs", "2"]))
    assert spec.values["encoder"] == "latest"
    spec = TuneSpec(spec.project_path, {**spec.values, **VALUES}, trials=1, space=SPACE)
    with pytest.raises(TrainingError, match="okng pretrain"):  # none yet: said before any trial
        tune(spec)
    steps = iter(range(1000))
    pretrain(PretrainSpec(project=str(path), budget_s=600, encoder_id="enc1", arch="resnet18", short=32, crop=24,
                          batch_size=8), should_stop=lambda: next(steps) >= 2)
    res = tune(spec)
    card = _tuned_cards(path)[0]
    assert card.id == res.model_id and card.pretrained_source.startswith("self-supervised on")


def test_trials_and_the_final_model_use_the_split_field(tmp_path):
    """`--split-field`: every trial validates on the parts the field names (not a fraction draw),
    and the final model's card records the field, as `okng train --split-field` does."""
    import numpy as np

    from app.cli import build_parser
    from app.cli.tune import spec_of
    from labeling.types import Label, Settings, Verdict
    path = tmp_path / "field.okng"
    proj = Project.create(path, Settings(name="field", cameras=["cam0"]))
    rng = np.random.default_rng(4)
    sets = ["train"] * 12 + ["val"] * 8 + ["test"] * 4  # a fraction draw (0.15/0.15) would give 4 val parts
    val = []
    for i, name in enumerate(sets):
        ng = i % 2 == 1
        img = rng.normal(70, 10, (32, 32)).clip(0, 255).astype(np.uint8)
        if ng:
            img[10:20, 10:20] = 250
        pid = proj.add_part([img], meta={"fields": {"split": name}},
                            label=Label(Verdict.NG, 1) if ng else Label(Verdict.OK))
        val += [pid] if name == "val" else []
    spec = spec_of(build_parser().parse_args(["tune", str(path), "--split-field", "split", "--epochs", "2"]))
    assert spec.values["split_field"] == "split"
    res = tune(TuneSpec(spec.project_path, {**spec.values, **VALUES}, trials=1, space=SPACE))
    trial = _study(path, "field-verdict").get_trials(deepcopy=False)[0]
    assert trial.user_attrs["split"] == {"train": 12, "val": 8, "test": 4, "split_field": "split"}
    card = _tuned_cards(path)[0]
    assert card.id == res.model_id and card.split["split_field"] == "split"
    assert sorted(card.split["val"]) == sorted(val)
