"""Gradient-boosted nuisance models for the treatment-effect learners, tuned with Optuna.

The same search space as the risk models (``crsml.models._xgb``); a trial is scored by the
mean validation loss over ``folds`` patient folds (log loss for classifiers, squared error for
regressors) at its best checkpoint. The tuned settings come back as scikit-learn XGBoost
estimators, which EconML clones and fits inside its own cross-fitting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import xgboost as xgb
from sklearn.model_selection import KFold, StratifiedKFold

from crsml.models._xgb import (
    CHECKPOINT_EVERY,
    MAX_BIN,
    base_params,
    sklearn_base_params,
    suggest,
    tpe_study,
)


def tune_xgb(
    X: np.ndarray,
    y: np.ndarray,
    kind: str,
    trials: int = 10,
    folds: int = 3,
    seed: int = 0,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Best XGBoost settings (scikit-learn names, ``n_estimators`` included) for ``kind``
    ``"classifier"`` (binary ``y``) or ``"regressor"``."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=float)
    classify = kind == "classifier"
    base = base_params("binary:logistic" if classify else "reg:squarederror", seed, n_threads)
    metric = "logloss" if classify else "rmse"
    split = (
        StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y.astype(int))
        if classify
        else KFold(folds, shuffle=True, random_state=seed).split(X)
    )
    data = []
    for tr, va in split:
        dtr = xgb.QuantileDMatrix(X[tr], label=y[tr], max_bin=MAX_BIN)
        # evaluated every round: a plain DMatrix predicts the same as a QuantileDMatrix, far faster
        data.append((dtr, xgb.DMatrix(X[va], label=y[va], nthread=base["nthread"])))

    def objective(trial: optuna.Trial) -> float:
        params, rounds = suggest(trial)
        curves = []
        for dtr, dva in data:
            hist: dict = {}
            xgb.train(
                base | params | {"eval_metric": metric},
                dtr,
                rounds,
                evals=[(dva, "va")],
                evals_result=hist,
                verbose_eval=False,
            )
            curve = np.asarray(hist["va"][metric])
            curves.append(curve[CHECKPOINT_EVERY - 1 :: CHECKPOINT_EVERY] ** (1 if classify else 2))
        mean = np.mean(curves, axis=0)
        trial.set_user_attr("best_rounds", int((mean.argmin() + 1) * CHECKPOINT_EVERY))
        return float(mean.min())

    study = tpe_study(seed, trials)
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    sampled = {k: v for k, v in best.params.items() if k != "max_rounds"}  # already scikit-learn names
    return sampled | {"n_estimators": int(best.user_attrs["best_rounds"])} | sklearn_base_params(seed, n_threads)


def classifier(params: dict[str, Any]) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(**params)


def regressor(params: dict[str, Any]) -> xgb.XGBRegressor:
    return xgb.XGBRegressor(**params)
