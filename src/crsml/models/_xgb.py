"""XGBoost settings shared by every booster crsml trains (one source: base parameters, bins)
and the Optuna search space that tunes them.

Wide enough for a few hundred patients (stumps, strong regularisation, slow learning) up to
tens of thousands (deeper trees, more rounds). The number of rounds is not sampled directly:
each trial trains ``max_rounds`` trees and keeps the best checkpoint on the validation folds.
"""

from __future__ import annotations

import os
from typing import Any

import optuna

MAX_BIN = 64

CHECKPOINT_EVERY = 25
MAX_ROUNDS = 500


#: a fixed, conservative configuration (shallow trees, slow learning, subsampled rows and
#: features): what a cohort too small to tune on gets instead of a search (issue #35; on the
#: shared real cohort it ranked as well as 40 tuned trials, docs/dynamic.md)
FIXED_CONFIG: dict[str, Any] = {
    "eta": 0.03,
    "max_depth": 3,
    "min_child_weight": 1.0,
    "subsample": 0.8,
    "colsample_bynode": 0.8,
    "lambda": 1.0,
    "alpha": 0.0,
    "rounds": 300,
}


def suggest(trial: optuna.Trial) -> tuple[dict[str, Any], int]:
    """XGBoost parameters (native names) and the most rounds to train for one trial."""
    params = {
        "eta": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 1, 6),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bynode": trial.suggest_float("colsample_bynode", 0.1, 1.0),
        "lambda": trial.suggest_float("reg_lambda", 1e-2, 100.0, log=True),
        "alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
    }
    max_rounds = trial.suggest_int("max_rounds", 50, MAX_ROUNDS, step=CHECKPOINT_EVERY * 2)
    return params, max_rounds


def tpe_study(
    seed: int,
    n_trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """A quiet, seeded TPE study minimising the validation loss (shared by risk and nuisance models)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        load_if_exists=storage is not None,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(1, n_trials // 3))),
        pruner=pruner,
    )


NATIVE_NAMES = {
    "learning_rate": "eta",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
    "random_state": "seed",
    "n_jobs": "nthread",
}


def native_params(best: dict[str, Any]) -> dict[str, Any]:
    """Optuna's sampled names (scikit-learn style), or a scikit-learn XGBoost estimator's
    settings, to XGBoost's native parameters (the number of rounds is passed apart)."""
    return {NATIVE_NAMES.get(k, k): v for k, v in best.items() if k not in ("max_rounds", "n_estimators")}


def base_params(objective: str, seed: int, n_threads: int | None = None) -> dict[str, Any]:
    """XGBoost's native base settings for every crsml booster (the tuned ones are added)."""
    return {
        "objective": objective,
        "tree_method": "hist",
        "max_bin": MAX_BIN,
        "nthread": n_threads or os.cpu_count() or 1,
        "seed": seed,
        "verbosity": 0,
    }


def sklearn_base_params(seed: int, n_threads: int | None = None) -> dict[str, Any]:
    """The same base settings in the names of XGBoost's scikit-learn estimators."""
    return {
        "tree_method": "hist",
        "max_bin": MAX_BIN,
        "random_state": seed,
        "n_jobs": n_threads or os.cpu_count() or 1,
        "verbosity": 0,
    }
