"""``crsml score``, ``crsml explain`` and ``crsml report`` (the model card)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crsml.errors import CrsmlError


def score_command(
    model: Annotated[str, typer.Option(help="models/NAME or models:/NAME/VERSION")],
    cohort_dir: Annotated[Path, typer.Option("--cohort", help="cohort directory of new patients")],
    out: Annotated[Path, typer.Option("--out", help="scores file (.csv or .parquet)")],
    explain: Annotated[int, typer.Option(help="top SHAP drivers per patient (0: none)")] = 5,
    landmark_h: Annotated[float | None, typer.Option("--landmark-h", help="landmark (default: the model's)")] = None,
    at_h: Annotated[
        float | None,
        typer.Option(
            "--at-h",
            help="a landmark supermodel: score at this hour after infusion (any time in its grid's range)",
        ),
    ] = None,
    trajectory: Annotated[
        bool,
        typer.Option(
            "--trajectory",
            help="a landmark supermodel: one row per patient and grid time up to the patient's last record",
        ),
    ] = False,
    engine: Annotated[str, typer.Option(help="local or dask")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster)")] = None,
    chunk_patients: Annotated[int, typer.Option(help="patients per chunk (bounds memory)")] = 20_000,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for models:/ URIs")] = None,
    allow_missing_table: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-missing-table",
            help="score although this whole table is empty (vitals); each row then says so "
            "in its warnings column; repeatable",
        ),
    ] = None,
) -> None:
    """Score every patient of a cohort: one row per patient, status ok / not_eligible / invalid,
    and the kinds of warning that concern each patient's score."""
    from rich.console import Console

    from crsml.cohort import check_landmark, check_output, refuse_inside
    from crsml.scoring import STATUSES, check_scheduler, score_directory
    from crsml.tracking import load_model

    check_output(out, "file")
    if out.suffix not in (".csv", ".parquet"):
        raise CrsmlError(f"--out must end in .csv or .parquet, not {out.suffix!r}")
    if engine == "dask" and scheduler:
        check_scheduler(scheduler)
    given = [f for f, v in (("--landmark-h", landmark_h), ("--at-h", at_h), ("--trajectory", trajectory or None)) if v]
    if len(given) > 1:
        raise CrsmlError(f"{' and '.join(given)}: give one of them")
    for h in (landmark_h, at_h):
        if h is not None:
            check_landmark(h)
    refuse_inside(out, cohort_dir)
    con = Console(stderr=True, highlight=False, soft_wrap=True)
    model_ = load_model(model, tracking_uri)
    if at_h is not None:
        model_.check_time(at_h)
        landmark_h = at_h
    if landmark_h is not None and landmark_h != model_.landmark_h and not model_.landmarks:
        con.print(
            f"warning: the model was trained and evaluated at L = {model_.landmark_h:g} h; "
            f"scores at {landmark_h:g} h are outside that evaluation"
        )
    counts, report = score_directory(
        model_,
        cohort_dir,
        out=out,
        landmark_h=landmark_h,
        explain=explain,
        chunk_patients=chunk_patients,
        engine=engine,
        scheduler=scheduler,
        progress=True,
        allow_missing_tables=tuple(allow_missing_table or ()),
        trajectory=trajectory,
    )
    con.print(
        f"wrote {out}: {sum(counts.values()):,} {'rows' if trajectory else 'patients'}; "
        + ", ".join(f"{s} {counts[s]:,}" for s in STATUSES)
    )
    # a warning about a whole table (no row: an analyte or table the model uses is absent) is
    # printed; row-level ones can number thousands, so they are counted
    from crsml.cli._console import print_quality

    whole = [w for w in report.warnings if w.row is None and not w.kind]
    for p in whole:
        con.print(f"  {p}", markup=False)
    print_quality(con, report, cohort_dir)
    unattributed = report.unattributed()
    if unattributed:
        con.print(
            f"  {len(unattributed)} rows name no patient (blank patient_id): not used (no patient can be named for "
            f"them)"
        )
    from crsml.cohort import grouped_lines

    lines = grouped_lines(report.errors)
    for line in lines[:10]:
        con.print(f"  {line}", markup=False)
    if len(lines) > 10:
        con.print(f"  ... and {len(lines) - 10} more problems (crsml validate lists them all)")


def explain_command(
    model: Annotated[str, typer.Option(help="models/NAME or models:/NAME/VERSION")],
    cohort_dir: Annotated[Path, typer.Option("--cohort", help="cohort whose eligible patients are explained")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the plots")],
    patients: Annotated[
        int,
        typer.Option(
            help="waterfall plots for this many patients (highest risk first; highest benefit for a benefit model)"
        ),
    ] = 3,
    max_display: Annotated[int, typer.Option(help="features shown per plot")] = 12,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for models:/ URIs")] = None,
) -> None:
    """SHAP plots: beeswarm and mean |SHAP| over the cohort, waterfalls for single patients."""
    from rich.console import Console

    from crsml.cohort import check_output, read_cohort, refuse_inside
    from crsml.explanation import explain_cohort
    from crsml.scoring import check_compatible
    from crsml.tracking import load_model

    check_output(out_dir, "dir")
    refuse_inside(out_dir, cohort_dir)
    model_ = load_model(model, tracking_uri)
    cohort = read_cohort(cohort_dir, on_error="drop")
    con = Console(stderr=True, highlight=False)
    for w in check_compatible(model_, cohort):  # refuses a cohort the model cannot read, as score does
        con.print(f"  {w}", markup=False)
    paths = explain_cohort(model_, cohort, out_dir, n_patients=patients, max_display=max_display)
    if model_.landmarks:  # a supermodel: each chosen patient's risk over time, over their course
        paths += write_trajectories(model_, cohort, out_dir, patients)
    con.print(f"wrote {len(paths)} plots to {out_dir}")


def write_trajectories(model, cohort, out_dir: Path, n_patients: int, numbered: bool = False) -> list[Path]:
    """``trajectory_<i>.png`` for the ``n_patients`` with the highest risk at any grid time of a
    landmark supermodel. By default files of the user's own, which name the patients, with
    ``trajectories.csv`` (their rows and top drivers); ``numbered``: titled "patient 1" to "patient
    n", with no identifier and no CSV, for a report that goes to MLflow."""
    from crsml.evaluation import save_figure
    from crsml.explanation import plot_trajectory
    from crsml.scoring import score_trajectory

    if not model.landmarks:
        raise CrsmlError("trajectories need a landmark supermodel (crsml train --landmarks ...)")
    out_dir.mkdir(parents=True, exist_ok=True)
    tr = score_trajectory(model, cohort, explain=0 if numbered else 3)
    top = tr.groupby("patient_id", sort=False)["risk"].max().dropna().sort_values(ascending=False).index[:n_patients]
    paths = [
        save_figure(
            plot_trajectory(tr, cohort, pid, title=f"patient {i}" if numbered else None),
            out_dir / f"trajectory_{i}.png",
        )
        for i, pid in enumerate(top, start=1)
    ]
    if not numbered:
        tr[tr["patient_id"].isin(top)].to_csv(out_dir / "trajectories.csv", index=False)
    return paths


def report_command(
    model: Annotated[str, typer.Option(help="models/NAME or models:/NAME/VERSION")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for index.html and its plots")],
    cohort_dir: Annotated[
        Path | None, typer.Option("--cohort", help="cohort for SHAP examples (default: simulated)")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for models:/ URIs")] = None,
) -> None:
    """Write a self-contained HTML model card (evaluation, curves, SHAP, limitations)."""
    from rich.console import Console

    from crsml.cohort import check_output, read_cohort, refuse_inside
    from crsml.reporting import write_model_card
    from crsml.tracking import load_model

    check_output(out_dir, "dir")
    if cohort_dir:
        refuse_inside(out_dir, cohort_dir)
    model_ = load_model(model, tracking_uri)
    cohort = read_cohort(cohort_dir, on_error="drop") if cohort_dir else None
    path = write_model_card(model_, out_dir, cohort, cohort_label=str(cohort_dir) if cohort_dir else "")
    Console(stderr=True, highlight=False).print(f"wrote {path}")
