"""Hyperparameter search with Optuna (`okng tune`): the space, the study, the long job."""
from __future__ import annotations

from .run import TuneResult, TuneSpec, TuneState, tune
from .space import default_space, parse_space, read_space_file
from .study import TrialRow, default_storage, default_study_name

__all__ = ["TrialRow", "TuneResult", "TuneSpec", "TuneState", "default_space", "default_storage",
           "default_study_name", "parse_space", "read_space_file", "tune"]
