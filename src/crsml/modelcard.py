"""``crsml report``: a self-contained HTML model card (plots embedded), from the model alone.

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

from crsml.models.bundle import ModelBundle

TASK_TEXT = {
    "severe_crs": "risk of severe cytokine release syndrome (ASTCT grade >= 3) within the horizon after the landmark",
    "prolonged_crs": "risk of prolonged cytokine release syndrome (grade >= 1 for more than the set number of days in total)",
    "tocilizumab_benefit": "expected severe-CRS days spared by tocilizumab given now, with the risk of grade >= 3 "
                           "without it, for patients not yet given tocilizumab",
}


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(classes="t", border=0, escape=True, na_rep="")


def write_report(bundle: ModelBundle, out_dir: str | Path, cohort=None, cohort_label: str = "") -> Path:
    """Write ``index.html`` (self-contained) and the PNGs beside it; return the HTML path."""
    from crsml.evaluation.curves import plot_curves
    from crsml.explanations import explainable, explained, explanation_plots
    from crsml.training import MODEL_NAME, format_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = bundle.metadata
    counts = meta.get("counts", {})
    cv = meta.get("cv", {})
    title = f"crsml model card: {bundle.task} at L = {bundle.landmark_h:g} h"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append(
        "<div class='warn'><b>Not a medical device.</b> This model is a research tool for clinical data "
        "scientists. It has not been cleared or approved by any regulator and must not be used on its own "
        "to decide the care of a patient.</div>")
    parts.append("<h2>Intended use</h2><p>" + html.escape(
        f"At {bundle.landmark_h:g} hours after CD19 CAR-T infusion, for patients alive and without grade >= 3 CRS "
        f"by then: the {TASK_TEXT.get(bundle.task, bundle.task)} (horizon {meta.get('horizon_h', 336) / 24:g} days). "
        "Inputs are the cohort tables of DESIGN.md (labs, cytokines, vital signs, treatments, CRS grades) up to the "
        "landmark; scoring with `crsml score`.") + "</p>")

    parts.append("<h2>Training data (counts only)</h2>")
    benefit = bundle.benefit is not None
    if benefit:
        trim = counts.get("trim", {})
        rows = {"patients in the cohort": counts.get("patients"), "eligible at the landmark": counts.get("eligible"),
                "given tocilizumab now (within the grace window)": counts.get("treated_now"),
                "inside the overlap (used to fit the benefit)": trim.get("inside"),
                "outside the overlap": counts.get("trimmed")}
    else:
        rows = {"patients in the cohort": counts.get("patients"), "labelled at the landmark": counts.get("labelled"),
                "with the outcome": counts.get("events"),
                "outcome rate": f"{counts.get('event_rate', float('nan')):.1%}"}
    rows |= {f"left out: {k}": v for k, v in counts.get("excluded", {}).items()}
    rows |= {"data digest (SHA-256 of features and labels)": meta.get("data_digest", "")[:16] + "...",
             "features": len(bundle.feature_names),
             ("calibration of the risk without tocilizumab now" if benefit else "calibration chosen by cross-validation"):
                 bundle.classifier.calibrator_.method,
             "boosters averaged (best Optuna trials)": len(bundle.classifier.members_)}
    parts.append(_table(pd.DataFrame({"value": rows})))

    if benefit:
        parts.append(_benefit_section(bundle))
    if bundle.evaluation is not None:
        parts.append("<h2>Evaluation (out of fold)</h2><p>" + html.escape(
            f"Nested cross-validation: {cv.get('folds')} stratified folds x {cv.get('repeats')} repeats; inside "
            f"every outer fold Optuna ran its own {cv.get('trials')} trials and chose the calibration, so no "
            f"figure was tuned on its own test patients. 95% intervals: {cv.get('bootstrap')} bootstrap resamples "
            "of patients. Baselines were refitted in the same folds and predict the same patients.") + "</p>")
        parts.append(_table(format_table(bundle.evaluation)))
        skipped = meta.get("baselines_skipped", {})
        if skipped:
            parts.append("<p>" + "; ".join(html.escape(f"{k}: {v}") for k, v in skipped.items()) + "</p>")
    with tempfile.TemporaryDirectory() as tmp:
        figs = []
        if bundle.curves is not None:
            paths = plot_curves(bundle.curves, out, MODEL_NAME, f"{bundle.task}, L = {bundle.landmark_h:g} h")
            figs += [_img(paths["roc"], "ROC curves, model and baselines (out of fold)"),
                     _img(paths["calibration"], "Calibration: observed against predicted risk (out of fold)"),
                     _img(paths["decision"], "Decision curve: net benefit against risk threshold (out of fold)")]
        if figs:
            parts.append("<h2>Curves</h2><div class='figs'>" + "".join(figs) + "</div>")

        what, unit = explained(bundle)
        parts.append(f"<h2>What drives the {what} (SHAP, {unit})</h2>")
        shap_mean = meta.get("shap_mean_abs")
        if shap_mean:
            s = pd.Series(shap_mean).head(15)
            parts.append(f"<p>Mean absolute SHAP value ({unit}) over the training patients, top 15:</p>")
            parts.append(_table(s.rename("mean |SHAP|").to_frame().round(4)))
        if cohort is None:
            from crsml.simulate import simulate

            # a benefit model needs a cohort where practice varies, or hardly anyone is inside its overlap
            profile = "mixed_practice" if benefit else "b_all"
            cohort = simulate(500, seed=0, truth_draws=0, profile=profile)
            cohort_label = f"500 simulated patients (synthetic, profile {profile})"
        X = bundle.features.transform(cohort)
        if benefit:
            X = explainable(bundle, X)
            cohort_label += ", inside the overlap"
        if len(X):
            paths = explanation_plots(bundle, X[bundle.feature_names], Path(tmp), n_patients=2)
            parts.append(f"<p>Beeswarm and example explanations on {html.escape(cohort_label)}:</p><div class='figs'>"
                         + "".join(_img(p, p.stem.replace("_", " ")) for p in paths) + "</div>")
    parts.append("<h2>Limitations</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in _limitations(bundle))
                 + "</ul>")
    versions = meta.get("versions", {})
    parts.append("<p class='small'>" + html.escape(", ".join(f"{k} {v}" for k, v in versions.items())) + "</p>")
    css = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           ".warn{background:#fff3cd;border:1px solid #e0c060;padding:.8em;margin:1em 0}"
           "table.t{border-collapse:collapse;font-size:.9em}table.t td,table.t th{border-bottom:1px solid #ddd;"
           "padding:.3em .6em;text-align:left}.figs{display:flex;flex-wrap:wrap;gap:1em}"
           "figure{margin:0}figure img{max-width:520px}figcaption{font-size:.85em;color:#555}.small{font-size:.8em;color:#777}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{css}</style></head><body>{''.join(parts)}</body></html>")
    path = out / "index.html"
    path.write_text(page)
    return path


def _centre_note(bundle: ModelBundle) -> str:
    extra = list(bundle.features.extra_patient_columns)
    return f"patients columns used as features: {', '.join(extra)}" if extra else "none was given: --extra"


def _limitations(bundle: ModelBundle) -> list[str]:
    counts = bundle.metadata.get("counts", {})
    shared = ["Daily tables stamp events at whole days, so the landmark sees up to that day's values.",
              "SHAP values explain the model, not the disease: a feature that drives a prediction is not a cause."]
    if bundle.benefit is not None:
        return [
            f"Estimated from observational records of {counts.get('eligible', '?')} eligible patients, "
            f"{counts.get('treated_now', '?')} of them given tocilizumab at the landmark. 'Not now' is usual care "
            "afterwards as practised in these records: where usual care differs (another centre, a new protocol), "
            "so does the benefit of a dose now. Records pooled from several centres need the centre as a feature "
            f"({_centre_note(bundle)}).",
            "The benefit assumes no unmeasured confounding: whatever made clinicians give tocilizumab at the "
            "landmark must be among the features. Doses given later, because a patient worsened, are usual care.",
            "benefit_low/benefit_high cover the average benefit of patients with the same features, not one "
            "patient's own course; on simulated cohorts they held that average for only 71-82% of patients.",
            "Patients outside the overlap of the propensity model get no benefit (not_eligible): the records hold "
            "too few like them treated (or untreated) to compare.",
        ] + shared
    return [
        f"Trained on {counts.get('labelled', '?')} patients from one source; performance at another centre, "
        "with other products, grading habits or sampling schedules, is unknown until checked there.",
        "Out-of-fold figures estimate performance on new patients like these; they are not an external validation.",
        "Tocilizumab and steroids given before the landmark change the course; the risk is under the care "
        "patients actually received, not without treatment.",
        *shared,
        "Patients with no CRS grade after the landmark were left out of training (no label).",
    ]


def _effect_form(m) -> str:
    r = m.risk_effect_
    if r is None:
        return f"{m.chosen_} distilled into one XGBoost regressor (its TreeSHAP values are the drivers)"
    how = (f"{r.scale:.3f} days x the risk" if r.form == "risk_scaled"
           else "the average benefit of the quarter of predicted risk the patient falls in")
    return (f"{r.form} as it is: {how} of grade >= 3 without tocilizumab now from the candidate's own XGBoost "
            "booster (fitted on every eligible patient not treated now, not calibrated); the risk column of the "
            "scores comes from the separately tuned and calibrated risk classifier, so benefit is not an exact "
            "multiple of it, though the two rank patients alike (drivers: the booster's TreeSHAP values, rescaled "
            "per patient to add up to the benefit in days)")


def _benefit_section(bundle: ModelBundle) -> str:
    m = bundle.benefit
    a, c = m.ate_, m.trim_counts_
    rows = {"estimator chosen (held-out DR loss, one-SE rule towards the risk-based candidate)": m.chosen_,
            "propensity AUROC (cross-fitted)": f"{m.propensity_auroc_:.3f}",
            "inside overlap / below / above the trimming bounds": f"{c['inside']} / {c['below']} / {c['above']}",
            "treated now inside overlap": c["treated_inside"],
            "average benefit (AIPW, 95% CI), severe-CRS days spared":
                f"{a['ate']:.3f} ({a['low']:.3f} to {a['high']:.3f}) over {a['n']} patients inside overlap with "
                f"cross-fitted propensity in [{a.get('bound', m.trim):.3f}, {1 - a.get('bound', m.trim):.3f}] "
                "(Crump et al. 2009's bound)" + (f"; median of {a['splits']} cross-fitting splits (Chernozhukov et "
                                                 "al. 2018), the interval including their spread"
                                                 if a.get("splits", 1) > 1 else ""),
            "benefit as exported": _effect_form(m),
            "export": "XGBoost JSON boosters (benefit, interval ends, propensity, risk) and JSON settings; "
                      "nothing is pickled"}
    text = ("Benefit is the expected number of severe-CRS days spared by tocilizumab given now (within the grace "
            "window) rather than usual care, estimated from observational records. Patients outside the overlap of "
            "the propensity model are scored not_eligible. benefit_low/benefit_high are the causal forest's 95% "
            "interval for the average benefit of patients with the same features (distilled into boosters), "
            "whichever estimator gives benefit, stretched to hold benefit where that estimator and the forest "
            "disagree; it is not an interval for one patient's own course. Its coverage on simulated cohorts is in "
            "docs/tocilizumab_benefit.md.")
    return ("<h2>Tocilizumab benefit</h2><p>" + html.escape(text) + "</p>" + _table(pd.DataFrame({"value": rows}))
            + "<p>Candidates (held-out DR loss, lower is better):</p>" + _table(m.selection_.round(4)))


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
