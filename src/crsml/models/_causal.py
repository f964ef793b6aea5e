"""Observational diagnostics: cross-fitted nuisances, propensity discrimination and overlap,
trimming, covariate balance (standardised mean differences) and the AIPW average effect.

The average effect is cross-fitted on several random splits and aggregated by the median, its
variance including the spread between splits (Chernozhukov et al., Econometrics J 2018,
section 3.4): one split's estimate depends on which patients happened to share a fold.

Sign convention everywhere: ``benefit = Y(not now) - Y(now)``, severe-CRS days spared by giving
tocilizumab now; positive means tocilizumab helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import StratifiedKFold

from crsml.models._nuisance import classifier, regressor

DEFAULT_TRIM = 0.01
DEFAULT_SPLITS = 5  # random splits of the cross-fitting behind the average effect
SPLIT_SEED_STEP = 1000  # split s is cross-fitted with seed + 1000 s, so split 0 is crossfit(seed)


@dataclass
class Nuisances:
    """Cross-fitted propensity ``e`` and outcome means ``mu0``/``mu1`` (one value per row)."""

    e: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray

    def pseudo_outcome(self, T: np.ndarray, Y: np.ndarray, trim: float = DEFAULT_TRIM) -> np.ndarray:
        """Doubly robust pseudo-outcome of the benefit (its mean is the AIPW estimate)."""
        e = np.clip(self.e, trim, 1 - trim)
        return self.mu0 - self.mu1 + (1 - T) * (Y - self.mu0) / (1 - e) - T * (Y - self.mu1) / e


def crossfit(
    X: np.ndarray,
    T: np.ndarray,
    Y: np.ndarray,
    prop_params: dict,
    out_params: dict,
    folds: int = 3,
    seed: int = 0,
    e: np.ndarray | None = None,
) -> Nuisances:
    """Nuisances predicted for each row by models fitted on the other folds (folds stratified
    by treatment, so every fold sees treated patients). A cross-fitted propensity ``e`` from an
    earlier call with the same folds is reused rather than fitted again (another outcome)."""
    n = len(T)
    fit_e = e is None
    e = np.empty(n) if fit_e else e
    mu0, mu1 = np.empty(n), np.empty(n)
    for tr, va in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, T):
        if fit_e:
            e[va] = classifier(prop_params).fit(X[tr], T[tr]).predict_proba(X[va])[:, 1]
        for arm, out in ((0, mu0), (1, mu1)):
            sel = tr[T[tr] == arm]
            out[va] = regressor(out_params).fit(X[sel], Y[sel]).predict(X[va])
    return Nuisances(e, mu0, mu1)


def overlap(e: np.ndarray, trim: float = DEFAULT_TRIM) -> np.ndarray:
    """Inside the overlap region: estimated propensity within ``[trim, 1 - trim]``."""
    return (e >= trim) & (e <= 1 - trim)


def crump_bound(e: np.ndarray, floor: float = DEFAULT_TRIM) -> float:
    """The data-driven bound of Crump, Hotz, Imbens and Mitnik (Biometrika 2009): the average
    effect over patients with propensity in ``[a, 1 - a]`` has the smallest variance (under
    homoscedasticity) for ``a`` solving ``1 / (a (1 - a)) = 2 E[1 / (e (1 - e)) | 1 / (e (1 - e)) <= 1 / (a (1 - a))]``;
    never below ``floor`` (the bound that decides who is scored)."""
    e = np.clip(np.asarray(e, dtype=float), 1e-6, 1 - 1e-6)
    g = np.sort(1.0 / (e * (1.0 - e)))
    if not len(g) or g[-1] <= 2.0 * g.mean():
        return floor
    below = g > 2.0 * np.cumsum(g) / np.arange(1, len(g) + 1)  # past the solution gamma
    gamma = g[int(np.argmax(below))]
    return max(floor, float(0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0))))


def crossfit_splits(
    X: np.ndarray,
    T: np.ndarray,
    Y: np.ndarray,
    prop_params: dict,
    out_params: dict,
    folds: int = 3,
    seed: int = 0,
    splits: int = DEFAULT_SPLITS,
    first: Nuisances | None = None,
    e: Sequence[np.ndarray] | None = None,
) -> list[Nuisances]:
    """:func:`crossfit` on ``splits`` random splits (seeds ``seed + 1000 s``). ``first``, already
    cross-fitted with ``seed``, is reused as split 0; ``e``, propensities of an earlier call with
    the same seeds, are reused for another outcome."""
    if splits < 1:
        raise ValueError("splits must be at least 1")
    out = [] if first is None else [first]
    for s in range(len(out), splits):
        out.append(
            crossfit(X, T, Y, prop_params, out_params, folds, seed + SPLIT_SEED_STEP * s, e=None if e is None else e[s])
        )
    return out


def average_effect(
    nu: Nuisances | Sequence[Nuisances],
    T: np.ndarray,
    Y: np.ndarray,
    trim: float = DEFAULT_TRIM,
    within: np.ndarray | None = None,
    region: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """AIPW average benefit over the patients whose cross-fitted propensity (the mean over
    splits) lies inside Crump's bound (and ``within``, when given), and that region; ``region``
    given instead fixes the patients (a second outcome over the same ones). Near-zero
    propensities weigh a handful of treated patients heavily: with the centre a feature, a
    fixed 0.01 bound left the average 0.06 days low at 72 h and its interval covered the truth
    in 17 of 20 cohorts. With several splits the estimate is the median of theirs and its
    variance the median of ``se_s^2 + (ate_s - ate)^2``."""
    nus = [nu] if isinstance(nu, Nuisances) else list(nu)
    e = np.mean([n.e for n in nus], axis=0)
    bound = crump_bound(e, trim)
    if region is None:
        region = overlap(e, bound) & (True if within is None else within)
    each = [aipw(n.pseudo_outcome(T, Y, trim)[region]) for n in nus]
    if len(each) == 1:
        return each[0] | {"bound": bound, "splits": 1, "split_sd": 0.0}, region
    ates = np.array([a["ate"] for a in each])
    ses = np.array([a["se"] for a in each])
    est = float(np.median(ates))
    se = float(np.sqrt(np.median(ses**2 + (ates - est) ** 2)))
    return (
        _normal_interval(est, se, int(region.sum()))
        | {"bound": bound, "splits": len(each), "split_sd": float(np.std(ates, ddof=1))},
        region,
    )


def trim_reason(e: float | np.ndarray, trim: float = DEFAULT_TRIM) -> np.ndarray:
    e = np.atleast_1d(np.asarray(e, dtype=float))
    return np.where(
        e < trim,
        f"outside overlap: probability of tocilizumab now below {trim:g} "
        "(such patients were almost never treated now; no benefit can be estimated)",
        np.where(e > 1 - trim, f"outside overlap: probability of tocilizumab now above {1 - trim:g}", ""),
    )


def aipw(phi: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Average benefit with a normal interval from the influence function."""
    n = len(phi)
    if n == 0:  # no patient to average over (for example none inside the bound)
        return {"ate": float("nan"), "se": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    est = float(np.mean(phi))
    se = float(np.std(phi, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return _normal_interval(est, se, n, alpha)


def _normal_interval(est: float, se: float, n: int, alpha: float = 0.05) -> dict[str, float]:
    z = stats.norm.ppf(1 - alpha / 2)
    return {"ate": est, "se": se, "low": est - z * se, "high": est + z * se, "n": n}


def smd(X: pd.DataFrame, T: np.ndarray, w: np.ndarray | None = None) -> pd.Series:
    """Standardised mean difference (treated minus untreated over the pooled SD) per column,
    with optional weights; missing values are left out column by column."""
    w = np.ones(len(T)) if w is None else w
    out = {}
    for c in X.columns:
        x = X[c].to_numpy(dtype=float)
        ok = ~np.isnan(x)
        t, u = ok & (T == 1), ok & (T == 0)
        if t.sum() < 2 or u.sum() < 2:
            continue
        m1, m0 = np.average(x[t], weights=w[t]), np.average(x[u], weights=w[u])
        v1 = np.average((x[t] - m1) ** 2, weights=w[t])
        v0 = np.average((x[u] - m0) ** 2, weights=w[u])
        sd = np.sqrt((v1 + v0) / 2)
        out[c] = 0.0 if sd == 0 else (m1 - m0) / sd
    return pd.Series(out, dtype=float)


def ipw_weights(T: np.ndarray, e: np.ndarray, trim: float = DEFAULT_TRIM) -> np.ndarray:
    e = np.clip(e, trim, 1 - trim)
    return np.where(T == 1, 1 / e, 1 / (1 - e))


def balance_table(X: pd.DataFrame, T: np.ndarray, e: np.ndarray, trim: float = DEFAULT_TRIM) -> pd.DataFrame:
    """SMD before and after inverse-probability weighting, worst first."""
    t = pd.DataFrame({"smd_before": smd(X, T), "smd_weighted": smd(X, T, ipw_weights(T, e, trim))})
    return t.reindex(t["smd_before"].abs().sort_values(ascending=False).index)


def plot_overlap(e: np.ndarray, T: np.ndarray, path: str | Path, trim: float = DEFAULT_TRIM) -> Path:
    """Histograms of the estimated propensity by arm, with the trimming bounds."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 41)
    ax.hist(e[T == 0], bins=bins, alpha=0.6, density=True, label=f"not now (n={int((T == 0).sum())})")
    ax.hist(e[T == 1], bins=bins, alpha=0.6, density=True, label=f"now (n={int((T == 1).sum())})")
    for b in (trim, 1 - trim):
        ax.axvline(b, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("estimated probability of tocilizumab now (cross-fitted)")
    ax.set_ylabel("density (log)")
    ax.legend(frameon=False)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    return p
