"""``crsml evaluate`` and ``crsml update``: judge a saved risk model on a labelled cohort, and
update it for a new centre."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crsml.cli._console import err, out


def evaluate_command(
    model: Annotated[str, typer.Option(help="models/NAME or models:/NAME/VERSION")],
    cohort_dir: Annotated[Path, typer.Option("--cohort", help="labelled cohort directory")],
    out_dir: Annotated[Path, typer.Option("--out", help="report directory to write (index.html, evaluation.json)")],
    by: Annotated[
        list[str] | None, typer.Option("--by", help="patients column for subgroups (repeatable; age_band is derived)")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="bootstrap resamples for the intervals")] = 1000,
    seed: Annotated[int, typer.Option(help="seeds the resamples")] = 0,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: local mlruns/)")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log an MLflow run")] = False,
    trajectories: Annotated[
        int,
        typer.Option(
            help="a landmark supermodel: draw this many patients' risk trajectories (the highest risks) in the "
            "report, titled patient 1, 2, ... (no identifiers)"
        ),
    ] = 0,
) -> None:
    """Judge a saved model on a labelled cohort; an HTML report, its JSON and an MLflow run. A risk
    model: discrimination, calibration, net benefit, subgroups and case mix with bootstrap intervals.
    A benefit model, without the truth: BLP, GATES, CLAN and RATE from the cohort's own doubly robust
    scores, beside ranking by risk."""
    from crsml.cli._console import print_quality
    from crsml.cohort import Cohort, check_output, refuse_inside
    from crsml.reporting import write_evaluation_report
    from crsml.tracking import load_model, log_evaluation
    from crsml.validation import evaluate

    check_output(out_dir, "dir")
    refuse_inside(out_dir, cohort_dir)
    model_ = load_model(model, tracking_uri)
    cohort, report = Cohort.load_with_report(cohort_dir, on_error="drop")
    print_quality(err, report, cohort_dir)
    result = evaluate(model_, cohort, by=tuple(by or ()), n_boot=n_boot, seed=seed)
    extra = _trajectory_figures(model_, cohort, out_dir, trajectories) if trajectories else []
    path = write_evaluation_report(result, out_dir, extra_figures=extra)
    out.print(result.summary().to_string())
    for note in result.notes:
        err.print(f"note: {note}")
    if not no_mlflow:
        log_evaluation(result, out_dir, tracking_uri, log=err.print)
    err.print(f"wrote {path}")


def _trajectory_figures(model, cohort, out_dir: Path, n: int) -> list:
    """``n`` patients' trajectories for the report, titled by number only (the report goes to
    MLflow: no patient identifier in it), with their captions."""
    from crsml.cli._score import write_trajectories

    paths = write_trajectories(model, cohort, out_dir, n, numbered=True)
    return [(p, f"Patient {i}: risk at each landmark above the recorded course") for i, p in enumerate(paths, start=1)]


def update_command(
    model: Annotated[str, typer.Option(help="models/NAME or models:/NAME/VERSION")],
    cohort_dir: Annotated[Path, typer.Option("--cohort", help="the new centre's labelled cohort directory")],
    model_out: Annotated[Path, typer.Option("--model-out", help="updated model directory to write")],
    method: Annotated[str, typer.Option(help="auto (closed test), intercept, logistic or refit")] = "auto",
    alpha: Annotated[float, typer.Option(help="level of the closed test")] = 0.05,
    seed: Annotated[int, typer.Option(help="seed of a refit")] = 0,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: local mlruns/)")] = None,
    register_name: Annotated[str | None, typer.Option(help="registered model (default: the parent's)")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log or register")] = False,
) -> None:
    """Update a risk model on a new centre's patients; the result keeps its lineage and is
    registered as a new version of the same registered model."""
    from crsml.cli._console import check_model_out, print_quality
    from crsml.cohort import Cohort
    from crsml.tracking import export_model, load_model, log_update
    from crsml.validation import update

    check_model_out(model_out)
    parent = load_model(model, tracking_uri)
    cohort, report = Cohort.load_with_report(cohort_dir, on_error="drop")
    print_quality(err, report, cohort_dir)
    result = update(parent, cohort, method=method, alpha=alpha, seed=seed, log=err.print)
    out.print(result.summary().to_string())
    export_model(result.model, model_out)
    if not no_mlflow:
        log_update(result, tracking_uri, register_name, log=err.print, model_dir=model_out)
    err.print(f"wrote {model_out} (method {result.method}, {result.chosen_by})")
