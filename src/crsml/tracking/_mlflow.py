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
        fresh_sqlite_store(uri)
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(experiment) is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (DEFAULT_DIR / "artifacts").resolve().as_uri()
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)
    return mlflow


def fresh_sqlite_store(uri: str) -> None:
    """A new local SQLite store starts as a copy of an empty one migrated once per MLflow version
    and kept in the user's cache (``$XDG_CACHE_HOME/crsml``, else ``~/.cache/crsml``): MLflow
    builds a new store by running its whole chain of schema migrations, several seconds each time.
    An existing store, or a server, is left to MLflow."""
    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri.removeprefix("sqlite:///"))
    if db.exists():
        return
    import shutil

    try:
        template = _template_store()
    except OSError:  # no writable cache: MLflow migrates the new store itself
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    partial = db.with_name(f".{db.name}.partial-{os.getpid()}")
    shutil.copyfile(template, partial)
    os.replace(partial, db)


def _template_store() -> Path:
    from importlib.metadata import version

    from filelock import FileLock

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crsml"
    cache.mkdir(parents=True, exist_ok=True)
    template = cache / f"mlflow-{version('mlflow')}-empty.db"
    with FileLock(f"{template}.lock", timeout=600):
        if not template.exists():
            from mlflow.tracking import MlflowClient

            partial = template.with_name(f".{template.name}.partial-{os.getpid()}")
            partial.unlink(missing_ok=True)
            MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments()  # creates and migrates
            from sqlalchemy import create_engine, text

            engine = create_engine(f"sqlite:///{partial}")  # the default experiment's location was this file's
            with engine.begin() as con:
                con.execute(text("UPDATE experiments SET artifact_location = './mlruns/0' WHERE experiment_id = 0"))
            engine.dispose()
            os.replace(partial, template)
    return template


def store_lock(uri: str):
    """A lock held while one process creates, migrates or registers in a local SQLite store (a
    file lock beside the database); a server store serialises itself, so nothing is held then."""
    if not uri.startswith("sqlite:///"):
        return nullcontext()
    from filelock import FileLock

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{db}.lock", timeout=600)
