"""SHAP drivers from the booster: XGBoost's own TreeSHAP (``pred_contribs``), on the log-odds
scale of the uncalibrated model; equal to ``shap.TreeExplainer`` on the same booster (tested)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.features import feature_dictionary


def readable_names(names: list[str]) -> np.ndarray:
    """Feature name -> its meaning from the feature dictionary (e.g. 'il6: maximum up to the landmark')."""
    d = feature_dictionary(names)
    return d["meaning"].where(d["meaning"].astype(bool), d["name"]).to_numpy(dtype=object)


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
