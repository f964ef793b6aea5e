"""What the model card says about each kind of estimator: rows of its training table and sections
of their own. The estimators know nothing of the card; each kind registers its text here
(``functools.singledispatch``), and a new kind of estimator registers its own."""

from __future__ import annotations

from functools import singledispatch
from pathlib import Path
from typing import Any

import pandas as pd

from crsml.models import BenefitModel, XGBRiskClassifier


@singledispatch
def estimator_rows(estimator: Any) -> dict[str, Any]:
    """Rows of the card's training table that describe ``estimator`` (none for an unknown kind)."""
    return {}


@singledispatch
def estimator_sections(estimator: Any) -> list[tuple[str, str, list[tuple[str, pd.DataFrame]]]]:
    """Sections of the card of their own: (heading, text, [(caption, table)])."""
    return []


@singledispatch
def estimator_figures(estimator: Any, directory: Path) -> list[tuple[Path, str]]:
    """Figures of the card of their own, drawn into ``directory``: (PNG path, caption)."""
    return []


@estimator_figures.register
def _(estimator: BenefitModel, directory: Path) -> list[tuple[Path, str]]:
    v = getattr(estimator, "validation_", None)
    if v is None:
        return []
    toc, gates = Path(directory) / "toc.png", Path(directory) / "gates.png"
    v.plot_toc(toc)
    v.plot_gates(gates)
    return [
        (
            toc,
            f"TOC curves ({v.where}): severe-CRS days spared by treating the top share by the benefit, and by "
            "risk, over treating at random; doubly robust scores, 95% bootstrap band",
        ),
        (gates, f"GATES ({v.where}): doubly robust average benefit in each group of predicted benefit, and of risk"),
    ]


@estimator_rows.register
def _(estimator: XGBRiskClassifier) -> dict[str, Any]:
    return {
        "calibration chosen by cross-validation": estimator.calibrator_.method,
        "boosters averaged (best Optuna trials)": len(estimator.members_),
    }


@estimator_rows.register
def _(estimator: BenefitModel) -> dict[str, Any]:
    return {
        "calibration of the risk without tocilizumab now": estimator.risk_.calibrator_.method,
        "boosters averaged (best Optuna trials)": len(estimator.risk_.members_),
    }


@estimator_sections.register
def _(estimator: BenefitModel) -> list[tuple[str, str, list[tuple[str, pd.DataFrame]]]]:
    a, c = estimator.ate_, estimator.trim_counts_
    rows = {
        "estimator chosen (the highest out-of-fold AUTOC among candidates shown better than ranking by risk; "
        "otherwise risk_scaled)": estimator.chosen_,
        "propensity AUROC (cross-fitted)": f"{estimator.propensity_auroc_:.3f}",
        "inside overlap / below / above the trimming bounds": f"{c['inside']} / {c['below']} / {c['above']}",
        "treated now inside overlap": c["treated_inside"],
        "average benefit (AIPW, 95% CI), severe-CRS days "
        "spared": f"{a['ate']:.3f} ({a['low']:.3f} to {a['high']:.3f}) over {a['n']} patients inside overlap with "
        f"cross-fitted propensity in [{a.get('bound', estimator.trim):.3f}, "
        f"{1 - a.get('bound', estimator.trim):.3f}] (Crump et al. 2009's bound)"
        + (
            f"; median of {a['splits']} cross-fitting splits (Chernozhukov et al. 2018), the interval "
            "including their spread"
            if a.get("splits", 1) > 1
            else ""
        ),
        "benefit as exported": _effect_form(estimator),
        "patients the records cannot compare": _scale_form(estimator),
        "export": "XGBoost JSON boosters (benefit, interval ends, propensity, risk) and JSON settings; "
        "nothing is pickled",
    }
    text = (
        "Benefit is the expected number of severe-CRS days spared by tocilizumab given now (within the grace "
        "window) rather than usual care, estimated from observational records. Every eligible patient gets one; "
        "benefit_basis says how: compared (inside the overlap of the propensity model, by the chosen estimator), "
        "extrapolated (outside it: the risk without a dose now times the days spared per unit of risk learned "
        "inside, as the PATH statement's risk-based approach does) or prior (every patient, when the records "
        "cannot tell the average benefit from 0: the risk times the literature's effect). For compared patients "
        "benefit_low/benefit_high are the causal forest's "
        "95% interval for the average benefit of patients with the same features (distilled into boosters), "
        "whichever estimator gives benefit, stretched to hold benefit where that estimator and the forest "
        "disagree; it is not an interval for one patient's own course. Its coverage on simulated cohorts is "
        "in docs/tocilizumab_benefit.md."
    )
    for note in estimator.direction_notes_:
        text += f" WARNING: {note}."
    tables = [
        ("", pd.DataFrame({"value": rows})),
        (
            "Candidates (out of fold: held-out DR loss, lower is better; AUTOC of each ranking and its difference "
            "from ranking by risk with the lower end of its 95% interval):",
            estimator.selection_.round(4),
        ),
    ]
    v = getattr(estimator, "validation_", None)
    if v is not None:
        text += (
            f" Validation without the truth ({v.where}, {v.n} patients inside Crump's bound): {v.verdict()}. "
            "BLP beta2 is 0 when a ranking carries no heterogeneity and 1 when it is calibrated; AUTOC is the "
            "area under the TOC curve (days spared by treating the top share first, over treating at random)."
        )
        tables.append(
            ("Validation from doubly robust scores (BLP, RATE, GATES top minus bottom):", v.summary().round(3))
        )
        if len(v.clan):
            tables.append(("CLAN: features in the top and bottom groups of predicted benefit:", v.clan.round(3)))
    return [("Tocilizumab benefit", text, tables)]


def _scale_form(estimator: BenefitModel) -> str:
    s = getattr(estimator, "effect_scale_", None)
    if s is None:
        return "not scored (saved before every eligible patient was given a benefit)"
    ends = f"{s['scale']:.3f} days per unit of risk (95% interval {s['low']:.3f} to {s['high']:.3f})"
    if s["basis"] == "prior":
        return (
            f"every benefit prior: {ends}, from the literature's risk ratio and {s['days_if_severe']:.2f} severe days"
        )
    return f"extrapolated with {ends}, the AIPW average over the mean risk {s['mean_risk']:.3f} inside Crump's bound"


def _effect_form(estimator: BenefitModel) -> str:
    if getattr(estimator, "prior_only_", False):
        return (
            "prior only: too few patients were given tocilizumab now to compare anyone, so no estimator was "
            "fitted; every benefit is the calibrated risk of grade >= 3 without tocilizumab now times the "
            "literature's effect (drivers: the risk model's TreeSHAP values, rescaled to days)"
        )
    r = estimator.risk_effect_
    s = getattr(estimator, "effect_scale_", None)
    if r is not None and s is not None:
        return (
            f"{r.form}: the calibrated risk of grade >= 3 without tocilizumab now (the scores' risk column) x "
            f"{s['scale']:.3f} days per unit of risk, so benefit and risk rank patients alike (drivers: the risk "
            "model's TreeSHAP values, rescaled per patient to add up to the benefit in days)"
        )
    if r is None:
        return f"{estimator.chosen_} distilled into one XGBoost regressor (its TreeSHAP values are the drivers)"
    how = (
        f"{r.scale:.3f} days x the risk"
        if r.form == "risk_scaled"
        else "the average benefit of the quarter of predicted risk the patient falls in"
    )
    return (
        f"{r.form} as it is: {how} of grade >= 3 without tocilizumab now from the candidate's own XGBoost "
        "booster (fitted on every eligible patient not treated now, not calibrated); the risk column of the "
        "scores comes from the separately tuned and calibrated risk classifier, so benefit is not an exact "
        "multiple of it, though the two rank patients alike (drivers: the booster's TreeSHAP values, "
        "rescaled per patient to add up to the benefit in days)"
    )
