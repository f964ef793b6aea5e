"""Export a :class:`~crsml.models.Model` as an MLflow pyfunc ("models from code": MLflow stores
``_pyfunc_model.py`` and the model's JSON/XGBoost files with its model card; nothing is
pickled), and load one back from a directory or the registry."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from crsml.cohort import atomic_dir
from crsml.errors import CrsmlError
from crsml.models import BUNDLE_DIR, Model, write_manifest
from crsml.reporting import write_model_card
from crsml.simulation import simulate
from crsml.tracking._mlflow import default_tracking_uri, quiet

CODE_PATH = Path(__file__).with_name("_pyfunc_model.py")
MODEL_CARD_FILE = "model_card.html"


def requirements() -> list[str]:
    return [f"{p}=={version(p)}" for p in ("crsml", "mlflow", "xgboost", "pandas", "numpy", "scikit-learn")]


def synthetic_example(model: Model, n: int = 3, seed: int = 0) -> pd.DataFrame:
    """Feature rows of a few simulated patients (never real ones); features the simulator does
    not produce are filled with the training medians (aggregates), or 0 where none exists."""
    sim = simulate(n, seed=seed, truth_draws=0)
    X, _ = model.features.build(sim)
    X = X.reindex(columns=model.feature_names).astype(float).reset_index(drop=True)
    medians = pd.Series(model.metadata.get("feature_medians", {}), dtype=float)
    return X.fillna(medians.reindex(X.columns)).fillna(0.0)


def signature_for(model: Model, example: pd.DataFrame):
    from mlflow.models import infer_signature

    return infer_signature(example, model.predict_features(example).reset_index(drop=True))


@contextmanager
def staged(model: Model) -> Iterator[dict[str, Any]]:
    """What ``save_model`` and ``log_model`` both take, prepared once for both: the code file,
    the model's files staged as artifacts with its model card, signature, synthetic example,
    pinned requirements and metadata."""
    example = synthetic_example(model, n=3, seed=getattr(model.estimator, "seed", 0))
    with tempfile.TemporaryDirectory() as tmp:
        files = model.save(Path(tmp) / BUNDLE_DIR)
        with tempfile.TemporaryDirectory() as card:
            shutil.copyfile(write_model_card(model, card), files / MODEL_CARD_FILE)
        write_manifest(files)  # the card is one of the model's files
        yield {
            "python_model": str(CODE_PATH),
            "artifacts": {"crsml": str(files)},
            "signature": signature_for(model, example),
            "input_example": example,
            "pip_requirements": requirements(),
            "metadata": {"crsml_task": model.task.name, "crsml_landmark_h": model.landmark_h},
        }


def save_pyfunc(staged_model: dict[str, Any], path: str | Path) -> Path:
    """Write a :func:`staged` model to ``path`` as an MLflow pyfunc; an existing crsml model there
    is replaced."""
    import mlflow

    path = Path(path)
    if path.exists():
        if not (path / "MLmodel").exists() and any(path.iterdir()):
            raise CrsmlError(f"{path} exists and is not a model directory; choose another --model-out")
    with atomic_dir(path) as tmp:  # a crash leaves the earlier model, never half a model
        mlflow.pyfunc.save_model(path=str(tmp), **staged_model)
    return path


def export_model(model: Model, path: str | Path) -> Path:
    """Write ``models/NAME``: an MLflow pyfunc model with the model's files and its model card."""
    with staged(model) as m:
        return save_pyfunc(m, path)


def load_model(model: str | Path, tracking_uri: str | None = None) -> Model:
    """A saved model: ``models/NAME`` (or any model directory) or ``models:/NAME/VERSION`` from
    the MLflow registry (downloaded first)."""
    s = str(model)
    if s.startswith("models:/"):
        import mlflow

        quiet()
        uri = tracking_uri or default_tracking_uri()
        mlflow.set_tracking_uri(uri)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(artifact_uri=s, dst_path=tmp)
            except mlflow.exceptions.MlflowException as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise CrsmlError(f"model {s} not found in the registry at {uri}: {first}") from exc
            loaded = Model.load(local)
            name, _, version = s.removeprefix("models:/").partition("/")
            loaded.source |= {"registered_name": name, "version": version}
            return loaded
    if not Path(s).exists():
        raise CrsmlError(f"model {s} not found (give models/NAME or models:/NAME/VERSION)")
    return Model.load(s)
