from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crsml.cohort import Cohort, crs_episodes
from crsml.simulation import Profile, draw_traits, simulate
from crsml.simulation import _dynamics as dyn


@pytest.fixture(scope="module")
def sim() -> Cohort:
    return simulate(2500, seed=11, truth_draws=16)


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    a = simulate(60, seed=3, truth_draws=2)
    b = simulate(60, seed=3, truth_draws=2)
    c = simulate(60, seed=4, truth_draws=2)
    for name in ("patients", "measurements", "vitals", "treatments", "crs", "truth"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for f in ("measurements.parquet", "truth.parquet", "vitals.parquet"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert not a.measurements["value"].equals(c.measurements["value"])


def test_output_validates_and_crs_matches_astct_grading(sim, tmp_path):
    sim.save(tmp_path / "s")
    loaded, report = Cohort.load_with_report(tmp_path / "s")
    assert report.ok and len(loaded.patients) == 2500
    from crsml.cohort import grade_vitals_table

    regraded = grade_vitals_table(sim.vitals, sim.treatments)
    assert (regraded["grade"].to_numpy() == sim.crs["grade"].to_numpy()).all()
    assert (sim.measurements["qualifier"] == "<").any()  # assay limits reported as qualifiers


def _at(step_h: float, n: int = 400, seed: int = 5):
    p = Profile()
    tr, _ = draw_traits(n, np.random.default_rng(seed), p)
    tr.blast_pct[:] = 40.0  # enough antigen for CRS in everyone
    st = dyn.initial_state(tr)
    steps = int(step_h / p.dt_h)
    for k in range(steps):
        dyn.advance(st, tr, p, seed, k, 0)
    return p, tr, st, steps


def test_tocilizumab_lowers_crp_and_fever_raises_il6_spares_expansion():
    p, tr, st, k0 = _at(72.0)
    treated, control = st.copy(), st.copy()
    treated.toci_doses[:] = 1
    treated.last_toci_h[:] = 72.0
    for k in range(k0, k0 + 8):  # 24 h later, same random numbers in both arms
        dyn.advance(treated, tr, p, 5, k, 0)
        dyn.advance(control, tr, p, 5, k, 0)
    ct, cc = dyn.cytokines(treated, tr, p), dyn.cytokines(control, tr, p)
    assert np.median(ct["crp"] / cc["crp"]) < 0.7
    assert np.median(ct["il6"] / cc["il6"]) > 1.5
    ft = dyn.observe(treated.copy(), tr, p, 96.0, 5, k0 + 8, 0).temp_c
    fc = dyn.observe(control.copy(), tr, p, 96.0, 5, k0 + 8, 0).temp_c
    assert ft.mean() < fc.mean() - 0.3
    np.testing.assert_allclose(ct["cart_copies"], cc["cart_copies"])  # expansion unchanged


def test_blast_burden_raises_severe_crs(sim):
    ep = crs_episodes(sim.crs).set_index("patient_id")
    blasts = sim.patients.set_index("patient_id")["marrow_blast_pct"]
    severe = ep["max_grade"].reindex(blasts.index).fillna(0) >= 3
    high, low = severe[blasts >= 5].mean(), severe[blasts < 5].mean()
    assert high > 2.5 * low and high > 0.25


def test_treated_patients_are_sicker_when_treated_with_overlap(sim):
    crs = sim.crs
    tx = sim.treatments[sim.treatments["drug"] == "tocilizumab"]
    first = tx.groupby("patient_id")["time_h"].min().rename("t").reset_index()
    at_tx = crs.merge(first, left_on=["patient_id", "time_h"], right_on=["patient_id", "t"])
    treated_ids = set(first["patient_id"])
    untreated_obs = crs[~crs["patient_id"].isin(treated_ids)]
    assert at_tx["grade"].mean() > untreated_obs["grade"].mean() + 1.0
    # overlap: at grade 2 decisions some are treated and many are not
    g2 = crs[crs["grade"] == 2]
    treated_at = g2.merge(tx, on=["patient_id", "time_h"])
    assert 0 < len(treated_at) < 0.5 * len(g2)


def test_another_truth_stream_redraws_the_truth_only():
    a = simulate(300, seed=5, truth_draws=8, landmarks=(48.0,), expected_benefit=True)
    b = simulate(300, seed=5, truth_draws=8, landmarks=(48.0,), expected_benefit=True, truth_stream=1)
    for name in ("patients", "measurements", "vitals", "treatments", "crs"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    ta, tb = a.truth_at(48.0), b.truth_at(48.0)
    # the realised potential outcomes are the same futures; the Monte Carlo truth is redrawn
    pd.testing.assert_series_equal(ta["severe_days_y0"], tb["severe_days_y0"])
    open_ = ta["p_severe"].notna()
    assert (open_ == tb["p_severe"].notna()).all()
    assert not ta.loc[open_, "p_severe"].equals(tb.loc[open_, "p_severe"])
    assert np.corrcoef(ta.loc[open_, "p_severe"], tb.loc[open_, "p_severe"])[0, 1] > 0.8
    assert b.meta["truth_stream"] == 1 and "truth_stream" not in a.meta


def test_truth_at_one_landmark_by_patient(sim):
    t = sim.truth_at(48.0)
    assert t.index.name == "patient_id" and t.index.is_unique
    assert (t["landmark_h"] == 48.0).all()
    assert set(t.index) == set(sim.patient_ids)
    with pytest.raises(ValueError, match="no truth table"):
        Cohort(sim.patients, sim.measurements, sim.vitals, sim.treatments, sim.crs).truth_at(48.0)


def test_truth_keeps_the_latent_state_at_each_landmark_not_at_the_end(sim):
    """``state_*`` is the state at L (what bounds any model of the records), not the last step's."""
    crs = sim.crs
    for L in (24.0, 48.0):
        t = sim.truth_at(L)
        seen = crs[(crs["time_h"] <= L) & (crs["grade"] >= 1)].groupby("patient_id").size() * 6.0
        hours = seen.reindex(t.index).fillna(0.0)
        assert (t["state_grade_hours_ge1"] == hours).all()
    a, b = sim.truth_at(24.0), sim.truth_at(48.0)
    assert (b["state_grade_hours_ge1"] >= a["state_grade_hours_ge1"]).all()
    assert (a["cart_growth"] == b["cart_growth"]).all() and (a["frailty"] > 0).all()


def test_p_severe_is_calibrated_against_realised_outcomes(sim):
    truth = sim.truth_at(48.0)
    crs = sim.crs
    before = crs[crs["time_h"] <= 48].groupby("patient_id")["grade"].max()
    after = crs[crs["time_h"] > 48].groupby("patient_id")["grade"].max()
    elig = before.reindex(truth.index).fillna(0) < 3
    y = (after.reindex(truth.index).fillna(0) >= 3)[elig].astype(float)
    p = truth.loc[elig, "p_severe"]
    bins = pd.qcut(p.rank(method="first"), 5, labels=False)
    obs, pred = y.groupby(bins).mean(), p.groupby(bins).mean()
    assert (obs - pred).abs().max() < 0.07, pd.DataFrame({"obs": obs, "pred": pred})
    assert abs(y.mean() - p.mean()) < 0.03


def test_potential_outcomes(sim):
    t = sim.truth[sim.truth["landmark_h"] == 48.0]
    before = t["treated_before"]
    assert (t.loc[before, "severe_days_y0"] == t.loc[before, "severe_days_y1"]).all()
    ite = (t["severe_days_y0"] - t["severe_days_y1"])[~before]
    assert ite.mean() > 0.05  # tocilizumab now spares severe days on average
    assert (ite < 0).mean() < (ite > 0).mean()
    # benefit differs between patients beyond risk: at high risk, tocilizumab prevents
    # progression far more often when the inflammation is IL-6 driven
    hr = t[~before & (t["p_severe"] > 0.5)]
    q = pd.qcut(hr["il6_share"], 4, labels=False)
    arr = (hr["severe_y0"].astype(float) - hr["severe_y1"].astype(float)).groupby(q).mean()
    assert arr.iloc[-1] > arr.iloc[0] + 0.2, arr


def test_day_d_sample_is_in_hand_at_the_day_d_landmark(sim):
    """Like a daily table stamped ``24 * day``, the day-d draw precedes L = 24 * d (DESIGN.md)."""
    t = sim.measurements["time_h"].to_numpy(dtype=float)
    before_stamp = np.ceil(t / 24.0) * 24.0 - t
    assert ((before_stamp >= 0) & (before_stamp <= 4.0)).all()
    from crsml.features import LandmarkFeatures

    f = LandmarkFeatures(landmark_h=48.0).fit(sim).transform(sim)
    assert (f["il6_since_last_h"].dropna() <= 4.0).mean() > 0.8  # the rest missed the day-2 draw
