"""Top drivers of each prediction (the ``driver_i`` columns of the scores), from the model's SHAP
contributions: XGBoost's own TreeSHAP (``pred_contribs``), on the log-odds scale of the
uncalibrated model for risk models; equal to ``shap.TreeExplainer`` on the same booster (tested)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_drivers(contribs: np.ndarray, values: np.ndarray, labels: np.ndarray, k: int) -> pd.DataFrame:
    """The ``k`` largest absolute SHAP values per row, largest first: ``driver_i`` (readable
    name), ``driver_i_shap`` and ``driver_i_value`` (the patient's feature value)."""
    phi = contribs[:, : len(labels)]
    k = min(k, phi.shape[1])
    rows = np.arange(len(phi))
    mag = np.abs(phi)  # k passes of argmax beat a full argpartition for the small k used here
    cols: dict[str, np.ndarray] = {}
    for i in range(k):
        j = mag.argmax(axis=1)
        mag[rows, j] = -1.0
        cols[f"driver_{i + 1}"] = labels[j]
        cols[f"driver_{i + 1}_shap"] = phi[rows, j].astype(float)
        cols[f"driver_{i + 1}_value"] = np.asarray(values[rows, j], dtype=float)
    return pd.DataFrame(cols)
