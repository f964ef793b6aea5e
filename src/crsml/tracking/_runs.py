"""One MLflow run per training, for every task: parameters, metrics, tags, the evaluation
artifacts and plots, and the model logged and registered. Only counts, digests, settings and
aggregate metrics reach MLflow; never a patient row or identifier."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from crsml.errors import CrsmlError
from crsml.tracking._export import staged
from crsml.tracking._mlflow import start, store_lock
from crsml.tracking._params import run_metrics, run_params
from crsml.training import TrainingResult
from crsml.validation import EvaluationResult, UpdateResult


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


def log_training(
    result: TrainingResult,
    tracking_uri: str | None = None,
    register_name: str | None = None,
    log: Any = print,
    model_dir: str | Path | None = None,
) -> str:
    """Log ``result`` as an MLflow run in experiment ``crsml-<task>`` and register its model.

    Parameters
    ----------
    result : what :func:`crsml.train` returned.
    tracking_uri : MLflow store (default ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlruns/mlflow.db``).
    register_name : registered model name (None: ``crsml-<task>``; ``""``: do not register).
    log : where the run's id goes for people.
    model_dir : the model already exported (:func:`~crsml.tracking.export_model`): logged as the
        run's ``model`` as it is and registered from there, so the model and its card are written
        once. Without it the model is exported into the run.

    Returns
    -------
    str
        The run id.
    """
    task, L = result.model.task.name, result.model.landmark_h
    mlflow = start(f"crsml-{task}", tracking_uri)
    with mlflow.start_run(run_name=f"{task}-L{L:g}") as run:
        params = run_params(result)
        mlflow.log_params(params)
        mlflow.set_tags(
            {
                "crsml.task": task,
                "crsml.landmark_h": str(float(L)),
                **({"crsml.chosen": params["chosen"]} if "chosen" in params else {}),
            }
        )
        mlflow.log_metrics(run_metrics(result))
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            for name, value in result.artifacts.items():
                _write_artifact(t / name, value)
            result.plots(t)
            mlflow.log_artifacts(str(t), artifact_path="evaluation")
        registered = f"crsml-{task}" if register_name is None else (register_name or None)
        version = _log_model(mlflow, run.info.run_id, result.model, registered, model_dir)
        as_version = f"; registered as version {version} of {registered}" if registered and version else ""
        log(f"MLflow run {run.info.run_id} in experiment crsml-{task} ({mlflow.get_tracking_uri()}){as_version}")
        return run.info.run_id


def _log_model(mlflow: Any, run_id: str, model: Any, registered: str | None, model_dir: str | Path | None) -> Any:
    """Log the model into the run and register it; return the registered version (or None).

    An exported directory is logged as it is (its files, card and MLmodel) and registered from the
    run's artifacts: no second export and no second model card. Otherwise the model is exported
    into the run by MLflow's ``log_model``."""
    if model_dir is not None:
        d = Path(model_dir)
        if not (d / "MLmodel").is_file():
            raise CrsmlError(f"{d} is not an exported model (no MLmodel): export it first (crsml.export_model)")
        mlflow.log_artifacts(str(d), artifact_path="model")
        if not registered:
            return None
        with store_lock(mlflow.get_tracking_uri()), _mlflow_silent():
            return mlflow.register_model(f"runs:/{run_id}/model", registered).version
    with staged(model) as exported, store_lock(mlflow.get_tracking_uri()), _mlflow_silent():
        info = mlflow.pyfunc.log_model(name="model", registered_model_name=registered, **exported)
    return getattr(info, "registered_model_version", None)


@contextlib.contextmanager
def _mlflow_silent():
    """MLflow's own lines ("Successfully registered model ...", "Created version ...") printed
    straight to stderr, kept out of the user's console: crsml says the same in one line. (MLflow's
    ``disable_logging`` does not hold: ``log_model`` turns its event stream back on inside.)"""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


def log_evaluation(
    result: EvaluationResult, report_dir: str | Path | None = None, tracking_uri: str | None = None, log: Any = print
) -> str:
    """Log an evaluation as an MLflow run in experiment ``crsml-<task>-evaluation``, tagged with the
    model it judged (files digest; registered name and version when it has them): every figure as a
    metric, the report's JSON and figures (and ``report_dir``, the HTML report) as artifacts.
    Aggregates only; returns the run id."""
    info = result.model_info
    mlflow = start(f"crsml-{result.task}-evaluation", tracking_uri)
    with mlflow.start_run(run_name=f"evaluate-{result.task}-L{result.landmark_h:g}") as run:
        tags = {
            "crsml.task": result.task,
            "crsml.landmark_h": str(float(result.landmark_h)),
            "crsml.judged_model_digest": str(info.get("model_digest") or ""),
        }
        if info.get("registered_name"):
            tags |= {
                "crsml.judged_model": str(info["registered_name"]),
                "crsml.judged_version": str(info.get("version")),
            }
        mlflow.set_tags(tags)
        mlflow.log_params({"n_boot": result.n_boot, "seed": result.seed, "horizon_h": result.horizon_h})
        metrics = {f"n_{_slug(str(step))}": float(n) for step, n in result.flow["n"].items()}
        for name, row in result.table.iterrows():
            prefix = "" if name == "model" else f"baseline_{_slug(str(name))}_"
            metrics |= {f"{prefix}{k}": float(v) for k, v in row.items() if pd.notna(v)}
        if result.case_mix_summary.get("available"):
            metrics["membership_c"] = float(result.case_mix_summary["membership_c"])
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            (t / "evaluation.json").write_text(json.dumps(result.to_dict(), indent=1))
            result.plots(t)
            mlflow.log_artifacts(str(t), artifact_path="evaluation")
        if report_dir is not None:
            mlflow.log_artifacts(str(report_dir), artifact_path="report")
        log(f"MLflow run {run.info.run_id} in experiment crsml-{result.task}-evaluation ({mlflow.get_tracking_uri()})")
        return run.info.run_id


def log_update(
    result: UpdateResult,
    tracking_uri: str | None = None,
    register_name: str | None = None,
    log: Any = print,
    model_dir: str | Path | None = None,
) -> str:
    """Log an updated model as an MLflow run and register it as a new version of the parent's
    registered model (``register_name``, else the parent's name, else ``crsml-<task>``); the run
    carries the lineage (parent digest and version, method, tests). Returns the run id. ``model_dir``:
    the updated model already exported, logged as it is (see :func:`log_training`)."""
    task, L = result.model.task.name, result.model.landmark_h
    lin = result.lineage
    mlflow = start(f"crsml-{task}", tracking_uri)
    with mlflow.start_run(run_name=f"{task}-L{L:g}-update-{result.method}") as run:
        mlflow.set_tags(
            {
                "crsml.task": task,
                "crsml.landmark_h": str(float(L)),
                "crsml.update_method": result.method,
                "crsml.parent_digest": str(lin.get("parent_digest") or ""),
                "crsml.parent_version": str(lin.get("parent_version") or ""),
            }
        )
        mlflow.log_params(
            {
                "method": result.method,
                "chosen_by": result.chosen_by,
                "alpha": lin.get("alpha"),
                "intercept": lin.get("intercept"),
                "slope": lin.get("slope"),
            }
        )
        mlflow.log_metrics({f"before_{k}": float(v) for k, v in result.before.items()})
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "lineage.json").write_text(json.dumps(lin, indent=1, default=float))
            result.tests.to_csv(Path(tmp) / "tests.csv")
            mlflow.log_artifacts(tmp, artifact_path="update")
        registered = register_name or lin.get("parent_registered_name") or f"crsml-{task}"
        version = _log_model(mlflow, run.info.run_id, result.model, registered, model_dir)
        log(f"MLflow run {run.info.run_id}: updated model registered as version {version} of {registered}")
        return run.info.run_id
