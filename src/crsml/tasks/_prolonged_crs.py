"""``prolonged_crs``: CRS (grade >= 1) lasting more than ``min_days`` in total, counted up to
``L + horizon``. The part before ``L`` is already known at the landmark (the features carry it as
``hours_since_onset``); what decides the label happens after ``L``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import crs_episodes
from crsml.tasks._base import DEFAULT_HORIZON_H, register
from crsml.tasks._risk import RiskTask

DEFAULT_MIN_DAYS = 7.0


@register
class ProlongedCRS(RiskTask):
    """Risk of prolonged CRS: grade >= 1 for more than ``min_days`` days in total.

    Parameters
    ----------
    horizon_h : hours after the landmark up to which CRS days are counted (default 14 days).
    min_days : total CRS days above which CRS is prolonged (default 7).
    """

    name = "prolonged_crs"
    description = (
        "risk of prolonged cytokine release syndrome (grade >= 1 for more than the set number of days in total)"
    )

    def __init__(self, horizon_h: float = DEFAULT_HORIZON_H, min_days: float = DEFAULT_MIN_DAYS) -> None:
        super().__init__(horizon_h)
        self.min_days = min_days

    def outcome(self, crs: pd.DataFrame, after: pd.DataFrame, ids: pd.Index, landmark_h: float) -> np.ndarray:
        total = crs_episodes(crs, end_h=landmark_h + self.horizon_h).set_index("patient_id").reindex(ids)
        return (total["hours_ge1"].fillna(0).to_numpy(dtype=float) > self.min_days * 24.0).astype(float)
