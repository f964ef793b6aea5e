"""What a model carries of its development data so that another centre can judge it: the published
baselines' development fits (so they predict new patients without refitting) and aggregates of the
important predictors (means, spreads, missingness, covariance; never a row, never a group of fewer
than :data:`MIN_GROUP` patients).

Both are plain JSON in the model's metadata. The baselines are the pipelines of
:mod:`crsml.evaluation._baselines` (median imputation with missing indicators, standardisation,
logistic regression) written as their fitted arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline

from crsml.evaluation._baselines import ScoreBaseline

#: no aggregate of fewer patients is stored with a model
MIN_GROUP = 10
#: predictors described for case-mix comparison (the most important by mean |SHAP|)
CASE_MIX_FEATURES = 15


def _pipeline_dict(pipe: Pipeline, columns: list[str], log: bool) -> dict[str, Any]:
    imputer, scaler, lr = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[-1][1]
    indicator = getattr(imputer, "indicator_", None)
    return {
        "columns": columns,
        "log": log,
        "medians": np.asarray(imputer.statistics_, dtype=float).tolist(),
        "indicators": [] if indicator is None else np.asarray(indicator.features_, dtype=int).tolist(),
        "mean": np.asarray(scaler.mean_, dtype=float).tolist(),
        "scale": np.asarray(scaler.scale_, dtype=float).tolist(),
        "coef": np.asarray(lr.coef_, dtype=float).ravel().tolist(),
        "intercept": float(np.ravel(lr.intercept_)[0]),
    }


def baseline_fits(fitted: dict[str, BaseEstimator]) -> dict[str, dict[str, Any]]:
    """The fitted baselines (fitted on all development patients) as JSON-able arrays."""
    out = {}
    for name, est in fitted.items():
        if isinstance(est, ScoreBaseline):
            out[name] = _pipeline_dict(est.model_, [est.column], est.log)
        elif isinstance(est, Pipeline):
            out[name] = _pipeline_dict(est, [str(c) for c in est.feature_names_in_], False)
    return out


def predict_baseline(fit: dict[str, Any], X: pd.DataFrame) -> np.ndarray:
    """A stored baseline's risk for the rows of ``X`` (NaN where a column it needs is absent)."""
    if not set(fit["columns"]) <= set(X.columns):
        return np.full(len(X), np.nan)
    x = X[fit["columns"]].to_numpy(dtype=float)
    if fit["log"]:
        x = np.log10(np.maximum(x, 0) + 1)
    missing = np.isnan(x)
    filled = np.where(missing, np.asarray(fit["medians"])[None, :], x)
    z = np.hstack([filled, missing[:, fit["indicators"]].astype(float)])
    z = (z - np.asarray(fit["mean"])) / np.asarray(fit["scale"])
    return expit(z @ np.asarray(fit["coef"]) + fit["intercept"])


def development_summary(X: pd.DataFrame, y: np.ndarray, risk: np.ndarray, importance: pd.Series) -> dict[str, Any]:
    """Aggregates of the development patients for case-mix comparison (Debray et al., J Clin
    Epidemiol 2015): the outcome rate, the linear predictor's mean and spread, and for the most
    important predictors their mean, SD, missing share and covariance (after median imputation).
    Nothing is stored for fewer than :data:`MIN_GROUP` patients."""
    n = len(X)
    if n < MIN_GROUP:
        return {}
    lp = np.log(np.clip(risk, 1e-7, 1 - 1e-7) / (1 - np.clip(risk, 1e-7, 1 - 1e-7)))
    names = [f for f in importance.index if f in X.columns and X[f].notna().sum() >= MIN_GROUP][:CASE_MIX_FEATURES]
    sub = X[names].astype(float)
    filled = sub.fillna(sub.median())
    return {
        "n": int(n),
        "events": int(np.sum(y)),
        "event_rate": float(np.mean(y)),
        "lp_mean": float(lp.mean()),
        "lp_sd": float(lp.std(ddof=1)),
        "features": {
            f: {"mean": float(sub[f].mean()), "sd": float(sub[f].std(ddof=1)), "missing": float(sub[f].isna().mean())}
            for f in names
        },
        "covariance": filled.cov().to_numpy().tolist(),
    }


def fit_baselines(baselines: dict[str, BaseEstimator], X: pd.DataFrame, y: np.ndarray) -> dict[str, dict[str, Any]]:
    """Fit a copy of each baseline on all development patients and return :func:`baseline_fits`."""
    return baseline_fits({name: clone(est).fit(X, y) for name, est in baselines.items()})
