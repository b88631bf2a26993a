"""training.session: ONE builder of the training config from plain form values, for the Train
view, `okng train` and the demo's quick model."""
from __future__ import annotations

import pytest

from app.cli import build_parser
from app.cli.train import form_values
from training.config import AugmentConfig
from training.errors import TrainingError
from training.session import OPTIMIZER_LR, QUICK, make_config


def test_gui_toggles_and_cli_presets_mean_the_same_strengths():
    light = AugmentConfig.preset("light")
    gui = make_config({"augment": ["hflip", "vflip", "rotate", "crop", "brightness_contrast"]})
    assert gui.augment == light  # the form's rotation was 15 degrees, the CLI's 10: one value now
    cli = make_config(form_values(build_parser().parse_args(["train", "p.h5", "--augment", "light"])))
    assert cli.augment == light


def test_defaults_are_the_same_from_the_form_and_the_command_line():
    cli = make_config(form_values(build_parser().parse_args(["train", "p.h5", "--optimizer", "sgd"])))
    assert cli.lr == OPTIMIZER_LR["sgd"] == 1e-2  # was set by the CLI only
    assert make_config({"optimizer": "sgd"}).lr == 1e-2 and make_config({}).lr == OPTIMIZER_LR["adam"]
    assert make_config({"optimizer": "sgd", "lr": 0.5}).lr == 0.5  # a chosen value stays
    # no count: the run takes its fair share of the cores while it trains (training.core_share)
    assert cli.num_threads is None and make_config({}).num_threads is None
    assert make_config({"num_threads": 1}).num_threads == 1
    assert make_config({"folds": 1}).folds == 0  # one split
    assert make_config({"input_size": [64, 48]}).input_size == (64, 48)
    quick = make_config(QUICK)
    assert quick.arch == "mobilenet_v3_small" and quick.epochs == 3 and quick.patience == 0


def test_bad_values_are_clear_errors():
    with pytest.raises(TrainingError, match="unknown training options: colour"):
        make_config({"colour": "red"})
    with pytest.raises(TrainingError, match="unknown augmentation 'blur'"):
        make_config({"augment": ["blur"]})
    with pytest.raises(TrainingError, match="unknown augmentation preset"):
        make_config({"augment": "wild"})
    with pytest.raises(TrainingError, match="unknown architecture"):
        make_config({"arch": "resnet9"})
