"""The evaluation report (``crsml evaluate``): a self-contained HTML page in the model card's style,
``evaluation.json`` with every figure, and the PNGs. Aggregates only: no patient row or identifier."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from crsml.reporting._model_card import _img, _table, write_page
from crsml.validation import EvaluationResult

_SECTIONS = {
    "calibration": "Calibration: loess curve with bootstrap 95% band (Austin & Steyerberg 2020)",
    "decision_curve": "Decision curve: net benefit against threshold, model (95% band), baselines, treat all",
    "forest_auroc": "AUROC by subgroup (95% intervals)",
    "forest_oe": "Observed/expected by subgroup (95% intervals)",
    "case_mix": "Case mix: standardised differences of the important predictors",
}


def _fmt_table(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for m in metrics:
        if m in df:
            out[m] = [("not estimable" if pd.isna(v) else f"{v:.3f}" if pd.isna(lo) else f"{v:.3f} ({lo:.3f}-{hi:.3f})")
                      for v, lo, hi in zip(df[m], df[f"{m}_low"], df[f"{m}_high"], strict=True)]
    return out


def write_evaluation_report(result: EvaluationResult, out_dir: str | Path, title: str = "") -> Path:
    """Write ``index.html``, ``evaluation.json`` and the figures to ``out_dir``; return the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = result.model_info
    title = title or f"crsml evaluation: {result.task} at L = {result.landmark_h:g} h"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    judged = ", ".join(f"{k} {v}" for k, v in (("registered model", info.get("registered_name")),
                                               ("version", info.get("version")),
                                               ("files SHA-256", (info.get("model_digest") or "")[:16])) if v)
    parts.append("<p>" + html.escape(
        f"Model judged: {judged or 'a model directory'}; outcome within {result.horizon_h / 24:g} days of the landmark. "
        f"95% intervals: {result.n_boot} bootstrap resamples of patients (seed {result.seed}).") + "</p>")
    for lin in info.get("lineage") or []:
        parts.append("<p>" + html.escape(f"Updated model: {lin.get('method')} ({lin.get('chosen_by')}) from parent "
                                         f"{(lin.get('parent_digest') or '')[:16]}") + "</p>")
    for note in result.notes:
        parts.append(f"<div class='warn'>{html.escape(note)}</div>")

    parts.append("<h2>Flow of patients</h2>")
    flow = result.flow.copy()
    flow["excluded"] = ["; ".join(f"{n} {r}" for r, n in e.items()) for e in flow["excluded"]]
    parts.append(_table(flow))

    parts.append("<h2>Performance</h2>")
    metrics = ["auroc", "auprc", "brier", "scaled_brier", "oe", "cal_intercept", "cal_slope", "ici", "e50", "e90"]
    parts.append(_table(_fmt_table(result.table, metrics)))
    parts.append("<p>O/E: observed over expected events (ideal 1). Calibration-in-the-large: intercept with the model's "
                 "log odds as offset (ideal 0). Slope: ideal 1, below 1 means predictions too extreme. ICI, E50, E90: "
                 "mean, median and 90th percentile absolute difference between the loess-smoothed observed risk and the "
                 "predicted risk.</p>")
    parts.append("<h2>Net benefit: the model against each strategy</h2>")
    parts.append(_table(result.decision_differences.round(4)))

    cm = result.case_mix_summary
    parts.append("<h2>Case mix and shift</h2>")
    if cm.get("available"):
        parts.append("<p>" + html.escape(
            f"This is a check of {cm['kind']}. Membership C statistic {cm['membership_c']:.3f} (0.5: the new patients "
            f"cannot be told apart from the development patients; Debray et al. 2015). Linear predictor mean (SD): "
            f"development {cm['development_lp_mean']:.2f} ({cm['development_lp_sd']:.2f}), new "
            f"{cm['new_lp_mean']:.2f} ({cm['new_lp_sd']:.2f}); development outcome rate "
            f"{cm['development_event_rate']:.1%} over {cm['development_n']} patients.") + "</p>")
        parts.append(_table(result.case_mix.set_index("feature").round(3)))
    if len(result.subgroups):
        parts.append("<h2>Subgroups</h2><p>Groups with fewer than 10 events (or non-events) are shown and flagged as "
                     "too small to judge.</p>")
        s = result.subgroups.set_index(["column", "value"])
        shown = s[["n", "events", "too_small"]].join(_fmt_table(s, ["auroc", "oe", "cal_intercept", "cal_slope", "brier"]))
        parts.append(_table(shown))
    paths = result.plots(out)
    parts.append("<h2>Figures</h2><div class='figs'>" + "".join(_img(paths[k], v) for k, v in _SECTIONS.items())
                 + "</div>")
    (out / "evaluation.json").write_text(json.dumps(result.to_dict(), indent=1))
    return write_page(out, title, parts)
