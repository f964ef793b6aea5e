"""Validation of a benefit model without the truth: does it find real differences between patients?

Every statistic is computed from doubly robust (AIPW) scores ``Gamma_i`` of the emulated decision
(cross-fitted, so ``E[Gamma_i | x_i]`` is the patient's benefit when either nuisance is right) and
a priority ``S_i`` fitted on other patients than the score that judges it:

- **BLP** (best linear predictor; Chernozhukov, Demirer, Duflo and Fernandez-Val, "Generic machine
  learning inference on heterogeneous treatment effects", and Semenova and Chernozhukov 2021 for the
  score form): ``Gamma = beta1 + beta2 (S - mean S) + error`` by least squares with HC3 standard
  errors. ``beta1`` is the average benefit; ``beta2`` is 0 when ``S`` carries no heterogeneity and 1
  when it is calibrated; ``beta2 > 0`` is the test that the ranking finds real differences.
- **GATES**: the average benefit within groups of ``S`` (quintiles; terciles below
  :data:`SMALL_COHORT` patients), with top minus bottom; **CLAN**: the means of chosen features in
  the top and bottom groups.
- **RATE** (Yadlowsky, Fleming, Shah, Brunskill and Wager 2021; grf's
  ``rank_average_treatment_effect``): the TOC curve ``TOC(q) = E[Gamma | S in its top q] - E[Gamma]``,
  its integral AUTOC and the Qini coefficient (``int q TOC(q) dq``), with bootstrap intervals.

Why here and not a library: EconML's ``DRTester`` fits its own nuisances, reports BLP with
homoscedastic errors for a binary treatment, cuts its uplift curves at the 5th to 95th percentile
(not the AUTOC of the definition), draws its multiplier bootstrap from numpy's global generator (the
same seed would not give the same bytes) and has no GATES with top minus bottom or CLAN; grf (R) and
GenericML (R) are not Python. The least squares are statsmodels'; the rest is the definitions,
vectorised over bootstrap replicates, and tested against a direct computation and against
``DRTester``'s TOC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
SMALL_COHORT = 250  # below it, GATES by terciles (each group keeps enough patients)
N_BOOT = 500
TOC_GRID = np.round(np.arange(0.05, 1.0001, 0.05), 2)


def _ols(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and their HC3 covariance (statsmodels)."""
    import statsmodels.api as sm

    fit = sm.OLS(y, X).fit(cov_type="HC3")
    return np.asarray(fit.params, dtype=float), np.asarray(fit.cov_params(), dtype=float)


def blp(scores: np.ndarray, priority: np.ndarray) -> dict[str, float]:
    """Best linear predictor of the benefit given the priority: ``beta1`` (average benefit),
    ``beta2`` (heterogeneity loading), their HC3 standard errors and 95% intervals, and the
    one-sided p-value of ``beta2 > 0``. A constant priority has no ``beta2`` (NaN)."""
    y = np.asarray(scores, dtype=float)
    s = np.asarray(priority, dtype=float)
    centred = s - s.mean()
    if len(y) < 3 or np.allclose(centred, 0.0):
        b1 = float(y.mean()) if len(y) else float("nan")
        se1 = float(y.std(ddof=1) / np.sqrt(len(y))) if len(y) > 1 else float("nan")
        out = {"beta1": b1, "beta1_se": se1, "beta2": float("nan"), "beta2_se": float("nan"), "p_beta2": float("nan")}
    else:
        coef, cov = _ols(y, np.column_stack([np.ones(len(y)), centred]))
        se = np.sqrt(np.diag(cov))
        out = {
            "beta1": float(coef[0]),
            "beta1_se": float(se[0]),
            "beta2": float(coef[1]),
            "beta2_se": float(se[1]),
            "p_beta2": float(stats.norm.sf(coef[1] / se[1])) if se[1] > 0 else float("nan"),
        }
    for b in ("beta1", "beta2"):
        out[f"{b}_low"] = out[b] - Z95 * out[f"{b}_se"]
        out[f"{b}_high"] = out[b] + Z95 * out[f"{b}_se"]
    return out


def groups_of(priority: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Quantile group of each patient's priority, 0 (lowest) to ``n_groups - 1`` (highest): quintiles,
    terciles below :data:`SMALL_COHORT` patients. Ties share a group (ranks by the average method)."""
    s = np.asarray(priority, dtype=float)
    k = n_groups or (3 if len(s) < SMALL_COHORT else 5)
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return np.minimum(((ranks - 0.5) / len(s) * k).astype(int), k - 1)


def gates(scores: np.ndarray, priority: np.ndarray, n_groups: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Average benefit within each quantile group of the priority (HC3 intervals) and the top group
    minus the bottom one. Groups with no patient (a priority with many ties) are left out."""
    y = np.asarray(scores, dtype=float)
    g = groups_of(priority, n_groups)
    present = np.unique(g)
    D = (g[:, None] == present[None, :]).astype(float)
    coef, cov = _ols(y, D)
    se = np.sqrt(np.diag(cov))
    table = pd.DataFrame(
        {
            "group": present + 1,
            "n": D.sum(axis=0).astype(int),
            "mean_priority": [float(np.mean(np.asarray(priority, dtype=float)[g == k])) for k in present],
            "gate": coef,
            "se": se,
            "low": coef - Z95 * se,
            "high": coef + Z95 * se,
        }
    )
    diff = float(coef[-1] - coef[0])
    dse = float(np.sqrt(max(cov[-1, -1] + cov[0, 0] - 2 * cov[-1, 0], 0.0))) if len(present) > 1 else float("nan")
    top = {"diff": diff, "se": dse, "low": diff - Z95 * dse, "high": diff + Z95 * dse}
    top["p"] = float(2 * stats.norm.sf(abs(diff) / dse)) if dse > 0 else float("nan")
    return table, top


def clan(X: pd.DataFrame, priority: np.ndarray, n_groups: int | None = None) -> pd.DataFrame:
    """Mean of each feature in the top and bottom priority groups and their difference (Welch's
    standard error, 95% interval); missing values are left out column by column."""
    g = groups_of(priority, n_groups)
    top, bottom = g == g.max(), g == g.min()
    rows = {}
    for c in X.columns:
        x = X[c].to_numpy(dtype=float)
        a, b = x[top & ~np.isnan(x)], x[bottom & ~np.isnan(x)]
        if len(a) < 2 or len(b) < 2:
            continue
        d = float(a.mean() - b.mean())
        se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
        rows[c] = {
            "top": float(a.mean()),
            "bottom": float(b.mean()),
            "diff": d,
            "low": d - Z95 * se,
            "high": d + Z95 * se,
        }
    return pd.DataFrame(rows).T


def _toc_arrays(scores: np.ndarray, priority: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """TOC at the end of each tie group of the priority (highest first) for each row of ``weights``
    (bootstrap counts, one replicate per row): the group's weight, the share ``q`` treated up to it
    and TOC there."""
    s = np.asarray(priority, dtype=float)
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    W = weights[:, order].astype(float)
    wg = np.add.reduceat(W, starts, axis=1)
    gg = np.add.reduceat(W * np.asarray(scores, dtype=float)[order][None, :], starts, axis=1)
    cw, cg = np.cumsum(wg, axis=1), np.cumsum(gg, axis=1)
    total = cw[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        toc = np.where(cw > 0, cg / np.where(cw > 0, cw, 1.0), 0.0) - cg[:, -1:] / total
    return wg / total, cw / total, toc


def _rate_from(
    scores: np.ndarray, priority: np.ndarray, weights: np.ndarray, grid: np.ndarray
) -> dict[str, np.ndarray]:
    w, q, toc = _toc_arrays(scores, priority, weights)
    autoc = (w * toc).sum(axis=1)
    qini = (w * q * toc).sum(axis=1)
    # TOC on the grid: the first tie group whose cumulative share reaches q
    at = np.stack([np.argmax(q >= g - 1e-12, axis=1) for g in grid], axis=1)
    return {"autoc": autoc, "qini": qini, "toc": np.take_along_axis(toc, at, axis=1)}


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of ``n`` patients as counts (one row per replicate), from ``seed``."""
    rng = np.random.default_rng([seed, 34])
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.int32)


def rate(
    scores: np.ndarray,
    priority: np.ndarray,
    seed: int = 0,
    n_boot: int = N_BOOT,
    grid: np.ndarray = TOC_GRID,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """AUTOC and Qini of ``priority`` judged by ``scores``, with bootstrap standard errors and 95%
    normal intervals, and the TOC curve on ``grid`` (share treated) with its pointwise band.

    ``TOC(q)`` is the mean score of the top ``q`` share by priority minus the mean of all;
    AUTOC is its mean over ``q = 1/n, 2/n, ..., 1`` (the area under the curve) and Qini the mean of
    ``q TOC(q)``. Tied priorities are treated together (the group's TOC at its end)."""
    y = np.asarray(scores, dtype=float)
    n = len(y)
    point = _rate_from(y, priority, np.ones((1, n)), grid)
    boot = _rate_from(y, priority, bootstrap_weights(n, n_boot, seed) if weights is None else weights, grid)
    out: dict[str, Any] = {}
    for k in ("autoc", "qini"):
        est, se = float(point[k][0]), float(boot[k].std(ddof=1))
        out[k], out[f"{k}_se"], out[f"{k}_low"], out[f"{k}_high"] = est, se, est - Z95 * se, est + Z95 * se
    toc_se = boot["toc"].std(axis=0, ddof=1)
    out["toc"] = pd.DataFrame(
        {
            "q": grid,
            "toc": point["toc"][0],
            "low": point["toc"][0] - Z95 * toc_se,
            "high": point["toc"][0] + Z95 * toc_se,
        }
    )
    return out


def rate_difference(
    scores: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int = 0, n_boot: int = N_BOOT
) -> dict[str, float]:
    """AUTOC of priority ``a`` minus that of ``b`` on the same patients, with a paired bootstrap
    (the same replicates for both) standard error and 95% interval."""
    y = np.asarray(scores, dtype=float)
    W = bootstrap_weights(len(y), n_boot, seed)
    one = np.ones((1, len(y)))
    grid = np.array([1.0])
    d = float(_rate_from(y, a, one, grid)["autoc"][0] - _rate_from(y, b, one, grid)["autoc"][0])
    se = float((_rate_from(y, a, W, grid)["autoc"] - _rate_from(y, b, W, grid)["autoc"]).std(ddof=1))
    return {"diff": d, "se": se, "low": d - Z95 * se, "high": d + Z95 * se}


@dataclass
class BenefitValidation:
    """BLP, GATES and RATE of one or more priorities (the benefit model's, ranking by risk) judged
    by the same doubly robust scores, and CLAN for the first; what the data alone can say about
    whether the predicted differences between patients are real.

    ``where`` says which scores judged them (cross-fitted in the development cohort, or a new
    centre's cohort); ``n`` is the number of patients scored.
    """

    where: str
    n: int
    blp: dict[str, dict[str, float]]
    rate: dict[str, dict[str, Any]]
    gates: dict[str, pd.DataFrame]
    top_minus_bottom: dict[str, dict[str, float]]
    clan: pd.DataFrame = field(default_factory=pd.DataFrame)
    versus: dict[str, float] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per priority: BLP ``beta1``/``beta2`` with intervals and ``p(beta2 > 0)``, AUTOC and
        Qini with intervals, GATES top minus bottom with its interval."""
        rows = {}
        for name in self.blp:
            b, r, t = self.blp[name], self.rate[name], self.top_minus_bottom[name]
            rows[name] = {
                "beta1": b["beta1"],
                "beta1_low": b["beta1_low"],
                "beta1_high": b["beta1_high"],
                "beta2": b["beta2"],
                "beta2_low": b["beta2_low"],
                "beta2_high": b["beta2_high"],
                "p_beta2_gt_0": b["p_beta2"],
                "autoc": r["autoc"],
                "autoc_low": r["autoc_low"],
                "autoc_high": r["autoc_high"],
                "qini": r["qini"],
                "qini_low": r["qini_low"],
                "qini_high": r["qini_high"],
                "top_minus_bottom": t["diff"],
                "top_minus_bottom_low": t["low"],
                "top_minus_bottom_high": t["high"],
            }
        return pd.DataFrame(rows).T

    def verdict(self, name: str = "benefit") -> str:
        """One sentence a clinician can read: is the heterogeneity shown, and is it shown better than risk's?"""
        b, r = self.blp[name], self.rate[name]
        shown = b["beta2_low"] > 0 or r["autoc_low"] > 0
        text = (
            f"{name}: BLP beta2 {b['beta2']:.2f} ({b['beta2_low']:.2f} to {b['beta2_high']:.2f}), AUTOC "
            f"{r['autoc']:.3f} ({r['autoc_low']:.3f} to {r['autoc_high']:.3f}) days: "
            + (
                "the ranking finds differences in benefit the data can show"
                if shown
                else "the data cannot show that its ranking finds real differences in benefit"
            )
        )
        if self.versus:
            v = self.versus
            text += f"; AUTOC minus ranking by risk {v['diff']:.3f} ({v['low']:.3f} to {v['high']:.3f})" + (
                ", better than risk" if v["low"] > 0 else ", not shown better than risk"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        """Numbers only (no patient rows), for the model's settings file, MLflow and reports."""
        return {
            "where": self.where,
            "n": self.n,
            "blp": self.blp,
            "rate": {
                k: {m: v for m, v in r.items() if m != "toc"} | {"toc": r["toc"].to_dict(orient="list")}
                for k, r in self.rate.items()
            },
            "gates": {k: g.to_dict(orient="list") for k, g in self.gates.items()},
            "top_minus_bottom": self.top_minus_bottom,
            "clan": self.clan.to_dict(orient="index"),
            "versus": self.versus,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenefitValidation:
        rate_ = {
            k: {m: v for m, v in r.items() if m != "toc"} | {"toc": pd.DataFrame(r["toc"])}
            for k, r in d["rate"].items()
        }
        return cls(
            d["where"],
            int(d["n"]),
            d["blp"],
            rate_,
            {k: pd.DataFrame(g) for k, g in d["gates"].items()},
            d["top_minus_bottom"],
            pd.DataFrame.from_dict(d.get("clan", {}), orient="index"),
            d.get("versus", {}),
        )

    def plot_toc(self, path: str | Path | None = None):
        """TOC curves (benefit of treating the top share by each priority over treating at random),
        with their pointwise 95% bands; saved to ``path`` when given. Returns the figure."""
        fig, ax = _figure()
        for name, r in self.rate.items():
            t = r["toc"]
            line = ax.plot(t["q"], t["toc"], marker="o", ms=3, label=f"{name} (AUTOC {r['autoc']:.3f})")[0]
            ax.fill_between(t["q"], t["low"], t["high"], color=line.get_color(), alpha=0.15)
        xlabel = "share of patients treated, highest priority first"
        ylabel = "days spared over the average\n(doubly robust, 95% band)"
        return self._finish(fig, ax, "TOC", xlabel, ylabel, path)

    def plot_gates(self, path: str | Path | None = None):
        """GATES: average benefit (doubly robust, 95% interval) in each quantile group of each
        priority, beside the group's mean predicted benefit; saved to ``path`` when given."""
        fig, ax = _figure()
        names = list(self.gates)
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            g = self.gates[name]
            x = g["group"].to_numpy() + (i - (len(names) - 1) / 2) * width
            err = np.vstack([g["gate"] - g["low"], g["high"] - g["gate"]])
            ax.errorbar(x, g["gate"], yerr=err, fmt="o", capsize=3, label=name)
        if "benefit" in self.gates:
            g = self.gates["benefit"]
            ax.plot(g["group"], g["mean_priority"], "k_", ms=14, mew=2, label="mean predicted benefit")
        return self._finish(fig, ax, "GATES", "group by priority (1 = lowest)", "severe-CRS days spared", path)

    def _finish(self, fig, ax, what: str, xlabel: str, ylabel: str, path: str | Path | None):
        """Zero line, labels, title and legend shared by the plots; saved to ``path`` when given."""
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{what}: {self.where}, {self.n} patients", fontsize=10)
        ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        if path is not None:
            fig.savefig(Path(path), dpi=110)
        return fig


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.8))
    return fig, fig.subplots()


def validate_benefit(
    scores: np.ndarray,
    priorities: dict[str, np.ndarray],
    X: pd.DataFrame | None = None,
    where: str = "",
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> BenefitValidation:
    """BLP, GATES and RATE of every priority (the first is the model's; CLAN on ``X`` for it) judged
    by the doubly robust ``scores`` of the same patients, and, when a ``risk`` priority is given,
    the paired AUTOC difference of the first against it."""
    y = np.asarray(scores, dtype=float)
    W = bootstrap_weights(len(y), n_boot, seed)
    b, r, g, t = {}, {}, {}, {}
    for name, s in priorities.items():
        s = np.asarray(s, dtype=float)
        b[name] = blp(y, s)
        r[name] = rate(y, s, weights=W)
        g[name], t[name] = gates(y, s)
    first = next(iter(priorities))
    versus = {}
    if "risk" in priorities and first != "risk":
        versus = rate_difference(y, priorities[first], priorities["risk"], seed=seed, n_boot=n_boot)
    cl = clan(X, priorities[first]) if X is not None and len(X.columns) else pd.DataFrame()
    return BenefitValidation(where, len(y), b, r, g, t, cl, versus)
