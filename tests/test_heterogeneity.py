"""BLP, GATES, CLAN and RATE (crsml.models) against direct computations of their definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crsml.models import blp, clan, gates, groups_of, rate, rate_difference, validate_benefit


def _data(n=400, seed=0, slope=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    tau = 0.5 + slope * x
    scores = tau + rng.normal(scale=2.0, size=n)
    return x, tau, scores


def _hc3(y, X):
    """Least squares and the HC3 sandwich (MacKinnon and White 1985), written out."""
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ X.T @ y
    r = y - X @ beta
    h = np.einsum("ij,jk,ik->i", X, XtX_inv, X)
    meat = X.T @ (X * (r / (1 - h))[:, None] ** 2)
    return beta, XtX_inv @ meat @ XtX_inv


def test_blp_matches_least_squares_with_hc3():
    x, _, y = _data()
    out = blp(y, x)
    beta, cov = _hc3(y, np.column_stack([np.ones(len(x)), x - x.mean()]))
    assert out["beta1"] == pytest.approx(beta[0]) and out["beta2"] == pytest.approx(beta[1])
    assert out["beta1_se"] == pytest.approx(np.sqrt(cov[0, 0])) and out["beta2_se"] == pytest.approx(np.sqrt(cov[1, 1]))
    assert out["beta1"] == pytest.approx(y.mean())  # centred priority: the intercept is the mean score


def test_blp_of_a_constant_priority_has_no_slope():
    out = blp(np.arange(10.0), np.ones(10))
    assert np.isnan(out["beta2"]) and out["beta1"] == pytest.approx(4.5)


def test_gates_are_group_means_with_hc3_errors():
    x, _, y = _data(n=600)
    table, top = gates(y, x)
    g = groups_of(x)
    assert len(table) == 5 and table["n"].sum() == 600
    for k in range(5):
        yk = y[g == k]
        assert table.loc[k, "gate"] == pytest.approx(yk.mean())
        r = yk - yk.mean()
        se = np.sqrt(np.sum((r / (1 - 1 / len(yk))) ** 2)) / len(yk)
        assert table.loc[k, "se"] == pytest.approx(se)
    assert top["diff"] == pytest.approx(y[g == 4].mean() - y[g == 0].mean())
    assert top["se"] == pytest.approx(np.hypot(table.loc[4, "se"], table.loc[0, "se"]))


def test_small_cohorts_get_terciles_and_groups_are_quantiles():
    assert groups_of(np.arange(100.0)).max() == 2
    g = groups_of(np.arange(1000.0))
    assert np.bincount(g).tolist() == [200] * 5 and (np.diff(g) >= 0).all()


def test_clan_compares_top_and_bottom_groups():
    x, _, _ = _data(n=500)
    X = pd.DataFrame({"a": x * 2, "b": np.zeros(500)})
    out = clan(X, x)
    g = groups_of(x)
    assert out.loc["a", "diff"] == pytest.approx(X["a"][g == 4].mean() - X["a"][g == 0].mean())
    assert out.loc["a", "low"] > 0


def _autoc_qini_by_definition(scores, priority):
    order = np.argsort(-priority, kind="stable")
    y = scores[order]
    n = len(y)
    toc = np.array([y[: j + 1].mean() - y.mean() for j in range(n)])
    q = np.arange(1, n + 1) / n
    return toc.mean(), (q * toc).mean(), toc


@settings(max_examples=30, deadline=None)
@given(st.integers(5, 60), st.integers(0, 10_000))
def test_autoc_and_qini_match_their_definitions(n, seed):
    rng = np.random.default_rng(seed)
    s, y = rng.normal(size=n), rng.normal(size=n)
    out = rate(y, s, n_boot=20)
    autoc, qini, _ = _autoc_qini_by_definition(y, s)
    assert out["autoc"] == pytest.approx(autoc, abs=1e-10)
    assert out["qini"] == pytest.approx(qini, abs=1e-10)


def test_tied_priorities_rank_no_one():
    y = np.random.default_rng(1).normal(size=50)
    out = rate(y, np.zeros(50), n_boot=20)
    assert out["autoc"] == pytest.approx(0.0) and out["qini"] == pytest.approx(0.0)


def test_toc_matches_econml_drtester():
    """EconML's calc_uplift(metric='toc') at the same shares (its percentiles of the same priorities)."""
    from econml.validate.utils import calc_uplift

    x, _, y = _data(n=1000, seed=3)
    pct = np.array([10.0, 30.0, 50.0, 70.0, 90.0])  # top 90%, ..., top 10%
    _, _, curve = calc_uplift(x[:, None], x[:, None], y[:, None], pct, "toc", n_bootstrap=10)
    ours = rate(y, x, n_boot=20, grid=np.array([0.9, 0.7, 0.5, 0.3, 0.1]))["toc"]
    np.testing.assert_allclose(ours["toc"].to_numpy(), curve["value"].to_numpy(), atol=1e-12)


def test_true_priority_gets_a_rate_interval_above_zero_and_noise_does_not():
    """Strong heterogeneity: ranking by the true benefit is shown to rank (AUTOC interval above 0);
    a priority unrelated to the benefit's score is not, in most draws."""
    x, tau, y = _data(n=2000, seed=5, slope=1.5)
    assert rate(y, tau, seed=1)["autoc_low"] > 0
    noise = np.random.default_rng(9).normal(size=len(x))
    r = rate(y, noise, seed=1)
    assert r["autoc_low"] < 0 < r["autoc_high"]
    d = rate_difference(y, tau, noise, seed=1)
    assert d["low"] > 0


def test_validate_benefit_summary_and_plots(tmp_path):
    x, tau, y = _data(n=800, seed=2)
    risk = x + np.random.default_rng(0).normal(scale=2, size=len(x))
    v = validate_benefit(y, {"benefit": tau, "risk": risk}, pd.DataFrame({"x": x}), where="test", seed=0, n_boot=100)
    s = v.summary()
    assert list(s.index) == ["benefit", "risk"] and s.loc["benefit", "beta2_low"] > 0
    assert v.versus and "better than risk" in v.verdict() or "not shown" in v.verdict()
    v.plot_toc(tmp_path / "toc.png")
    v.plot_gates(tmp_path / "gates.png")
    assert (tmp_path / "toc.png").stat().st_size > 1000
    again = type(v).from_dict(v.to_dict())
    pd.testing.assert_frame_equal(again.summary(), s)
    # the same seed gives the same numbers
    w = validate_benefit(y, {"benefit": tau, "risk": risk}, pd.DataFrame({"x": x}), where="test", seed=0, n_boot=100)
    pd.testing.assert_frame_equal(w.summary(), s)
