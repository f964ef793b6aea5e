"""Tracking and export: MLflow set-up (local SQLite store by default), one run per training
for every task, and models exported as MLflow pyfuncs or loaded from a directory or the registry."""

from crsml.tracking._export import (
    MODEL_CARD_FILE,
    export_model,
    load_model,
    requirements,
    save_pyfunc,
    staged,
    synthetic_example,
)
from crsml.tracking._mlflow import DEFAULT_DIR, default_tracking_uri, quiet, start, store_lock
from crsml.tracking._runs import log_evaluation, log_training, log_update

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
