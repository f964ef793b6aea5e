from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crsml.cohort import O2_DEVICES, crs_episodes, grade_astct, grade_vitals_table


def _row(**kw):
    base = dict(
        temp_c=38.5,
        hypotension=False,
        vasopressors=0,
        vasopressin=False,
        o2_device="none",
        o2_flow_lpm=np.nan,
        anticytokine_given=False,
        died=False,
    )
    base.update(kw)
    return base


# (observation, expected grade) derived from Lee et al. 2019 as summarised in DESIGN.md
CASES = [
    (_row(temp_c=37.9), 0),
    (_row(temp_c=38.0), 1),  # fever boundary is inclusive
    (_row(temp_c=37.99), 0),
    (_row(), 1),
    (_row(hypotension=True), 2),
    (_row(o2_device="blow_by"), 2),
    (_row(o2_device="nasal_cannula", o2_flow_lpm=6.0), 2),
    (_row(o2_device="nasal_cannula", o2_flow_lpm=6.5), 3),
    (_row(o2_device="nasal_cannula"), 2),  # flow unknown: low flow
    (_row(o2_device="high_flow_nasal_cannula", o2_flow_lpm=40), 3),
    (_row(o2_device="facemask"), 3),
    (_row(o2_device="non_rebreather"), 3),
    (_row(o2_device="venturi"), 3),
    (_row(o2_device="cpap"), 4),
    (_row(o2_device="bipap"), 4),
    (_row(o2_device="mechanical_ventilation"), 4),
    (_row(hypotension=True, vasopressors=1), 3),
    (_row(hypotension=True, vasopressin=True), 3),  # vasopressin alone counts as one
    (_row(hypotension=True, vasopressors=1, vasopressin=True), 3),  # 1 + vasopressin still 3
    (_row(hypotension=True, vasopressors=2), 4),
    (_row(hypotension=True, vasopressors=3, vasopressin=True), 4),
    (_row(hypotension=True, vasopressors=1, o2_device="cpap"), 4),  # worse of the two
    (_row(hypotension=True, o2_device="facemask"), 3),
    # without fever: nothing, unless an anti-cytokine was given before
    (_row(temp_c=37.0, hypotension=True, vasopressors=2), 0),
    (_row(temp_c=37.0, o2_device="cpap"), 0),
    (_row(temp_c=37.0, hypotension=True, anticytokine_given=True), 2),
    (_row(temp_c=37.0, vasopressors=1, anticytokine_given=True), 3),
    (_row(temp_c=37.0, o2_device="bipap", anticytokine_given=True), 4),
    (_row(temp_c=37.0, anticytokine_given=True), 0),
    (_row(temp_c=38.2, anticytokine_given=True), 1),  # fever still makes grade 1
    (_row(temp_c=np.nan), 0),
    (_row(died=True), 5),
    (_row(hypotension=True, vasopressors=2, died=True), 5),
]


@pytest.mark.parametrize(("obs", "expected"), CASES)
def test_grade_cases(obs, expected):
    assert grade_astct(pd.DataFrame([obs])).iloc[0] == expected


def test_every_device_and_vasopressor_combination():
    device_grade = {
        "none": 0,
        "blow_by": 2,
        "nasal_cannula": 2,
        "high_flow_nasal_cannula": 3,
        "facemask": 3,
        "non_rebreather": 3,
        "venturi": 3,
        "cpap": 4,
        "bipap": 4,
        "mechanical_ventilation": 4,
    }
    rows, expected = [], []
    for dev in O2_DEVICES:
        for n in range(4):
            for vp in (False, True):
                for hypo in (False, True):
                    rows.append(_row(o2_device=dev, vasopressors=n, vasopressin=vp, hypotension=hypo))
                    pressor = 4 if n >= 2 else 3 if (n == 1 or vp) else 2 if hypo else 0
                    expected.append(max(1, device_grade[dev], pressor))
    got = grade_astct(pd.DataFrame(rows)).to_numpy()
    assert got.tolist() == expected


vital_rows = st.fixed_dictionaries(
    dict(
        temp_c=st.floats(35, 42),
        hypotension=st.booleans(),
        vasopressors=st.integers(0, 4),
        vasopressin=st.booleans(),
        o2_device=st.sampled_from(O2_DEVICES),
        o2_flow_lpm=st.floats(0, 60),
        anticytokine_given=st.booleans(),
    )
)
# every device, from least to most support (flow may also only rise)
_SUPPORT = {
    d: i
    for i, d in enumerate(
        [
            "none",
            "blow_by",
            "nasal_cannula",
            "high_flow_nasal_cannula",
            "facemask",
            "non_rebreather",
            "venturi",
            "cpap",
            "bipap",
            "mechanical_ventilation",
        ]
    )
}
assert set(_SUPPORT) == set(O2_DEVICES)


@settings(max_examples=400, deadline=None)
@given(vital_rows, st.integers(0, 3), st.sampled_from(list(_SUPPORT)), st.booleans(), st.booleans(), st.floats(0, 30))
def test_more_support_never_lowers_grade(obs, extra_pressors, device, add_vp, add_hypo, more_flow):
    worse = dict(obs)
    worse["vasopressors"] = obs["vasopressors"] + extra_pressors
    worse["vasopressin"] = obs["vasopressin"] or add_vp
    worse["hypotension"] = obs["hypotension"] or add_hypo
    worse["o2_flow_lpm"] = obs["o2_flow_lpm"] + more_flow
    worse["o2_device"] = max(obs["o2_device"], device, key=_SUPPORT.__getitem__)
    g0, g1 = grade_astct(pd.DataFrame([obs, worse])).tolist()
    assert g1 >= g0


@settings(max_examples=200, deadline=None)
@given(vital_rows)
def test_no_fever_no_anticytokine_is_grade_0(obs):
    obs = dict(obs, temp_c=min(obs["temp_c"], 37.99), anticytokine_given=False)
    assert grade_astct(pd.DataFrame([obs])).iloc[0] == 0


def test_anticytokine_flag_from_treatments():
    vitals = pd.DataFrame(
        [
            dict(patient_id="a", time_h=10.0, temp_c=37.0, hypotension=True),
            dict(patient_id="a", time_h=20.0, temp_c=37.0, hypotension=True),
            dict(patient_id="b", time_h=20.0, temp_c=37.0, hypotension=True),
        ]
    )
    tx = pd.DataFrame([dict(patient_id="a", time_h=10.0, drug="tocilizumab")])
    crs = grade_vitals_table(vitals, tx)
    assert crs["grade"].tolist() == [0, 2, 0]  # a dose at 10 h is not "before" 10 h


def test_crs_episodes():
    crs = pd.DataFrame(
        {
            "patient_id": ["a"] * 6 + ["b"] * 2,
            "time_h": [0, 24, 48, 72, 96, 120, 0, 24],
            "grade": [0, 1, 3, 2, 0, 0, 0, 0],
        }
    )
    ep = crs_episodes(crs).set_index("patient_id")
    a = ep.loc["a"]
    assert a["onset_h"] == 24 and a["max_grade"] == 3 and a["time_max_h"] == 48
    assert a["hours_ge1"] == 72 and a["hours_ge2"] == 48 and a["hours_ge3"] == 24
    assert a["resolution_h"] == 96 and a["days_ge1"] == 3
    b = ep.loc["b"]
    assert np.isnan(b["onset_h"]) and b["max_grade"] == 0 and b["hours_ge1"] == 0
    after = crs_episodes(crs, start_h=48).set_index("patient_id")
    assert after.loc["a", "max_grade"] == 2 and after.loc["a", "hours_ge1"] == 24
