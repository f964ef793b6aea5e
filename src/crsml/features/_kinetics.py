"""Cytokine and lab kinetics up to the landmark, vectorised over patients and analytes.

Values are used on a log scale ``ln(1 + value)`` for slopes and areas (cytokines span five
orders of magnitude). A value reported below the assay limit (qualifier ``<``) counts as half
that limit; one above it (``>``) counts as the limit itself. Both rules are applied before any
statistic, so a patient's features never depend on how the lab spells a censored value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import index_in

#: kinetic statistics computed per analyte, in column order: name -> (meaning, unit)
KINETIC_STATS: dict[str, tuple[str, str]] = {
    "baseline": ("last value at or before infusion (time_h <= 0)", "analyte unit"),
    "last": ("last value at or before the landmark", "analyte unit"),
    "max": ("maximum up to the landmark", "analyte unit"),
    "min": ("minimum up to the landmark", "analyte unit"),
    "tmax_h": ("time of the maximum", "h since infusion"),
    "slope24": ("least-squares slope of ln(1+value) over the last 24 h before the landmark", "1/h"),
    "slope": ("least-squares slope of ln(1+value) over all draws up to the landmark", "1/h"),
    "log2fc_max": ("log2 fold change of the maximum over the baseline (Zhang et al. 2022 IL-6 rise)", "log2"),
    "log2fc_last": ("log2 fold change of the last value over the baseline", "log2"),
    "auc_log": ("area under ln(1+value) between first and last draw (trapezoids)", "h"),
    "n": ("number of draws up to the landmark", "count"),
    "since_last_h": ("hours from the last draw to the landmark", "h"),
    "missing": ("1 when the analyte was never drawn up to the landmark", "indicator"),
}


def censored_values(measurements: pd.DataFrame) -> np.ndarray:
    """Values with the assay-limit rule applied: ``<x`` -> x/2, ``>x`` -> x."""
    v = measurements["value"].to_numpy(dtype=float)
    if "qualifier" not in measurements:
        return v
    below = (measurements["qualifier"] == "<").fillna(False).to_numpy(dtype=bool)
    return np.where(below, v / 2.0, v)


def _ls_slope(n, st, sy, stt, sty) -> np.ndarray:
    den = n * stt - st * st
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (n * sty - st * sy) / den
    return np.where((n >= 2) & (np.abs(den) > 1e-9), slope, np.nan)


def kinetic_features(
    rows: pd.DataFrame,
    patient_codes: np.ndarray,
    n_patients: int,
    analytes: list[str],
    landmark_h: float,
) -> pd.DataFrame:
    """Per-patient kinetic features for ``analytes`` from measurement rows with time_h <= L.

    ``patient_codes`` gives each row's patient as an integer in ``[0, n_patients)``; the result
    has one row per patient code (in code order) and ``len(analytes) * len(KINETIC_STATS)``
    columns named ``{analyte}_{stat}``.
    """
    a_codes = index_in(rows["analyte"], analytes)
    keep = a_codes >= 0
    t = rows["time_h"].to_numpy(dtype=float)[keep]
    v = censored_values(rows)[keep]
    p = patient_codes[keep].astype(np.int64)
    a = a_codes[keep].astype(np.int64)
    n_a = len(analytes)
    key = p * n_a + a
    order = np.lexsort((t, key))
    key, t, v = key[order], t[order], v[order]
    y = np.log1p(np.maximum(v, 0.0))
    n_cells = n_patients * n_a

    uniq, start = np.unique(key, return_index=True)
    end = np.r_[start[1:], len(key)] - 1
    count = np.diff(np.r_[start, len(key)])

    def scatter(values: np.ndarray) -> np.ndarray:
        out = np.full(n_cells, np.nan)
        out[uniq] = values
        return out

    feats: dict[str, np.ndarray] = {}
    has = len(key) > 0
    feats["last"] = scatter(v[end]) if has else np.full(n_cells, np.nan)
    vmax = np.maximum.reduceat(v, start) if has else np.array([])
    feats["max"] = scatter(vmax)
    feats["min"] = scatter(np.minimum.reduceat(v, start) if has else np.array([]))
    # time of the (first) maximum: position of the first row equal to its group's maximum
    is_max = v == np.repeat(vmax, count) if has else np.array([], dtype=bool)
    first_max_pos = (
        np.minimum.reduceat(np.where(is_max, np.arange(len(v)), len(v)), start) if has else np.array([], dtype=int)
    )
    feats["tmax_h"] = scatter(t[first_max_pos] if has else np.array([]))

    base_mask = t <= 0
    base = np.full(n_cells, np.nan)
    if base_mask.any():
        kb, vb = key[base_mask], v[base_mask]
        last_b = np.r_[kb[1:] != kb[:-1], True]
        base[kb[last_b]] = vb[last_b]
    feats["baseline"] = base

    def sums(mask: np.ndarray) -> tuple[np.ndarray, ...]:
        w = mask.astype(float)
        cols = [w, w * t, w * y, w * t * t, w * t * y]
        return tuple(scatter(np.add.reduceat(c, start)) if has else np.full(n_cells, np.nan) for c in cols)

    feats["slope24"] = _ls_slope(*sums(t >= landmark_h - 24.0))
    feats["slope"] = _ls_slope(*sums(np.ones_like(t, dtype=bool)))
    with np.errstate(invalid="ignore", divide="ignore"):
        feats["log2fc_max"] = np.log2((feats["max"] + 1.0) / (base + 1.0))
        feats["log2fc_last"] = np.log2((feats["last"] + 1.0) / (base + 1.0))
    if has:
        same = np.r_[False, key[1:] == key[:-1]]
        trap = np.where(same, np.diff(t, prepend=t[0]) * (y + np.r_[y[0], y[:-1]]) / 2.0, 0.0)
        feats["auc_log"] = scatter(np.add.reduceat(trap, start))
        last_t = scatter(t[end])
    else:
        feats["auc_log"] = np.full(n_cells, np.nan)
        last_t = np.full(n_cells, np.nan)
    n = np.zeros(n_cells)
    n[uniq] = count
    feats["n"] = n
    feats["since_last_h"] = landmark_h - last_t
    feats["missing"] = (n == 0).astype(float)

    data = {}
    for ai, name in enumerate(analytes):
        for stat in KINETIC_STATS:
            data[f"{name}_{stat}"] = feats[stat].reshape(n_patients, n_a)[:, ai]
    return pd.DataFrame(data)
