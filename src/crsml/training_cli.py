"""``crsml train``: tune, evaluate, log and export a model for one task and landmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crsml.errors import CrsmlError


def train_command(
    task: Annotated[str, typer.Option(help="severe_crs, prolonged_crs or tocilizumab_benefit")],
    cohort_dir: Annotated[Path, typer.Option("--cohort", help="cohort directory")],
    landmark_h: Annotated[float, typer.Option("--landmark-h", help="landmark, hours after infusion")],
    model_out: Annotated[Path, typer.Option("--model-out", help="model directory to write, e.g. models/severe48")],
    trials: Annotated[int | None, typer.Option(
        help="Optuna trials per study (default: 40 for the risk tasks, 10 per nuisance study for tocilizumab_benefit)")] = None,
    horizon_h: Annotated[float, typer.Option("--horizon-h", help="outcome window after the landmark (h)")] = 336.0,
    min_days: Annotated[float | None, typer.Option(help="prolonged_crs: total CRS days above which CRS is prolonged (default 7)")] = None,
    seed: Annotated[int, typer.Option(help="seeds folds, Optuna and XGBoost")] = 0,
    ensemble_size: Annotated[int | None, typer.Option(
        help="risk tasks: average the log odds of this many best Optuna trials (default 1: the best alone; "
             "5 ranks a little better and scores more slowly)")] = None,
    cv_folds: Annotated[int | None, typer.Option(help="outer cross-validation folds (default: 5 below 2,000 patients, else 3)")] = None,
    cv_repeats: Annotated[int | None, typer.Option(help="outer repeats (default: 5 below 500 patients, 2 below 2,000, else 1)")] = None,
    n_jobs: Annotated[int | None, typer.Option(help="outer folds run in parallel (default: all cores)")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna RDB storage URL for the final study (share it across machines)")] = None,
    study_name: Annotated[str | None, typer.Option(help="Optuna study name in --storage")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default sqlite:///mlruns/mlflow.db or MLFLOW_TRACKING_URI)")] = None,
    register_name: Annotated[str | None, typer.Option(help="registered model name (default crsml-<task>)")] = None,
    extra: Annotated[list[str] | None, typer.Option("--extra", help="extra patients column as a feature (numeric, true/false, or text such as a centre: one indicator per value); repeatable")] = None,
    grace_h: Annotated[float | None, typer.Option("--grace-h", help="tocilizumab_benefit: 'now' means a dose in [L, L + grace) (default 6)")] = None,
    trim: Annotated[float | None, typer.Option(help="tocilizumab_benefit: overlap bound on the propensity (default 0.01)")] = None,
) -> None:
    """Tune (Optuna), evaluate out of fold against published baselines, log to MLflow, export."""
    from rich.console import Console

    from crsml.cohort import Cohort
    from crsml.labels import TASKS
    from crsml.tracking import quiet
    from crsml.training import TrainSettings, format_table, train

    if task not in TASKS:
        raise CrsmlError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    benefit = task == "tocilizumab_benefit"
    other_task = ({"--min-days": min_days, "--cv-folds": cv_folds, "--cv-repeats": cv_repeats, "--n-jobs": n_jobs,
                   "--storage": storage, "--study-name": study_name, "--ensemble-size": ensemble_size} if benefit
                  else {"--grace-h": grace_h, "--trim": trim})
    refused = [name for name, value in other_task.items() if value is not None]
    if refused:
        one = len(refused) == 1
        raise CrsmlError(f"{', '.join(refused)} {'does' if one else 'do'} not apply to --task {task}; "
                         f"leave {'it' if one else 'them'} out")
    # settings are checked (landmark, horizon, trials...) before the cohort is read
    if benefit:
        from crsml.causal.training import BenefitSettings, train_benefit

        chosen = {"trials": trials, "grace_h": grace_h, "trim": trim}
        settings = BenefitSettings(landmark_h=landmark_h, horizon_h=horizon_h, seed=seed, register_name=register_name,
                                   extra_patient_columns=tuple(extra or ()),
                                   **{k: v for k, v in chosen.items() if v is not None})
    else:
        chosen = {"trials": trials, "min_days": min_days, "ensemble_size": ensemble_size}
        settings = TrainSettings(
            task=task, landmark_h=landmark_h, horizon_h=horizon_h, seed=seed,
            cv_folds=cv_folds, cv_repeats=cv_repeats, n_jobs=n_jobs, storage=storage, study_name=study_name,
            extra_patient_columns=tuple(extra or ()), register_name=register_name,
            **{k: v for k, v in chosen.items() if v is not None},
        )
    quiet()
    con = Console(highlight=False, soft_wrap=True)
    cohort = Cohort.load(cohort_dir)
    missing = [c for c in (extra or ()) if c not in cohort.patients]
    if missing:
        raise CrsmlError(f"table patients: no column {', '.join(missing)} (named by --extra)")
    if benefit:
        result = train_benefit(cohort, settings, model_out=model_out, tracking_uri=tracking_uri, log=con.print)
        m = result.bundle.benefit
        print_table(con, format_table_plain(m.selection_),
                    f"candidates (chosen: {m.chosen_}): held-out DR loss in days^2, lower is better, with its standard "
                    "error and its difference from risk_scaled; DR value of treating the top 30% by each (days spared "
                    "per patient); rank correlation with risk_scaled")
        return
    result = train(cohort, settings, model_out=model_out, tracking_uri=tracking_uri, log=con.print)
    print_table(con, format_table(result.table), f"{task} at L = {landmark_h:g} h: out-of-fold, bootstrap 95% intervals")


def format_table_plain(table):
    return table.map(lambda v: f"{v:.4f}" if isinstance(v, float) else str(v))


def print_table(con, table, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    t.add_column("model")
    for c in table.columns:
        t.add_column(c)
    for name, row in table.iterrows():
        t.add_row(str(name), *row.tolist())
    Console(width=max(con.width, 180), highlight=False).print(t)
