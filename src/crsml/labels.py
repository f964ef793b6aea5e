"""Task labels at a landmark, from the ``crs`` table, exactly as DESIGN.md defines them.

``severe_crs``: any grade >= 3 in ``(L, L + horizon]``.
``prolonged_crs``: CRS (grade >= 1) lasting more than ``min_days`` in total, counted up to
``L + horizon``. The part of that total before ``L`` is already known at the landmark (the
features carry it as ``hours_since_onset``); what decides the label happens after ``L``.

A patient is labelled only when eligible at ``L`` (alive, no grade >= 3 by ``L``) and with at
least one graded observation after ``L``; otherwise the label is missing and ``reason`` says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.features.builder import INDEX, eligibility
from crsml.grading import crs_episodes

RISK_TASKS = ("severe_crs", "prolonged_crs")
TASKS = (*RISK_TASKS, "tocilizumab_benefit")
DEFAULT_HORIZON_H = 14 * 24.0
DEFAULT_MIN_DAYS = 7.0


def check_window(landmark_h: float, horizon_h: float) -> None:
    """Refuse a landmark at or before infusion, or an empty outcome window, in one line."""
    if not (np.isfinite(landmark_h) and landmark_h > 0):
        raise CrsmlError(f"--landmark-h must be a number of hours after infusion above 0, not {landmark_h:g}")
    if not (np.isfinite(horizon_h) and horizon_h > 0):
        raise CrsmlError(f"--horizon-h must be a number of hours above 0, not {horizon_h:g}")


def outcome_window(
    cohort: Cohort, landmark_h: float, horizon_h: float, crs: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Eligibility at ``L`` (indexed by patient), each patient's CRS summary over
    ``(L, L + horizon]`` aligned to it, and why a patient has no outcome ('' when it has one:
    eligible and with a graded observation after ``L``)."""
    L = float(landmark_h)
    crs = cohort.crs_grades() if crs is None else crs
    elig = eligibility(cohort, L, crs=crs).set_index("patient_id")
    after = crs_episodes(crs, start_h=L, end_h=L + horizon_h).set_index("patient_id").reindex(elig.index)
    followed = after["n_obs"].fillna(0).to_numpy() > 0
    reason = np.where(~elig["eligible"].to_numpy(dtype=bool), elig["reason"].to_numpy(dtype=object),
                      np.where(followed, "", f"no CRS grade recorded after the landmark ({L:g} h)"))
    return elig, after, reason


def make_labels(
    cohort: Cohort,
    task: str,
    landmark_h: float,
    horizon_h: float = DEFAULT_HORIZON_H,
    min_days: float = DEFAULT_MIN_DAYS,
) -> pd.DataFrame:
    """One row per patient: ``label`` (1.0/0.0, NaN when not labelled) and ``reason``.

    Indexed by ``(patient_id, landmark_h)`` like the feature frame.
    """
    if task not in RISK_TASKS:
        raise ValueError(f"unknown risk task {task!r}; expected one of {', '.join(RISK_TASKS)}")
    if horizon_h <= 0:
        raise ValueError("horizon_h must be positive")
    L = float(landmark_h)
    crs = cohort.crs_grades()
    elig, after, reason = outcome_window(cohort, L, horizon_h, crs)
    ids = elig.index
    if task == "severe_crs":
        y = (after["max_grade"].to_numpy(dtype=float) >= 3).astype(float)
    else:
        total = crs_episodes(crs, end_h=L + horizon_h).set_index("patient_id").reindex(ids)
        y = (total["hours_ge1"].fillna(0).to_numpy(dtype=float) > min_days * 24.0).astype(float)
    y = np.where(reason == "", y, np.nan)
    out = pd.DataFrame({"label": y, "reason": reason.astype(str)},
                       index=pd.MultiIndex.from_arrays([ids, np.full(len(ids), L)], names=INDEX))
    return out
