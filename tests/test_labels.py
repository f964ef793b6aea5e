from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crsml import tasks
from crsml.cohort import Cohort
from crsml.errors import CrsmlError

L = 48.0


def cohort_with_grades(grades: dict[str, list[tuple[float, int]]]) -> Cohort:
    ids = list(grades)
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "age_years": 30,
            "sex": "female",
            "weight_kg": 60.0,
            "marrow_blast_pct": 10.0,
            "costim": "cd28",
            "cart_dose_per_kg": 1e6,
            "prior_lines": 2,
            "prior_transplant": False,
        }
    )
    crs = pd.DataFrame(
        [(p, t, g) for p, rows in grades.items() for t, g in rows], columns=["patient_id", "time_h", "grade"]
    )
    m = pd.DataFrame({"patient_id": ids, "time_h": 0.0, "analyte": "crp", "value": 5.0, "unit": "mg/L"})
    cohort, report = Cohort.from_tables({"patients": patients, "measurements": m, "crs": crs})
    assert not report.errors
    return cohort


DAILY = {
    "severe_after": [(0, 0), (24, 1), (48, 2), (72, 3), (96, 1)],
    "severe_before": [(0, 1), (24, 3), (48, 2), (72, 1)],
    "mild": [(0, 0), (24, 1), (48, 1), (72, 1), (96, 0)],
    "severe_at_L": [(0, 1), (24, 2), (48, 3), (72, 1)],
    "late_severe": [(0, 0), (48, 1)] + [(t, 1) for t in range(72, 24 * 20, 24)] + [(24 * 20, 3)],
    "long_mild": [(t, 1) for t in range(0, 24 * 10, 24)],
    "no_follow_up": [(0, 1), (24, 1), (48, 1)],
}


def test_severe_label_sees_only_the_window_after_the_landmark():
    lab = tasks.get("severe_crs").labels(cohort_with_grades(DAILY), L).droplevel("landmark_h")
    assert lab.loc["severe_after", "label"] == 1
    assert lab.loc["mild", "label"] == 0
    # grade 3 at day 20 is beyond the 14-day horizon after L
    assert lab.loc["late_severe", "label"] == 0
    assert (
        tasks.get("severe_crs", horizon_h=24 * 20).labels(cohort_with_grades(DAILY), L).loc[("late_severe", L), "label"]
        == 1
    )
    # severe at or before L is not eligible; a grade stamped exactly at L belongs to the features
    assert np.isnan(lab.loc["severe_before", "label"]) and "severe CRS" in lab.loc["severe_before", "reason"]
    assert np.isnan(lab.loc["severe_at_L", "label"])
    assert (
        np.isnan(lab.loc["no_follow_up", "label"])
        and "no CRS grade recorded after" in lab.loc["no_follow_up", "reason"]
    )


def test_prolonged_label_counts_total_crs_days():
    lab = tasks.get("prolonged_crs").labels(cohort_with_grades(DAILY), L).droplevel("landmark_h")
    assert lab.loc["long_mild", "label"] == 1  # 10 days of grade 1
    assert lab.loc["mild", "label"] == 0  # 3 days
    assert tasks.get("prolonged_crs", min_days=2).labels(cohort_with_grades(DAILY), L).loc[("mild", L), "label"] == 1


def test_unknown_task_is_refused():
    with pytest.raises(CrsmlError, match="unknown task 'tocilizumab'"):
        tasks.get("tocilizumab")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(L + 14 * 24 + 0.5, 2000), st.integers(0, 4)), min_size=1, max_size=6),
    st.lists(st.tuples(st.floats(-24, L), st.integers(0, 2)), min_size=0, max_size=4),
)
def test_severe_label_ignores_rows_beyond_the_horizon_and_mild_history(beyond, history):
    """Adding grades after L + horizon, or grade < 3 history before L, never changes the severe label."""
    base = tasks.get("severe_crs").labels(cohort_with_grades(DAILY), L)
    edited = {k: list(v) for k, v in DAILY.items()}
    edited["mild"] += beyond
    edited["severe_after"] += history
    got = tasks.get("severe_crs").labels(cohort_with_grades(edited), L)
    pd.testing.assert_frame_equal(got.loc[["mild", "severe_after"]], base.loc[["mild", "severe_after"]])
