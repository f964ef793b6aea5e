"""tocilizumab_benefit: the emulated decision, the sign convention, treatment never a feature,
trimming reported, same seed same estimates, export and scoring like the risk models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import train_logged
from hypothesis import given, settings
from hypothesis import strategies as st

from crsml import load_model
from crsml.models import (
    BenefitModel,
    Candidate,
    Nuisances,
    aipw,
    average_effect,
    choose,
    crossfit,
    crossfit_splits,
    crump_bound,
    overlap,
)
from crsml.scoring import score_tables
from crsml.simulation import simulate
from crsml.tasks import emulate_trial
from crsml.training import BenefitSettings, benefit_data

L = 48.0
FAST = {
    "n_estimators": 40,
    "max_depth": 3,
    "learning_rate": 0.1,
    "tree_method": "hist",
    "random_state": 0,
    "n_jobs": 1,
    "verbosity": 0,
}
PARAMS = {"propensity": FAST, "outcome": FAST, "final": FAST}


@pytest.fixture(scope="module")
def benefit(tmp_path_factory):
    root = tmp_path_factory.mktemp("benefit")
    cohort = simulate(1500, seed=5, truth_draws=0, profile="mixed_practice")
    # three centres with different usual care: the centre is a feature (one indicator per centre)
    s = BenefitSettings(landmark_h=L, trials=2, seed=1, ate_splits=2, extra_patient_columns=("site",))
    result = train_logged(
        cohort, s, root / "models" / "benefit", f"sqlite:///{root / 'mlflow.db'}", register_name="tiny-benefit"
    )
    return result, cohort, root


def test_a_dose_at_the_landmark_is_the_decision_not_history():
    c = simulate(60, seed=2, truth_draws=0)
    c.treatments = c.treatments.iloc[:0]
    ids = c.patients["patient_id"]
    doses = pd.DataFrame(
        {
            "patient_id": [ids[0], ids[1], ids[2], ids[3]],
            "time_h": [L, L + 6.0, L - 1.0, L + 20.0],
            "drug": "tocilizumab",
            "dose": 400.0,
            "dose_unit": "mg",
        }
    )
    c.treatments = doses
    t = emulate_trial(c, L, grace_h=6.0)
    assert t.loc[ids[0], "treated"] == 1  # at L: "now"
    assert t.loc[ids[1], "treated"] == 0  # at L + grace: not now
    assert not t.loc[ids[2], "eligible"] and "before the landmark" in t.loc[ids[2], "reason"]
    assert t.loc[ids[3], "treated"] == 0
    wide = emulate_trial(c, L, window="wide")
    assert wide.loc[ids[3], "treated"] == 1 and wide.loc[ids[1], "treated"] == 1


def test_treatment_never_shapes_the_features():
    """Features are identical whatever happens at or after the landmark (doses moved, removed)."""
    c = simulate(300, seed=9, truth_draws=0, profile="mixed_practice")
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L))
    c2 = simulate(300, seed=9, truth_draws=0, profile="mixed_practice")
    c2.treatments = c2.treatments[c2.treatments["time_h"] < L]
    _, X2, trial2, _ = benefit_data(c2, BenefitSettings(landmark_h=L))
    pd.testing.assert_frame_equal(X, X2)
    assert trial["treated"].sum() > 0 and trial2["treated"].sum() == 0
    assert not any("treated" in c or "now" in c for c in X.columns)


def test_sign_convention_benefit_is_days_spared():
    """Treatment lowers the outcome by 1 day for everyone: every estimate says +1 (helps)."""
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 3)).astype(np.float32)
    T = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    Y = 2.0 + X[:, 0] + X[:, 1] - 1.0 * T + rng.normal(0, 0.3, n)
    nu = crossfit(X, T, Y, FAST, FAST, folds=2, seed=0)
    assert aipw(nu.pseudo_outcome(T, Y))["ate"] == pytest.approx(1.0, abs=0.15)
    for name in ("dr_learner", "risk_strata"):
        b = Candidate(name, PARAMS).fit(X, T, Y).benefit(X)
        assert np.mean(b) == pytest.approx(1.0, abs=0.25), name


def test_risk_based_candidates_learn_risk_from_every_untreated_patient():
    """PATH: the risk model is fitted on the whole population, inside the overlap or not; the
    free-form learners see only the patients inside it."""
    rng = np.random.default_rng(1)
    n = 2000
    X = rng.normal(size=(n, 3)).astype(np.float32)
    inside = X[:, 2] > -0.5
    T = ((rng.random(n) < 0.3) & inside).astype(int)
    Y = np.maximum(X[:, 0], 0) * (1 - 0.5 * T) + rng.normal(0, 0.2, n)
    Y2 = Y.copy()
    Y2[~inside] += 3 * np.maximum(X[~inside, 1], 0)  # only outcomes outside the overlap change
    for name, sees_outside in (("risk_scaled", True), ("risk_strata", True), ("x_learner", False)):
        b, b2 = (Candidate(name, PARAMS).fit(X, T, y, inside).benefit(X[inside]) for y in (Y, Y2))
        assert (b.tobytes() != b2.tobytes()) == sees_outside, name


def test_centres_not_used_as_features_are_pointed_out():
    from crsml.training import unused_centre_columns

    c = simulate(40, seed=2, truth_draws=0, profile="mixed_practice")
    assert unused_centre_columns(c.patients, ()) == ["site"]
    assert unused_centre_columns(c.patients, ("site",)) == []
    _, X, _, _ = benefit_data(c, BenefitSettings(landmark_h=L, extra_patient_columns=("site",)))
    assert [x for x in X.columns if x.startswith("extra_")] == [
        "extra_site=pre_emptive",
        "extra_site=treats_grade2",
        "extra_site=waits_for_grade3",
    ]


def test_one_standard_error_rule_keeps_risk_unless_clearly_beaten():
    sel = pd.DataFrame(
        {"dr_loss": [1.0, 1.01], "vs_risk_scaled": [-0.01, 0.0], "vs_risk_scaled_se": [0.02, 0.0]},
        index=["x_learner", "risk_scaled"],
    )
    assert choose(sel) == "risk_scaled"
    sel.loc["x_learner", "vs_risk_scaled_se"] = 0.001
    assert choose(sel) == "x_learner"


def test_same_seed_same_estimates():
    c = simulate(800, seed=4, truth_draws=0, profile="mixed_practice")
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L))
    fit = [
        BenefitModel(
            candidates=("x_learner", "risk_scaled"), seed=3, nuisance_params=PARAMS, trials=2, ate_splits=2
        ).fit(X, trial["treated"], trial["severe_days"], trial["severe"])
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(fit[0].predict(X), fit[1].predict(X))
    pd.testing.assert_frame_equal(fit[0].selection_, fit[1].selection_)


def test_causal_forest_same_seed_same_bytes():
    """EconML's forest sums its trees from threads; crsml predicts on one so repeats agree exactly."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    T = rng.binomial(1, 0.3, 600)
    Y = np.maximum(X[:, 0], 0) * (1 - T) + rng.normal(scale=0.5, size=600)
    fits = [Candidate("causal_forest", PARAMS, seed=2).fit(X, T, Y) for _ in range(2)]
    runs = [f.benefit(X).tobytes() for f in fits] + [fits[0].benefit(X).tobytes()]
    assert runs[0] == runs[1] == runs[2]
    lows = [f.interval(X)[0].tobytes() for f in fits]
    assert lows[0] == lows[1]


@pytest.fixture(scope="module")
def risk_scaled_fit():
    """One benefit model whose only learner candidate is risk_scaled, shared by the tests that
    look inside it (each works on its own copy)."""
    c = simulate(1200, seed=4, truth_draws=0, profile="mixed_practice")
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L))
    T, Y = trial["treated"].to_numpy(dtype=int), trial["severe_days"].to_numpy(dtype=float)
    m = BenefitModel(candidates=("risk_scaled",), seed=3, nuisance_params=PARAMS).fit(X, T, Y, trial["severe"])
    return X, T, Y, m


def test_interval_is_the_causal_forests_even_when_another_estimator_is_chosen(risk_scaled_fit):
    """benefit_low/benefit_high come from the forest's honest 95% interval (distilled), not from the
    spread of bootstrap refits of the chosen estimator, whose one relative reduction barely moves."""
    import copy

    X, T, Y, m = risk_scaled_fit
    m = copy.deepcopy(m)
    m.effect_scale_ = m.effect_scale_ | {"basis": "compared"}  # the compared path, whatever the records showed
    assert m.chosen_ == "risk_scaled"
    inside = m.overlap_
    Xi = X.to_numpy(dtype=np.float32)[inside]
    low, high = Candidate("causal_forest", PARAMS, seed=3, trim=m.trim).fit(Xi, T[inside], Y[inside]).interval(Xi)
    lo, hi = m.forest_interval(X[inside])
    assert np.corrcoef(lo, low)[0, 1] > 0.9 and np.corrcoef(hi, high)[0, 1] > 0.9
    assert 0.8 < np.median(hi - lo) / np.median(high - low) < 1.25
    # the scores hold the estimate: the forest's interval, stretched where the two disagree; a
    # risk-based benefit's interval holds the risk-based bounds as well
    pred = m.predict(X[inside])
    assert ((pred["benefit_low"] <= pred["benefit"]) & (pred["benefit"] <= pred["benefit_high"])).all()
    _, elo, ehi = m._risk_based(pred["risk"].to_numpy())
    np.testing.assert_array_equal(pred["benefit_low"], np.minimum(np.minimum(lo, pred["benefit"]), elo))
    np.testing.assert_array_equal(pred["benefit_high"], np.maximum(np.maximum(hi, pred["benefit"]), ehi))


def test_a_risk_based_interval_runs_from_no_benefit_to_every_severe_day_of_a_long_course(risk_scaled_fit):
    """The risk-based interval bounds what one patient could gain, not the average per unit of risk:
    from 0 (or the harm the effect's interval allows) to the risk's upper end times the days severe
    of a long course (the 90th percentile among the untreated who became severe)."""
    import copy

    from crsml.models._benefit import wilson

    X, T, Y, m = risk_scaled_fit
    days = Y[(T == 0) & (Y > 0)]
    s = m.effect_scale_
    assert s["days_long_course"] == pytest.approx(np.quantile(days, 0.9))
    assert s["days_long_course"] > s["days_if_severe"]
    risk = np.array([0.001, 0.05, 0.3, 0.9])
    b, lo, hi = m._risk_based(risk)
    _, rhi = wilson(risk, s["n_risk"] / 10)
    np.testing.assert_allclose(hi, np.maximum(rhi * s["days_long_course"], rhi * s["high"]))
    assert (lo <= 0).all() and (lo <= b).all() and (b <= hi).all()
    # a model saved before the bound keeps the product of the two intervals
    old = copy.deepcopy(m)
    del old.effect_scale_["days_long_course"]
    _, olo, ohi = old._risk_based(risk)
    assert (ohi <= hi).all() and (olo >= lo).all() and (ohi < hi).any()


@pytest.mark.parametrize("form", ["risk_scaled", "risk_strata"])
def test_a_risk_based_choice_ships_the_calibrated_risk_times_the_days_per_unit_of_risk(form, risk_scaled_fit, tmp_path):
    """A risk-based choice is not distilled: its benefit is the scores' calibrated risk times the days
    spared per unit of risk, inside the overlap and past it alike (one ranking, the risk's), through a
    save and a reload; its SHAP values in days add up to it. The candidate's own export is kept."""
    import copy

    X, T, Y, m = risk_scaled_fit
    m = copy.deepcopy(m)
    m.effect_scale_ = m.effect_scale_ | {"basis": "compared"}  # the compared path, whatever the records showed
    m.chosen_ = form  # risk_scaled is always a candidate: the form under test is made the chosen one
    cand = Candidate(form, PARAMS, seed=3, trim=m.trim).fit(X.to_numpy(dtype=np.float32), T, Y, m.overlap_)
    m.risk_effect_ = type(m.risk_effect_).from_candidate(cand)
    m.effect_ = m.risk_effect_.booster
    Xs = X.iloc[:300]
    np.testing.assert_allclose(
        m.risk_effect_.predict(Xs.to_numpy(dtype=np.float32)),
        cand.benefit(Xs.to_numpy(dtype=np.float32)),
        rtol=1e-5,
        atol=1e-6,
    )
    risk = m.risk_.predict_proba(Xs)[:, 1]
    np.testing.assert_allclose(m.effect(Xs), risk * m.effect_scale_["scale"], rtol=1e-5, atol=1e-7)
    phi = m.contributions(Xs)
    # they add up to the benefit as scored: the candidate's inside the overlap, the extrapolated one outside
    pred = m.predict(Xs)
    np.testing.assert_allclose(phi.sum(axis=1), pred["benefit"], rtol=1e-4, atol=1e-5)
    inside = (pred["benefit_basis"] == "compared").to_numpy()
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(pred["benefit"][inside], m.effect(Xs)[inside], rtol=1e-5, atol=1e-6)
    m.save(tmp_path / "m")
    back = BenefitModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(Xs), m.predict(Xs))
    np.testing.assert_array_equal(back.contributions(Xs), phi)


def test_a_model_with_bootstrap_percentiles_is_refused(benefit, tmp_path):
    import shutil

    from crsml.errors import CrsmlError

    result, _, _ = benefit
    old = tmp_path / "old"
    shutil.copytree(result.model_dir / "artifacts" / "crsml" / "benefit", old)
    settings = json.loads((old / "benefit.json").read_text())
    del settings["interval"]
    settings["n_boot_saved"], settings["params"]["n_boot"] = 0, 20
    (old / "benefit.json").write_text(json.dumps(settings))
    with pytest.raises(CrsmlError, match="bootstrap percentiles"):
        BenefitModel.load(old)


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0.3, 3.0), b=st.floats(0.3, 3.0), seed=st.integers(0, 10_000))
def test_crump_bound_minimises_the_variance_of_the_average(a, b, seed):
    """Crump et al.'s bound against a brute-force search: over every bound, the average over
    ``[bound, 1 - bound]`` has variance proportional to sum(1 / (e (1 - e))) / n_inside^2."""
    e = np.random.default_rng(seed).beta(a, b, 2000)
    bound = crump_bound(e, floor=0.0)
    assert 0.0 <= bound < 0.5

    def variance(x: float) -> float:
        inside = (e >= x) & (e <= 1 - x)
        return float((1 / (e[inside] * (1 - e[inside]))).sum() / inside.sum() ** 2) if inside.any() else np.inf

    grid = np.unique(np.r_[0.0, np.minimum(e, 1 - e)])
    best = min(variance(x) for x in grid[grid < 0.5])
    assert variance(bound) <= best * 1.01
    assert crump_bound(e, floor=0.2) >= 0.2


def test_crump_bound_keeps_everyone_when_overlap_is_good():
    e = np.random.default_rng(0).uniform(0.3, 0.7, 500)
    assert crump_bound(e, floor=0.01) == 0.01


@settings(max_examples=30, deadline=None)
@given(splits=st.integers(2, 7), seed=st.integers(0, 10_000))
def test_the_average_of_several_splits_is_their_median_with_their_spread(splits, seed):
    """Chernozhukov et al. (2018)'s aggregation: one region (from the mean propensity), the
    median of the splits' AIPW estimates, and an interval at least as wide as the median
    split's, widened by the splits' disagreement."""
    rng = np.random.default_rng(seed)
    n = 400
    T = (rng.random(n) < 0.3).astype(int)
    Y = rng.normal(1.0, 1.0, n) - 0.5 * T
    nus = [
        Nuisances(np.clip(rng.beta(2, 5, n), 0.001, 0.999), rng.normal(1.0, 0.3, n), rng.normal(0.5, 0.3, n))
        for _ in range(splits)
    ]
    a, region = average_effect(nus, T, Y)
    e = np.mean([nu.e for nu in nus], axis=0)
    assert a["bound"] == crump_bound(e) and (region == overlap(e, a["bound"])).all()
    each = [aipw(nu.pseudo_outcome(T, Y)[region]) for nu in nus]
    assert a["ate"] == pytest.approx(np.median([x["ate"] for x in each]))
    assert a["se"] >= np.median([x["se"] for x in each]) - 1e-12
    assert a["splits"] == splits and a["n"] == int(region.sum())
    # a second outcome over the same patients, and one split alone as before the aggregation
    assert (average_effect(nus, T, -Y, region=region)[1] == region).all()
    one, one_region = average_effect(nus[0], T, Y)
    assert one["ate"] == pytest.approx(aipw(nus[0].pseudo_outcome(T, Y)[one_region])["ate"]) and one["split_sd"] == 0


def test_splits_are_reproducible_and_reuse_what_was_fitted():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    T = (rng.random(300) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    Y = X[:, 1] + T
    first = crossfit(X, T, Y, FAST, FAST, folds=2, seed=4)
    nus = crossfit_splits(X, T, Y, FAST, FAST, folds=2, seed=4, splits=3, first=first)
    assert nus[0] is first and len(nus) == 3
    again = crossfit(X, T, Y, FAST, FAST, folds=2, seed=4 + 2000)
    assert np.array_equal(nus[2].e, again.e) and np.array_equal(nus[2].mu1, again.mu1)
    assert not np.array_equal(nus[1].e, nus[2].e)  # other splits, other folds
    reused = crossfit_splits(X, T, -Y, FAST, FAST, folds=2, seed=4, splits=3, e=[nu.e for nu in nus])
    assert all(r.e is nu.e for r, nu in zip(reused, nus, strict=True))
    with pytest.raises(ValueError, match="at least 1"):
        crossfit_splits(X, T, Y, FAST, FAST, splits=0)


def test_thin_data_is_said_not_silent():
    from crsml.training import thin_data_warnings

    assert thin_data_warnings(1000, 0.85) == []
    few, weak = thin_data_warnings(19, 0.48)
    assert "only 19 patients were given tocilizumab" in few and "AUROC 0.48" in weak


def test_trimming_is_reported_and_every_eligible_patient_gets_a_benefit_with_its_basis(benefit):
    result, cohort, _ = benefit
    m = result.model.estimator
    assert m.n_trimmed_ == result.counts["trimmed"] > 0
    # the average effect is over the patients inside the overlap and inside Crump's bound
    assert m.ate_["bound"] >= m.trim and 0 < m.ate_["n"] <= m.trim_counts_["inside"]
    assert m.ate_["splits"] == m.ate_splits == 2 and m.ate_["low"] < m.ate_["ate"] < m.ate_["high"]
    assert m.ate_severe_["n"] == m.ate_["n"] and m.ate_severe_["bound"] == m.ate_["bound"]
    assert m.trim_counts_["inside"] + m.trim_counts_["below"] + m.trim_counts_["above"] == result.counts["eligible"]
    raw = {k: getattr(cohort, k) for k in ("patients", "measurements", "vitals", "treatments", "crs")}
    scores, _ = score_tables(result.model, raw, explain=3)
    assert len(scores) == len(cohort.patients) and scores["patient_id"].is_unique
    # patients outside the overlap are scored too: extrapolated from their risk (or prior), and said so
    ok = scores[scores["status"] == "ok"]
    assert not scores["reason"].fillna("").str.contains("outside overlap").any()
    assert set(ok["benefit_basis"]) <= {"compared", "extrapolated", "prior"}
    by_risk = ok["benefit_basis"].isin(["extrapolated", "prior"])
    assert by_risk.sum() >= m.n_trimmed_ - 5  # the trimmed patients (a few may be ineligible at scoring)
    if m.effect_scale_["basis"] == "compared":
        assert ok.loc[by_risk, "benefit_note"].str.contains("extrapolated: outside overlap").all()
    assert len(ok) > 0 and ok[["benefit", "benefit_low", "benefit_high", "risk"]].notna().all().all()
    assert (ok["benefit_low"] <= ok["benefit"]).all() and (ok["benefit"] <= ok["benefit_high"]).all()
    # drivers explain the benefit as scored: their SHAP values and the bias add up to it
    contribs = m.contributions(result.X.iloc[:40])
    np.testing.assert_allclose(contribs.sum(axis=1), m.predict(result.X.iloc[:40])["benefit"], atol=1e-4)
    assert "extra_site=waits_for_grade3" in result.model.feature_names
    # a centre the model never saw: its usual care is unknown, so no benefit (but still a risk)
    raw["patients"] = raw["patients"].assign(
        site=raw["patients"]["site"].where(~raw["patients"]["patient_id"].isin(ok["patient_id"].iloc[:5]), "elsewhere")
    )
    again, report = score_tables(result.model, raw, explain=0)
    assert any(p.column == "site" and "elsewhere" in p.message for p in report.problems)
    moved = again.set_index("patient_id").loc[ok["patient_id"].iloc[:5]]
    assert (moved["status"] == "not_eligible").all() and moved["benefit"].isna().all()
    assert moved["reason"].str.contains("site not among the values in the training records").all()
    assert moved["risk"].notna().all() and len(again) == len(cohort.patients)
    before = scores["reason"].fillna("").str.contains("tocilizumab already given")
    assert before.sum() > 0 and (scores.loc[before, "status"] == "not_eligible").all()


def test_export_reloads_as_pyfunc_and_unpickles_nothing(benefit):
    import mlflow

    result, _, root = benefit
    model_dir = result.model_dir
    assert not list(model_dir.rglob("*.pkl")) and not list(model_dir.rglob("*.pickle"))
    assert "Tocilizumab benefit" in (model_dir / "artifacts" / "crsml" / "model_card.html").read_text()
    bundle = load_model(model_dir)
    assert isinstance(bundle.estimator, BenefitModel) and bundle.task.name == "tocilizumab_benefit"
    X = result.X.iloc[:50]
    pd.testing.assert_frame_equal(bundle.estimator.predict(X), result.model.estimator.predict(X))
    loaded = mlflow.pyfunc.load_model(str(model_dir))
    out = loaded.predict(X.reset_index(drop=True))
    expected = result.model.predict_features(X).reset_index(drop=True)
    pd.testing.assert_frame_equal(out[expected.columns], expected, check_dtype=False)
    settings = json.loads((model_dir / "artifacts" / "crsml" / "benefit" / "benefit.json").read_text())
    assert settings["chosen"] in settings["selection"]


def test_model_card_describes_the_benefit_model_not_a_risk_model(benefit):
    result, _, _ = benefit
    card = (result.model_dir / "artifacts" / "crsml" / "model_card.html").read_text()
    assert "eligible at the landmark" in card and "What drives the benefit (SHAP, days spared)" in card
    assert "inside the overlap" in card and "patients columns used as features: site" in card
    for wrong in (
        "<td>None</td>",
        "nan%",
        "Trained on ?",
        "<h2>Curves</h2>",
        "labelled at the landmark",
        "Out-of-fold figures",
        "log-odds",
        "log odds",
    ):
        assert wrong not in card, wrong
    # the card's SHAP values are those of the benefit (days), like the drivers in the scores
    from crsml.explanation import explain

    result, cohort, _ = benefit
    # every eligible patient is given a benefit, so every one is explained
    assert len(result.model.explainable(cohort)) == result.counts["eligible"]
    # the validation without the truth, its table and its TOC and GATES plots
    assert "Validation without the truth (cross-fitted in the development cohort" in card
    assert "TOC curves (cross-fitted" in card and "GATES (cross-fitted" in card and "benefit_basis" in card
    treated = cohort.subset(cohort.patients["patient_id"])
    treated.treatments = pd.DataFrame(
        {
            "patient_id": cohort.patients["patient_id"],
            "time_h": L - 1.0,
            "drug": "tocilizumab",
            "dose": 400.0,
            "dose_unit": "mg",
        }
    )
    assert len(result.model.explainable(treated)) == 0  # all given tocilizumab before L: not the decision

    X = result.X.iloc[:20]
    ex = explain(result.model, X)
    scored = result.model.estimator.predict(X)["benefit"]
    np.testing.assert_allclose(ex.values.sum(axis=1) + ex.base_values, scored, atol=1e-4)


def test_mlflow_run_holds_diagnostics_without_identifiers(benefit):
    import mlflow

    result, cohort, root = benefit
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    run = mlflow.get_run(result.run_id)
    for key in ("propensity_auroc", "ate_days", "ate_days_low", "ate_days_high", "n_trimmed"):
        assert key in run.data.metrics
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "evaluation")}
    assert {"evaluation/selection.csv", "evaluation/balance_smd.csv", "evaluation/overlap.png"} <= arts
    ids = [i.encode() for i in cohort.patients["patient_id"].iloc[::25]]
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not any(i in data for i in ids), f


def test_evaluate_judges_a_benefit_model_on_a_new_cohort_without_the_truth(benefit, tmp_path, capsys):
    """``crsml evaluate`` on a benefit model: BLP, RATE and GATES from the new cohort's own doubly
    robust scores, beside ranking by risk; a report, its JSON and the TOC and GATES plots; no
    identifier anywhere; one clear line when the records cannot judge it."""
    from conftest import run_cli

    result, _, _ = benefit
    new = simulate(1500, seed=11, truth_draws=0, profile="mixed_practice")
    new.save(tmp_path / "new")
    args = ["evaluate", "--model", str(result.model_dir), "--cohort", str(tmp_path / "new"), "--n-boot", "100"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out, err = run_cli([*args, "--out", str(tmp_path / "eval"), "--tracking-uri", uri], capsys)
    assert code == 0, err
    import mlflow

    mlflow.set_tracking_uri(uri)
    run = mlflow.search_runs(experiment_names=["crsml-tocilizumab_benefit-evaluation"], output_format="list")[0]
    assert {"autoc", "beta2", "baseline_risk_autoc"} <= set(run.data.metrics)
    assert "AUTOC, benefit (days)" in out and "BLP beta2, ranking by risk" in out
    data = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    v = data["validation"]
    assert set(v["blp"]) == {"benefit", "risk"} and v["where"] == "new cohort"
    assert v["n"] == data["flow"][-1]["n"] > 20
    assert len(v["gates"]["benefit"]["gate"]) in (3, 5)
    page = (tmp_path / "eval" / "index.html").read_text()
    assert "Validation without the truth" in page and page.count("data:image/png;base64") == 2
    ids = new.patients["patient_id"].iloc[::50]
    for f in (tmp_path / "eval").iterdir():
        assert not any(i.encode() in f.read_bytes() for i in ids), f
    # the records cannot judge a benefit when no one was treated now
    none = new.subset(new.patients["patient_id"])
    none.treatments = none.treatments.iloc[:0]
    none.save(tmp_path / "none")
    code, _, err = run_cli(
        [
            "evaluate",
            "--model",
            str(result.model_dir),
            "--cohort",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "e2"),
            "--no-mlflow",
        ],
        capsys,
    )
    assert code == 2 and "too few patients to judge a benefit model: 0 given tocilizumab" in err
    assert len(err.strip().splitlines()) <= 2


def test_no_one_treated_now_gives_every_patient_a_prior_benefit(tmp_path):
    """The founding study's practice (no dose within the grace window at the landmark): nothing can be
    compared, yet every eligible patient gets a benefit, the risk times the literature's effect,
    flagged prior; it ranks patients by risk, survives a save and a reload, and its drivers add up."""
    c = simulate(300, seed=8, truth_draws=0)
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L))
    T = np.zeros(len(X), dtype=int)
    m = BenefitModel(trials=2, seed=1).fit(X, T, trial["severe_days"], trial["severe"])
    assert m.chosen_ == "prior" and m.propensity_ is None and m.validation_ is None
    pred = m.predict(X)
    assert (pred["benefit_basis"] == "prior").all() and (pred["reason"] == "").all()
    assert (pred["benefit"] > 0).all() and (pred["benefit_low"] <= pred["benefit"]).all()
    assert pred["benefit"].rank().corr(pred["risk"].rank()) > 0.999
    assert "only 0 of" in m.direction_notes_[0]
    np.testing.assert_allclose(m.contributions(X).sum(axis=1), pred["benefit"], atol=1e-4)
    m.save(tmp_path / "p")
    pd.testing.assert_frame_equal(BenefitModel.load(tmp_path / "p").predict(X), pred)


def test_treated_patients_all_outside_the_overlap_give_a_prior_benefit_not_a_crash():
    """Patients given tocilizumab now, none of them comparable (the propensity separates them):
    nothing can be compared, so every benefit is prior, and the note says why."""
    c = simulate(300, seed=8, truth_draws=0)
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L))
    T = np.zeros(len(X), dtype=int)
    T[:30] = 1
    X = X.assign(marker=T.astype(float))  # tells the treated apart perfectly
    m = BenefitModel(trials=2, seed=1, nuisance_params=PARAMS).fit(X, T, trial["severe_days"], trial["severe"])
    assert m.chosen_ == "prior" and "inside the propensity overlap" in m.direction_notes_[0]
    assert (m.predict(X)["benefit_basis"] == "prior").all()
