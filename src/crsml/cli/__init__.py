"""The ``crsml`` command line (typer). One module per command group; no library logic here:
the commands compose the public API (read, train, log, export, score, explain, report)."""

from crsml.cli._app import app, main
from crsml.cli._config import load_config, run_config
from crsml.cli._config import main as run_experiment_config
from crsml.cli._console import print_result, print_table

__all__ = ["app", "load_config", "main", "print_result", "print_table", "run_config", "run_experiment_config"]
