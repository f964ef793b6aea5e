"""``crsml train``: tune, evaluate, log and export a model for one task and landmark."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crsml.cli._console import print_result
from crsml.errors import CrsmlError


def train_command(
    task: Annotated[
        str,
        typer.Option(help="a task: severe_crs, prolonged_crs, tocilizumab_benefit (or one registered in crsml.tasks)"),
    ],
    cohort_dir: Annotated[Path, typer.Option("--cohort", help="cohort directory")],
    model_out: Annotated[Path, typer.Option("--model-out", help="model directory to write, e.g. models/severe48")],
    landmark_h: Annotated[
        float | None,
        typer.Option(
            "--landmark-h",
            help="landmark, hours after infusion (with --landmarks: the grid time of the headline figures, "
            "default 48 or the grid time nearest it)",
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            help="Optuna trials per study (default: 40 for the risk tasks, 10 per nuisance study for "
            "tocilizumab_benefit)"
        ),
    ] = None,
    task_param: Annotated[
        list[str] | None,
        typer.Option(
            "--task-param",
            help="a parameter of the task, NAME=VALUE (repeatable); each task declares its own: "
            "horizon_h (hours after the landmark, default 336), prolonged_crs's min_days (default 7), "
            "tocilizumab_benefit's grace_h (default 6) and window; a registered task's own work the same way",
        ),
    ] = None,
    horizon_h: Annotated[
        float | None, typer.Option("--horizon-h", help="shortcut for --task-param horizon_h=H")
    ] = None,
    min_days: Annotated[float | None, typer.Option(help="shortcut for --task-param min_days=D (prolonged_crs)")] = None,
    seed: Annotated[int, typer.Option(help="seeds folds, Optuna and XGBoost")] = 0,
    ensemble_size: Annotated[
        int | None,
        typer.Option(
            help="risk tasks: average the log odds of this many best Optuna trials (default 1: the best alone; "
            "5 ranks a little better and scores more slowly)"
        ),
    ] = None,
    cv_folds: Annotated[
        int | None, typer.Option(help="outer cross-validation folds (default: 5 below 2,000 patients, else 3)")
    ] = None,
    cv_repeats: Annotated[
        int | None, typer.Option(help="outer repeats (default: 5 below 500 patients, 2 below 2,000, else 1)")
    ] = None,
    n_jobs: Annotated[int | None, typer.Option(help="outer folds run in parallel (default: all cores)")] = None,
    cv_groups: Annotated[
        str | None,
        typer.Option(
            help="risk tasks: patients column (a centre) for internal-external cross-validation: leave each value "
            "out in turn, pooled by random effects with a prediction interval"
        ),
    ] = None,
    instability_boot: Annotated[
        int | None,
        typer.Option(help="risk tasks: bootstrap refits for prediction instability (default 20; 0: not checked)"),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna RDB storage URL for the final study (share it across machines)")
    ] = None,
    study_name: Annotated[str | None, typer.Option(help="Optuna study name in --storage")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default sqlite:///mlruns/mlflow.db or MLFLOW_TRACKING_URI)")
    ] = None,
    register_name: Annotated[str | None, typer.Option(help="registered model name (default crsml-<task>)")] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option(
            "--extra",
            help="extra patients column as a feature (numeric, true/false, or text such as a centre: one indicator "
            "per value); repeatable",
        ),
    ] = None,
    grace_h: Annotated[
        float | None, typer.Option("--grace-h", help="shortcut for --task-param grace_h=H (tocilizumab_benefit)")
    ] = None,
    trim: Annotated[
        float | None, typer.Option(help="tocilizumab_benefit: overlap bound on the propensity (default 0.01)")
    ] = None,
    landmarks: Annotated[
        str | None,
        typer.Option(
            help="risk tasks: a landmark grid, START:STOP:STEP hours (12:120:12) or a list (24,48,72): one landmark "
            "supermodel on every patient at every landmark, which predicts at any hour of the grid's range"
        ),
    ] = None,
    learner: Annotated[
        str | None,
        typer.Option(
            help="risk tasks: auto (the default: the tuned model and a fixed conservative configuration in the same "
            "folds; the fixed one kept below Riley's minimum sample size unless the tuned one ranks better by more "
            "than a standard error), tuned (Optuna) or fixed"
        ),
    ] = None,
    accept_weak_model: Annotated[
        bool,
        typer.Option(
            "--accept-weak-model",
            help="export and register a model that ranks no better than chance (refused otherwise)",
        ),
    ] = False,
) -> None:
    """Tune (Optuna), evaluate out of fold against published baselines, log to MLflow, export."""
    from crsml import tasks, training
    from crsml.cli._console import check_model_out, print_quality
    from crsml.cohort import Cohort, landmark_grid
    from crsml.tracking import export_model, log_training

    check_model_out(model_out)  # before the cohort is read, any model fitted or any run opened
    the_task = tasks.get(task)
    grid = landmark_grid(landmarks) if landmarks is not None else None
    if landmark_h is None:
        if grid is None:
            raise CrsmlError("give --landmark-h (hours after infusion), or a grid with --landmarks")
        landmark_h = min(grid, key=lambda L: (abs(L - 48.0), L))
    fields = {f.name for f in dataclasses.fields(training.SETTINGS[the_task.model_kind])}
    given = {
        "trials": trials,
        "seed": seed,
        "trim": trim,
        "ensemble_size": ensemble_size,
        "cv_folds": cv_folds,
        "cv_repeats": cv_repeats,
        "n_jobs": n_jobs,
        "storage": storage,
        "study_name": study_name,
        "cv_groups": cv_groups,
        "instability_boot": instability_boot,
        "landmarks": grid,
        "learner": learner,
    }
    # an option the task's training does not take is refused here; a task parameter it does not
    # take (--min-days for severe_crs) by the task itself when the settings are made
    refused = [k for k, v in given.items() if v is not None and k not in fields]
    if refused:
        raise tasks.not_applicable(task, refused)
    options = {k: v for k, v in given.items() if v is not None}
    options["task_params"] = _task_params(
        type(the_task), task_param or [], {"horizon_h": horizon_h, "min_days": min_days, "grace_h": grace_h}
    )
    # settings are checked (landmark, horizon, trials...) before the cohort is read
    settings = training.settings_for(task, landmark_h, extra_patient_columns=tuple(extra or ()), **options)
    con = Console(highlight=False, soft_wrap=True)
    cohort, report = Cohort.load_with_report(cohort_dir)
    print_quality(con, report, cohort_dir)
    result = training.train(cohort, settings=settings, log=con.print)
    if result.weak and not accept_weak_model:
        log_training(result, tracking_uri=tracking_uri, register_name="", log=con.print)  # the run, for the record
        print_result(con, result)
        raise CrsmlError(
            f"{'; '.join(result.weak)}. The model was neither exported nor registered "
            "(--accept-weak-model keeps it anyway)"
        )
    export_model(result.model, model_out)  # the model and its card, written once
    log_training(result, tracking_uri=tracking_uri, register_name=register_name, log=con.print, model_dir=model_out)
    con.print(f"model written to {model_out}")
    print_result(con, result)


def _task_params(task_cls: type, pairs: list[str], shortcuts: dict[str, float | None]) -> dict[str, object]:
    """``--task-param NAME=VALUE`` pairs (and the shortcut options given) as the task's parameters,
    each converted by the task (:meth:`~crsml.tasks.Task.parse_param`)."""
    from crsml import tasks

    params: dict[str, object] = {}
    for name, value in shortcuts.items():
        if value is not None:
            if name not in task_cls.param_names():
                raise tasks.not_applicable(task_cls.name, [name])
            params[name] = value
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise CrsmlError(f"--task-param {pair}: write NAME=VALUE (such as min_days=5)")
        params[name.strip()] = task_cls.parse_param(name.strip(), text.strip())
    return params
