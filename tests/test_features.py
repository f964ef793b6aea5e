from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crsml.cohort import Cohort, eligibility
from crsml.features import LandmarkFeatures, dictionary_markdown, feature_dictionary

L = 48.0


def small_cohort(seed: int = 0, n: int = 6) -> Cohort:
    """A few patients with 6-hourly labs, cytokines, vitals, grades and treatments."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "age_years": rng.integers(5, 70, n),
            "sex": rng.choice(["female", "male"], n),
            "weight_kg": rng.uniform(20, 90, n),
            "marrow_blast_pct": rng.uniform(0, 90, n),
            "costim": rng.choice(["cd28", "4-1bb"], n),
            "cart_dose_per_kg": rng.uniform(1e5, 5e6, n),
            "prior_lines": rng.integers(1, 6, n),
            "prior_transplant": rng.random(n) < 0.3,
        }
    )
    times = np.arange(-24, 120, 6.0)
    rows = []
    for pid in ids[:-1]:  # the last patient has no measurements at all
        for a in ["il6", "ifng", "crp", "ldh", "creatinine", "platelets", "mcp1", "ferritin"]:
            for t in times:
                if rng.random() < 0.8:
                    rows.append(
                        (
                            pid,
                            t,
                            a,
                            float(np.round(rng.lognormal(3, 1), 2)),
                            "pg/mL"
                            if a in ("il6", "ifng", "mcp1")
                            else {
                                "crp": "mg/L",
                                "ldh": "U/L",
                                "creatinine": "umol/L",
                                "platelets": "10^9/L",
                                "ferritin": "ng/mL",
                            }[a],
                        )
                    )
    m = pd.DataFrame(rows, columns=["patient_id", "time_h", "analyte", "value", "unit"])
    m["qualifier"] = np.where(rng.random(len(m)) < 0.05, "<", None)
    vt = [
        (
            pid,
            t,
            float(rng.uniform(36.5, 40.0)),
            bool(rng.random() < 0.2),
            int(rng.random() < 0.1),
            False,
            str(rng.choice(["none", "nasal_cannula"])),
            2.0,
        )
        for pid in ids[:-1]
        for t in np.arange(0, 120, 6.0)
    ]
    vitals = pd.DataFrame(
        vt,
        columns=[
            "patient_id",
            "time_h",
            "temp_c",
            "hypotension",
            "vasopressors",
            "vasopressin",
            "o2_device",
            "o2_flow_lpm",
        ],
    )
    tx = pd.DataFrame(
        {
            "patient_id": [ids[0], ids[1], ids[2]],
            "time_h": [30.0, 48.0, 60.0],
            "drug": ["tocilizumab", "tocilizumab", "dexamethasone"],
        }
    )
    cohort, _ = Cohort.from_tables({"patients": patients, "measurements": m, "vitals": vitals, "treatments": tx})
    return cohort


BASE = small_cohort()
FITTED = LandmarkFeatures(landmark_h=L).fit(BASE)
EXPECTED, EXPECTED_ELIG = FITTED.build(BASE)

_after = st.floats(L + 0.01, 400.0)
_edits = st.lists(
    st.tuples(
        st.sampled_from(["measurements", "vitals", "treatments", "crs"]),
        st.sampled_from(["change", "add", "delete"]),
        st.integers(0, 10_000),
        _after,
        st.floats(0, 1e5),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_edits)
def test_rows_after_landmark_never_change_features(edits):
    tables = {n: getattr(BASE, n).copy() for n in ("patients", "measurements", "vitals", "treatments", "crs")}
    tables["crs"] = BASE.crs_grades().copy()
    for name, op, k, t, x in edits:
        df = tables[name]
        late = np.flatnonzero(df["time_h"].to_numpy() > L)
        if op == "add" or len(late) == 0:
            row = df.iloc[[k % len(df)]].copy()
            row["time_h"] = t
            if name == "measurements":
                row["value"] = x
            elif name == "vitals":
                row["temp_c"], row["vasopressors"], row["o2_device"] = 41.0, 3, "cpap"
            elif name == "crs":
                row["grade"] = int(x) % 6
            else:
                row["drug"] = "tocilizumab"
            tables[name] = pd.concat([df, row], ignore_index=True)
        else:
            i = late[k % len(late)]
            if op == "delete":
                tables[name] = df.drop(index=df.index[i]).reset_index(drop=True)
            elif name == "measurements":
                df.loc[df.index[i], "value"] = x
            elif name == "vitals":
                df.loc[df.index[i], "temp_c"] = 30 + x % 15
            elif name == "crs":
                df.loc[df.index[i], "grade"] = int(x) % 6
            else:
                df.loc[df.index[i], "time_h"] = t
    edited = Cohort(**tables)
    X, elig = FITTED.build(edited)
    pd.testing.assert_frame_equal(X, EXPECTED)
    pd.testing.assert_frame_equal(elig, EXPECTED_ELIG)


def test_patient_without_measurements_is_kept_with_missing_indicators():
    X = FITTED.transform(BASE)
    row = X.loc[("p5", L)]
    assert row["il6_missing"] == 1 and np.isnan(row["il6_max"]) and row["vitals_missing"] == 1
    assert X.xs("p0", level=0)["il6_missing"].iloc[0] == 0


def test_landmark_sees_rows_up_to_L_only():
    X = FITTED.transform(BASE)
    m = BASE.measurements
    sel = (m["patient_id"] == "p0") & (m["analyte"] == "il6") & (m["time_h"] <= L)
    v = np.where((m.loc[sel, "qualifier"] == "<").fillna(False), m.loc[sel, "value"] / 2, m.loc[sel, "value"])
    assert X.loc[("p0", L), "il6_max"] == pytest.approx(v.max())
    assert X.loc[("p0", L), "il6_n"] == sel.sum()


def test_strict_treatments_for_the_decision_at_L():
    inclusive = LandmarkFeatures(landmark_h=L).fit(BASE).transform(BASE)
    strict = LandmarkFeatures(landmark_h=L, treatments_before_landmark="strict").fit(BASE).transform(BASE)
    assert inclusive.loc[("p1", L), "tocilizumab_given"] == 1  # dose stamped exactly at L
    assert strict.loc[("p1", L), "tocilizumab_given"] == 0
    assert strict.loc[("p0", L), "tocilizumab_given"] == 1


def test_severe_before_landmark_is_ineligible_with_reason():
    tables = {n: getattr(BASE, n) for n in ("patients", "measurements", "vitals", "treatments")}
    tables["crs"] = pd.DataFrame({"patient_id": ["p0", "p1", "p2"], "time_h": [24.0, 60.0, 30.0], "grade": [3, 4, 5]})
    e = eligibility(Cohort(**tables), [L]).set_index("patient_id")
    assert not e.loc["p0", "eligible"] and "severe CRS" in e.loc["p0", "reason"]
    assert e.loc["p1", "eligible"]  # severe only after the landmark
    assert "died" in e.loc["p2", "reason"]
    assert len(e) == len(BASE.patients)


def test_several_landmarks_one_row_per_patient_and_landmark():
    fb = LandmarkFeatures(landmark_h=[24, 48, 72]).fit(BASE)
    X, elig = fb.build(BASE)
    assert len(X) == 3 * len(BASE.patients) == len(elig)
    assert not X.index.duplicated().any()


def test_real_cohort_at_48h_uses_days_0_to_2_only(real_cohort):
    fb = LandmarkFeatures(landmark_h=48).fit(real_cohort)
    X = fb.transform(real_cohort)
    m = real_cohort.measurements
    early = real_cohort.subset(real_cohort.patient_ids)
    early.measurements = m[m["time_h"] <= 48].reset_index(drop=True)
    early.crs = real_cohort.crs[real_cohort.crs["time_h"] <= 48].reset_index(drop=True)
    X_early = fb.transform(early)
    pd.testing.assert_frame_equal(X, X_early)
    assert X["il6_n"].max() <= 3  # days 0, 1, 2
    assert (X["il6_tmax_h"].dropna() <= 48).all()
    assert len(X) == 138  # one patient had grade >= 3 by day 2


def test_feature_dictionary_covers_every_column_and_docs_are_current(real_cohort):
    from pathlib import Path

    fb = LandmarkFeatures(landmark_h=48).fit(real_cohort)
    d = feature_dictionary(fb.get_feature_names_out())
    assert len(d) == len(fb.get_feature_names_out()) and d["meaning"].str.len().min() > 5
    doc = Path(__file__).resolve().parents[1] / "docs" / "features.md"
    assert doc.read_text() == dictionary_markdown(), "regenerate: crsml features-dictionary"


def test_fill_values_are_masked_when_fitted(real_cohort):
    fb = LandmarkFeatures(landmark_h=48).fit(real_cohort)
    assert 5.2 in fb.fill_values_["il6"]
    X = fb.transform(real_cohort)
    raw = LandmarkFeatures(landmark_h=48, mask_fill_values=False).fit(real_cohort).transform(real_cohort)
    assert (X["il6_n"] <= raw["il6_n"]).all() and (X["il6_n"] < raw["il6_n"]).any()


def test_simulated_cohort_features_with_extra_column():
    from crsml.simulation import simulate

    sim = simulate(150, seed=2, truth_draws=1)
    sim.patients["lymphodepletion_days"] = np.arange(150) % 3 + 2
    fb = LandmarkFeatures(landmark_h=[24, 48], extra_patient_columns=("lymphodepletion_days",)).fit(sim)
    X, elig = fb.build(sim)
    assert len(X) == 300 and X["extra_lymphodepletion_days"].notna().all()
    assert X["il6_missing"].mean() < 0.5 and X["temp_max"].notna().all()


def test_a_text_extra_column_becomes_one_indicator_per_value_seen_in_training():
    from crsml.features import describe, features_from_dict, features_to_dict
    from crsml.simulation import simulate

    sim = simulate(60, seed=2, truth_draws=1)
    fb = LandmarkFeatures(landmark_h=48, extra_patient_columns=("site",)).fit(sim)
    ind = fb.build(sim)[0].filter(like="extra_site")
    assert list(ind.columns) == ["extra_site=site_a", "extra_site=site_b", "extra_site=site_c"]
    assert (ind.sum(axis=1) == 1).all()
    assert describe("extra_site=site_b")["meaning"] == "patients column 'site' is 'site_b'"
    # a new centre or a blank leaves its indicators missing (not "none of the known centres")
    sim.patients.loc[[0, 1], "site"] = ["elsewhere", None]
    again = features_from_dict(features_to_dict(fb)).build(sim)[0].filter(like="extra_site")
    assert again.iloc[:2].isna().all().all() and again.iloc[2:].equals(ind.iloc[2:])
    sim.patients["note"] = [f"free text {i}" for i in range(60)]
    with pytest.raises(ValueError, match="at most 30"):
        LandmarkFeatures(extra_patient_columns=("note",)).fit(sim)


def test_a_free_text_extra_column_is_a_one_line_error_on_the_command_line(tmp_path):
    import subprocess
    import sys

    from crsml.simulation import simulate

    sim = simulate(40, seed=2, truth_draws=0)
    sim.patients["note"] = [f"free text {i}" for i in range(40)]
    sim.save(tmp_path / "c")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "crsml",
            "features",
            str(tmp_path / "c"),
            "--landmark-h",
            "48",
            "--extra",
            "note",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert "extra patient column 'note' has 40 different text values" in r.stderr
