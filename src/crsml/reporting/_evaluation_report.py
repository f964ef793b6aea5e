"""The evaluation report (``crsml evaluate``): a self-contained HTML page in the model card's style
(``templates/evaluation_report.html``), ``evaluation.json`` with every figure, and the PNGs.
Aggregates only: no patient row or identifier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import singledispatch
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.evaluation import format_interval, format_intervals, format_landmark_auroc
from crsml.reporting._html import figure, render, table
from crsml.validation import METRIC_TITLES, BenefitEvaluation, EvaluationResult

_FIGURES = {
    "calibration": "Calibration: loess curve with bootstrap 95% band (Austin & Steyerberg 2020)",
    "decision_curve": "Decision curve: net benefit against threshold, model (95% band), baselines, treat all",
    "forest_auroc": "AUROC by subgroup (95% intervals)",
    "forest_oe": "Observed/expected by subgroup (95% intervals)",
    "case_mix": "Case mix: standardised differences of the important predictors",
}
#: column titles for people
TITLES = METRIC_TITLES | {
    "n": "patients",
    "events": "events",
    "too_small": "too small to judge",
    "excluded": "left out",
    "feature": "feature",
    "development_mean": "development mean",
    "development_sd": "development SD",
    "new_mean": "new mean",
    "new_sd": "new SD",
    "standardised_difference": "standardised difference",
    "development_missing": "development missing (share)",
    "new_missing": "new missing (share)",
    "column": "subgroup by",
    "value": "group",
}


def _titled(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns=TITLES).rename_axis(index=[TITLES.get(n, n) for n in df.index.names])


def _judged(info: dict, *extra: tuple[str, object]) -> str:
    """The judged model in words: its registered name, version and files digest (and ``extra``)."""
    return ", ".join(
        f"{k} {v}"
        for k, v in (
            ("registered model", info.get("registered_name")),
            ("version", info.get("version")),
            ("files SHA-256", (info.get("model_digest") or "")[:16]),
            *extra,
        )
        if v
    )


@singledispatch
def write_evaluation_report(
    result: EvaluationResult, out_dir: str | Path, title: str = "", extra_figures: Sequence[tuple[Path, str]] = ()
) -> Path:
    """Write ``index.html``, ``evaluation.json`` and the figures to ``out_dir``; return the HTML path.

    ``extra_figures`` are further (PNG path, caption) pairs shown after the others (a supermodel's
    trajectories of a few patients, drawn without their identifiers)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = result.model_info
    model_row = f"this model ({result.task})"
    judged = _judged(info)
    ctx: dict = {
        "title": title or f"crsml evaluation: {result.task} at L = {result.landmark_h:g} h",
        "judged": f"Model judged: {judged or 'a model directory'}; outcome within {result.horizon_h / 24:g} days of "
        f"the landmark. 95% intervals: {result.n_boot} bootstrap resamples of patients (seed {result.seed}).",
        "lineage": [
            f"Updated model: {lin.get('method')} ({lin.get('chosen_by')}) from parent "
            f"{(lin.get('parent_digest') or '')[:16]}"
            for lin in info.get("lineage") or []
        ],
        "notes": list(result.notes),
    }
    flow = result.flow.copy()
    flow["excluded"] = ["; ".join(f"{n} {r}" for r, n in e.items()) for e in flow["excluded"]]
    ctx["flow"] = table(_titled(flow.rename_axis("step")))
    metrics = list(METRIC_TITLES)
    perf = format_intervals(result.table, metrics).rename(index={"model": model_row})
    ctx["performance"] = table(_titled(perf).rename_axis("model"))
    d = result.decision_differences
    ctx["decision"] = table(
        pd.DataFrame(
            {
                "this model against": d["versus"].replace({"treat_all": "treat all", "treat_none": "treat none"}),
                "risk threshold": d["threshold"].map("{:.2f}".format),
                "difference in net benefit (95% interval)": [
                    format_interval(float(v), float(lo), float(hi))
                    for v, lo, hi in zip(d["difference"], d["low"], d["high"], strict=True)
                ],
            }
        ),
        index=False,
    )
    cm = result.case_mix_summary
    if cm.get("available"):
        ctx["case_mix"] = {
            "text": f"This is a check of {cm['kind']}. Membership C statistic {cm['membership_c']:.3f} (0.5: the new "
            "patients cannot be told apart from the development patients; Debray et al. 2015). Linear "
            f"predictor mean (SD): development {cm['development_lp_mean']:.2f} ({cm['development_lp_sd']:.2f}), "
            f"new {cm['new_lp_mean']:.2f} ({cm['new_lp_sd']:.2f}); development outcome rate "
            f"{cm['development_event_rate']:.1%} over {cm['development_n']} patients.",
            "table": table(_titled(result.case_mix.set_index("feature").round(3))),
        }
    if len(result.subgroups):
        s = result.subgroups.set_index(["column", "value"])
        shown = s[["n", "events"]].assign(too_small=np.where(s["too_small"].astype(bool), "yes", "no"))
        shown = shown.join(format_intervals(s, ["auroc", "oe", "cal_intercept", "cal_slope", "brier"]))
        ctx["subgroups"] = table(_titled(shown))
    by = result.by_landmark
    if by is not None and not by.empty:
        cal = by.xs("model", level="model")
        nb = result.decision_by_landmark
        nb_text = format_intervals(nb, ["net_benefit", "difference"])
        ctx["by_landmark"] = {
            "text": "A landmark supermodel, judged at each landmark of its grid on the patients eligible and "
            "labelled there (each patient once per landmark; the dynamic AUROC over time, van Houwelingen & "
            "Putter 2011): AUROC with 95% bootstrap intervals beside the published baselines, then the model's "
            "calibration at each landmark.",
            "table": table(format_landmark_auroc(by.rename(index={"model": model_row})).rename_axis("landmark")),
            "decision": table(
                pd.DataFrame(
                    {
                        "landmark": [f"{L:g} h" for L in nb["landmark_h"]],
                        "risk threshold": nb["threshold"].map("{:.2f}".format),
                        "net benefit (95% interval)": nb_text["net_benefit"],
                        "treat all": nb["treat_all"].map("{:.3f}".format),
                        "model - treat all (95% interval)": nb_text["difference"],
                    }
                ),
                index=False,
            ),
            "calibration": table(
                _titled(format_intervals(cal, ["oe", "cal_intercept", "cal_slope", "ici"]))
                .set_axis([f"{L:g} h" for L in cal.index])
                .rename_axis("landmark")
            ),
        }
    paths = result.plots(out)
    ctx["figs"] = [figure(paths[k], v) for k, v in _FIGURES.items()]
    if "by_landmark" in paths:
        ctx["figs"].insert(0, figure(paths["by_landmark"], "AUROC at each landmark of the grid (95% intervals)"))
    ctx["figs"] += [figure(Path(p), caption) for p, caption in extra_figures]
    (out / "evaluation.json").write_text(json.dumps(result.to_dict(), indent=1))
    return render("evaluation_report.html", out, **ctx)


@write_evaluation_report.register
def _(
    result: BenefitEvaluation, out_dir: str | Path, title: str = "", extra_figures: Sequence[tuple[Path, str]] = ()
) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = result.model_info
    judged = _judged(info, ("estimator", info.get("chosen")))
    flow = result.flow.copy()
    flow["excluded"] = ["; ".join(f"{n} {r}" for r, n in e.items()) for e in flow["excluded"]]
    paths = result.plots(out)
    v = result.validation
    ctx = {
        "title": title or f"crsml evaluation: {result.task} at L = {result.landmark_h:g} h",
        "judged": f"Model judged: {judged or 'a model directory'}; severe-CRS days within {result.horizon_h / 24:g} "
        f"days of the landmark. 95% intervals: {result.n_boot} bootstrap resamples of patients (seed {result.seed}).",
        "notes": list(result.notes),
        "flow": table(_titled(flow.rename_axis("step"))),
        "verdict": v.verdict(),
        "summary": table(result.summary()),
        "table": table(result.table.round(3).rename_axis("ranking")),
        "clan": table(v.clan.round(3).rename_axis("feature")) if len(v.clan) else "",
        "figs": [
            figure(paths["toc"], "TOC curves: days spared by treating the top share first, with 95% bands"),
            figure(paths["gates"], "GATES: doubly robust average benefit by group of each ranking (95% intervals)"),
            *(figure(Path(p), caption) for p, caption in extra_figures),
        ],
    }
    (out / "evaluation.json").write_text(json.dumps(result.to_dict(), indent=1, default=float))
    return render("benefit_evaluation_report.html", out, **ctx)
