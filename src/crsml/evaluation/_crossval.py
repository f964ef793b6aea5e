"""Nested, repeated, stratified patient-level cross-validation.

The outer folds score the *whole* training procedure: in every outer fold the risk model runs
its own Optuna study and calibration on the outer training patients only, so no reported
figure was tuned on its own test patients. Baselines are refitted in the same folds and
predict the same patients.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone

from crsml.models import patient_groups, stratified_folds


def auto_folds(n: int) -> tuple[int, int]:
    """(outer, inner) folds: 5 and 3 below 2,000 patients; 3 and 2 above, where every fold still
    holds hundreds of patients and the nested study would otherwise take too long on a laptop."""
    return (5, 3) if n < 2000 else (3, 2)


def auto_repeats(n: int) -> int:
    """More repeats for small cohorts (where one split is noisy and fits are cheap)."""
    return 5 if n < 500 else 2 if n < 2000 else 1


def outer_splits(
    y: np.ndarray, folds: int, repeats: int, seed: int, groups: np.ndarray | None = None
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(repeat, train rows, test rows) of every outer fold; with ``groups`` (a landmark
    supermodel's patients) all of a patient's rows fall in one fold."""
    y = np.asarray(y, dtype=int)
    k = int(min(folds, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError("need at least 2 patients with and 2 without the outcome to cross-validate")
    return [(r, tr, te) for r in range(repeats) for tr, te in stratified_folds(k, y, seed + r, groups)]


def _with_threads(model: BaseEstimator, threads: int) -> BaseEstimator:
    return model.set_params(n_threads=threads) if "n_threads" in model.get_params() else model


def _fit_full(model: BaseEstimator, X: pd.DataFrame, y: np.ndarray) -> BaseEstimator:
    return clone(model).fit(X, y)


def _fit_predict(model: BaseEstimator, X: pd.DataFrame, y: np.ndarray, tr: np.ndarray, te: np.ndarray):
    m = clone(model).fit(X.iloc[tr], y[tr])
    info = {
        "best_params": getattr(m, "best_params_", None),
        "n_rounds": getattr(m, "n_rounds_", None),
        "calibration": getattr(getattr(m, "calibrator_", None), "method", None),
    }
    return m.predict_proba(X.iloc[te])[:, 1], info


def _fit_predict_baselines(
    baselines: dict[str, BaseEstimator], X: pd.DataFrame, y: np.ndarray, tr: np.ndarray, te: np.ndarray
) -> dict[str, np.ndarray]:
    return {name: clone(b).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te])[:, 1] for name, b in baselines.items()}


def cross_validated_predictions(
    X: pd.DataFrame,
    y: np.ndarray,
    model: BaseEstimator,
    baselines: dict[str, BaseEstimator],
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    n_jobs: int | None = None,
    model_name: str = "xgboost",
    progress: bool = False,
    final_model: BaseEstimator | None = None,
) -> tuple[dict[str, np.ndarray], pd.DataFrame, BaseEstimator | None]:
    """Out-of-fold predictions (repeats, n) for the model and every baseline, one row per outer
    fold with the settings the model's own tuning chose there, and ``final_model`` fitted on all
    rows.

    Everything runs in one worker pool, longest job first: the final model (all rows), then
    the model in each outer fold, then the baselines of each fold, which fill the cores while
    the last studies finish.
    """
    y = np.asarray(y, dtype=int)
    splits = outer_splits(y, folds, repeats, seed, patient_groups(X))
    cores = os.cpu_count() or 1
    n_jobs = min(n_jobs or cores, len(splits))
    threads = max(1, cores // n_jobs)  # n_jobs worker processes share the cores
    inner = _with_threads(model, threads)
    oof = {name: np.full((repeats, len(y)), np.nan) for name in [model_name, *baselines]}
    tags: list[tuple[str, int]] = []
    jobs = []
    if final_model is not None:
        tags.append(("final", -1))
        jobs.append(delayed(_fit_full)(_with_threads(final_model, threads), X, y))
    for i, (_, tr, te) in enumerate(splits):
        tags.append(("model", i))
        jobs.append(delayed(_fit_predict)(inner, X, y, tr, te))
    if baselines:
        for i, (_, tr, te) in enumerate(splits):
            tags.append(("baselines", i))
            jobs.append(delayed(_fit_predict_baselines)(baselines, X, y, tr, te))
    runner = Parallel(n_jobs=n_jobs, return_as="generator")
    fitted = None
    rows = []
    from crsml._progress import StageProgress

    bar = StageProgress(
        f"nested cross-validation ({len(splits)} outer folds, the final model and the baselines)", len(jobs), progress
    ).__enter__()
    try:
        for (kind, i), res in zip(tags, runner(jobs), strict=True):
            if kind == "final":
                fitted = res
            else:
                r, tr, te = splits[i]
                if kind == "model":
                    p, info = res
                    oof[model_name][r, te] = p
                    rows.append({"repeat": r, "n_train": len(tr), "n_test": len(te), **info})
                else:
                    for name, p in res.items():
                        oof[name][r, te] = p
            bar.advance()
    finally:
        bar.__exit__()
    return oof, pd.DataFrame(rows), fitted
