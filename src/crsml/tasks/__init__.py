"""Prediction tasks as objects: eligibility, labels, model kind, score columns and card text.

>>> import crsml
>>> task = crsml.tasks.get("severe_crs")                        # or get("prolonged_crs", min_days=5)
>>> X, y = task.dataset(cohort, landmark_h=48)                  # doctest: +SKIP

A new task is a subclass of :class:`RiskTask` (or :class:`Task`) decorated with
:func:`register`; training, scoring, explanations, the model card and the command line then
take it by name.
"""

from crsml.tasks._base import (
    DEFAULT_HORIZON_H,
    Dataset,
    Task,
    excluded_counts,
    get,
    names,
    not_applicable,
    register,
    split_params,
    task_from_dict,
    unregister,
)
from crsml.tasks._prolonged_crs import DEFAULT_MIN_DAYS, ProlongedCRS
from crsml.tasks._risk import RiskTask, grid_text, outcome_window
from crsml.tasks._severe_crs import SevereCRS
from crsml.tasks._tocilizumab_benefit import (
    DEFAULT_GRACE_H,
    TocilizumabBenefit,
    emulate_trial,
    given_before,
    given_before_reason,
)

__all__ = [
    "DEFAULT_GRACE_H",
    "DEFAULT_HORIZON_H",
    "DEFAULT_MIN_DAYS",
    "Dataset",
    "ProlongedCRS",
    "RiskTask",
    "SevereCRS",
    "Task",
    "TocilizumabBenefit",
    "emulate_trial",
    "excluded_counts",
    "get",
    "given_before",
    "grid_text",
    "given_before_reason",
    "names",
    "not_applicable",
    "outcome_window",
    "register",
    "split_params",
    "task_from_dict",
    "unregister",
]
