"""SHAP explanations of a model over a cohort: shap's beeswarm, mean |SHAP| and waterfall plots.

Values come from XGBoost's TreeSHAP on the booster: log-odds of the uncalibrated model for the
risk tasks, severe-CRS days spared for a tocilizumab-benefit model (its benefit booster, the
same values as the drivers in its scores). Plots name no patient: single-patient waterfalls are
titled by rank only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.models.bundle import ModelBundle


def explained(bundle: ModelBundle) -> tuple[str, str]:
    """What the SHAP values explain and their unit: the benefit for a benefit model, else the risk."""
    return ("benefit", "days spared") if bundle.benefit is not None else ("risk", "log-odds")


def _contributions(bundle: ModelBundle, X: pd.DataFrame) -> np.ndarray:
    X = X[bundle.feature_names]
    return bundle.benefit.contributions(X) if bundle.benefit is not None else bundle.classifier.contributions(X)


def explainable(bundle: ModelBundle, X: pd.DataFrame) -> pd.DataFrame:
    """The rows the model gives its prediction for: all of them, or for a benefit model those
    inside the propensity overlap and not given tocilizumab before the landmark (no benefit is
    given to the others, so none is explained)."""
    if bundle.benefit is None or not len(X):
        return X
    keep = bundle.benefit.inside_overlap(X)
    if "tocilizumab_given" in X:  # given before the landmark: not eligible for the decision (as in scores)
        keep &= X["tocilizumab_given"].to_numpy(dtype=float) != 1
    return X[keep]


def shap_explanation(bundle: ModelBundle, X: pd.DataFrame):
    """A :class:`shap.Explanation` for feature rows ``X`` (the model's columns)."""
    import shap

    X = X[bundle.feature_names]
    contribs = _contributions(bundle, X)
    return shap.Explanation(values=contribs[:, :-1], base_values=contribs[:, -1], data=X.to_numpy(dtype=float),
                            feature_names=bundle.feature_names)


def mean_abs_shap(bundle: ModelBundle, X: pd.DataFrame, top: int = 30) -> pd.Series:
    """Mean absolute SHAP value per feature (an aggregate: safe to store with the model)."""
    phi = _contributions(bundle, X)[:, :-1]
    s = pd.Series(np.abs(phi).mean(axis=0), index=bundle.feature_names).sort_values(ascending=False)
    return s.head(top)


def explain_cohort(bundle: ModelBundle, cohort: Cohort, out_dir: str | Path, n_patients: int = 3,
                   max_display: int = 12) -> list[Path]:
    """Beeswarm and mean |SHAP| over the eligible patients, and waterfalls for the highest risks
    (highest benefits for a benefit model)."""
    X = explainable(bundle, bundle.features.transform(cohort)[bundle.feature_names])
    if not len(X):
        from crsml.errors import CrsmlError

        where = " inside the benefit model's overlap" if bundle.benefit is not None else ""
        raise CrsmlError(f"no eligible patient{where} in the cohort to explain")
    return explanation_plots(bundle, X, out_dir, n_patients, max_display)


def explanation_plots(bundle: ModelBundle, X: pd.DataFrame, out_dir: str | Path, n_patients: int = 3,
                      max_display: int = 12) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ex = shap_explanation(bundle, X)
    what, unit = explained(bundle)
    paths = []
    for name, draw in (("shap_beeswarm.png", lambda: shap.plots.beeswarm(ex, max_display=max_display, show=False)),
                       ("shap_mean_abs.png", lambda: shap.plots.bar(ex, max_display=max_display, show=False))):
        plt.figure()
        with warnings.catch_warnings():
            # a feature no patient here has (an analyte this cohort does not measure) is drawn grey
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            draw()
        fig = plt.gcf()
        fig.suptitle(f"{bundle.task}, L = {bundle.landmark_h:g} h: SHAP ({unit}), {len(X)} patients", fontsize=10)
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close("all")
        paths.append(out / name)
    if what == "benefit":
        value = ex.values.sum(axis=1) + ex.base_values
        shown = [f"benefit {v:.2f} days" for v in value]
    else:
        value = bundle.classifier.predict_proba(X)[:, 1]
        shown = [f"risk {v:.0%}" for v in value]
    for rank, i in enumerate(np.argsort(-value, kind="stable")[:n_patients], start=1):
        plt.figure()
        shap.plots.waterfall(ex[int(i)], max_display=max_display, show=False)
        fig = plt.gcf()
        fig.suptitle(f"example patient {rank} ({what} rank {rank}): {shown[i]}", fontsize=10)
        p = out / f"shap_waterfall_{rank}.png"
        fig.savefig(p, dpi=100, bbox_inches="tight")
        plt.close("all")
        paths.append(p)
    return paths
