"""Two checks made at training time beside the nested cross-validation.

* Internal-external cross-validation (Steyerberg & Harrell, J Clin Epidemiol 2016; Riley et al.,
  BMJ 2016): leave one group (a centre) out, develop on the rest with the same procedure, judge on
  the group left out; pool each figure across groups by a random-effects meta-analysis
  (Paule-Mandel, statsmodels) with its 95% prediction interval (Riley et al., BMJ 2011) and
  the heterogeneity (tau^2, I^2).
* Prediction instability (Riley & Collins, Biom J 2023): the model refitted on bootstrap samples
  with its chosen settings; each patient's prediction from the model against those of the
  bootstrap models, and the mean absolute prediction error (MAPE). The model keeps only a binned
  summary (no patient's prediction).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit
from scipy.stats import t as student_t
from statsmodels.stats.meta_analysis import combine_effects

from crsml.evaluation._metrics import FUNCTIONS, bootstrap_weights
from crsml.models import XGBRiskClassifier

#: figures pooled across groups, and the scale each is pooled on
POOLED = {"auroc": "logit", "cal_intercept": "identity", "cal_slope": "identity", "oe": "log"}
_SCALES = {
    "logit": (logit, lambda v: 1 / (1 + np.exp(-v))),
    "log": (np.log, np.exp),
    "identity": (lambda v: v, lambda v: v),
}


def _replicates(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    w = bootstrap_weights(len(y), n_boot, seed)
    out = {m: FUNCTIONS[m](y.astype(float), p, w) for m in ("auroc", "cal_intercept", "cal_slope", "brier")}
    out["oe"] = (w @ y) / (w @ p)
    return out


def pool(estimates: np.ndarray, ses: np.ndarray, scale: str = "identity") -> dict[str, float]:
    """Random-effects (Paule-Mandel tau^2, recommended over DerSimonian-Laird by Veroniki et al., Res
    Synth Methods 2016) pooled estimate, its 95% confidence and prediction
    intervals (t with k - 2 degrees of freedom), tau^2 and I^2; back on the figure's own scale."""
    to, back = _SCALES[scale]
    e, se = to(np.asarray(estimates, dtype=float)), np.asarray(ses, dtype=float)
    ok = np.isfinite(e) & np.isfinite(se) & (se > 0)
    e, se = e[ok], se[ok]
    k = len(e)
    if k < 2:
        return {"groups": k}
    with np.errstate(divide="ignore", invalid="ignore"):  # I^2 of identical estimates: 0, set below
        r = combine_effects(e, se**2, method_re="iterated")  # Paule-Mandel: tau^2 truncated at 0
    mu, se_mu, tau2 = float(r.mean_effect_re), float(r.sd_eff_w_re), max(float(r.tau2), 0.0)
    out = {
        "groups": k,
        "pooled": float(back(mu)),
        "low": float(back(mu - 1.96 * se_mu)),
        "high": float(back(mu + 1.96 * se_mu)),
        "tau2": tau2,
        "i2": float(max(r.i2, 0.0)) if np.isfinite(r.i2) else 0.0,
    }
    if k >= 3:
        half = student_t.ppf(0.975, k - 2) * np.sqrt(tau2 + se_mu**2)
        out |= {"prediction_low": float(back(mu - half)), "prediction_high": float(back(mu + half))}
    return out


def internal_external(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: pd.Series,
    make_model: Any,
    n_boot: int = 200,
    seed: int = 0,
    log: Any = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave each group out in turn: per-group figures (with bootstrap standard errors) and the
    pooled random-effects table. ``make_model()`` returns a new unfitted estimator."""
    g = groups.astype("string").fillna("(missing)").to_numpy(dtype=object)
    rows, reps = [], {}
    for value in sorted(set(g)):
        test = g == value
        if test.all() or y[~test].min() == y[~test].max() or y[test].min() == y[test].max():
            log(f"internal-external cross-validation: group {value} left out of the pooling (one class only)")
            continue
        model = make_model().fit(X[~test], y[~test])
        p = model.predict_proba(X[test])[:, 1]
        r = _replicates(y[test], p, n_boot, seed)
        reps[value] = r
        row = {"group": value, "n": int(test.sum()), "events": int(y[test].sum())}
        for m, v in r.items():
            row[m] = float(v[0])
            row[f"{m}_se"] = float(np.nanstd(_SCALES[POOLED.get(m, "identity")][0](v[1:]), ddof=1))
        rows.append(row)
        log(
            f"internal-external cross-validation: {value} left out ({row['n']} patients, {row['events']} events): "
            f"AUROC {row['auroc']:.3f}"
        )
    per_group = pd.DataFrame(rows)
    pooled = (
        pd.DataFrame({m: pool(per_group[m], per_group[f"{m}_se"], scale) for m, scale in POOLED.items()}).T
        if len(per_group) >= 2
        else pd.DataFrame()
    )
    return per_group, pooled


def prediction_instability(
    model: XGBRiskClassifier, X: pd.DataFrame, y: np.ndarray, n_boot: int = 20, seed: int = 0, bins: int = 10
) -> tuple[dict[str, Any], np.ndarray]:
    """Bootstrap refits of ``model`` with its chosen settings; returns the aggregate summary (MAPE,
    and per decile of the model's risk the 2.5/50/97.5 percentiles of the bootstrap models' risks)
    and, in memory only, the (n_boot, n) matrix of bootstrap predictions."""
    p0 = model.predict_proba(X)[:, 1]
    rng = np.random.default_rng(seed)
    P = np.empty((n_boot, len(y)))
    for b in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        P[b] = model.refit_boosters(X.iloc[idx], y[idx], seed=seed + b).predict_proba(X)[:, 1]
    err = np.abs(P - p0[None, :])
    edges = np.unique(np.quantile(p0, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p0, side="right") - 1, 0, len(edges) - 2)
    table = []
    for k in range(len(edges) - 1):
        sel = which == k
        if sel.sum() < 10:  # no aggregate of fewer than 10 patients is kept
            continue
        q = np.percentile(P[:, sel], [2.5, 50, 97.5])
        table.append(
            {
                "risk_low": float(edges[k]),
                "risk_high": float(edges[k + 1]),
                "model_mean": float(p0[sel].mean()),
                "bootstrap_p2_5": float(q[0]),
                "bootstrap_median": float(q[1]),
                "bootstrap_p97_5": float(q[2]),
                "mape": float(err[:, sel].mean()),
                "patients": int(sel.sum()),
            }
        )
    summary = {
        "n_boot": n_boot,
        "mape": float(err.mean()),
        "mape_p90_patient": float(np.quantile(err.mean(axis=0), 0.9)),
        "max_patient_mape": float(err.mean(axis=0).max()),
        "by_risk": table,
    }
    return summary, P


def plot_instability(p0: np.ndarray, P: np.ndarray, ax: Any = None, max_points: int = 20_000, seed: int = 0) -> Any:
    """The instability plot: each patient's risk from the model (x) against the bootstrap models' (y)."""
    from matplotlib.figure import Figure

    ax = ax or Figure(figsize=(5, 5)).subplots()
    xs = np.repeat(p0[None, :], P.shape[0], axis=0).ravel()
    ys = P.ravel()
    if len(xs) > max_points:
        keep = np.random.default_rng(seed).choice(len(xs), max_points, replace=False)
        xs, ys = xs[keep], ys[keep]
    ax.scatter(xs, ys, s=2, alpha=0.2)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(
        xlabel="risk from the model",
        ylabel="risk from bootstrap models",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"MAPE {np.abs(P - p0[None, :]).mean():.3f} ({P.shape[0]} bootstrap refits)",
    )
    return ax


def plot_instability_summary(summary: dict[str, Any], ax: Any = None) -> Any:
    """The instability plot from the binned summary a model carries (percentile band by risk decile)."""
    from matplotlib.figure import Figure

    ax = ax or Figure(figsize=(5, 5)).subplots()
    t = pd.DataFrame(summary.get("by_risk", []))
    if t.empty:
        ax.text(0.5, 0.5, "no instability summary", ha="center")
        return ax
    ax.fill_between(
        t["model_mean"], t["bootstrap_p2_5"], t["bootstrap_p97_5"], alpha=0.3, label="95% of bootstrap risks"
    )
    ax.plot(t["model_mean"], t["bootstrap_median"], "o-", label="median bootstrap risk")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(
        xlabel="risk from the model (decile mean)",
        ylabel="risk from bootstrap models",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"prediction instability: MAPE {summary['mape']:.3f} ({summary['n_boot']} refits)",
    )
    ax.legend(loc="upper left", fontsize=8)
    return ax
