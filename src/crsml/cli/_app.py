"""The ``crsml`` application: one typer app, one module per command group; every user-facing
failure is one line and exit code 2. ``--debug`` (anywhere on the line) shows the traceback."""

from __future__ import annotations

import signal
import sys
import traceback
from typing import Annotated

import typer

from crsml._version import __version__
from crsml.cli._console import err, out
from crsml.cli._data import (
    export_command,
    import_daily_command,
    import_fhir_command,
    import_long_command,
    import_omop_command,
    validate_command,
)
from crsml.cli._evaluate import evaluate_command, update_command
from crsml.cli._features import dictionary_command, features_command
from crsml.cli._score import explain_command, report_command, score_command
from crsml.cli._simulate import simulate_command
from crsml.cli._train import train_command
from crsml.errors import CrsmlError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Landmark prediction of severe/prolonged CRS and tocilizumab benefit after CD19 CAR-T. "
    "Add --debug anywhere on the line to see the Python traceback of an error.",
)


def _version(value: bool) -> None:
    if value:
        out.print(f"crsml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print crsml's version and exit")
    ] = False,
) -> None:
    """Landmark prediction of severe/prolonged CRS and tocilizumab benefit after CD19 CAR-T."""
    from crsml.tracking import quiet

    quiet()  # third-party INFO lines and download bars are not crsml's to print


app.command("validate")(validate_command)
app.command("import-daily")(import_daily_command)
app.command("import-long")(import_long_command)
app.command("import-omop")(import_omop_command)
app.command("import-fhir")(import_fhir_command)
app.command("export")(export_command)
app.command("simulate")(simulate_command)
app.command("features")(features_command)
app.command("features-dictionary")(dictionary_command)
app.command("train")(train_command)
app.command("score")(score_command)
app.command("explain")(explain_command)
app.command("report")(report_command)
app.command("evaluate")(evaluate_command)
app.command("update")(update_command)


def _terminated(signum: int, frame: object) -> None:
    # unwinds like an exception, so temporary patient data and partial outputs are removed
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: run the app, turning bad input into one line and exit code 2."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    previous = {s: signal.signal(s, _terminated) for s in (signal.SIGTERM, signal.SIGINT)}
    try:  # SIGINT too: the shell may have started crsml with it ignored (a background job)
        _run(debug)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(debug: bool) -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted; temporary files removed")
        sys.exit(130)
    except SystemExit as exc:
        if exc.code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
            err.print("stopped; temporary files removed")
        raise
    except CrsmlError as exc:
        if debug:  # the traceback, and still the exit code of bad input
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input
        if debug:
            raise
        # the exception's text is not shown: it may quote the input
        err.print(
            f"internal error: {type(exc).__name__} (a bug in crsml; rerun with --debug to see where)", markup=False
        )
        sys.exit(1)
