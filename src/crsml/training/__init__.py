"""Training a task: :func:`train` fits any task's model with Optuna, judges it out of fold beside
the published baselines (nested cross-validation, bootstrap intervals) and returns a
:class:`TrainingResult`; it has no side effects (tracking, export and reports are separate steps).
The settings of each kind of model are :class:`TrainSettings` (risk tasks) and
:class:`BenefitSettings` (the tocilizumab benefit task)."""

from crsml.training._result import MODEL_NAME, TrainingResult
from crsml.training._train_benefit import (
    BenefitSettings,
    benefit_data,
    thin_data_warnings,
    unused_centre_columns,
)
from crsml.training._train_risk import (
    FIXED_NAME,
    TUNED_NAME,
    TrainSettings,
    choose_learner,
    data_digest,
    format_table,
    left_out,
    library_versions,
    versus_best_baseline,
    weak_model_reasons,
)
from crsml.training._training import SETTINGS, TRAINERS, settings_for, train

__all__ = [
    "FIXED_NAME",
    "MODEL_NAME",
    "TUNED_NAME",
    "choose_learner",
    "SETTINGS",
    "TRAINERS",
    "BenefitSettings",
    "TrainSettings",
    "TrainingResult",
    "benefit_data",
    "data_digest",
    "format_table",
    "left_out",
    "library_versions",
    "settings_for",
    "thin_data_warnings",
    "train",
    "unused_centre_columns",
    "versus_best_baseline",
    "weak_model_reasons",
]
