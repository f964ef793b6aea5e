"""``crsml validate`` and ``crsml import-daily``: cohort checks and the daily-table adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crsml.cli._console import err, out, print_problems


def validate_command(
    directory: Annotated[Path, typer.Argument(help="cohort directory (CSV or Parquet tables)")],
    max_problems: Annotated[int, typer.Option(help="most problem lines to print")] = 10_000,
) -> None:
    """Check a cohort: exit 0 when valid (warnings printed), 2 with one line per problem."""
    from crsml.cohort import read_raw_tables, validate_tables

    _, report = validate_tables(read_raw_tables(directory))
    problems = report.errors + report.warnings
    print_problems(problems, max_problems)
    n_err, n_warn = len(report.errors), len(report.warnings)
    if n_err:
        err.print(f"{directory}: NOT valid: {n_err} errors, {n_warn} warnings")
        raise typer.Exit(2)
    err.print(f"{directory}: valid ({n_warn} warnings)")


def import_daily_command(
    csv: Annotated[Path, typer.Argument(help="one-row-per-patient-day CSV")],
    out_dir: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    config: Annotated[Path | None, typer.Option(help="column mapping (TOML); default fits the shared real cohort")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Import a daily table (such as shared/data/real/bal_daily_cohort.csv) as a cohort."""
    from crsml.adapters import DailyMapping, import_daily, summarise

    cohort, report = import_daily(csv, DailyMapping.load(config))
    cohort.save(out_dir, fmt=fmt)  # type: ignore[arg-type]
    print_problems(report.warnings, 10_000)
    out.print(json.dumps(summarise(cohort), indent=2))
    err.print(f"wrote {out_dir} ({len(report.warnings)} warnings)")


