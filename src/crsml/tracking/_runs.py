"""One MLflow run per training, for every task: parameters, metrics, tags, the evaluation
artifacts and plots, and the model logged and registered. Only counts, digests, settings and
aggregate metrics reach MLflow; never a patient row or identifier."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from crsml.evaluation import TrainingResult
from crsml.tracking._export import staged
from crsml.tracking._mlflow import start, store_lock


def _write_artifact(path: Path, value: Any) -> None:
    if isinstance(value, pd.DataFrame) and path.suffix == ".md":
        try:
            path.write_text(value.to_markdown())
        except ImportError:  # tabulate is optional
            path.write_text(value.to_string())
    elif isinstance(value, pd.DataFrame):
        value.to_csv(path, index=not isinstance(value.index, pd.RangeIndex))
    elif isinstance(value, str):
        path.write_text(value)
    else:
        path.write_text(json.dumps(value, indent=1, default=float))


def log_training(result: TrainingResult, tracking_uri: str | None = None, register_name: str | None = None,
                 log: Any = print) -> str:
    """Log ``result`` as an MLflow run in experiment ``crsml-<task>`` and register its model.

    Parameters
    ----------
    result : what :func:`crsml.train` returned.
    tracking_uri : MLflow store (default ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlruns/mlflow.db``).
    register_name : registered model name (None: ``crsml-<task>``; ``""``: do not register).
    log : where the run's id goes for people.

    Returns
    -------
    str
        The run id.
    """
    task, L = result.model.task.name, result.model.landmark_h
    mlflow = start(f"crsml-{task}", tracking_uri)
    with mlflow.start_run(run_name=f"{task}-L{L:g}") as run:
        mlflow.log_params(result.params)
        mlflow.set_tags({"crsml.task": task, "crsml.landmark_h": str(float(L)),
                         **({"crsml.chosen": result.params["chosen"]} if "chosen" in result.params else {})})
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items()})
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            for name, value in result.artifacts.items():
                _write_artifact(t / name, value)
            result.plots(t)
            mlflow.log_artifacts(str(t), artifact_path="evaluation")
        registered = f"crsml-{task}" if register_name is None else (register_name or None)
        with staged(result.model) as exported, store_lock(mlflow.get_tracking_uri()):
            mlflow.pyfunc.log_model(name="model", registered_model_name=registered, **exported)
        log(f"MLflow run {run.info.run_id} in experiment crsml-{task} ({mlflow.get_tracking_uri()})")
        return run.info.run_id
