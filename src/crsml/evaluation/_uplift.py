"""How well a benefit score ranks patients, judged against a known (simulated) benefit.

Used on simulated cohorts, where the simulator's truth gives each patient's benefit ``tau``:
the share of the oracle's gain that treating the top fraction by a score captures, a fixed
policy's share, the Qini area and the coverage of intervals (docs/tocilizumab_benefit.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def share_of_oracle(score: np.ndarray, tau: np.ndarray, frac: float, rng: np.random.Generator) -> float:
    """(gain of treating the top ``frac`` by ``score`` - random) / (oracle - random); ties broken at random."""
    k = max(1, int(round(frac * len(tau))))
    order = np.lexsort((rng.random(len(score)), -score))
    gain = tau[order[:k]].sum()
    oracle = np.sort(tau)[::-1][:k].sum()
    random = frac * tau.sum()
    return float((gain - random) / (oracle - random)) if oracle > random else float("nan")


def policy_share(treat: np.ndarray, tau: np.ndarray) -> float:
    """The same share for a fixed policy (its own fraction treated)."""
    frac = treat.mean()
    k = int(treat.sum())
    oracle = np.sort(tau)[::-1][:k].sum()
    random = frac * tau.sum()
    return float((tau[treat].sum() - random) / (oracle - random)) if oracle > random else float("nan")


def coverage(low: np.ndarray, high: np.ndarray, value: np.ndarray) -> float:
    """Share of rows whose ``value`` lies in ``[low, high]``."""
    return float(np.mean((low <= value) & (value <= high)))


def qini(score: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, float]:
    """Cumulative true gain by fraction treated, and its area above random over the oracle's."""
    n = len(tau)
    by = np.cumsum(tau[np.argsort(-score, kind="stable")])
    oracle = np.cumsum(np.sort(tau)[::-1])
    rand = np.arange(1, n + 1) / n * tau.sum()
    return by, float((by - rand).sum() / (oracle - rand).sum())


def uplift_table(
    scores: dict[str, np.ndarray], tau: np.ndarray, fractions: tuple[float, ...], seed: int
) -> pd.DataFrame:
    """One row per score: its share of the oracle's gain at each fraction, Qini and Spearman with ``tau``."""
    rng = np.random.default_rng(seed)
    rows = {}
    for name, s in scores.items():
        r = {f"top{int(f * 100)}_share": share_of_oracle(s, tau, f, rng) for f in fractions}
        r["qini"] = qini(s, tau)[1]
        r["spearman"] = float(pd.Series(s).corr(pd.Series(tau), method="spearman"))
        rows[name] = r
    return pd.DataFrame(rows).T
