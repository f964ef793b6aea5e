"""The model card (``crsml report``): a self-contained HTML page (plots embedded), from the model alone.

Counts, aggregate metrics and curves come from the model's metadata; SHAP beeswarm and example
explanations are drawn on a cohort given with ``--cohort`` or, by default, on a simulated batch
(labelled as such), so the card never needs or shows a real patient row.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import pandas as pd

from crsml.cohort import Cohort, atomic_file
from crsml.evaluation import plot_curves, plot_instability_summary, save_figure
from crsml.explanation import plot_explanations
from crsml.models import Model
from crsml.simulation import simulate
from crsml.training import MODEL_NAME, format_table

CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
       ".warn{background:#fff3cd;border:1px solid #e0c060;padding:.8em;margin:1em 0}"
       "table.t{border-collapse:collapse;font-size:.9em}table.t td,table.t th{border-bottom:1px solid #ddd;"
       "padding:.3em .6em;text-align:left}.figs{display:flex;flex-wrap:wrap;gap:1em}"
       "figure{margin:0}figure img{max-width:520px}figcaption{font-size:.85em;color:#555}.small{font-size:.8em;color:#777}")


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(classes="t", border=0, escape=True, na_rep="")


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
    task, est = model.task, model.estimator
    meta = model.metadata
    counts = meta.get("counts", {})
    cv = meta.get("cv", {})
    title = f"crsml model card: {task.name} at L = {model.landmark_h:g} h"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for reason in meta.get("weak", []):
        parts.append("<div class='warn'><b>Do not use this model:</b> " + html.escape(reason) + ".</div>")
    parts.append(
        "<div class='warn'><b>Not a medical device.</b> This model is a research tool for clinical data "
        "scientists. It has not been cleared or approved by any regulator and must not be used on its own "
        "to decide the care of a patient.</div>")
    parts.append("<h2>Intended use</h2><p>" + html.escape(
        f"At {model.landmark_h:g} hours after CD19 CAR-T infusion, for patients alive and without grade >= 3 CRS "
        f"by then: the {task.description or task.name} (horizon {task.horizon_h / 24:g} days). "
        "Inputs are the cohort tables of DESIGN.md (labs, cytokines, vital signs, treatments, CRS grades) up to the "
        "landmark; scoring with `crsml score`.") + "</p>")

    parts.append("<h2>Training data (counts only)</h2>")
    rows = task.card_rows(counts)
    rows |= {f"left out: {k}": v for k, v in counts.get("excluded", {}).items()}
    rows |= {"data digest (SHA-256 of features and labels)": meta.get("data_digest", "")[:16] + "...",
             "features": len(model.feature_names)}
    rows |= est.card_rows()
    parts.append(_table(pd.DataFrame({"value": rows})))

    for heading, text, tables in est.card_sections():
        parts.append(f"<h2>{html.escape(heading)}</h2><p>" + html.escape(text) + "</p>")
        for caption, table in tables:
            parts.append((f"<p>{html.escape(caption)}</p>" if caption else "") + _table(table))
    if model.evaluation is not None:
        parts.append("<h2>Evaluation (out of fold)</h2><p>" + html.escape(
            f"Nested cross-validation: {cv.get('folds')} stratified folds x {cv.get('repeats')} repeats; inside "
            f"every outer fold Optuna ran its own {cv.get('trials')} trials and chose the calibration, so no "
            f"figure was tuned on its own test patients. 95% intervals: {cv.get('bootstrap')} bootstrap resamples "
            "of patients. Baselines were refitted in the same folds and predict the same patients.") + "</p>")
        parts.append(_table(format_table(model.evaluation)))
        skipped = meta.get("baselines_skipped", {})
        if skipped:
            parts.append("<p>" + "; ".join(html.escape(f"{k}: {v}") for k, v in skipped.items()) + "</p>")
    with tempfile.TemporaryDirectory() as tmp:
        figs = []
        if model.curves is not None:
            paths = plot_curves(model.curves, out, MODEL_NAME, f"{task.name}, L = {model.landmark_h:g} h")
            figs += [_img(paths["roc"], "ROC curves, model and baselines (out of fold)"),
                     _img(paths["calibration"], "Calibration: observed against predicted risk (out of fold)"),
                     _img(paths["decision"], "Decision curve: net benefit against risk threshold (out of fold)")]
        if figs:
            parts.append("<h2>Curves</h2><div class='figs'>" + "".join(figs) + "</div>")

        what, unit, _ = est.explains
        parts.append(f"<h2>What drives the {what} (SHAP, {unit})</h2>")
        shap_mean = meta.get("shap_mean_abs")
        if shap_mean:
            s = pd.Series(shap_mean).head(15)
            parts.append(f"<p>Mean absolute SHAP value ({unit}) over the training patients, top 15:</p>")
            parts.append(_table(s.rename("mean |SHAP|").to_frame().round(4)))
        if cohort is None:
            profile = task.example_profile
            cohort = simulate(500, seed=0, truth_draws=0, profile=profile)
            cohort_label = f"500 simulated patients (synthetic, profile {profile})"
        X = model.explainable(cohort)
        if len(X):
            paths = plot_explanations(model, X, Path(tmp), n_patients=2)
            parts.append(f"<p>Beeswarm and example explanations on {html.escape(cohort_label)} (the patients the "
                         "model predicts for):</p><div class='figs'>"
                         + "".join(_img(p, p.stem.replace("_", " ")) for p in paths) + "</div>")
    size = meta.get("sample_size")
    if size:
        parts.append("<h2>Sample size (Riley et al., BMJ 2020)</h2>")
        if not size.get("enough"):
            parts.append("<div class='warn'>" + html.escape(
                f"The training cohort falls short of the minimum sample size: {size['available_n']} patients "
                f"({size['available_events']} events) against {size['required_n']} required "
                f"({size['required_events']} events) for {size['parameters']} candidate parameters. Expect "
                "overfitting; the out-of-fold figures measure it.") + "</div>")
        parts.append(_table(pd.DataFrame({"value": {
            "outcome rate": f"{size['prevalence']:.1%}", "candidate predictor parameters": size["parameters"],
            "anticipated Cox-Snell R2 (from the out-of-fold C)": f"{size['r2_cs']:.3f}",
            "criterion 1 (shrinkage >= 0.9)": size["n_criterion_1"],
            "criterion 2 (optimism in R2 <= 0.05)": size["n_criterion_2"],
            "criterion 3 (overall risk +-0.05)": size["n_criterion_3"],
            "required patients (events)": f"{size['required_n']} ({size['required_events']})",
            "available patients (events)": f"{size['available_n']} ({size['available_events']})"}})))
    iecv = meta.get("iecv")
    if iecv:
        parts.append(f"<h2>Internal-external cross-validation by {html.escape(str(iecv['column']))}</h2><p>"
                     "Each group left out in turn, the model developed on the others with the same procedure; "
                     "figures pooled by a random-effects meta-analysis (Paule-Mandel) with 95% confidence and "
                     "prediction intervals (Riley et al., BMJ 2016).</p>")
        groups = pd.DataFrame(iecv["groups"])
        if len(groups):
            parts.append(_table(groups.set_index("group")[["n", "events", "auroc", "oe", "cal_intercept", "cal_slope"]]
                                .round(3)))
        if iecv.get("pooled"):
            parts.append(_table(pd.DataFrame(iecv["pooled"]).T.round(3)))
    with tempfile.TemporaryDirectory() as tmp:
        inst = meta.get("instability")
        if inst:
            png = save_figure(plot_instability_summary(inst), Path(tmp) / "instability.png")
            parts.append("<h2>Prediction instability (Riley & Collins 2023)</h2><p>" + html.escape(
                f"The model refitted on {inst['n_boot']} bootstrap samples of its training patients with its chosen "
                f"settings: mean absolute prediction error {inst['mape']:.3f}; for 10% of patients it is above "
                f"{inst['mape_p90_patient']:.3f}. The band shows, by decile of the model's risk, where 95% of the "
                "bootstrap models' risks fall (aggregates only).") + "</p><div class='figs'>"
                + _img(png, "Prediction instability: bootstrap models' risk against the model's") + "</div>")
    lineage = meta.get("lineage") or []
    if lineage:
        parts.append("<h2>Model updating (lineage)</h2>")
        rows = [{"method": x.get("method"), "chosen by": x.get("chosen_by"),
                 "parent": f"{x.get('parent_registered_name') or ''} {x.get('parent_version') or ''} "
                           f"{(x.get('parent_digest') or '')[:16]}".strip(),
                 "patients (events)": f"{x.get('patients')} ({x.get('events')})",
                 "before: calibration-in-the-large": round(x.get("prompted_by", {}).get("cal_intercept", float("nan")), 3),
                 "before: slope": round(x.get("prompted_by", {}).get("cal_slope", float("nan")), 3),
                 "intercept, slope applied": f"{x.get('intercept', '')}, {x.get('slope', '')}" if "intercept" in x else ""}
                for x in lineage]
        parts.append(_table(pd.DataFrame(rows)))
        parts.append("<p>The evaluation above is the parent's, out of fold on its development patients; the update was "
                     "fitted on the patients named here (judge it on others with crsml evaluate).</p>")
    parts.append("<h2>TRIPOD+AI (Collins et al., BMJ 2024): where each item is answered</h2>")
    parts.append(_table(tripod_items(model)))
    limits = task.limitations(counts, model.features.extra_patient_columns)
    parts.append("<h2>Limitations</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in limits) + "</ul>")
    versions = meta.get("versions", {})
    parts.append("<p class='small'>" + html.escape(", ".join(f"{k} {v}" for k, v in versions.items())) + "</p>")
    return write_page(out, title, parts)


def write_page(out: Path, title: str, parts: list[str]) -> Path:
    """``out/index.html``: a self-contained page in the card's style (written atomically)."""
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out / "index.html"
    with atomic_file(path) as tmp:
        tmp.write_text(page)
    return path


def tripod_items(model: Model) -> pd.DataFrame:
    """The TRIPOD+AI items a tool can answer, each with where this card or crsml answers it."""
    meta, task = model.metadata, model.task
    counts, cv = meta.get("counts", {}), meta.get("cv", {})
    size = meta.get("sample_size") or {}
    items = [
        ("5, 6", "Data source, dates, setting", "the cohort's cohort.json (source, import); dates stay with the centre"),
        ("7", "Participants: eligibility and flow",
         f"Training data table (left out by reason); eligibility: alive and below grade 3 at {model.landmark_h:g} h"),
        ("8", "Outcome and horizon", f"Intended use: {task.description or task.name}, within "
                                     f"{task.horizon_h / 24:g} days of the landmark"),
        ("9", "Predictors and their timing", f"{len(model.feature_names)} features from data up to the landmark "
                                             "(docs/features.md; crsml dictionary)"),
        ("10", "Sample size", "Sample size section" if size else "not recorded (model trained before crsml checked it)"),
        ("11", "Missing data", "XGBoost's missing-value branches; baselines: median imputation with indicators"),
        ("12", "Analysis: tuning and internal validation",
         f"Evaluation section: nested cross-validation, {cv.get('folds')} folds x {cv.get('repeats')} repeats, "
         f"{cv.get('trials')} Optuna trials per fold"),
        ("12", "Calibration method", f"chosen by cross-validation: {model.estimator.card_rows().get('calibration chosen by cross-validation', '')}"),
        ("23", "Performance with intervals", f"Evaluation section: bootstrap 95% intervals ({cv.get('bootstrap')} resamples)"),
        ("23", "Subgroups and other centres", "crsml evaluate --by COLUMN on a labelled cohort (report per group)"),
        ("24", "Model updating", "Model updating section" if meta.get("lineage") else "crsml update (none applied)"),
        ("19", "How predictions are computed", "crsml score; the model files (XGBoost JSON, settings JSON, manifest)"),
        ("", "Participants with the outcome", f"{counts.get('events')} of {counts.get('labelled')} labelled"),
    ]
    return pd.DataFrame(items, columns=["item", "topic", "where"]).set_index("item")


def screenshot(html_path: str | Path, png_path: str | Path, chromium: str = "/usr/bin/chromium") -> Path:
    """Render the card in headless Chromium and save a full-width screenshot."""
    import subprocess

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1200,4000",
             f"--screenshot={Path(png_path).resolve()}", Path(html_path).resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    return Path(png_path)
