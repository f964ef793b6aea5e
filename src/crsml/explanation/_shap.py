"""SHAP explanations of a model: shap's Explanation, beeswarm, mean |SHAP| and waterfall plots.

Values come from XGBoost's TreeSHAP on the booster (equal to ``shap.TreeExplainer`` on it,
tested): log-odds of the uncalibrated model for a risk model, severe-CRS days spared for a
benefit model (the same values as the drivers in its scores). Plots name no patient: single-patient
waterfalls are titled by rank only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.models import Model


def _estimator(model: Any) -> Any:
    """The estimator of a :class:`~crsml.models.Model`, or the estimator itself."""
    return model.estimator if isinstance(model, Model) else model


def _names(model: Any) -> list[str]:
    return [str(c) for c in _estimator(model).feature_names_in_]


def explain(model: Any, X: pd.DataFrame):
    """SHAP values of ``model`` for feature rows ``X``, as a :class:`shap.Explanation`.

    Parameters
    ----------
    model : a fitted :class:`~crsml.models.XGBRiskClassifier`, :class:`~crsml.models.BenefitModel`
        or :class:`~crsml.models.Model`.
    X : feature rows with (at least) the model's feature columns.

    Returns
    -------
    shap.Explanation
        ``values`` (rows x features), ``base_values`` and ``data``; each row adds up to the
        prediction on the scale ``model.explains`` names (log-odds of risk, or days spared).
    """
    import shap

    names = _names(model)
    X = X[names]
    contribs = _estimator(model).contributions(X)
    return shap.Explanation(
        values=contribs[:, :-1], base_values=contribs[:, -1], data=X.to_numpy(dtype=float), feature_names=names
    )


def mean_abs_shap(model: Any, X: pd.DataFrame, top: int = 30) -> pd.Series:
    """Mean absolute SHAP value per feature, largest first (an aggregate: safe to store with the
    model). ``model`` is a :class:`~crsml.models.Model` or a fitted estimator."""
    est = _estimator(model)
    names = [str(c) for c in est.feature_names_in_]
    phi = est.contributions(X[names])[:, :-1]
    return pd.Series(np.abs(phi).mean(axis=0), index=names).sort_values(ascending=False).head(top)


def explain_cohort(
    model: Model, cohort: Cohort, out_dir: str | Path, n_patients: int = 3, max_display: int = 12
) -> list[Path]:
    """Beeswarm and mean |SHAP| over the patients the model predicts for, and waterfalls for
    the highest predictions (risk, or benefit for a benefit model)."""
    X = model.explainable(cohort)
    if not len(X):
        raise CrsmlError(
            "no patient in the cohort that this model gives a prediction to explain (eligible at the "
            "landmark and, for a benefit model, inside its overlap)"
        )
    return plot_explanations(model, X, out_dir, n_patients, max_display)


def plot_explanations(
    model: Model, X: pd.DataFrame, out_dir: str | Path, n_patients: int = 3, max_display: int = 12, seed: int = 0
) -> list[Path]:
    """Write the beeswarm, mean |SHAP| and ``n_patients`` waterfall PNGs; return their paths.

    shap jitters the beeswarm's points with numpy's global generator: it is seeded with ``seed``
    for the plots (and restored after), so the same model and patients give the same bytes."""
    state = np.random.get_state()  # noqa: NPY002 - shap draws from the legacy global generator
    np.random.seed(seed)  # noqa: NPY002
    try:
        return _plot_explanations(model, X, out_dir, n_patients, max_display)
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _plot_explanations(
    model: Model, X: pd.DataFrame, out_dir: str | Path, n_patients: int, max_display: int
) -> list[Path]:
    import matplotlib.pyplot as plt  # shap draws through pyplot; the backend is never set here
    import shap

    mine = set(plt.get_fignums())  # a notebook's open figures are left as they are

    def close_new() -> None:
        for n in set(plt.get_fignums()) - mine:
            plt.close(n)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    X = X[model.feature_names]
    ex = explain(model, X)
    what, unit, shown_as = model.estimator.explains
    paths = []
    for name, draw in (
        ("shap_beeswarm.png", lambda: shap.plots.beeswarm(ex, max_display=max_display, show=False)),
        ("shap_mean_abs.png", lambda: shap.plots.bar(ex, max_display=max_display, show=False)),
    ):
        plt.figure()
        with warnings.catch_warnings():
            # a feature no patient here has (an analyte this cohort does not measure) is drawn grey
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            draw()
        fig = plt.gcf()
        fig.suptitle(f"{model.task.name}, L = {model.landmark_h:g} h: SHAP ({unit}), {len(X)} patients", fontsize=10)
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
        close_new()
        paths.append(out / name)
    value = model.estimator.explained_value(X)
    for rank, i in enumerate(np.argsort(-value, kind="stable")[:n_patients], start=1):
        plt.figure()
        one = ex[int(i)]
        # a feature not measured by the landmark reads "missing", not "nan"
        one.display_data = np.array(["missing" if np.isnan(v) else v for v in one.data], dtype=object)
        shap.plots.waterfall(one, max_display=max_display, show=False)
        fig = plt.gcf()
        fig.suptitle(f"example patient {rank} ({what} rank {rank}): {what} {shown_as.format(value[i])}", fontsize=10)
        p = out / f"shap_waterfall_{rank}.png"
        fig.savefig(p, dpi=100, bbox_inches="tight")
        close_new()
        paths.append(p)
    return paths
