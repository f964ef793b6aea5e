"""``crsml train`` for the risk tasks: features -> labels -> nested cross-validated evaluation
against the baselines -> final tuned model -> MLflow run -> ``models/NAME``.

Only counts, digests, settings and aggregate metrics reach MLflow; never a patient row or id.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.evaluation.baselines import available_baselines
from crsml.evaluation.crossval import auto_folds, auto_repeats, cross_validated_predictions
from crsml.evaluation.curves import curve_data, plot_curves
from crsml.evaluation.metrics import METRICS, metric_table
from crsml.features import LandmarkFeatures, feature_dictionary
from crsml.labels import DEFAULT_HORIZON_H, DEFAULT_MIN_DAYS, RISK_TASKS, check_window, make_labels
from crsml.models.bundle import ModelBundle
from crsml.models.risk import XGBRiskClassifier

MODEL_NAME = "crsml xgboost"


@dataclass
class TrainSettings:
    """Everything that decides a training run (logged as MLflow parameters)."""

    task: str = "severe_crs"
    landmark_h: float = 48.0
    horizon_h: float = DEFAULT_HORIZON_H
    min_days: float = DEFAULT_MIN_DAYS
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
    register_name: str | None = None  # None: crsml-<task>; "" to skip registering

    def __post_init__(self) -> None:
        if self.task not in RISK_TASKS:
            raise CrsmlError(f"unknown task {self.task!r}; expected one of {', '.join(RISK_TASKS)} "
                             "(tocilizumab_benefit trains with crsml.causal.training.train_benefit)")
        check_window(self.landmark_h, self.horizon_h)
        if self.trials < 1:
            raise CrsmlError("--trials must be at least 1")
        if self.ensemble_size < 1:
            raise CrsmlError("--ensemble-size must be at least 1")


@dataclass
class TrainResult:
    bundle: ModelBundle
    table: pd.DataFrame
    folds: pd.DataFrame
    counts: dict[str, Any]
    oof: dict[str, np.ndarray] = field(default_factory=dict)  # in memory only, never logged
    y: np.ndarray | None = None
    run_id: str | None = None
    model_dir: Path | None = None
    plots: dict[str, Path] = field(default_factory=dict)


def data_digest(X: pd.DataFrame, y: np.ndarray) -> str:
    """SHA-256 of the feature values, names and labels (no identifiers)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, X.columns)).encode())
    h.update(np.ascontiguousarray(X.to_numpy(dtype=np.float64)).tobytes())
    h.update(np.asarray(y, dtype=np.int8).tobytes())
    return h.hexdigest()


def training_data(cohort: Cohort, s: TrainSettings) -> tuple[LandmarkFeatures, pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Fitted feature builder, labelled feature rows, labels and the counts of who was left out."""
    fb = LandmarkFeatures(landmark_h=s.landmark_h, extra_patient_columns=s.extra_patient_columns).fit(cohort)
    X, _ = fb.build(cohort)
    labels = make_labels(cohort, s.task, s.landmark_h, s.horizon_h, s.min_days).reindex(X.index)
    keep = labels["label"].notna().to_numpy()
    y = labels["label"].to_numpy()[keep].astype(int)
    excluded = labels.loc[~keep, "reason"].str.replace(r"\s*\(.*\)$", "", regex=True).value_counts()
    counts = {
        "patients": int(len(cohort.patients)), "labelled": int(keep.sum()), "events": int(y.sum()),
        "event_rate": float(y.mean()) if len(y) else float("nan"),
        "excluded": {str(k): int(v) for k, v in excluded.items()},
    }
    if len(y) < 20 or min(y.sum(), len(y) - y.sum()) < 5:
        raise CrsmlError(f"too few labelled patients to train {s.task} at {s.landmark_h:g} h: "
                         f"{len(y)} labelled, {int(y.sum())} with the outcome (need 20 and 5 of each class)")
    return fb, X[keep], y, counts


def versus_best_baseline(result: TrainResult, n_boot: int = 1000, seed: int = 0) -> tuple[str, float, float, float]:
    """AUROC of the model minus that of the best baseline, on the same patients (paired bootstrap)."""
    from crsml.evaluation.metrics import paired_difference

    base = result.table.drop(index=MODEL_NAME)["auroc"].idxmax()
    d = paired_difference(result.y, result.oof[MODEL_NAME], result.oof[base], "auroc", n_boot, seed)
    return (str(base), *d)


def left_out(excluded: dict[str, int]) -> str:
    """Who was left out, for people: "23 severe CRS, 4 dead by the landmark" (or "none")."""
    return ", ".join(f"{n} {reason}" for reason, n in excluded.items()) or "none"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Metric (low-high) strings per model, for printing and markdown."""
    out = pd.DataFrame(index=table.index)
    for m in METRICS:
        out[m] = [f"{v:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(v) else "not estimable" for v, lo, hi in
                  zip(table[m], table[f"{m}_low"], table[f"{m}_high"], strict=True)]
    return out


def train(
    cohort: Cohort,
    settings: TrainSettings,
    model_out: str | Path | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
    log: Any = print,
) -> TrainResult:
    """Tune, evaluate (nested CV, baselines, bootstrap intervals), fit, log and export."""
    s = settings
    fb, X, y, counts = training_data(cohort, s)
    log(f"{s.task} at L = {s.landmark_h:g} h: {counts['labelled']} labelled patients, "
        f"{counts['events']} with the outcome ({counts['event_rate']:.1%}); left out: {left_out(counts['excluded'])}")
    repeats = s.cv_repeats or auto_repeats(len(y))
    outer, inner = auto_folds(len(y))
    outer, inner = s.cv_folds or outer, s.inner_folds or inner
    model = XGBRiskClassifier(n_trials=s.trials, inner_folds=inner, seed=s.seed, ensemble_size=s.ensemble_size)
    baselines, skipped = available_baselines(X, s.seed)
    for name, why in skipped.items():
        log(f"baseline {name}: {why}")
    final = XGBRiskClassifier(n_trials=s.trials, inner_folds=inner, seed=s.seed, storage=s.storage,
                              study_name=s.study_name, ensemble_size=s.ensemble_size)
    oof, folds, final = cross_validated_predictions(
        X, y, model, baselines, folds=outer, repeats=repeats, seed=s.seed, n_jobs=s.n_jobs,
        model_name=MODEL_NAME, progress=progress, final_model=final,
    )
    table = metric_table(y, oof, n_boot=s.n_boot, seed=s.seed)
    curves = curve_data(y, oof)

    metadata = {
        "horizon_h": s.horizon_h, "min_days": s.min_days, "counts": counts, "data_digest": data_digest(X, y),
        "cv": {"folds": outer, "repeats": repeats, "inner_folds": inner, "trials": s.trials,
               "bootstrap": s.n_boot, "seed": s.seed},
        "baselines_skipped": skipped, "feature_medians": X.median().astype(float).fillna(0.0).to_dict(),
        "versions": _versions(),
    }
    bundle = ModelBundle(s.task, float(s.landmark_h), fb, final, metadata, table, curves)
    from crsml.explanations import mean_abs_shap

    metadata["shap_mean_abs"] = mean_abs_shap(bundle, X).to_dict()
    result = TrainResult(bundle, table, folds, counts, oof=oof, y=y)
    from crsml.models.export import save_pyfunc, staged

    with staged(bundle, _example(bundle, X)) as exported:
        result.run_id = _log_run(result, s, X, tracking_uri, exported, log)
        if model_out is not None:
            result.model_dir = save_pyfunc(exported, model_out)
            log(f"model written to {result.model_dir}")
    return result


def _example(bundle: ModelBundle, X: pd.DataFrame) -> pd.DataFrame:
    from crsml.models.export import synthetic_example

    return synthetic_example(bundle, X.median(), n=3, seed=bundle.classifier.seed)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("crsml", "xgboost", "optuna", "mlflow", "scikit-learn", "pandas")}


def _log_run(result: TrainResult, s: TrainSettings, X: pd.DataFrame, tracking_uri: str | None,
             exported: dict[str, Any], log: Any) -> str:
    from crsml import tracking
    from crsml.models.export import log_pyfunc

    mlflow = tracking.start(f"crsml-{s.task}", tracking_uri)
    b = result.bundle
    table = result.table
    with mlflow.start_run(run_name=f"{s.task}-L{s.landmark_h:g}") as run:
        params = {k: v for k, v in asdict(s).items() if k not in ("storage",)}
        params["extra_patient_columns"] = ",".join(s.extra_patient_columns)
        params["storage"] = "rdb" if s.storage else "memory"
        mlflow.log_params(params)
        mlflow.log_params({f"best_{k}": v for k, v in b.classifier.best_params_.items()}
                          | {"best_n_rounds": b.classifier.n_rounds_, "calibration": b.classifier.calibrator_.method,
                             "ensemble_members": len(b.classifier.members_),
                             "ensemble_trials": ",".join(str(m["trial"]) for m in b.classifier.members_),
                             "n_features": X.shape[1], "data_digest": b.metadata["data_digest"]})
        mlflow.set_tags({"crsml.task": s.task, "crsml.landmark_h": str(s.landmark_h)})
        c = result.counts
        mlflow.log_metrics({"n_labelled": c["labelled"], "n_events": c["events"], "n_patients": c["patients"]})
        for m in METRICS:
            for suffix in ("", "_low", "_high"):
                mlflow.log_metric(f"{m}{suffix}", float(table.loc[MODEL_NAME, f"{m}{suffix}"]))
        for name in table.index.drop(MODEL_NAME):
            slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
            mlflow.log_metric(f"baseline_{slug}_auroc", float(table.loc[name, "auroc"]))
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            table.to_csv(t / "evaluation.csv")
            (t / "evaluation.md").write_text(format_table(table).to_markdown() if _has_tabulate() else format_table(table).to_string())
            result.folds.to_csv(t / "outer_folds.csv", index=False)
            b.classifier.trials_.to_csv(t / "optuna_trials.csv", index=False)
            feature_dictionary(b.feature_names).to_csv(t / "feature_dictionary.csv", index=False)
            (t / "counts.json").write_text(json.dumps(c, indent=1))
            (t / "curves.json").write_text(json.dumps(b.curves))
            result.plots = plot_curves(b.curves, t / "plots", MODEL_NAME, f"{s.task}, L = {s.landmark_h:g} h")
            mlflow.log_artifacts(str(t), artifact_path="evaluation")
        registered = f"crsml-{s.task}" if s.register_name is None else (s.register_name or None)
        log_pyfunc(exported, registered)
        log(f"MLflow run {run.info.run_id} in experiment crsml-{s.task} ({mlflow.get_tracking_uri()})")
        return run.info.run_id


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
