"""Discrimination and calibration metrics, weighted so that a patient bootstrap is a matrix of
resampling counts: one call scores every bootstrap replicate at once (no Python loop over
replicates).

All functions take ``y`` (n,), ``p`` (n,) and weights ``w`` (B, n); they return (B,).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from crsml.models import log_odds

METRICS = ("auroc", "auprc", "brier", "cal_intercept", "cal_slope")
_EPS = 1e-7


def _grouped(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ascending order of ``p`` and where each distinct value's run starts in it."""
    order = np.argsort(p, kind="stable")
    ps = p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    return order, starts


#: resamples computed together: a block of (16 to 32) x patients stays in the processor's cache,
#: which ran the bootstrap 2-4x faster than one pass over every resample (issue #36)
_BLOCK = 16


def _by_class(y: np.ndarray, p: np.ndarray, w: np.ndarray, metric) -> np.ndarray:
    """``metric(wp, wn)`` of each block of resamples, where ``wp`` and ``wn`` are the resampled
    weights of the events and of the non-events at each distinct predicted value, in ascending
    order of the value: (resamples in the block, distinct values) each."""
    order, starts = _grouped(p)
    yo = y[order].astype(bool)
    out = np.empty(w.shape[0])
    for s in range(0, w.shape[0], 2 * _BLOCK):
        wo = w[s : s + 2 * _BLOCK][:, order]
        out[s : s + 2 * _BLOCK] = metric(
            np.add.reduceat(wo * yo, starts, axis=1), np.add.reduceat(wo * ~yo, starts, axis=1)
        )
    return out


def _auroc(wp: np.ndarray, wn: np.ndarray) -> np.ndarray:
    below = np.cumsum(wn, axis=1) - wn
    num = (wp * (below + 0.5 * wn)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _auprc(wp: np.ndarray, wn: np.ndarray) -> np.ndarray:
    tp = np.cumsum(wp[:, ::-1], axis=1)  # from the highest predicted value down
    fp = np.cumsum(wn[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / tp[:, -1:]
    d_recall = np.diff(recall, axis=1, prepend=0.0)
    terms = d_recall * precision
    terms[np.isnan(terms)] = 0.0  # np.nansum, without its copy
    return terms.sum(axis=1)


def auroc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted AUROC (ties count one half)."""
    return _by_class(y, p, w, _auroc)


def auprc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted average precision (step interpolation, as scikit-learn)."""
    return _by_class(y, p, w, _auprc)


def brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w * (p - y) ** 2).sum(axis=1) / w.sum(axis=1)


def _newton(
    lp: np.ndarray, y: np.ndarray, w: np.ndarray, slope: bool, iters: int = 30, tol: float = 1e-10
) -> np.ndarray:
    """Weighted logistic recalibration ``logit P(y) = a + b * lp`` (b = 1 fixed unless ``slope``).

    Newton steps for a block of resamples at once, each from the solution of the whole sample
    (row 0 of ``w``), so most converge in three steps; a resample leaves the block when it has
    converged (step below ``tol``) or run away (separation, or no slope because the predictions
    are constant).
    """
    first, a0, b0 = _newton_block(lp, y, w[:1], slope, np.zeros(1), np.ones(1), iters, tol)
    if not (np.isfinite(a0).all() and np.isfinite(b0).all()):
        a0, b0 = np.zeros(1), np.ones(1)
    out = np.empty(w.shape[0])
    out[0] = first[0]
    for s in range(1, w.shape[0], _BLOCK):
        k = len(w[s : s + _BLOCK])
        out[s : s + k] = _newton_block(lp, y, w[s : s + k], slope, np.repeat(a0, k), np.repeat(b0, k), iters, tol)[0]
    return out


def _newton_block(
    lp: np.ndarray, y: np.ndarray, w: np.ndarray, slope: bool, a: np.ndarray, b: np.ndarray, iters: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    done = np.zeros(w.shape[0], dtype=bool)
    for _ in range(iters):
        a, b = np.clip(a, -60, 60), np.clip(b, -60, 60)
        act = ~done
        wa = w[act]
        mu = expit(a[act, None] + b[act, None] * lp)
        r = (y - mu) * wa
        v = mu * (1 - mu) * wa + 1e-12
        if not slope:
            da = r.sum(axis=1) / v.sum(axis=1)
            db = np.zeros(len(da))
        else:
            g0, g1 = r.sum(axis=1), r @ lp
            h00, h01, h11 = v.sum(axis=1), v @ lp, v @ (lp * lp)
            det = h00 * h11 - h01**2
            det = np.where(det > 1e-9 * h00 * h11, det, np.nan)  # constant predictions: no slope
            da = (h11 * g0 - h01 * g1) / det
            db = (-h01 * g0 + h00 * g1) / det
        a[act] += da  # a and b are np.clip's new arrays
        b[act] += db
        step = np.maximum(np.abs(da), np.abs(db))
        done[act] = ~np.isfinite(step) | (step < tol) | (np.maximum(np.abs(a[act]), np.abs(b[act])) >= 50)
        if done.all():
            break
    out = b if slope else a
    # a resample with (quasi-)separation has no finite estimate, and one still moving after
    # ``iters`` steps is on its way there: leave both out of the interval
    return np.where(done & np.isfinite(out) & (np.abs(out) < 50), out, np.nan), a, b


def cal_intercept(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Calibration-in-the-large: the intercept with the model's log odds as offset (ideal 0)."""
    return _newton(log_odds(p, _EPS), y.astype(float), w, slope=False)


def cal_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Calibration slope: the coefficient of the model's log odds (ideal 1; < 1 overfit)."""
    return _newton(log_odds(p, _EPS), y.astype(float), w, slope=True)


FUNCTIONS = {"auroc": auroc, "auprc": auprc, "brier": brier, "cal_intercept": cal_intercept, "cal_slope": cal_slope}


def format_interval(value: float, low: float, high: float) -> str:
    """An estimate with its interval for people: ``0.812 (0.771 to 0.850)``. "to" between the
    ends, so that a negative end reads as one (``-0.011 (-0.452 to 0.374)``)."""
    if not np.isfinite(value):
        return "not estimable"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.3f}"
    return f"{value:.3f} ({low:.3f} to {high:.3f})"


def format_intervals(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Each of ``metrics`` present in ``table`` as text with its interval (``auroc``, ``auroc_low``
    and ``auroc_high`` -> ``0.812 (0.771 to 0.850)``), one row per row of ``table``."""
    out = pd.DataFrame(index=table.index)
    for m in metrics:
        if m in table:
            out[m] = [
                format_interval(float(v), float(lo), float(hi))
                for v, lo, hi in zip(table[m], table[f"{m}_low"], table[f"{m}_high"], strict=True)
            ]
    return out


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Patient resampling counts: row 0 is the original sample (all ones)."""
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    return np.vstack([np.ones((1, n)), w])


def metric_table(y: np.ndarray, oof: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per model: each metric with its percentile bootstrap 95% interval.

    ``oof[name]`` is (repeats, n): out-of-fold predictions of every repeat of the
    cross-validation. Each metric is averaged over repeats; the bootstrap resamples patients
    (the same resample for every model and repeat, so models are compared on the same patients).
    """
    y = np.asarray(y, dtype=float)
    w = bootstrap_weights(len(y), n_boot, seed)
    rows = []
    for name, preds in oof.items():
        preds = np.atleast_2d(preds)
        row: dict[str, object] = {"model": name}
        for m, f in FUNCTIONS.items():
            vals = np.mean([f(y, p, w) for p in preds], axis=0)
            row[m] = vals[0]
            # no point estimate (constant predictions, separation): an interval from the
            # resamples that happen to converge would describe a different quantity
            row[f"{m}_low"], row[f"{m}_high"] = (
                np.nanpercentile(vals[1:], [2.5, 97.5]) if np.isfinite(vals[0]) else (np.nan, np.nan)
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def paired_difference(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str = "auroc", n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """``metric(a) - metric(b)`` on the same patients with a paired bootstrap 95% interval."""
    y = np.asarray(y, dtype=float)
    w = bootstrap_weights(len(y), n_boot, seed)
    f = FUNCTIONS[metric]
    d = np.mean([f(y, p, w) for p in np.atleast_2d(a)], axis=0) - np.mean(
        [f(y, p, w) for p in np.atleast_2d(b)], axis=0
    )
    low, high = np.nanpercentile(d[1:], [2.5, 97.5])
    return float(d[0]), float(low), float(high)
