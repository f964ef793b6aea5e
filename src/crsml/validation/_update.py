"""Update a risk model for a new centre: recalibration in the large, logistic recalibration, or a
refit on the centre's patients; ``auto`` chooses by a closed testing procedure (Vergouwe et al.,
Stat Med 2017).

The closed test compares, by likelihood-ratio tests on the new patients, the original model
against logistic recalibration (2 degrees of freedom); if they differ, logistic recalibration
against recalibration in the large (1 degree of freedom). Vergouwe's first step, a full revision
of every coefficient, has no degrees of freedom to count for a boosted model, so ``auto`` never
refits: ``--method refit`` retrains the model on the new patients with its own settings.

The updated model keeps its lineage (the parent's digest, registered name and version, the method
and the figures that prompted it) in its metadata, and is fitted without side effects: registering
it is :func:`crsml.tracking.log_update`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import chi2

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.evaluation import cal_intercept, cal_slope
from crsml.models import Model, log_odds
from crsml.training import train
from crsml.validation._external import labelled_rows

METHODS = ("auto", "intercept", "logistic", "refit")
ALPHA = 0.05


@dataclass
class UpdateResult:
    """The updated model, the method used and the tests that chose it."""

    model: Model
    method: str
    chosen_by: str
    tests: pd.DataFrame
    before: dict[str, float]
    lineage: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """The likelihood-ratio tests and the update made, as a table."""
        return self.tests


def _loglik(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def recalibration_tests(y: np.ndarray, risk: np.ndarray) -> tuple[pd.DataFrame, dict[str, tuple[float, float]]]:
    """Log-likelihood of the original, intercept-updated and logistically recalibrated risks, the
    likelihood-ratio tests between them, and each update's (intercept, slope)."""
    lp = log_odds(risk)
    y = np.asarray(y, dtype=float)
    fit_a = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    fit_ab = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    a = float(fit_a.params[0])
    a2, b2 = (float(v) for v in fit_ab.params)
    ll0, ll1, ll2 = _loglik(y, risk), float(fit_a.llf), float(fit_ab.llf)
    rows = [
        {"comparison": "logistic recalibration vs original", "lr_statistic": 2 * (ll2 - ll0), "df": 2},
        {"comparison": "logistic recalibration vs intercept update", "lr_statistic": 2 * (ll2 - ll1), "df": 1},
        {"comparison": "intercept update vs original", "lr_statistic": 2 * (ll1 - ll0), "df": 1},
    ]
    tests = pd.DataFrame(rows)
    tests["p_value"] = chi2.sf(tests["lr_statistic"].clip(lower=0), tests["df"])
    return tests.set_index("comparison"), {"intercept": (a, 1.0), "logistic": (a2, b2)}


def closed_test(tests: pd.DataFrame, alpha: float = ALPHA) -> str:
    """``none``, ``intercept`` or ``logistic`` by the closed testing procedure."""
    if tests.loc["logistic recalibration vs original", "p_value"] >= alpha:
        return "none"
    if tests.loc["logistic recalibration vs intercept update", "p_value"] < alpha:
        return "logistic"
    return "intercept"


def update(
    model: Model,
    cohort: Cohort,
    method: str = "auto",
    alpha: float = ALPHA,
    seed: int = 0,
    trials: int | None = None,
    log: Any = print,
) -> UpdateResult:
    """Update ``model`` on the labelled patients of ``cohort``.

    Parameters
    ----------
    model : a risk model.
    cohort : the new centre's labelled patients.
    method : ``auto`` (closed test), ``intercept`` (recalibration in the large), ``logistic``
        (intercept and slope) or ``refit`` (retrain on ``cohort`` with the model's settings).
    alpha : level of the closed test's likelihood-ratio tests.
    seed, trials : for ``refit`` (trials default to the parent's).
    """
    if method not in METHODS:
        raise CrsmlError(f"--method {method}: expected one of {', '.join(METHODS)}")
    if model.task.model_kind != "risk":
        raise CrsmlError(f"crsml update recalibrates risk models; {model.task.name} is a {model.task.model_kind} model")
    X, y, flow, _ = labelled_rows(model, cohort)
    risk = model.predict_features(X)["risk"].to_numpy(dtype=float)
    tests, coefs = recalibration_tests(y, risk)
    w = np.ones((1, len(y)))  # the sample itself
    before = {
        "n": int(len(y)),
        "events": int(y.sum()),
        "observed_rate": float(y.mean()),
        "mean_risk": float(risk.mean()),
        "cal_intercept": float(cal_intercept(y, risk, w)[0]),
        "cal_slope": float(cal_slope(y, risk, w)[0]),
    }
    chosen_by = "closed test" if method == "auto" else "user"
    chosen = closed_test(tests, alpha) if method == "auto" else method
    log(
        f"{model.task.name} at L = {model.landmark_h:g} h on {len(y)} labelled patients ({int(y.sum())} events): "
        f"calibration-in-the-large {before['cal_intercept']:.3f}, slope {before['cal_slope']:.3f}; "
        f"update: {chosen} ({chosen_by})"
    )
    lineage = {
        "parent_digest": model.source.get("digest"),
        "parent_registered_name": model.source.get("registered_name"),
        "parent_version": model.source.get("version"),
        "method": chosen,
        "chosen_by": chosen_by,
        "alpha": alpha,
        "tests": {
            k: {"lr_statistic": float(r["lr_statistic"]), "df": int(r["df"]), "p_value": float(r["p_value"])}
            for k, r in tests.iterrows()
        },
        "prompted_by": before,
        "patients": int(len(y)),
        "events": int(y.sum()),
    }
    if chosen == "refit":
        cv = model.metadata.get("cv", {})
        params = model.task.get_params()
        result = train(
            cohort,
            model.task.name,
            landmark_h=model.landmark_h,
            trials=trials or cv.get("trials", 40),
            seed=seed,
            extra_patient_columns=tuple(model.features.extra_patient_columns),
            log=log,
            **params,
        )
        new = result.model
    else:
        new = copy.deepcopy(model)
        if chosen in coefs:
            a, b = coefs[chosen]
            lineage |= {"intercept": a, "slope": b}
            new.estimator.calibrator_ = model.estimator.calibrator_.with_update(a, b)
    new.metadata = copy.deepcopy(new.metadata)
    new.metadata.lineage = [*(model.metadata.lineage or []), lineage]
    new.source = {}
    return UpdateResult(new, chosen, chosen_by, tests, before, lineage)
