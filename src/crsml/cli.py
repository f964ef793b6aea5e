"""The ``crsml`` command line. Every user-facing failure is one line and exit code 2;
``--debug`` (anywhere on the line) shows the Python traceback instead."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crsml.errors import CrsmlError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Landmark prediction of severe/prolonged CRS and tocilizumab benefit after CD19 CAR-T. "
    "Add --debug anywhere on the line to see the Python traceback of an error.",
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_DEBUG = False


def _print_problems(problems: list, limit: int) -> None:
    for p in problems[:limit]:
        out.print(str(p), markup=False)
    if len(problems) > limit:
        out.print(f"... and {len(problems) - limit} more (raise --max-problems to see them)")


@app.command()
def validate(
    directory: Annotated[Path, typer.Argument(help="cohort directory (CSV or Parquet tables)")],
    max_problems: Annotated[int, typer.Option(help="most problem lines to print")] = 10_000,
) -> None:
    """Check a cohort: exit 0 when valid (warnings printed), 2 with one line per problem."""
    from crsml.cohort import read_raw_tables
    from crsml.validation import validate_tables

    _, report = validate_tables(read_raw_tables(directory))
    problems = report.errors + report.warnings
    _print_problems(problems, max_problems)
    n_err, n_warn = len(report.errors), len(report.warnings)
    if n_err:
        err.print(f"{directory}: NOT valid: {n_err} errors, {n_warn} warnings")
        raise typer.Exit(2)
    err.print(f"{directory}: valid ({n_warn} warnings)")


@app.command("import-daily")
def import_daily_cmd(
    csv: Annotated[Path, typer.Argument(help="one-row-per-patient-day CSV")],
    out_dir: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    config: Annotated[Path | None, typer.Option(help="column mapping (TOML); default fits the shared real cohort")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Import a daily table (such as shared/data/real/bal_daily_cohort.csv) as a cohort."""
    from crsml.adapters.daily import DailyMapping, import_daily, summarise

    cohort, report = import_daily(csv, DailyMapping.load(config))
    cohort.save(out_dir, fmt=fmt)  # type: ignore[arg-type]
    _print_problems(report.warnings, 10_000)
    out.print(json.dumps(summarise(cohort), indent=2))
    err.print(f"wrote {out_dir} ({len(report.warnings)} warnings)")


from crsml.features.cli import dictionary_command, features_command  # noqa: E402
from crsml.scoring.cli import explain_command, report_command, score_command  # noqa: E402
from crsml.simulate.cli import simulate_command  # noqa: E402
from crsml.training_cli import train_command  # noqa: E402

app.command("features")(features_command)
app.command("features-dictionary")(dictionary_command)
app.command("simulate")(simulate_command)
app.command("train")(train_command)
app.command("score")(score_command)
app.command("explain")(explain_command)
app.command("report")(report_command)


def main() -> None:
    """Entry point: run the app, turning bad input into one line and exit code 2."""
    global _DEBUG
    if "--debug" in sys.argv:
        _DEBUG = True
        sys.argv.remove("--debug")
    try:
        app()
    except CrsmlError as exc:
        if _DEBUG:
            raise
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input
        if _DEBUG:
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", markup=False)
        sys.exit(1)
