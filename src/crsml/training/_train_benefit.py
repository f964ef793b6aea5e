"""Training the tocilizumab-benefit task: emulate the decision at the landmark and fit the
benefit model, returned as a :class:`TrainingResult` with its diagnostics (no side effects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar

import pandas as pd
from sklearn.utils._param_validation import Interval

from crsml import tasks
from crsml._params import check_params
from crsml.cohort import TABLES, Cohort
from crsml.errors import CrsmlError
from crsml.features import MAX_CATEGORIES
from crsml.models import (
    CANDIDATES,
    DEFAULT_SPLITS,
    DEFAULT_TRIM,
    BenefitModel,
    Model,
    ModelMetadata,
)
from crsml.training._result import TrainingResult
from crsml.training._train_risk import data_digest, grades_source, left_out, library_versions

TASK = "tocilizumab_benefit"


@dataclass
class BenefitSettings:
    """Everything that decides the training of a benefit task (logged as MLflow parameters).

    ``task_params`` are the task's own parameters (``horizon_h``, ``grace_h``, ``window`` for
    ``tocilizumab_benefit``; those left out keep the task's defaults).
    """

    landmark_h: float = 48.0
    task_params: dict[str, Any] = field(default_factory=dict)
    trials: int = 10
    folds: int = 3
    trim: float = DEFAULT_TRIM
    ate_splits: int = DEFAULT_SPLITS  # random cross-fitting splits behind the average benefit
    seed: int = 0
    candidates: tuple[str, ...] = CANDIDATES
    extra_patient_columns: tuple[str, ...] = ()  # e.g. ("site",) when records pool several centres
    task: str = TASK

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "trials": [Interval(Integral, 1, None, closed="left")],
        "folds": [Interval(Integral, 2, None, closed="left")],
        "trim": [Interval(Real, 0, 0.5, closed="neither")],
        "ate_splits": [Interval(Integral, 1, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "candidates": [tuple, list],
    }

    def __post_init__(self) -> None:
        task = self.make_task()
        if task.model_kind != "benefit":
            raise CrsmlError(f"{self.task} trains a {task.model_kind} model: use TrainSettings")
        task.check(self.landmark_h)
        check_params(self, self._parameter_constraints)

    def make_task(self) -> tasks.Task:
        """The task these settings train, with its parameters."""
        return tasks.get(self.task, **self.task_params)


def benefit_data(cohort: Cohort, s: BenefitSettings):
    """Feature builder (treatments strictly before ``L``), eligible rows, their trial columns and counts."""
    d = s.make_task().prepare(cohort, s.landmark_h, s.extra_patient_columns)
    return d.features, d.X, d.y, d.counts


FEW_TREATED = 200


def thin_data_warnings(treated_now: int, propensity_auroc: float) -> list[str]:
    """What a user should know before trusting per-patient benefits from these records.

    ``FEW_TREATED``: on the simulator at 48 h, with 191 patients treated at the landmark no
    learner's lead over risk ranking was clear of its standard error in the truth-free
    criterion, and the learners ranked worse than risk (docs/tocilizumab_benefit.md).
    """
    out = []
    if treated_now < FEW_TREATED:
        out.append(
            f"only {treated_now} patients were given tocilizumab at the landmark; with fewer than "
            f"{FEW_TREATED} the records can rarely show that any learner ranks patients better than their "
            "risk does (docs/tocilizumab_benefit.md)"
        )
    if propensity_auroc < 0.6:
        out.append(
            f"the propensity model barely tells the treated from the untreated (AUROC {propensity_auroc:.2f}): "
            "either treatment at this landmark was close to random given the features, or there are too "
            "few treated patients to learn who gets it"
        )
    return out


def unused_centre_columns(patients: pd.DataFrame, used: tuple[str, ...]) -> list[str]:
    """Text columns of ``patients`` beyond DESIGN.md's that split the patients into a few groups
    (a centre, say) and are not features: usual care after the landmark, and so the benefit of
    treating now, can differ between centres (docs/tocilizumab_benefit.md)."""
    out = []
    for col in patients.columns:
        if col in used or col in TABLES["patients"].columns or col == "patient_id":
            continue
        s = patients[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if 2 <= s.nunique(dropna=True) <= MAX_CATEGORIES:
            out.append(str(col))
    return out


def _log_comparison(model: BenefitModel, s: BenefitSettings, log: Any) -> None:
    """What training says about the comparison of treated and untreated patients."""
    log(
        f"propensity AUROC {model.propensity_auroc_:.3f}; {model.n_trimmed_} patients outside overlap "
        f"(propensity outside [{s.trim:g}, {1 - s.trim:g}]): their benefit is extrapolated from their risk"
    )
    a = model.ate_
    log(
        f"average benefit (AIPW) over the {a['n']} patients inside overlap with cross-fitted propensity in "
        f"[{a['bound']:.3f}, {1 - a['bound']:.3f}] (Crump's bound): {a['ate']:.3f} severe-CRS days spared "
        f"(95% CI {a['low']:.3f} to {a['high']:.3f}; median of {a['splits']} cross-fitting splits, "
        f"which differ by SD {a['split_sd']:.3f})"
    )
    worst = model.balance_["smd_weighted"].abs().dropna()
    if len(worst):
        log(
            f"covariate balance inside overlap after weighting: largest |SMD| {worst.max():.2f} ({worst.idxmax()}); "
            f"{int((worst > 0.1).sum())} of {len(worst)} features above 0.1 (evaluation/balance_smd.csv in MLflow)"
        )
        if worst.max() > 0.25:
            log(
                f"warning: after weighting the treated still differ from the untreated by more than 0.25 SD in "
                f"{int((worst > 0.25).sum())} features; the average benefit leans on the outcome models there"
            )
    log(f"chosen by the out-of-fold AUTOC (a learner must rank better than risk by more than noise): {model.chosen_}")
    if model.validation_ is not None:
        log(f"validation without the truth ({model.validation_.where}): {model.validation_.verdict()}")


def fit_benefit(cohort: Cohort, s: BenefitSettings, log: Any = print, progress: bool = True) -> TrainingResult:
    """Emulate the decision at the landmark and fit the benefit model with its diagnostics."""
    task = s.make_task()
    fb, X, trial, counts = benefit_data(cohort, s)
    log(
        f"{task.name} at L = {s.landmark_h:g} h (grace {task.grace_h:g} h): {counts['eligible']} eligible, "
        f"{counts['treated_now']} given tocilizumab now; left out: {left_out(counts['excluded'])}"
    )
    for col in unused_centre_columns(cohort.patients, s.extra_patient_columns):
        log(
            f"note: patients column {col!r} has {cohort.patients[col].nunique()} values and is not a feature; if it "
            f"names centres, their usual care after the landmark, and so the benefit of treating now, can differ: "
            f"consider --extra {col}"
        )
    try:
        model = BenefitModel(
            candidates=s.candidates,
            trials=s.trials,
            folds=s.folds,
            trim=s.trim,
            seed=s.seed,
            progress=progress,
            ate_splits=s.ate_splits,
        ).fit(X, trial["treated"], trial["severe_days"], trial["severe"])
    except ValueError as exc:
        raise CrsmlError(f"{task.name} at {s.landmark_h:g} h: {exc}") from exc
    counts["trimmed"] = model.n_trimmed_
    counts["trim"] = model.trim_counts_
    metadata = {
        "grace_h": task.grace_h,
        "horizon_h": task.horizon_h,
        "counts": counts,
        "grades": grades_source(cohort, log),
        "window": task.window,
        "data_digest": data_digest(X, trial["treated"].to_numpy()),
        "chosen": model.chosen_,
        "ate": model.ate_,
        "ate_severe": model.ate_severe_,
        "propensity_auroc": model.propensity_auroc_,
        "feature_medians": X.median().astype(float).fillna(0.0).to_dict(),
        "versions": library_versions(),
    }
    fitted = Model(task, float(s.landmark_h), fb, model, ModelMetadata.from_dict(metadata))
    prior_only = getattr(model, "prior_only_", False)
    if not prior_only:
        _log_comparison(model, s, log)
    scale = model.effect_scale_
    where = (
        "every patient prior (the literature's effect)"
        if scale["basis"] == "prior"
        else "compared inside the overlap, extrapolated outside it"
    )
    log(
        f"benefit basis: {where}; {scale['scale']:.3f} days per unit of risk "
        f"({scale['low']:.3f} to {scale['high']:.3f})"
    )
    warnings = list(model.direction_notes_)
    if not prior_only:
        warnings += thin_data_warnings(counts["treated_now"], model.propensity_auroc_)
    for w in warnings:
        log(f"warning: {w}")

    artifacts = {
        "selection.csv": model.selection_,
        "balance_smd.csv": model.balance_,
        "counts.json": counts,
        "average_effect.json": {"ate_days": model.ate_, "ate_severe": model.ate_severe_},
    }
    if model.validation_ is not None:
        artifacts |= {
            "benefit_validation.json": model.validation_.to_dict(),
            "benefit_validation.csv": model.validation_.summary(),
        }
    treated = trial["treated"].to_numpy(dtype=int)
    if prior_only:
        table = pd.DataFrame({"value": {k: scale[k] for k in ("scale", "low", "high", "mean_risk", "days_if_severe")}})
        caption = (
            "prior only (too few given tocilizumab now to compare): days spared per unit of risk from the "
            "literature's effect, with its interval, the mean risk and the mean severe days of those who became severe"
        )
    else:
        table = model.selection_
        caption = (
            f"candidates (chosen: {model.chosen_}): held-out DR loss in days^2, lower is better, with its standard "
            "error and its difference from risk_scaled; DR value of treating the top 30% by each (days spared per "
            "patient); rank correlation with risk_scaled; out-of-fold AUTOC and its difference from risk_scaled"
        )
    return TrainingResult(
        fitted,
        s,
        counts,
        table,
        artifacts=artifacts,
        warnings=warnings,
        X=X,
        y=treated,
        overlap=None if prior_only else (model.cross_fitted_propensity_, treated, s.trim),
        validation=model.validation_,
        caption=caption,
    )
