"""The model card (``crsml report``): a self-contained HTML page (plots embedded), from the model alone.

Counts, aggregate metrics and curves come from the model's metadata (a
:class:`~crsml.models.ModelMetadata`); SHAP beeswarm and example explanations are drawn on a
cohort given with ``--cohort`` or, by default, on a simulated batch (labelled as such), so the
card never needs or shows a real patient row. The page is ``templates/model_card.html``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd

from crsml.cohort import Cohort
from crsml.evaluation import (
    by_landmark_frame,
    format_intervals,
    format_landmark_auroc,
    plot_by_landmark,
    plot_curves,
    plot_instability_summary,
    save_figure,
)
from crsml.explanation import plot_explanations
from crsml.models import Model
from crsml.reporting._card_text import estimator_figures, estimator_rows, estimator_sections
from crsml.reporting._html import figure, render, table
from crsml.simulation import simulate
from crsml.training import MODEL_NAME, format_table

#: patients the default card draws its SHAP plots on (simulated)
EXAMPLE_PATIENTS = 500


def shap_caption(path: Path, what: str) -> str:
    """A caption for people for each SHAP plot file (not its file name)."""
    stem = path.stem
    if stem == "shap_beeswarm":
        return "Each patient's SHAP value of each feature (colour: the feature's value, high red, low blue)"
    if stem == "shap_mean_abs":
        return "Mean absolute SHAP value of each feature: how much it moves a prediction on average"
    if m := re.fullmatch(r"shap_waterfall_(\d+)", stem):
        return (
            f"Example patient {m.group(1)} (the {'highest' if m.group(1) == '1' else 'next highest'} {what}): "
            "how each feature moves the prediction from the average ('missing': not measured by the landmark)"
        )
    return stem.replace("_", " ")


def write_model_card(model: Model, out_dir: str | Path, cohort: Cohort | None = None, cohort_label: str = "") -> Path:
    """Write the model card: ``index.html`` (self-contained) and the PNGs beside it; return the HTML path.

    Parameters
    ----------
    model : the :class:`~crsml.models.Model` to describe.
    out_dir : directory to write.
    cohort : patients to draw the SHAP plots on (default: 500 simulated patients, labelled so).
    cohort_label : how the card names ``cohort``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task, est, meta = model.task, model.estimator, model.metadata
    counts = meta.counts or {}
    cv = meta.cv or {}
    grid = model.landmarks
    ctx: dict = {
        "title": f"crsml model card: {task.name} at L = {model.landmark_h:g} h"
        + (f" (landmark supermodel, {min(grid):g} to {max(grid):g} h)" if grid else ""),
        "weak": meta.weak or [],
    }
    if meta.grades == "derived":
        ctx["derived_grades"] = (
            "The CRS grades of the training cohort were derived by crsml from the vital signs "
            "(ASTCT grading), not recorded: a lower bound where an oxygen device or vasopressor "
            "was not recorded. The outcome is as good as that derivation."
        )
    ctx["intended_use"] = (
        f"At {model.landmark_h:g} hours after CD19 CAR-T infusion, for patients alive and without grade >= 3 CRS "
        f"by then: the {task.description or task.name} (horizon {task.horizon_h / 24:g} days). "
        "Inputs are the cohort tables of DESIGN.md (labs, cytokines, vital signs, treatments, CRS grades) up to the "
        "landmark; scoring with `crsml score`."
    )
    if grid:
        ctx["intended_use"] += (
            f" A landmark supermodel (van Houwelingen, Scand J Stat 2007): fitted on every patient at each of "
            f"{len(grid)} landmarks from {min(grid):g} to {max(grid):g} h, the landmark a feature, it predicts at any "
            f"hour in that range (`crsml score --at-h H`, `--trajectory`); {model.landmark_h:g} h is the landmark of "
            "the headline figures below and of scoring by default."
        )
    rows = task.card_rows(counts)
    rows |= {f"left out: {k}": v for k, v in counts.get("excluded", {}).items()}
    rows |= {
        "data digest (SHA-256 of features and labels)": (meta.data_digest or "")[:16] + "...",
        "features": len(model.feature_names),
    }
    rows |= estimator_rows(est)
    if meta.learner and meta.learner.get("setting") != "tuned":
        rows["learner"] = meta.learner.get("why") or meta.learner.get("chosen")
    ctx["training_table"] = table(pd.DataFrame({"value": rows}))
    ctx["sections"] = [
        {"heading": h, "text": text, "tables": [(c, table(t)) for c, t in tables]}
        for h, text, tables in estimator_sections(est)
    ]
    if model.evaluation is not None:
        skipped = meta.baselines_skipped or {}
        ctx["evaluation"] = {
            "text": f"Nested cross-validation: {cv.get('folds')} stratified folds x {cv.get('repeats')} repeats; "
            f"inside every outer fold Optuna ran its own {cv.get('trials')} trials and chose the calibration, so no "
            f"figure was tuned on its own test patients. 95% intervals: {cv.get('bootstrap')} bootstrap "
            "resamples of patients. Baselines were refitted in the same folds and predict the same patients.",
            "table": table(format_table(model.evaluation).rename_axis("model")),
            "skipped": "; ".join(f"{k}: {v}" for k, v in skipped.items()),
        }
    if meta.by_landmark:
        by = by_landmark_frame(meta.by_landmark)
        first = by.index.get_level_values("model")[0]
        own = by.xs(first, level="model")
        cal = format_intervals(own, ["cal_intercept", "cal_slope"])
        cal.columns = ["calibration intercept", "calibration slope"]
        cal.index = [f"{L:g} h" for L in own.index]
        ctx["by_landmark"] = {
            "text": "The same out-of-fold predictions read at each landmark of the grid, each patient once (the "
            "dynamic AUROC over time; van Houwelingen & Putter 2011): AUROC with 95% bootstrap intervals, "
            "beside the baselines refitted at each landmark in the same folds; then the model's calibration "
            "at each landmark (intercept 0 and slope 1 when it holds there).",
            "table": table(format_landmark_auroc(by).rename_axis("landmark")),
            "calibration": table(cal.rename_axis("landmark")),
        }
    what, unit, _ = est.explains
    shap: dict = {"what": what, "unit": unit}
    if meta.shap_mean_abs:
        shap["table"] = table(
            pd.Series(meta.shap_mean_abs).head(15).rename("mean |SHAP|").to_frame().round(4).rename_axis("feature")
        )
    with tempfile.TemporaryDirectory() as tmp:
        ctx["section_figures"] = [figure(p, c) for p, c in estimator_figures(est, Path(tmp))]
        if meta.by_landmark:
            png = save_figure(plot_by_landmark(by), Path(tmp) / "by_landmark.png")
            ctx["by_landmark"]["figures"] = [figure(png, "AUROC at each landmark (out of fold, 95% intervals)")]
        if model.curves is not None:
            paths = plot_curves(model.curves, out, MODEL_NAME, f"{task.name}, L = {model.landmark_h:g} h")
            ctx["curves"] = [
                figure(paths["roc"], "ROC curves, model and baselines (out of fold)"),
                figure(paths["calibration"], "Calibration: observed against predicted risk (out of fold)"),
                figure(paths["decision"], "Decision curve: net benefit against risk threshold (out of fold)"),
            ]
        simulated = cohort is None
        if simulated:
            cohort = simulate(EXAMPLE_PATIENTS, seed=0, truth_draws=0, profile=task.example_profile)
        X = model.explainable(cohort)
        if len(X):
            paths = plot_explanations(model, X, Path(tmp), n_patients=2)
            shap["figures"] = [figure(p, shap_caption(p, what)) for p in paths]
            of = (
                f"{EXAMPLE_PATIENTS} simulated patients (synthetic, profile {task.example_profile})"
                if simulated
                else cohort_label or "the cohort given"
            )
            shap["cohort"] = f"the {len(X):,} patients the model predicts for, of {of}"
        inst = meta.instability
        if inst:
            png = save_figure(plot_instability_summary(inst), Path(tmp) / "instability.png")
            ctx["instability"] = {
                "text": f"The model refitted on {inst['n_boot']} bootstrap samples of its training patients with its "
                f"chosen settings: mean absolute prediction error {inst['mape']:.3f}; for 10% of patients it "
                f"is above {inst['mape_p90_patient']:.3f}. The band shows, by decile of the model's risk, where "
                "95% of the bootstrap models' risks fall (aggregates only).",
                "figures": [figure(png, "Prediction instability: bootstrap models' risk against the model's")],
            }
        ctx["shap"] = shap
        ctx |= _sample_size(meta.sample_size)
        ctx |= _iecv(meta.iecv)
        ctx |= _lineage(meta.lineage or [])
        ctx["tripod"] = table(tripod_items(model))
        ctx["limitations"] = task.limitations(counts, model.features.extra_patient_columns)
        ctx["versions"] = ", ".join(f"{k} {v}" for k, v in (meta.versions or {}).items())
        return render("model_card.html", out, **ctx)


def _sample_size(size: dict | None) -> dict:
    if not size:
        return {}
    warning = (
        ""
        if size.get("enough")
        else (
            f"The training cohort falls short of the minimum sample size: {size['available_n']} patients "
            f"({size['available_events']} events) against {size['required_n']} required "
            f"({size['required_events']} events) for {size['parameters']} candidate parameters. Expect "
            "overfitting; the out-of-fold figures measure it."
        )
    )
    rows = {
        "outcome rate": f"{size['prevalence']:.1%}",
        "candidate predictor parameters": size["parameters"],
        "anticipated Cox-Snell R2 (from the out-of-fold C)": f"{size['r2_cs']:.3f}",
        "criterion 1 (shrinkage >= 0.9)": size["n_criterion_1"],
        "criterion 2 (optimism in R2 <= 0.05)": size["n_criterion_2"],
        "criterion 3 (overall risk +-0.05)": size["n_criterion_3"],
        "required patients (events)": f"{size['required_n']} ({size['required_events']})",
        "available patients (events)": f"{size['available_n']} ({size['available_events']})",
    }
    return {"sample_size": {"warning": warning, "table": table(pd.DataFrame({"value": rows}))}}


def _iecv(iecv: dict | None) -> dict:
    if not iecv:
        return {}
    groups = pd.DataFrame(iecv["groups"])
    shown = {"column": str(iecv["column"]), "groups": "", "pooled": ""}
    if len(groups):
        shown["groups"] = table(
            groups.set_index("group")[["n", "events", "auroc", "oe", "cal_intercept", "cal_slope"]].round(3)
        )
    if iecv.get("pooled"):
        shown["pooled"] = table(pd.DataFrame(iecv["pooled"]).T.round(3))
    return {"iecv": shown}


def _lineage(lineage: list[dict]) -> dict:
    if not lineage:
        return {}
    rows = [
        {
            "method": x.get("method"),
            "chosen by": x.get("chosen_by"),
            "parent": f"{x.get('parent_registered_name') or ''} {x.get('parent_version') or ''} "
            f"{(x.get('parent_digest') or '')[:16]}".strip(),
            "patients (events)": f"{x.get('patients')} ({x.get('events')})",
            "before: calibration-in-the-large": round(x.get("prompted_by", {}).get("cal_intercept", float("nan")), 3),
            "before: slope": round(x.get("prompted_by", {}).get("cal_slope", float("nan")), 3),
            "intercept, slope applied": f"{x.get('intercept', '')}, {x.get('slope', '')}" if "intercept" in x else "",
        }
        for x in lineage
    ]
    return {"lineage": table(pd.DataFrame(rows), index=False)}


def tripod_items(model: Model) -> pd.DataFrame:
    """The TRIPOD+AI items a tool can answer, in the checklist's order, each with where this card
    or crsml answers it."""
    meta, task = model.metadata, model.task
    counts, cv = meta.counts or {}, meta.cv or {}
    calibration = estimator_rows(model.estimator).get("calibration chosen by cross-validation", "")
    items = [
        (
            "5, 6",
            "Data source, dates, setting",
            "the cohort's cohort.json (source, import); dates stay with the centre",
        ),
        (
            "7",
            "Participants: eligibility and flow",
            f"Training data table (left out by reason); eligibility: alive and below grade 3 at {model.landmark_h:g} h",
        ),
        (
            "8",
            "Outcome and horizon",
            f"Intended use: {task.description or task.name}, within "
            f"{task.horizon_h / 24:g} days of the landmark"
            + ("; grades derived from the vital signs" if meta.grades == "derived" else ""),
        ),
        (
            "9",
            "Predictors and their timing",
            f"{len(model.feature_names)} features from data up to the landmark (docs/features.md; crsml dictionary)",
        ),
        (
            "10",
            "Sample size",
            "Sample size section" if meta.sample_size else "not recorded (model trained before crsml checked it)",
        ),
        ("11", "Missing data", "XGBoost's missing-value branches; baselines: median imputation with indicators"),
        (
            "12",
            "Analysis: tuning and internal validation",
            f"Evaluation section: nested cross-validation, {cv.get('folds')} folds x {cv.get('repeats')} repeats, "
            f"{cv.get('trials')} Optuna trials per fold",
        ),
        ("12", "Calibration method", f"chosen by cross-validation: {calibration}"),
        ("19", "How predictions are computed", "crsml score; the model files (XGBoost JSON, settings JSON, manifest)"),
        ("20", "Participants with the outcome", f"{counts.get('events')} of {counts.get('labelled')} labelled"),
        (
            "23",
            "Performance with intervals",
            f"Evaluation section: bootstrap 95% intervals ({cv.get('bootstrap')} resamples)",
        ),
        ("23", "Subgroups and other centres", "crsml evaluate --by COLUMN on a labelled cohort (report per group)"),
        ("24", "Model updating", "Model updating section" if meta.lineage else "crsml update (none applied)"),
    ]
    return pd.DataFrame(items, columns=["item", "topic", "where"]).set_index("item")


def screenshot(html_path: str | Path, png_path: str | Path, chromium: str = "/usr/bin/chromium") -> Path:
    """Render the card in headless Chromium and save a full-width screenshot."""
    import subprocess

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                "--window-size=1200,4000",
                f"--screenshot={Path(png_path).resolve()}",
                Path(html_path).resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return Path(png_path)
