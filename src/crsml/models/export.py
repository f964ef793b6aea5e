"""Export a :class:`ModelBundle` as an MLflow pyfunc ("models from code": MLflow stores
``pyfunc_model.py`` and the bundle's JSON/XGBoost files; nothing is pickled)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from crsml.errors import CrsmlError
from crsml.models.bundle import BUNDLE_DIR, ModelBundle

CODE_PATH = Path(__file__).with_name("pyfunc_model.py")
MODEL_CARD_FILE = "model_card.html"


def requirements() -> list[str]:
    return [f"{p}=={version(p)}" for p in ("crsml", "mlflow", "xgboost", "pandas", "numpy", "scikit-learn")]


def synthetic_example(bundle: ModelBundle, medians: pd.Series, n: int = 3, seed: int = 0) -> pd.DataFrame:
    """Feature rows of a few simulated patients (never real ones); features the simulator does
    not produce are filled with the training medians (aggregates), or 0 where none exists."""
    from crsml.simulate import simulate

    sim = simulate(n, seed=seed, truth_draws=0)
    X, _ = bundle.features.build(sim)
    X = X.reindex(columns=bundle.feature_names).astype(float).reset_index(drop=True)
    return X.fillna(medians.reindex(X.columns)).fillna(0.0)


def signature_for(bundle: ModelBundle, example: pd.DataFrame):
    from mlflow.models import infer_signature

    return infer_signature(example, bundle.predict_features(example).reset_index(drop=True))


@contextmanager
def staged(bundle: ModelBundle, example: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """What ``save_model`` and ``log_model`` both take, prepared once for both: the code file,
    the bundle staged as artifacts with its model card, signature, synthetic example, pinned
    requirements and metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = bundle.save(Path(tmp) / BUNDLE_DIR)
        _write_card(bundle, bundle_dir / MODEL_CARD_FILE)
        yield {
            "python_model": str(CODE_PATH), "artifacts": {"crsml": str(bundle_dir)},
            "signature": signature_for(bundle, example), "input_example": example, "pip_requirements": requirements(),
            "metadata": {"crsml_task": bundle.task, "crsml_landmark_h": bundle.landmark_h},
        }


def _write_card(bundle: ModelBundle, path: Path) -> None:
    """The model card (DESIGN.md: the model holds one), drawn on simulated patients only."""
    from crsml.modelcard import write_report

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(write_report(bundle, tmp), path)


def save_pyfunc(model: dict[str, Any], path: str | Path) -> Path:
    """Write ``models/NAME`` (a :func:`staged` model) as an MLflow pyfunc; an existing crsml
    model there is replaced."""
    import mlflow

    path = Path(path)
    if path.exists():
        if not (path / "MLmodel").exists() and any(path.iterdir()):
            raise CrsmlError(f"{path} exists and is not a model directory; choose another --model-out")
        shutil.rmtree(path)
    mlflow.pyfunc.save_model(path=str(path), **model)
    return path


def log_pyfunc(model: dict[str, Any], registered_name: str | None):
    """Log a :func:`staged` model to the active MLflow run (and register it when named)."""
    import mlflow

    return mlflow.pyfunc.log_model(name="model", registered_model_name=registered_name, **model)
