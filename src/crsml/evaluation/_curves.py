"""Curve data (ROC, calibration, decision curve) as small JSON-able tables, and their plots.

Curves are drawn from out-of-fold predictions averaged over the cross-validation repeats; they
hold aggregates only (no patient rows), so they can be logged and stored in the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

THRESHOLDS = np.round(np.arange(0.01, 0.81, 0.01), 2)


def save_figure(ax: Any, path: str | Path) -> Path:
    """Write the figure of ``ax`` as a PNG without a timestamp (the same figure gives the same bytes).
    Figures are drawn as ``matplotlib.figure.Figure`` objects, outside pyplot, so a notebook's
    backend and its open figures are never touched."""
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    return Path(path)


def roc_points(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    fpr, tpr, _ = roc_curve(y, p)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Observed rate against mean predicted risk in quantile bins (with counts)."""
    q = pd.qcut(pd.Series(p).rank(method="first"), min(bins, max(1, len(p) // 10)), labels=False)
    g = pd.DataFrame({"p": p, "y": y, "bin": q}).groupby("bin")
    return pd.DataFrame({"predicted": g["p"].mean(), "observed": g["y"].mean(), "n": g.size()}).reset_index(drop=True)


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Net benefit of treating when ``p >= t`` (Vickers and Elkin, Med Decis Making 2006)."""
    y = np.asarray(y, dtype=bool)
    n = len(y)
    treat = p[None, :] >= thresholds[:, None]
    tp = (treat & y).sum(axis=1) / n
    fp = (treat & ~y).sum(axis=1) / n
    return tp - fp * thresholds / (1 - thresholds)


def decision_curve(y: np.ndarray, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    y = np.asarray(y, dtype=bool)
    prev = y.mean()
    out = {
        "threshold": THRESHOLDS,
        "treat all": prev - (1 - prev) * THRESHOLDS / (1 - THRESHOLDS),
        "treat none": np.zeros(len(THRESHOLDS)),
    }
    out |= {name: net_benefit(y, p) for name, p in preds.items()}
    return pd.DataFrame(out)


def curve_data(y: np.ndarray, oof: dict[str, np.ndarray]) -> dict[str, object]:
    """ROC points and calibration bins per model, and the decision curve, as JSON-able dicts."""
    mean = {k: np.atleast_2d(v).mean(axis=0) for k, v in oof.items()}
    return {
        "roc": {k: roc_points(y, p).to_dict(orient="list") for k, p in mean.items()},
        "calibration": {k: calibration_bins(y, p).to_dict(orient="list") for k, p in mean.items()},
        "decision": decision_curve(y, mean).to_dict(orient="list"),
    }


def plot_curves(curves: dict, out_dir: str | Path, model: str, title: str = "") -> dict[str, Path]:
    """ROC, calibration and decision-curve PNGs; returns their paths."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    fig = Figure(figsize=(5.2, 5))
    ax = fig.subplots()
    for name, pts in curves["roc"].items():
        ax.plot(pts["fpr"], pts["tpr"], lw=2.2 if name == model else 1.0, label=name)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"ROC (out-of-fold) {title}")
    ax.legend(fontsize=7, loc="lower right")
    paths["roc"] = out_dir / "roc.png"
    fig.tight_layout()
    fig.savefig(paths["roc"], dpi=110)

    fig = Figure(figsize=(5.2, 5))
    ax = fig.subplots()
    cal = curves["calibration"][model]
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="ideal")
    ax.plot(cal["predicted"], cal["observed"], "o-", label=model)
    ax.set(
        xlabel="predicted risk",
        ylabel="observed proportion",
        title=f"Calibration (out-of-fold) {title}",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=7)
    paths["calibration"] = out_dir / "calibration.png"
    fig.tight_layout()
    fig.savefig(paths["calibration"], dpi=110)

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    dc = pd.DataFrame(curves["decision"])
    for col in dc.columns[1:]:
        style = {"treat all": dict(c="grey", ls="--"), "treat none": dict(c="black", ls=":")}.get(col, {})
        ax.plot(dc["threshold"], dc[col], lw=2.2 if col == model else 1.0, label=col, **style)
    top = np.nanmax(dc.drop(columns="threshold").to_numpy())
    ax.set(
        xlabel="risk threshold",
        ylabel="net benefit",
        title=f"Decision curve (out-of-fold) {title}",
        ylim=(-0.05, max(0.05, top * 1.1)),
    )
    ax.legend(fontsize=7)
    paths["decision"] = out_dir / "decision_curve.png"
    fig.tight_layout()
    fig.savefig(paths["decision"], dpi=110)
    return paths
