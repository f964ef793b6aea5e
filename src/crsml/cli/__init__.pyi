"""The command line's public names, loaded on first use (see ``__init__.py``)."""

from ._app import app, main
from ._config import load_config, run_config, run_experiment_config
from ._console import print_result, print_table

__all__ = ["app", "load_config", "main", "print_result", "print_table", "run_config", "run_experiment_config"]
