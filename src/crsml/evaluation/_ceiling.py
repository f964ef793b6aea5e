"""What the landmark features can carry at best: XGBoost fitted to a simulated truth (a true
probability or a true benefit) instead of to the outcomes. No learner that sees only outcomes
should rank better; used by experiments/simulated_ceiling.py and the benefit experiments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb


def feature_ceiling(
    X: pd.DataFrame, target: np.ndarray, seed: int = 0, n_estimators: int = 400, max_depth: int = 3, n_jobs: int = 2
) -> xgb.XGBRegressor:
    """XGBoost regressor of ``target`` (rows where it is known) on the features ``X``."""
    target = np.asarray(target, dtype=float)
    ok = ~np.isnan(target)
    return xgb.XGBRegressor(
        n_estimators=n_estimators,
        max_depth=max_depth,
        learning_rate=0.03,
        subsample=0.8,
        colsample_bytree=0.5,
        random_state=seed,
        n_jobs=n_jobs,
    ).fit(X[ok], target[ok])
