"""The decision a clinician faces at the landmark, emulated from records (a target trial:
Hernan and Robins, Am J Epidemiol 2016; DESIGN.md, task ``tocilizumab_benefit``).

Eligible: alive, no grade >= 3 CRS and no tocilizumab before ``L``. Treated ("now"): a first
dose in ``[L, L + grace)``; untreated ("not now"): no dose in that window, usual care after it.
Outcomes counted in ``(L, L + horizon]``: days at grade >= 3 (primary) and any grade >= 3.

``window="wide"`` instead calls a patient treated when any dose falls in ``[L, L + 24 h]``:
doses given later because the patient worsened after the landmark then count as "treatment",
which the landmark features cannot see. It exists only to show that bias; never train on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.features.codes import has_rows
from crsml.labels import outcome_window

DEFAULT_GRACE_H = 6.0
WIDE_WINDOW_H = 24.0
DRUG = "tocilizumab"


def given_before(treatments: pd.DataFrame, landmark_h: float, ids: pd.Index | list[str]) -> np.ndarray:
    """For each of ``ids``: given tocilizumab before ``L`` (a dose at ``L`` is the decision, not history)."""
    t = treatments
    return has_rows(t.loc[(t["drug"] == DRUG) & (t["time_h"] < float(landmark_h)), "patient_id"], ids)


def given_before_reason(landmark_h: float) -> str:
    return f"tocilizumab already given before the landmark ({float(landmark_h):g} h)"


def emulate_trial(
    cohort: Cohort,
    landmark_h: float,
    grace_h: float = DEFAULT_GRACE_H,
    horizon_h: float = 14 * 24.0,
    window: str = "emulated",
) -> pd.DataFrame:
    """One row per patient (index ``patient_id``): ``eligible``, ``reason``, ``treated`` (0/1),
    ``severe_days`` and ``severe`` (NaN where not eligible or not followed after ``L``)."""
    if window not in ("emulated", "wide"):
        raise ValueError(f"window must be 'emulated' or 'wide', not {window!r}")
    if grace_h <= 0:
        raise ValueError("grace_h must be positive")
    L = float(landmark_h)
    elig, after, reason = outcome_window(cohort, L, horizon_h)
    ids = elig.index
    toci = cohort.treatments[cohort.treatments["drug"] == DRUG]
    t = toci["time_h"].to_numpy(dtype=float)
    end = L + grace_h if window == "emulated" else L + WIDE_WINDOW_H
    in_window = (t >= L) & ((t < end) if window == "emulated" else (t <= end))
    now = has_rows(toci.loc[in_window, "patient_id"], ids)
    was_treated = given_before(cohort.treatments, L, ids) & elig["eligible"].to_numpy(dtype=bool)
    reason = np.where(was_treated, given_before_reason(L), reason)
    ok = reason == ""
    return pd.DataFrame({
        "eligible": ok,
        "reason": reason.astype(str),
        "treated": now.astype(int),
        "severe_days": np.where(ok, after["days_ge3"].fillna(0).to_numpy(dtype=float), np.nan),
        "severe": np.where(ok, (after["max_grade"].to_numpy(dtype=float) >= 3).astype(float), np.nan),
    }, index=ids)
