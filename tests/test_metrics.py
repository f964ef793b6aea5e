from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from crsml.evaluation import (
    auprc,
    auroc,
    brier,
    cal_intercept,
    cal_slope,
    decision_curve,
    metric_table,
    paired_difference,
)
from crsml.models import Calibrator, choose_calibration


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 200))
def test_weighted_metrics_match_scikit_learn_with_unit_weights(seed, n):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    y[:2] = [True, False]
    p = np.round(rng.random(n) * 0.6 + 0.3 * y, 2)  # rounding makes ties
    w = np.ones((1, n))
    assert auroc(y, p, w)[0] == pytest.approx(roc_auc_score(y, p))
    assert auprc(y, p, w)[0] == pytest.approx(average_precision_score(y, p))
    assert brier(y, p, w)[0] == pytest.approx(brier_score_loss(y, p))


def test_bootstrap_weights_equal_resampled_rows():
    rng = np.random.default_rng(1)
    n = 80
    y, p = rng.random(n) < 0.4, rng.random(n)
    idx = rng.integers(0, n, n)
    w = np.bincount(idx, minlength=n)[None, :].astype(float)
    assert auroc(y, p, w)[0] == pytest.approx(roc_auc_score(y[idx], p[idx]))
    assert brier(y, p, w)[0] == pytest.approx(brier_score_loss(y[idx], p[idx]))


def test_calibration_slope_and_intercept():
    rng = np.random.default_rng(2)
    lp = rng.normal(-1, 1.5, 20_000)
    y = rng.random(lp.size) < 1 / (1 + np.exp(-lp))
    w = np.ones((1, lp.size))
    p = 1 / (1 + np.exp(-lp))
    assert cal_slope(y, p, w)[0] == pytest.approx(1.0, abs=0.05)
    assert cal_intercept(y, p, w)[0] == pytest.approx(0.0, abs=0.05)
    over = 1 / (1 + np.exp(-2 * lp))  # overconfident: slope near 1/2
    assert cal_slope(y, over, w)[0] == pytest.approx(0.5, abs=0.05)
    lr = LogisticRegression(C=1e9).fit(np.log(over / (1 - over))[:, None], y)
    assert cal_slope(y, over, w)[0] == pytest.approx(lr.coef_[0, 0], rel=1e-3)


def test_metric_table_intervals_cover_the_estimate_and_are_seeded():
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.3
    good, bad = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, 300), 0.01, 0.99), rng.random(300)
    t = metric_table(y, {"good": good[None], "bad": bad[None]}, n_boot=300, seed=0)
    assert (t["auroc_low"] <= t["auroc"]).all() and (t["auroc"] <= t["auroc_high"]).all()
    assert t.loc["good", "auroc"] > t.loc["bad", "auroc_high"]
    assert t.equals(metric_table(y, {"good": good[None], "bad": bad[None]}, n_boot=300, seed=0))
    d, lo, hi = paired_difference(y, good, bad, n_boot=300)
    assert lo > 0 and lo <= d <= hi


def test_a_slope_that_cannot_be_estimated_has_no_interval_and_says_so():
    from crsml.training import format_table

    rng = np.random.default_rng(0)
    fires, y = rng.random(400) < 0.5, rng.random(400) < 0.3
    # a rule fitted to no signal: its two predictions differ by 0.0005, so the slope diverges on
    # the full sample, while a few dozen of the resamples happen to give a finite one
    rule = 0.3 + 0.0005 * fires
    t = metric_table(y, {"rule": rule[None]}, n_boot=200, seed=0)
    assert np.isnan(t.loc["rule", "cal_slope"])
    assert np.isnan(t.loc["rule", "cal_slope_low"]) and np.isnan(t.loc["rule", "cal_slope_high"])
    assert format_table(t).loc["rule", "cal_slope"] == "not estimable"
    assert format_table(t).loc["rule", "brier"].startswith("0.")


def test_perfectly_separated_predictions_have_no_slope():
    # the maximum-likelihood slope is infinite; Newton steps grow slowly towards it, so a fixed
    # number of steps would report whatever value they had reached (13.2 here) as the slope
    rng = np.random.default_rng(5)
    y = rng.random(500) < 0.3
    p = np.where(y, 0.9, 0.1)
    t = metric_table(y, {"separated": p[None]}, n_boot=100, seed=0)
    assert np.isnan(t.loc["separated", "cal_slope"])
    assert np.isfinite(t.loc["separated", "cal_intercept"])


def test_calibration_choice_fixes_a_miscalibrated_model_and_round_trips():
    rng = np.random.default_rng(4)
    lp = rng.normal(-1, 1, 4000)
    y = (rng.random(lp.size) < 1 / (1 + np.exp(-lp))).astype(int)
    raw = 1 / (1 + np.exp(-(3 * lp + 1)))  # far too confident
    cal, losses = choose_calibration(raw, y, seed=0)
    assert cal.method != "none" and losses[cal.method] < losses["none"]
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.predict(raw), cal.predict(raw))


def test_decision_curve_treat_all_and_none():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1], dtype=bool)
    dc = decision_curve(y, {"perfect": y.astype(float)})
    assert (dc["treat none"] == 0).all()
    assert dc.loc[dc["threshold"] == 0.5, "perfect"].item() == pytest.approx(0.3)
