"""Figures of a landmark supermodel at each landmark of its grid.

A supermodel is fitted on every patient at every landmark, but a clinician uses it at one time:
its discrimination and calibration are read landmark by landmark, each patient once (the
dynamic AUROC over time of van Houwelingen & Putter, *Dynamic Prediction in Clinical Survival
Analysis*, 2011, ch. 7), never pooled over rows that repeat patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.evaluation._metrics import format_intervals, metric_table


def landmark_of(X: pd.DataFrame) -> np.ndarray:
    """The landmark of each row of a feature frame indexed by ``(patient_id, landmark_h)``."""
    return X.index.get_level_values("landmark_h").to_numpy(dtype=float)


def landmark_tables(
    X: pd.DataFrame, y: np.ndarray, oof: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """:func:`metric_table` at each landmark of ``X``'s rows: indexed by ``(landmark_h, model)``,
    with ``n`` (patients) and ``events`` at that landmark."""
    at = landmark_of(X)
    y = np.asarray(y)
    frames = {}
    for L in np.unique(at):
        sel = at == L
        t = metric_table(y[sel], {k: np.atleast_2d(v)[:, sel] for k, v in oof.items()}, n_boot=n_boot, seed=seed)
        frames[float(L)] = t.assign(n=int(sel.sum()), events=int(y[sel].sum()))
    return pd.concat(frames, names=["landmark_h", "model"])


def format_landmark_auroc(by_landmark: pd.DataFrame, metric: str = "auroc") -> pd.DataFrame:
    """``metric`` (interval) of each model (columns) at each landmark (rows), for people."""
    t = by_landmark
    out = format_intervals(t, [metric])[metric].unstack("model")[list(dict.fromkeys(t.index.get_level_values("model")))]
    counts = t.groupby(level="landmark_h")[["n", "events"]].first()
    out.insert(0, "patients (events)", [f"{n} ({e})" for n, e in zip(counts["n"], counts["events"], strict=True)])
    out.index = [f"{L:g} h" for L in out.index]
    return out


def by_landmark_frame(by_landmark: dict) -> pd.DataFrame:
    """A model's saved figures at each landmark (``metadata["by_landmark"]``: landmark -> model ->
    metric) as the frame :func:`landmark_tables` returned, indexed by ``(landmark_h, model)``."""
    frames = {float(L): pd.DataFrame.from_dict(models, orient="index") for L, models in by_landmark.items()}
    out = pd.concat(frames, names=["landmark_h", "model"])
    return out.sort_index(level="landmark_h", sort_remaining=False)


def plot_by_landmark(by_landmark: pd.DataFrame, metric: str = "auroc", models: list[str] | None = None, top: int = 3):
    """``metric`` with its 95% interval against the landmark, one line per model: the dynamic
    AUROC over time (van Houwelingen & Putter 2011). ``models``: which (default the first, the
    model, and the ``top`` baselines best on average). Returns the matplotlib Axes."""
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(by_landmark.index.get_level_values("model")))
    if models is None:
        mean = by_landmark[metric].groupby(level="model").mean()
        models = [names[0], *mean.drop(index=names[0]).sort_values(ascending=False).index[:top]]
    ax = Figure(figsize=(6.4, 4.2)).subplots()
    for i, name in enumerate(models):
        g = by_landmark.xs(name, level="model").sort_index()
        x = g.index.to_numpy(dtype=float) + (i - (len(models) - 1) / 2) * 0.8  # side by side, not on top
        ax.errorbar(
            x,
            g[metric],
            yerr=[g[metric] - g[f"{metric}_low"], g[f"{metric}_high"] - g[metric]],
            marker="o",
            lw=2.2 if i == 0 else 1.0,
            capsize=2,
            label=name,
        )
    if metric == "auroc":
        ax.axhline(0.5, ls=":", c="grey")
    ax.set(xlabel="landmark (hours after infusion)", ylabel=metric.upper() if metric == "auroc" else metric)
    ax.set_title(f"{metric.upper() if metric == 'auroc' else metric} at each landmark, out of fold (95% intervals)")
    ax.legend(fontsize=7)
    return ax
