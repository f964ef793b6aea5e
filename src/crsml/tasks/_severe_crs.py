"""``severe_crs``: any ASTCT grade >= 3 in ``(L, L + horizon]`` (DESIGN.md; Lee et al., BBMT 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.tasks._base import register
from crsml.tasks._risk import RiskTask


@register
class SevereCRS(RiskTask):
    """Risk of severe CRS (ASTCT grade >= 3) within ``horizon_h`` hours after the landmark.

    Parameters
    ----------
    horizon_h : outcome window after the landmark, hours (default 14 days).
    """

    name = "severe_crs"
    description = "risk of severe cytokine release syndrome (ASTCT grade >= 3) within the horizon after the landmark"

    def outcome(self, crs: pd.DataFrame, after: pd.DataFrame, ids: pd.Index, landmark_h: float) -> np.ndarray:
        return (after["max_grade"].to_numpy(dtype=float) >= 3).astype(float)
