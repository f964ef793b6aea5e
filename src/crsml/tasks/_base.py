"""The :class:`Task` protocol: everything that makes one prediction task what it is.

A task owns its eligibility (and the reason a patient is not eligible), its labels, the kind of
model it trains (``model_kind``: ``"risk"`` for a calibrated classifier, ``"benefit"`` for a
treatment-effect model), the columns ``crsml score`` writes for it and the wording of its model
card. Code elsewhere asks the task; it never tests a task's name. New tasks are subclasses
registered with :func:`register` (PyHealth's task functions play the same role).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from crsml.cohort import Cohort, check_window
from crsml.errors import CrsmlError
from crsml.features import LandmarkFeatures

DEFAULT_HORIZON_H = 14 * 24.0


@dataclass
class Dataset:
    """What a task gives a learner: the fitted feature builder, one row of features per usable
    patient, the target aligned to it, and counts of who was used and who was left out (and why)."""

    features: LandmarkFeatures
    X: pd.DataFrame
    y: pd.Series | pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """One prediction task at a landmark.

    Subclasses set the class attributes and implement :meth:`labels`; parameters of
    ``__init__`` (a horizon, a number of days) are stored unchanged, as in scikit-learn, and
    travel with a saved model.

    Attributes
    ----------
    name : registry name (``crsml train --task NAME``).
    model_kind : ``"risk"`` or ``"benefit"``: which estimator and which training procedure.
    score_columns : prediction columns ``crsml score`` writes for the task, in order.
    description : the prediction in words, for the model card's intended use.
    treatments_before_landmark : ``"inclusive"`` (features see doses up to ``L``) or ``"strict"``
        (doses before ``L`` only: a dose at ``L`` is the decision studied).
    example_profile : simulator profile whose patients illustrate the model card's SHAP plots
        (patients the model predicts for must be common in it).
    """

    name: ClassVar[str]
    model_kind: ClassVar[str] = "risk"
    score_columns: ClassVar[tuple[str, ...]] = ("risk",)
    description: ClassVar[str] = ""
    treatments_before_landmark: ClassVar[str] = "inclusive"
    example_profile: ClassVar[str] = "b_all"

    def __init__(self, horizon_h: float = DEFAULT_HORIZON_H) -> None:
        self.horizon_h = horizon_h

    # -- parameters ----------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the task's parameters (those of ``__init__``)."""
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self.param_names()}

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Each parameter's default: what the command line's ``--task-param NAME=VALUE`` lists
        and converts text to (the default's type)."""
        sig = inspect.signature(cls.__init__)
        return {p: sig.parameters[p].default for p in cls.param_names()}

    @classmethod
    def parse_param(cls, name: str, text: str) -> Any:
        """``text`` as a value of parameter ``name`` (``--task-param min_days=5``): of the type of
        its default (a number, true/false or text); refused in one line when it is not one."""
        defaults = cls.param_defaults()
        if name not in defaults:
            raise not_applicable(cls.name, [name])
        default = defaults[name]
        try:
            if isinstance(default, bool):
                if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                return text.strip().lower() in ("true", "1", "yes")
            if isinstance(default, int):
                return int(text)
            if isinstance(default, float):
                return float(text)
        except ValueError:
            raise CrsmlError(
                f"--task-param {name}={text}: {cls.name}'s {name} is a {type(default).__name__} (default {default!r})"
            ) from None
        return text

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params() == self.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_params().items()))))

    def check(self, landmark_h: float) -> None:
        """Refuse settings that cannot define the task at ``landmark_h`` (one clear line)."""
        check_window(landmark_h, self.horizon_h)

    # -- who is predicted for ------------------------------------------------------------
    def eligibility(self, cohort: Cohort, landmark_h: float, base: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every patient: ``patient_id``, ``eligible`` and the ``reason`` when not.

        ``base`` is the landmark eligibility already computed (alive, not yet severe), in the
        order of ``cohort.patients``; a task adds its own rules on top of it.
        """
        return cohort.eligibility(landmark_h) if base is None else base

    def feature_builder(
        self, landmark_h: float | Sequence[float], extra_patient_columns: Sequence[str] = ()
    ) -> LandmarkFeatures:
        """The (unfitted) landmark feature builder the task's models use: for a grid of landmarks
        (a landmark supermodel) the landmark is a feature too."""
        grid = np.ndim(landmark_h) > 0
        return LandmarkFeatures(
            landmark_h=[float(x) for x in landmark_h] if grid else landmark_h,  # type: ignore[union-attr]
            extra_patient_columns=tuple(extra_patient_columns),
            treatments_before_landmark=self.treatments_before_landmark,
            landmark_time=grid,
        )

    # -- what is predicted ---------------------------------------------------------------
    @abstractmethod
    def labels(self, cohort: Cohort, landmark_h: float) -> pd.DataFrame:
        """One row per patient: the target column(s) and ``reason`` ('' when labelled)."""

    @abstractmethod
    def dataset(
        self, cohort: Cohort, landmark_h: float = 48.0, extra_patient_columns: Sequence[str] = ()
    ) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
        """Features ``X`` and target ``y`` of the labelled patients, aligned row by row."""

    @abstractmethod
    def prepare(self, cohort: Cohort, landmark_h: float, extra_patient_columns: Sequence[str] = ()) -> Dataset:
        """The :class:`Dataset` a model of this task is trained on (refuses too little data)."""

    # -- what people read ----------------------------------------------------------------
    def card_rows(self, counts: dict[str, Any]) -> dict[str, Any]:
        """The model card's training-data rows (counts only)."""
        return {"patients in the cohort": counts.get("patients")}

    def limitations(self, counts: dict[str, Any], extra_patient_columns: Sequence[str] = ()) -> list[str]:
        """The model card's limitations, in sentences."""
        return []


def excluded_counts(reasons: pd.Series) -> dict[str, int]:
    """How many patients were left out, by reason (the landmark in brackets dropped; a blank reason
    is not one)."""
    vc = reasons[reasons != ""].str.replace(r"\s*\(.*\)$", "", regex=True).value_counts()
    return {str(k): int(v) for k, v in vc.items()}


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Make a :class:`Task` subclass known by its ``name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Task)) or not getattr(cls, "name", ""):
        raise TypeError("register() takes a Task subclass with a name")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a registered task (for tests that register toy tasks)."""
    _REGISTRY.pop(name, None)


#: the built-in tasks, in the order they are listed (tasks registered later follow them)
BUILT_IN = ("severe_crs", "prolonged_crs", "tocilizumab_benefit")


def names() -> tuple[str, ...]:
    """Names of the registered tasks."""
    return tuple(sorted(_REGISTRY, key=lambda n: BUILT_IN.index(n) if n in BUILT_IN else len(BUILT_IN)))


def get(task: str | Task, **params: Any) -> Task:
    """The task called ``task`` with ``params`` (e.g. ``get("prolonged_crs", min_days=5)``).

    A :class:`Task` instance is returned as it is. A parameter the task does not take is
    refused in one line naming it (``--min-days does not apply to --task severe_crs``).
    """
    if isinstance(task, Task):
        return task
    if task not in _REGISTRY:
        raise CrsmlError(f"unknown task {task!r}; expected one of {', '.join(names())}")
    cls = _REGISTRY[task]
    unknown = [k for k in params if k not in cls.param_names()]
    if unknown:
        raise not_applicable(task, unknown)
    return cls(**params)


def not_applicable(task: str, options: Sequence[str]) -> CrsmlError:
    """The one line for command-line options that ``task`` does not take (``min_days`` -> ``--min-days``)."""
    flags = ", ".join("--" + k.replace("_", "-") for k in options)
    one = len(options) == 1
    return CrsmlError(
        f"{flags} {'does' if one else 'do'} not apply to --task {task}; leave {'it' if one else 'them'} out"
    )


def split_params(task: str | Task, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` split into the task's own parameters and the rest (training settings): a task
    declares its parameters (those of its ``__init__``), so settings and the command line need
    not know them."""
    names_ = (task if isinstance(task, type) else type(get(task))).param_names()
    return ({k: v for k, v in options.items() if k in names_}, {k: v for k, v in options.items() if k not in names_})


def task_from_dict(d: dict[str, Any]) -> Task:
    """The task a saved model was trained for (``{"name": ..., "params": {...}}``)."""
    return get(d["name"], **d.get("params", {}))
