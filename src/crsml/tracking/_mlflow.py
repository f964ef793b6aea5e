"""MLflow set-up shared by every run: the local default store and one experiment per task."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

DEFAULT_DIR = Path("mlruns")


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlruns/mlflow.db`` (no server)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    DEFAULT_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{DEFAULT_DIR / 'mlflow.db'}"


def quiet() -> None:
    """Keep MLflow's download bars, INFO lines and type-hint advice out of the user's console."""
    import logging
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # read when MLflow is first imported, which sets its logger to INFO otherwise
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*type hints to the `predict` method.*")


def start(experiment: str, tracking_uri: str | None = None):
    """Point MLflow at the store, select ``experiment`` (artifacts under ``mlruns/``), return mlflow."""
    import mlflow

    quiet()
    uri = tracking_uri or default_tracking_uri()
    with store_lock(uri):  # several crsml processes may create and migrate one new store at once
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(experiment) is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (DEFAULT_DIR / "artifacts").resolve().as_uri()
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)
    return mlflow


def store_lock(uri: str):
    """A lock held while one process creates, migrates or registers in a local SQLite store (a
    file lock beside the database); a server store serialises itself, so nothing is held then."""
    if not uri.startswith("sqlite:///"):
        return nullcontext()
    from filelock import FileLock

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{db}.lock", timeout=600)
