"""``crsml.train``: one entry point for every task; the task's ``model_kind`` picks the
training procedure and its settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from crsml import tasks
from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.training._result import TrainingResult
from crsml.training._train_benefit import BenefitSettings, fit_benefit
from crsml.training._train_risk import TrainSettings, fit_risk

#: settings class and training procedure of each task ``model_kind``
SETTINGS: dict[str, type] = {"risk": TrainSettings, "benefit": BenefitSettings}
TRAINERS: dict[str, Callable[..., TrainingResult]] = {"risk": fit_risk, "benefit": fit_benefit}


def settings_for(task: str, landmark_h: float = 48.0, **options: Any) -> TrainSettings | BenefitSettings:
    """The settings of ``task`` at ``landmark_h``; ``options`` are settings fields (``trials=20``
    ...) and the task's own parameters (``min_days=5``), which the task declares."""
    cls = SETTINGS[tasks.get(task).model_kind]
    own, rest = tasks.split_params(task, options)
    own |= rest.pop("task_params", None) or {}
    known = {f.name for f in fields(cls)} - {"task_params"}
    unknown = sorted(set(rest) - known)
    if unknown:
        accepted = sorted(known | set(tasks.get(task).param_names()))
        raise CrsmlError(f"{', '.join(unknown)}: not a setting of {task} (known: {', '.join(accepted)})")
    return cls(task=task, landmark_h=landmark_h, task_params=own, **rest)


def train(
    cohort: Cohort,
    task: str = "severe_crs",
    landmark_h: float = 48.0,
    *,
    settings: TrainSettings | BenefitSettings | None = None,
    log: Any = print,
    progress: bool = True,
    **options: Any,
) -> TrainingResult:
    """Train ``task`` at ``landmark_h`` on ``cohort`` and evaluate it; no file or run is written.

    Parameters
    ----------
    cohort : a validated :class:`~crsml.cohort.Cohort`.
    task : a registered task name (``crsml.tasks.names()``).
    landmark_h : hours after infusion at which predictions are made.
    settings : all settings at once (:class:`TrainSettings` or :class:`BenefitSettings`);
        otherwise built from ``task``, ``landmark_h`` and ``options``.
    log : where progress lines go (``print``; ``lambda *a: None`` for silence).
    progress : show progress bars.
    **options : settings fields, e.g. ``trials=20, seed=1, extra_patient_columns=("site",)``.

    Returns
    -------
    TrainingResult
        ``.model`` (the :class:`~crsml.models.Model`), ``.summary()`` and the plots. Log it with
        :func:`crsml.tracking.log_training`; export it with :func:`crsml.tracking.export_model`.
    """
    if settings is None:
        settings = settings_for(task, landmark_h, **options)
    elif options:
        raise CrsmlError("give either settings or keyword options, not both")
    kind = settings.make_task().model_kind
    return TRAINERS[kind](cohort, settings, log=log, progress=progress)
