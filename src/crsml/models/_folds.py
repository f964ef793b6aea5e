"""Folds by patient: a landmark supermodel holds one row per patient and landmark, and a
patient's rows must fall in one fold, or a fold would be judged on patients it was fitted on."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold


def patient_groups(X: object) -> np.ndarray | None:
    """Codes of the ``patient_id`` index level of ``X`` when some patient has more than one row
    (stacked landmarks), else ``None`` (one row per patient: plain stratified folds, as before)."""
    index = getattr(X, "index", None)
    if not isinstance(index, pd.MultiIndex) or "patient_id" not in index.names:
        return None
    ids = index.get_level_values("patient_id")
    if not ids.has_duplicates:
        return None
    return pd.factorize(ids)[0]


def stratified_folds(
    k: int, y: np.ndarray, seed: int, groups: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified (train, test) splits of the rows of ``y``; with ``groups`` (patients),
    every group's rows fall in one fold (scikit-learn's ``StratifiedGroupKFold``)."""
    if groups is None:
        yield from StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    else:
        yield from StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups)
