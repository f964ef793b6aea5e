"""What an MLflow run of a training records as parameters and metrics: built here, from the
:class:`~crsml.training.TrainingResult` (its settings, task, model and summary table), not by
the training itself. Each kind of estimator adds its own (``functools.singledispatch``), as the
model card's text does in :mod:`crsml.reporting`."""

from __future__ import annotations

from dataclasses import asdict
from functools import singledispatch
from typing import Any

import numpy as np

from crsml.evaluation import METRICS
from crsml.models import BenefitModel, XGBRiskClassifier
from crsml.training import MODEL_NAME, TrainingResult


def run_params(result: TrainingResult) -> dict[str, Any]:
    """The settings (tuples as comma-separated text, an Optuna storage only as ``rdb`` or
    ``memory``: a URL may hold a password), the task's parameters, what the estimator chose and
    the data's digest."""
    s = asdict(result.settings)
    s.pop("task_params", None)
    for k, v in s.items():
        if isinstance(v, (tuple, list)):
            s[k] = ",".join(map(str, v))
    if "storage" in s:
        s["storage"] = "rdb" if s["storage"] else "memory"
    model = result.model
    return (
        s
        | model.task.get_params()
        | estimator_params(model.estimator)
        | {"n_features": len(model.feature_names), "data_digest": model.metadata.get("data_digest", "")}
    )


def run_metrics(result: TrainingResult) -> dict[str, float]:
    """The counts and figures of the estimator's kind (out-of-fold metrics with intervals and the
    baselines' AUROC for a risk model; the average benefit and the candidates' losses for a
    benefit model)."""
    return {k: float(v) for k, v in estimator_metrics(result.model.estimator, result).items()}


@singledispatch
def estimator_params(estimator: Any) -> dict[str, Any]:
    """Parameters an estimator kind adds to its run (none for an unknown kind)."""
    return {}


@singledispatch
def estimator_metrics(estimator: Any, result: TrainingResult) -> dict[str, float]:
    """Metrics an estimator kind logs for its run."""
    return {}


@estimator_params.register
def _(estimator: XGBRiskClassifier) -> dict[str, Any]:
    return {f"best_{k}": v for k, v in estimator.best_params_.items()} | {
        "best_n_rounds": estimator.n_rounds_,
        "calibration": estimator.calibrator_.method,
        "ensemble_members": len(estimator.members_),
        "ensemble_trials": ",".join(str(m["trial"]) for m in estimator.members_),
    }


@estimator_params.register
def _(estimator: BenefitModel) -> dict[str, Any]:
    return {"chosen": estimator.chosen_}


@estimator_metrics.register
def _(estimator: XGBRiskClassifier, result: TrainingResult) -> dict[str, float]:
    counts, table = result.counts, result.table
    size = result.model.metadata.get("sample_size") or {}
    out = {"n_labelled": counts["labelled"], "n_events": counts["events"], "n_patients": counts["patients"]}
    if size:
        out |= {"sample_size_required": size["required_n"], "sample_size_required_events": size["required_events"]}
    for m in METRICS:
        for suffix in ("", "_low", "_high"):
            out[f"{m}{suffix}"] = float(table.loc[MODEL_NAME, f"{m}{suffix}"])
    for name in table.index.drop(MODEL_NAME):
        slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
        out[f"baseline_{slug}_auroc"] = float(table.loc[name, "auroc"])
    return out


@estimator_metrics.register
def _(estimator: BenefitModel, result: TrainingResult) -> dict[str, float]:
    counts = result.counts
    out = {
        "n_eligible": counts["eligible"],
        "n_treated_now": counts["treated_now"],
        "n_trimmed": counts["trimmed"],
        "propensity_auroc": estimator.propensity_auroc_,
    }
    for key, a in (("ate_days", estimator.ate_), ("ate_severe", estimator.ate_severe_)):
        out |= {key: a["ate"], f"{key}_low": a["low"], f"{key}_high": a["high"]}
    out |= {
        "ate_n": estimator.ate_["n"],
        "ate_propensity_bound": estimator.ate_["bound"],
        "ate_split_sd": estimator.ate_["split_sd"],
    }
    for name, row in estimator.selection_.iterrows():
        out[f"dr_loss_{name}"] = float(row["dr_loss"])
    v = getattr(estimator, "validation_", None)
    if v is not None:  # aggregates only: the validation's summary, one metric per figure and ranking
        for name, row in v.summary().iterrows():
            out |= {f"validation_{name}_{k}": float(x) for k, x in row.items() if np.isfinite(x)}
    return out
