"""Vital signs and the CRS course up to the landmark: fever, hypotension, oxygen, grades and
anti-cytokine treatment already given."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import FEVER_C, STEROIDS, hypoxia_grade

COURSE_FEATURES: dict[str, tuple[str, str]] = {
    "temp_max": ("highest temperature up to the landmark", "C"),
    "temp_last": ("last temperature at or before the landmark", "C"),
    "hours_febrile": (
        "hours with temperature >= 38.0 C (each reading stands until the next, capped at the landmark)",
        "h",
    ),
    "hypotension_any": ("any hypotension up to the landmark", "indicator"),
    "vasopressors_max": ("most non-vasopressin vasopressors at once", "count"),
    "vasopressin_any": ("vasopressin given up to the landmark", "indicator"),
    "o2_support_max": (
        "highest oxygen support as its ASTCT grade (0 none, 2 low flow, 3 high flow/mask, 4 positive pressure)",
        "grade",
    ),
    "vitals_missing": ("1 when no vital signs were recorded up to the landmark", "indicator"),
    "grade_current": ("last ASTCT CRS grade at or before the landmark", "grade"),
    "grade_max": ("highest ASTCT CRS grade up to the landmark", "grade"),
    "hours_since_onset": ("hours from the first grade >= 1 to the landmark (missing when no CRS yet)", "h"),
    "crs_onset_any": ("any CRS (grade >= 1) up to the landmark", "indicator"),
    "tocilizumab_given": ("tocilizumab given before the landmark", "indicator"),
    "tocilizumab_doses": ("tocilizumab doses before the landmark", "count"),
    "steroids_given": ("dexamethasone or methylprednisolone given before the landmark", "indicator"),
}

#: the course features computed from the vitals table (a cohort without vital signs has none)
VITAL_SIGN_FEATURES = (
    "temp_max",
    "temp_last",
    "hours_febrile",
    "hypotension_any",
    "vasopressors_max",
    "vasopressin_any",
    "o2_support_max",
    "vitals_missing",
)


def per_patient(codes: np.ndarray, values: np.ndarray, n: int, how: str) -> np.ndarray:
    """Aggregate ``values`` by patient code into a length-``n`` array (NaN where a patient has none)."""
    s = pd.Series(values).groupby(codes)
    agg = getattr(s, how)()
    out = np.full(n, np.nan)
    out[agg.index.to_numpy(dtype=np.int64)] = agg.to_numpy(dtype=float)
    return out


def course_features(
    vitals: pd.DataFrame,
    v_codes: np.ndarray,
    crs: pd.DataFrame,
    c_codes: np.ndarray,
    treatments: pd.DataFrame,
    t_codes: np.ndarray,
    n_patients: int,
    landmark_h: float,
) -> pd.DataFrame:
    """Course features from rows already restricted to the landmark (codes index patients)."""
    out: dict[str, np.ndarray] = {}
    L = landmark_h
    if len(vitals):
        order = np.lexsort((vitals["time_h"].to_numpy(dtype=float), v_codes))
        v = vitals.iloc[order]
        vc = v_codes[order]
        t = v["time_h"].to_numpy(dtype=float)
        temp = v["temp_c"].to_numpy(dtype=float)
        nxt = np.r_[t[1:], np.nan]
        nxt = np.where(np.r_[vc[1:] == vc[:-1], False], nxt, L)
        dur = np.clip(np.minimum(nxt, L) - t, 0, None)
        out["temp_max"] = per_patient(vc, temp, n_patients, "max")
        out["temp_last"] = per_patient(vc, temp, n_patients, "last")
        out["hours_febrile"] = np.nan_to_num(per_patient(vc, np.where(temp >= FEVER_C, dur, 0.0), n_patients, "sum"))
        out["hypotension_any"] = per_patient(
            vc, v["hypotension"].fillna(False).to_numpy(dtype=float), n_patients, "max"
        )
        out["vasopressors_max"] = per_patient(vc, v["vasopressors"].fillna(0).to_numpy(dtype=float), n_patients, "max")
        out["vasopressin_any"] = per_patient(
            vc, v["vasopressin"].fillna(False).to_numpy(dtype=float), n_patients, "max"
        )
        out["o2_support_max"] = per_patient(vc, hypoxia_grade(v).astype(float), n_patients, "max")
        seen = np.zeros(n_patients)
        seen[np.unique(vc)] = 1
        out["vitals_missing"] = 1.0 - seen
    else:
        for k in VITAL_SIGN_FEATURES[:-1]:
            out[k] = np.full(n_patients, np.nan)
        out["vitals_missing"] = np.ones(n_patients)

    if len(crs):
        order = np.lexsort((crs["time_h"].to_numpy(dtype=float), c_codes))
        g = crs["grade"].to_numpy(dtype=float)[order]
        t = crs["time_h"].to_numpy(dtype=float)[order]
        cc = c_codes[order]
        out["grade_current"] = per_patient(cc, g, n_patients, "last")
        out["grade_max"] = per_patient(cc, g, n_patients, "max")
        onset = per_patient(cc, np.where(g >= 1, t, np.nan), n_patients, "min")
        out["hours_since_onset"] = L - onset
        out["crs_onset_any"] = (~np.isnan(onset)).astype(float)
    else:
        for k in ("grade_current", "grade_max", "hours_since_onset", "crs_onset_any"):
            out[k] = np.full(n_patients, np.nan)

    toci = (treatments["drug"] == "tocilizumab").fillna(False).to_numpy(dtype=bool)
    ster = treatments["drug"].isin(STEROIDS).fillna(False).to_numpy(dtype=bool)
    out["tocilizumab_doses"] = np.bincount(t_codes[toci], minlength=n_patients).astype(float)
    out["tocilizumab_given"] = (out["tocilizumab_doses"] > 0).astype(float)
    out["steroids_given"] = (np.bincount(t_codes[ster], minlength=n_patients) > 0).astype(float)
    return pd.DataFrame({k: out[k] for k in COURSE_FEATURES})
