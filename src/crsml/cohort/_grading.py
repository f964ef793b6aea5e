"""ASTCT consensus grading of CRS (Lee et al., Biol Blood Marrow Transplant 2019;25:625-638),
vectorised over observations, and per-patient CRS episode summaries.

The rules, as fixed in DESIGN.md and ``shared/reference/literature.md``:
fever is temperature >= 38.0 C; without fever there is no CRS unless tocilizumab or a steroid
was already given, after which grading rests on hypotension and hypoxia (a fever still makes
grade 1). Grade 2: hypotension without vasopressors, or low-flow nasal cannula (<= 6 L/min) or
blow-by. Grade 3: one vasopressor with or without vasopressin (vasopressin alone counts as
one), or high-flow cannula, facemask, non-rebreather or Venturi. Grade 4: two or more
non-vasopressin vasopressors, or CPAP, BiPAP or mechanical ventilation. Grade 5: death from CRS.
The worse of hypotension and hypoxia decides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort._schema import ANTICYTOKINE_DRUGS

FEVER_C = 38.0
LOW_FLOW_MAX_LPM = 6.0
#: hypotension when charted as numbers: systolic below 90 mmHg or mean arterial pressure below
#: 65 mmHg in adults (Lee et al., BBMT 2019, the ASTCT consensus; importers derive the vitals
#: table's ``hypotension`` flag from them)
HYPOTENSION_SBP_MMHG = 90.0
HYPOTENSION_MAP_MMHG = 65.0

DEVICE_GRADE = {
    "none": 0,
    "blow_by": 2,
    "nasal_cannula": 2,  # raised to 3 above 6 L/min below
    "high_flow_nasal_cannula": 3,
    "facemask": 3,
    "non_rebreather": 3,
    "venturi": 3,
    "cpap": 4,
    "bipap": 4,
    "mechanical_ventilation": 4,
}


def _col(vitals: pd.DataFrame, name: str, default: object) -> pd.Series:
    if name in vitals:
        return vitals[name]
    return pd.Series(default, index=vitals.index)


def pressor_grade(n_vasopressors: np.ndarray, vasopressin: np.ndarray, hypotension: np.ndarray) -> np.ndarray:
    """Grade from hypotension: 4 with >= 2 non-vasopressin vasopressors, 3 with one or with
    vasopressin alone, 2 with hypotension without vasopressors, else 0."""
    n = n_vasopressors
    return np.select([n >= 2, (n >= 1) | vasopressin, hypotension], [4, 3, 2], default=0)


def combine_grade(
    temp_c: np.ndarray, prior_anticytokine: np.ndarray, organ_grade: np.ndarray, died: np.ndarray
) -> np.ndarray:
    """The ASTCT rule on arrays: fever makes at least grade 1; without fever only a prior
    anti-cytokine lets hypotension/hypoxia count; death from CRS is grade 5."""
    fever = temp_c >= FEVER_C
    grade = np.where(fever, np.maximum(organ_grade, 1), np.where(prior_anticytokine, organ_grade, 0))
    return np.where(died, 5, grade).astype(np.int64)


def hypotension_grade(vitals: pd.DataFrame) -> np.ndarray:
    """Grade implied by hypotension and vasopressors alone (0, 2, 3 or 4)."""
    return pressor_grade(
        _col(vitals, "vasopressors", 0).fillna(0).to_numpy(dtype=float),
        _col(vitals, "vasopressin", False).fillna(False).to_numpy(dtype=bool),
        _col(vitals, "hypotension", False).fillna(False).to_numpy(dtype=bool),
    )


def hypoxia_grade(vitals: pd.DataFrame) -> np.ndarray:
    """Grade implied by oxygen support alone (0, 2, 3 or 4)."""
    device = _col(vitals, "o2_device", "none").astype("string").fillna("none").str.lower()
    grade = device.map(DEVICE_GRADE).fillna(0).to_numpy(dtype=int)
    flow = _col(vitals, "o2_flow_lpm", np.nan).to_numpy(dtype=float)
    high_flow_cannula = (device == "nasal_cannula").to_numpy(dtype=bool) & (flow > LOW_FLOW_MAX_LPM)
    return np.where(high_flow_cannula, 3, grade)


def grade_astct(vitals: pd.DataFrame) -> pd.Series:
    """ASTCT CRS grade (0-5) of every observation in ``vitals``.

    Columns: ``temp_c``, ``hypotension``, ``vasopressors``, ``vasopressin``, ``o2_device``,
    ``o2_flow_lpm``, ``anticytokine_given`` (tocilizumab or a steroid given before this
    observation) and optional ``died`` (death from CRS). Missing columns count as absent support.
    """
    grade = combine_grade(
        _col(vitals, "temp_c", np.nan).to_numpy(dtype=float),
        _col(vitals, "anticytokine_given", False).fillna(False).to_numpy(dtype=bool),
        np.maximum(hypotension_grade(vitals), hypoxia_grade(vitals)),
        _col(vitals, "died", False).fillna(False).to_numpy(dtype=bool),
    )
    return pd.Series(grade, index=vitals.index, name="grade")


def anticytokine_before(vitals: pd.DataFrame, treatments: pd.DataFrame) -> pd.Series:
    """Whether tocilizumab, a steroid or another anti-cytokine drug was given strictly before
    each vital-sign observation of the same patient (vectorised as-of join)."""
    out = pd.Series(False, index=vitals.index, name="anticytokine_given")
    if treatments is None or treatments.empty or vitals.empty:
        return out
    tx = treatments[treatments["drug"].isin(ANTICYTOKINE_DRUGS)]
    if tx.empty:
        return out
    first = tx.groupby("patient_id", observed=True)["time_h"].min()
    t_first = vitals["patient_id"].map(first).to_numpy(dtype=float)
    out[:] = vitals["time_h"].to_numpy(dtype=float) > t_first
    return out


def grade_vitals_table(vitals: pd.DataFrame, treatments: pd.DataFrame | None = None) -> pd.DataFrame:
    """A ``crs`` table (patient_id, time_h, grade) graded from ``vitals`` and ``treatments``."""
    v = vitals.copy()
    if "anticytokine_given" not in v:
        v["anticytokine_given"] = anticytokine_before(v, treatments)
    return pd.DataFrame({"patient_id": v["patient_id"], "time_h": v["time_h"], "grade": grade_astct(v)}).reset_index(
        drop=True
    )


def _interval_hours(crs: pd.DataFrame) -> np.ndarray:
    """How long each graded observation stands: until the patient's next one; the last one
    stands for the patient's median spacing (24 h for daily tables and single observations)."""
    t = crs["time_h"].to_numpy(dtype=float)
    pid = crs["patient_id"]
    nxt = crs.groupby("patient_id", sort=False, observed=True)["time_h"].shift(-1).to_numpy(dtype=float)
    step = nxt - t
    median_step = pd.Series(step, index=crs.index).groupby(pid.to_numpy(), sort=False).transform("median")
    last = np.isnan(step)
    fill = median_step.to_numpy(dtype=float)
    fill = np.where(np.isnan(fill), 24.0, fill)
    return np.where(last, fill, step)


def crs_episodes(crs: pd.DataFrame, start_h: float | None = None, end_h: float | None = None) -> pd.DataFrame:
    """Per-patient CRS summary over observations with ``start_h < time_h <= end_h``.

    Columns: ``onset_h`` (first grade >= 1), ``max_grade``, ``time_max_h`` (first time at the
    maximum), ``hours_ge1``/``hours_ge2``/``hours_ge3`` (time spent at or above the grade, each
    observation standing until the next), ``days_ge1``..``days_ge3``, ``resolution_h`` (first
    grade 0 after the last grade >= 1; NaN while unresolved), ``n_obs`` and ``last_obs_h``.
    Patients with no observation in the window are absent.
    """
    c = crs[["patient_id", "time_h", "grade"]].dropna(subset=["time_h", "grade"])
    if start_h is not None:
        c = c[c["time_h"] > start_h]
    if end_h is not None:
        c = c[c["time_h"] <= end_h]
    c = c.sort_values(["patient_id", "time_h"], kind="stable").reset_index(drop=True)
    g = c["grade"].to_numpy(dtype=float)
    t = c["time_h"].to_numpy(dtype=float)
    dt = _interval_hours(c)
    work = pd.DataFrame(
        {
            "patient_id": c["patient_id"].to_numpy(),
            "t_onset": np.where(g >= 1, t, np.nan),
            "t_last_crs": np.where(g >= 1, t, np.nan),
            "h1": np.where(g >= 1, dt, 0.0),
            "h2": np.where(g >= 2, dt, 0.0),
            "h3": np.where(g >= 3, dt, 0.0),
            "grade": g,
            "time_h": t,
        }
    )
    grp = work.groupby("patient_id", sort=True, observed=True)
    out = grp.agg(
        onset_h=("t_onset", "min"),
        max_grade=("grade", "max"),
        hours_ge1=("h1", "sum"),
        hours_ge2=("h2", "sum"),
        hours_ge3=("h3", "sum"),
        n_obs=("grade", "size"),
        last_obs_h=("time_h", "max"),
        last_crs_h=("t_last_crs", "max"),
    )
    at_max = work["grade"].to_numpy() == work["patient_id"].map(out["max_grade"]).to_numpy()
    out["time_max_h"] = work[at_max].groupby("patient_id", observed=True)["time_h"].min()
    after = work["patient_id"].map(out["last_crs_h"]).to_numpy(dtype=float)
    resolved = (g == 0) & (t > after)
    out["resolution_h"] = work[resolved].groupby("patient_id", observed=True)["time_h"].min()
    for k in (1, 2, 3):
        out[f"days_ge{k}"] = out[f"hours_ge{k}"] / 24.0
    out["max_grade"] = out["max_grade"].astype(int)
    return out.drop(columns="last_crs_h").reset_index()
