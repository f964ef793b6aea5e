"""Published and simple baselines, refitted in the same folds as the model.

Each single-score baseline is a logistic regression on one published score (so it yields a
probability for Brier and calibration, and keeps the score's ranking): m-EASIX and EASIX at
the landmark (Pennisi et al., Blood Adv 2021), the current ASTCT grade, the IL-6 maximum
(Teachey et al., Cancer Discov 2016) and the Hay rule (Hay et al., Blood 2017; only where the
cohort has MCP-1). The last is a penalised logistic regression on all the landmark features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# name -> (feature column, log-transform, label)
SCORE_BASELINES: dict[str, tuple[str, bool, str]] = {
    "m-EASIX (landmark)": ("measix_lm", False, "Pennisi et al., Blood Adv 2021"),
    "EASIX (landmark)": ("easix_lm", False, "Pennisi et al., Blood Adv 2021"),
    "current ASTCT grade": ("grade_current", False, "Lee et al., BBMT 2019"),
    "IL-6 maximum": ("il6_max", True, "Teachey et al., Cancer Discov 2016"),
    "Hay rule": ("hay_rule", False, "Hay et al., Blood 2017"),
}
LOGISTIC = "logistic regression (all features)"


class ScoreBaseline(ClassifierMixin, BaseEstimator):
    """Logistic regression on a single score column (missing values imputed, with indicator)."""

    def __init__(self, column: str, log: bool = False) -> None:
        self.column = column
        self.log = log

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy(dtype=float)
        if self.log:
            x = np.log10(np.maximum(x, 0) + 1)
        return x[:, None]

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> ScoreBaseline:
        self.model_ = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(),
        )
        self.model_.fit(self._x(X), y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(self._x(X))


def logistic_all_features(seed: int = 0) -> BaseEstimator:
    """L2 logistic regression on every feature, its penalty chosen by inner cross-validation."""
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegressionCV(
            Cs=np.logspace(-3, 0, 5),
            cv=3,
            scoring="neg_log_loss",
            max_iter=2000,
            tol=1e-3,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
        ),
    )


def available_baselines(X: pd.DataFrame, seed: int = 0) -> tuple[dict[str, BaseEstimator], dict[str, str]]:
    """The baselines this feature frame supports, and the reason for each one left out."""
    models: dict[str, BaseEstimator] = {}
    skipped: dict[str, str] = {}
    for name, (col, log, _) in SCORE_BASELINES.items():
        if col not in X.columns or X[col].isna().all():
            skipped[name] = f"not available: no {col} in this cohort" + (" (no MCP-1)" if col == "hay_rule" else "")
        else:
            models[name] = ScoreBaseline(col, log)
    models[LOGISTIC] = logistic_all_features(seed)
    return {k: clone(v) for k, v in models.items()}, skipped
