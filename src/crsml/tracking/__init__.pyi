"""The tracking package's public names, loaded on first use (see ``__init__.py``)."""

from ._export import (
    MODEL_CARD_FILE,
    export_model,
    load_model,
    requirements,
    save_pyfunc,
    staged,
    synthetic_example,
)
from ._mlflow import DEFAULT_DIR, default_tracking_uri, quiet, start, store_lock
from ._runs import log_evaluation, log_training, log_update

__all__ = [
    "DEFAULT_DIR",
    "MODEL_CARD_FILE",
    "default_tracking_uri",
    "export_model",
    "load_model",
    "log_evaluation",
    "log_training",
    "log_update",
    "quiet",
    "requirements",
    "save_pyfunc",
    "staged",
    "start",
    "store_lock",
    "synthetic_example",
]
