"""Training a risk task: features -> labels -> nested cross-validated evaluation against the
published baselines -> the final tuned model, returned as a :class:`TrainingResult`.

Nothing here writes a file or an MLflow run: :func:`crsml.tracking.log_training` and
:func:`crsml.tracking.export_model` do that from the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib.metadata import version
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import Interval, StrOptions

from crsml import tasks
from crsml._params import check_params
from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.evaluation import (
    METRICS,
    auto_folds,
    auto_repeats,
    available_baselines,
    cross_validated_predictions,
    curve_data,
    development_summary,
    fit_baselines,
    format_intervals,
    format_landmark_auroc,
    internal_external,
    landmark_of,
    landmark_tables,
    metric_table,
    paired_difference,
    prediction_instability,
    sample_size,
)
from crsml.explanation import mean_abs_shap
from crsml.features import feature_dictionary
from crsml.models import FIXED_CONFIG, Model, ModelMetadata, XGBRiskClassifier
from crsml.training._result import MODEL_NAME, TrainingResult


@dataclass
class TrainSettings:
    """Everything that decides the training of a risk task (logged as MLflow parameters).

    ``task_params`` are the task's own parameters (``{"min_days": 5}`` for ``prolonged_crs``;
    those left out keep the task's defaults): the task declares them (:meth:`Task.param_names`),
    so a new task's parameter needs nothing here.
    """

    task: str = "severe_crs"
    landmark_h: float = 48.0
    #: a grid of landmarks: one landmark supermodel fitted on every patient at each of them
    #: (``landmark_h``, one of them, is where its headline figures are and scoring's default)
    landmarks: tuple[float, ...] = ()
    #: "auto" (both candidates in the same folds, the fixed one kept below Riley's minimum sample
    #: size unless the tuned one ranks better by more than the standard error of the difference:
    #: the one-standard-error rule; docs/dynamic.md), "tuned" (Optuna) or "fixed" (a conservative
    #: configuration, no search)
    learner: str = "auto"
    task_params: dict[str, Any] = field(default_factory=dict)
    trials: int = 40
    seed: int = 0
    ensemble_size: int = 1  # best Optuna trials the model averages (docs/risk_models.md, Model)
    cv_folds: int | None = None  # None: 5 below 2,000 patients, else 3
    cv_repeats: int | None = None  # None: 5 below 500 patients, 2 below 2,000, else 1
    inner_folds: int | None = None  # None: 3 below 2,000 patients, else 2
    n_jobs: int | None = None
    storage: str | None = None
    study_name: str | None = None
    n_boot: int = 1000
    extra_patient_columns: tuple[str, ...] = ()
    cv_groups: str | None = None  # a patients column (a centre): internal-external cross-validation by its values
    instability_boot: int = 20  # bootstrap refits for prediction instability (0: not checked)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "trials": [Interval(Integral, 1, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "ensemble_size": [Interval(Integral, 1, None, closed="left")],
        "cv_folds": [Interval(Integral, 2, None, closed="left"), None],
        "cv_repeats": [Interval(Integral, 1, None, closed="left"), None],
        "inner_folds": [Interval(Integral, 2, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "n_boot": [Interval(Integral, 1, None, closed="left")],
        "instability_boot": [Interval(Integral, 0, None, closed="left")],
        "cv_groups": [str, None],
        "storage": [str, None],
        "study_name": [str, None],
        "learner": [StrOptions({"tuned", "fixed", "auto"})],
    }

    def __post_init__(self) -> None:
        task = self.make_task()
        if task.model_kind != "risk":
            raise CrsmlError(
                f"{self.task} trains a {task.model_kind} model: use BenefitSettings (crsml.train "
                "chooses the settings from the task)"
            )
        task.check(self.landmark_h)
        check_params(self, self._parameter_constraints)
        if self.landmarks:
            self.landmarks = tuple(sorted({float(x) for x in self.landmarks}))
            if len(self.landmarks) < 2:
                raise CrsmlError("--landmarks: a landmark supermodel needs at least two landmarks")
            if float(self.landmark_h) not in self.landmarks:
                raise CrsmlError(
                    f"--landmark-h {self.landmark_h:g} is not on the grid --landmarks "
                    f"{','.join(f'{x:g}' for x in self.landmarks)}: the headline figures are at a grid time"
                )

    def make_task(self) -> tasks.Task:
        """The task these settings train, with its parameters."""
        return tasks.get(self.task, **self.task_params)


def data_digest(X: pd.DataFrame, y: np.ndarray) -> str:
    """SHA-256 of the feature values, names and labels (no identifiers)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, X.columns)).encode())
    h.update(np.ascontiguousarray(X.to_numpy(dtype=np.float64)).tobytes())
    h.update(np.asarray(y, dtype=np.int8).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model's figures depend on."""
    return {p: version(p) for p in ("crsml", "xgboost", "optuna", "mlflow", "scikit-learn", "pandas")}


def versus_best_baseline(result: TrainingResult, n_boot: int = 1000, seed: int = 0) -> tuple[str, float, float, float]:
    """AUROC of the model minus that of the best baseline, on the same patients (paired bootstrap)."""
    base = result.table.drop(index=MODEL_NAME)["auroc"].idxmax()
    d = paired_difference(result.y, result.oof[MODEL_NAME], result.oof[base], "auroc", n_boot, seed)
    return (str(base), *d)


def grades_source(cohort: Cohort, log: Any = print) -> str:
    """``recorded`` or ``derived``; said when the labels come from crsml's grading of the vitals."""
    if cohort.crs.empty and not cohort.vitals.empty:
        log(
            "note: the cohort records no CRS grade: the labels come from grades crsml derived from the vital signs "
            "(ASTCT grading), a lower bound where an oxygen device or vasopressor was not recorded"
        )
        return "derived"
    return "recorded"


def left_out(excluded: dict[str, int]) -> str:
    """Who was left out, for people: "23 severe CRS, 4 dead by the landmark" (or "none")."""
    return ", ".join(f"{n} {reason}" for reason, n in excluded.items()) or "none"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Metric (low-high) strings per model, for printing and markdown."""
    return format_intervals(table, METRICS)


def weak_model_reasons(row: pd.Series, model: XGBRiskClassifier) -> list[str]:
    """Why a fitted risk model should not be used: its out-of-fold AUROC interval includes 0.5, or
    a booster without a single split (every patient gets the same risk)."""
    reasons = []
    if not (row["auroc_low"] > 0.5):
        reasons.append(
            f"the out-of-fold AUROC interval includes 0.5 ({row['auroc_low']:.3f} to {row['auroc_high']:.3f}): "
            "the model does not rank patients better than chance"
        )
    if all("[" not in tree for b in model.boosters_ for tree in b.get_dump()):
        reasons.append("the final booster has no split: it gives every patient the same risk")
    return reasons


#: the candidate learner that is not the model, in the tables of ``learner="auto"``
FIXED_NAME = "xgboost, fixed configuration"
TUNED_NAME = "xgboost, tuned (not chosen)"


def choose_learner(y: np.ndarray, oof: dict[str, np.ndarray], parameters: int, s: TrainSettings) -> dict[str, Any]:
    """The one-standard-error rule between the tuned model and the fixed configuration, judged on
    the same out-of-fold patients: below Riley's minimum sample size (Riley et al., BMJ 2020) the
    simpler fixed configuration is kept unless the tuned model's AUROC is higher by more than the
    standard error of the paired difference (Hastie, Tibshirani & Friedman 2009, sec. 7.10)."""
    d, low, high = paired_difference(y, oof[MODEL_NAME], oof[FIXED_NAME], "auroc", s.n_boot, s.seed)
    se = (high - low) / (2 * 1.96)
    # the anticipated C of Riley's criteria: the better of the two candidates out of fold
    c = max(float(np.mean([roc_auc_score(y, p) for p in np.atleast_2d(oof[k])])) for k in (MODEL_NAME, FIXED_NAME))
    size = sample_size(
        float(np.mean(y)), parameters, c_statistic=c, available_n=len(y), available_events=int(np.sum(y))
    )
    short = size.available_n < size.required_n
    fixed = short and d <= se
    why = (
        f"{'fixed configuration' if fixed else 'tuned'}: the tuned model's out-of-fold AUROC minus the fixed "
        f"configuration's is {d:+.3f} (standard error {se:.3f}) on {len(y)} patients, "
        + (
            f"below Riley's minimum of {size.required_n:,}; "
            + (
                "the simpler model is kept (one-standard-error rule)"
                if fixed
                else "the tuned model is better by more than its standard error"
            )
            if short
            else f"at or above Riley's minimum of {size.required_n:,}: the tuned model"
        )
    )
    return {
        "setting": "auto",
        "chosen": "fixed" if fixed else "tuned",
        "tuned_minus_fixed_auroc": d,
        "difference_low": low,
        "difference_high": high,
        "standard_error": se,
        "required_n": size.required_n,
        "available_n": size.available_n,
        "why": why,
    }


def fit_risk(cohort: Cohort, s: TrainSettings, log: Any = print, progress: bool = True) -> TrainingResult:
    """Tune, evaluate (nested CV, baselines, bootstrap intervals) and fit a risk task's model."""
    task = s.make_task()
    data = task.prepare(cohort, list(s.landmarks) or s.landmark_h, s.extra_patient_columns)
    fb, X, y, counts = data.features, data.X, data.y.to_numpy(dtype=int), data.counts
    # the rows at the headline landmark: each patient once (all rows for a model of one landmark)
    at_ref = landmark_of(X) == float(s.landmark_h)
    if s.landmarks:
        log(
            f"{task.name}, landmark supermodel on {tasks.grid_text(s.landmarks)}: "
            f"{counts['labelled']} patient-landmark rows of {counts['labelled_patients']} patients, "
            f"{counts['events']} with the outcome ({counts['event_rate']:.1%}); folds keep each patient's rows together"
        )
    else:
        log(
            f"{task.name} at L = {s.landmark_h:g} h: {counts['labelled']} labelled patients, {counts['events']} "
            f"with the outcome ({counts['event_rate']:.1%}); left out: {left_out(counts['excluded'])}"
        )
    repeats = s.cv_repeats or auto_repeats(len(y))
    outer, inner = auto_folds(len(y))
    outer, inner = s.cv_folds or outer, s.inner_folds or inner
    fixed = FIXED_CONFIG if s.learner == "fixed" else None
    model = XGBRiskClassifier(
        n_trials=s.trials, inner_folds=inner, seed=s.seed, ensemble_size=s.ensemble_size, fixed=fixed
    )
    baselines, skipped = available_baselines(X, s.seed)
    for name, why in skipped.items():
        log(f"baseline {name}: {why}")
    final = XGBRiskClassifier(
        n_trials=s.trials,
        inner_folds=inner,
        seed=s.seed,
        storage=s.storage,
        study_name=s.study_name,
        ensemble_size=s.ensemble_size,
        fixed=fixed,
    )
    candidates = {FIXED_NAME: XGBRiskClassifier(inner_folds=inner, seed=s.seed, fixed=FIXED_CONFIG)}
    if s.learner != "auto":
        candidates = {}
    oof, folds, final = cross_validated_predictions(
        X,
        y,
        model,
        baselines | candidates,
        folds=outer,
        repeats=repeats,
        seed=s.seed,
        n_jobs=s.n_jobs,
        model_name=MODEL_NAME,
        progress=progress,
        final_model=final,
    )
    learner = {"setting": s.learner, "chosen": "fixed" if s.learner == "fixed" else "tuned"}
    if candidates:
        learner = choose_learner(y[at_ref], {k: v[:, at_ref] for k, v in oof.items()}, X.shape[1], s)
        log(f"learner: {learner['why']}")
        if learner["chosen"] == "fixed":  # the fixed configuration is the model; the tuned one a comparator
            final = XGBRiskClassifier(inner_folds=inner, seed=s.seed, fixed=FIXED_CONFIG).fit(X, y)
            oof = {MODEL_NAME: oof.pop(FIXED_NAME), TUNED_NAME: oof.pop(MODEL_NAME), **oof}
    by_landmark = None
    if s.landmarks:
        # the figures at each landmark of the grid, each patient once (van Houwelingen & Putter 2011)
        by_landmark = landmark_tables(X, y, oof, s.n_boot, s.seed)
        table = by_landmark.xs(float(s.landmark_h), level="landmark_h")
        curves = curve_data(y[at_ref], {k: v[:, at_ref] for k, v in oof.items()})
        log(format_landmark_auroc(by_landmark).to_string())
    else:
        table = metric_table(y, oof, n_boot=s.n_boot, seed=s.seed)
        curves = curve_data(y, oof)
    metadata = {
        "horizon_h": task.horizon_h,
        "counts": counts,
        "grades": grades_source(cohort, log),
        "data_digest": data_digest(X, y),
        "cv": {
            "folds": outer,
            "repeats": repeats,
            "inner_folds": inner,
            "trials": s.trials,
            "bootstrap": s.n_boot,
            "seed": s.seed,
        },
        "baselines_skipped": skipped,
        "feature_medians": X.median().astype(float).fillna(0.0).to_dict(),
        "versions": library_versions(),
    }
    importance = mean_abs_shap(final, X)
    metadata["shap_mean_abs"] = importance.to_dict()
    metadata["baseline_fits"] = fit_baselines(baselines, X, y)
    metadata["development"] = development_summary(X, y, final.predict_proba(X)[:, 1], importance)
    c_oof = float(table.loc[MODEL_NAME, "auroc"])
    y_ref = y[at_ref]  # patients, not stacked rows
    size = sample_size(
        float(y_ref.mean()),
        X.shape[1],
        c_statistic=c_oof if np.isfinite(c_oof) else 0.7,
        available_n=len(y_ref),
        available_events=int(y_ref.sum()),
    )
    metadata["sample_size"] = size.to_dict()
    log(size.sentence())
    instability = None
    if s.instability_boot:
        metadata["instability"], instability = prediction_instability(final, X, y, s.instability_boot, s.seed)
        log(
            f"prediction instability: mean absolute prediction error {metadata['instability']['mape']:.3f} over "
            f"{s.instability_boot} bootstrap refits (Riley & Collins 2023)"
        )
    iecv_tables = {}
    if s.cv_groups:
        if s.cv_groups not in cohort.patients.columns:
            raise CrsmlError(f"--cv-groups {s.cv_groups}: not a column of the patients table")
        by_patient = cohort.patients.set_index(cohort.patients["patient_id"].astype(str))[s.cv_groups]
        groups = by_patient.reindex(X.index.get_level_values("patient_id").astype(str))
        per_group, pooled = internal_external(
            X,
            y,
            groups,
            lambda: XGBRiskClassifier(
                n_trials=s.trials, inner_folds=inner, seed=s.seed, ensemble_size=s.ensemble_size, progress=False
            ),
            n_boot=min(s.n_boot, 200),
            seed=s.seed,
            log=log,
        )
        metadata["iecv"] = {
            "column": s.cv_groups,
            "groups": per_group.to_dict(orient="records"),
            "pooled": pooled.to_dict(orient="index"),
        }
        iecv_tables = {"iecv_groups.csv": per_group, "iecv_pooled.csv": pooled}
        if "auroc" in pooled.index:
            a = pooled.loc["auroc"]
            log(
                f"internal-external cross-validation by {s.cv_groups}: pooled AUROC {a['pooled']:.3f} "
                f"({a['low']:.3f} to {a['high']:.3f}), 95% prediction interval "
                f"{a.get('prediction_low', float('nan')):.3f} to {a.get('prediction_high', float('nan')):.3f}, "
                f"I2 {a['i2']:.2f}"
            )
    metadata["learner"] = learner
    if by_landmark is not None:
        metadata["landmarks"] = [float(x) for x in s.landmarks]
        metadata["by_landmark"] = {
            f"{L:g}": g.droplevel("landmark_h").to_dict(orient="index")
            for L, g in by_landmark.groupby(level="landmark_h")
        }
    metadata["weak"] = weak_model_reasons(table.loc[MODEL_NAME], final)
    for reason in metadata["weak"]:
        log(f"warning: {reason}")
    fitted = Model(task, float(s.landmark_h), fb, final, ModelMetadata.from_dict(metadata), table, curves)
    artifacts = {
        "evaluation.csv": table,
        "evaluation.md": format_table(table),
        "outer_folds.csv": folds,
        "optuna_trials.csv": final.trials_,
        "feature_dictionary.csv": feature_dictionary(fitted.feature_names),
        "counts.json": counts,
        "curves.json": curves,
        "sample_size.json": size.to_dict(),
        **iecv_tables,
    }
    if "instability" in metadata:
        artifacts["instability.json"] = metadata["instability"]
    if by_landmark is not None:
        artifacts["evaluation_by_landmark.csv"] = by_landmark
        artifacts["evaluation_by_landmark.md"] = format_landmark_auroc(by_landmark)
    return TrainingResult(
        fitted,
        s,
        counts,
        table,
        artifacts=artifacts,
        warnings=list(metadata["weak"]),
        folds=folds,
        oof=oof,
        y=y,
        X=X,
        formatter=format_table,
        instability=instability,
        caption=f"{task.name} at L = {s.landmark_h:g} h"
        + (f" (landmark supermodel on {tasks.grid_text(s.landmarks)})" if s.landmarks else "")
        + ": out-of-fold, bootstrap 95% intervals",
    )
