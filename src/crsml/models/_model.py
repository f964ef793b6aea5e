"""A trained crsml model: the whole path from cohort tables to predictions, as plain files.

A :class:`Model` holds the task it predicts (eligibility, score columns, card text), the fitted
landmark feature builder (JSON), the estimator (XGBoost JSON boosters plus JSON settings; a
:class:`~crsml.models.XGBRiskClassifier` or a :class:`~crsml.models.BenefitModel`, whichever
the task's ``model_kind`` names) and metadata (landmark, counts, digest, metrics). Loading reads
JSON and XGBoost files only; nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.features import LandmarkFeatures, features_from_dict, features_to_dict
from crsml.models._benefit import BenefitModel
from crsml.models._risk import XGBRiskClassifier
from crsml.tasks import Task, get, task_from_dict

FEATURES_FILE = "features.json"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.csv"
CURVES_FILE = "curves.json"
BUNDLE_DIR = "crsml"  # name of the model's files inside an MLflow model's artifacts

#: the estimator class of each task ``model_kind``
ESTIMATORS: dict[str, type] = {"risk": XGBRiskClassifier, "benefit": BenefitModel}


def estimator_for(task: Task, **params: Any) -> XGBRiskClassifier | BenefitModel:
    """A new (unfitted) estimator of the kind ``task`` trains."""
    return ESTIMATORS[task.model_kind](**params)


@dataclass
class Model:
    """A trained model for one task at one landmark.

    Attributes
    ----------
    task : the :class:`~crsml.tasks.Task` it predicts.
    landmark_h : the landmark it was trained and evaluated at, hours after infusion.
    features : the fitted :class:`~crsml.features.LandmarkFeatures`.
    estimator : the fitted estimator (``predict_frame``, ``score_rows``, ``contributions``).
    metadata : counts, data digest, settings and library versions (no patient rows or ids).
    evaluation : out-of-fold metrics with intervals, beside the baselines (risk tasks).
    curves : out-of-fold ROC, calibration and decision-curve points (risk tasks).
    """

    task: Task
    landmark_h: float
    features: LandmarkFeatures
    estimator: XGBRiskClassifier | BenefitModel
    metadata: dict[str, Any] = field(default_factory=dict)
    evaluation: pd.DataFrame | None = None
    curves: dict[str, Any] | None = None

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.estimator.feature_names_in_]

    @property
    def score_columns(self) -> tuple[str, ...]:
        return self.task.score_columns

    def transform(self, cohort: Cohort) -> pd.DataFrame:
        """The model's feature rows of the eligible patients of ``cohort``."""
        return self.features.transform(cohort)[self.feature_names]

    def predict_features(self, X: pd.DataFrame) -> pd.DataFrame:
        """Prediction columns for a feature frame with the model's feature columns."""
        return self.estimator.predict_frame(X)

    def predict(self, cohort: Cohort) -> pd.DataFrame:
        """Predictions for the eligible patients of ``cohort`` (``crsml.score`` gives every patient a row)."""
        return self.predict_features(self.transform(cohort))

    def explainable(self, cohort: Cohort) -> pd.DataFrame:
        """Feature rows of the patients the model gives its prediction for: eligible for the task
        and, for a benefit model, inside its overlap."""
        X, elig = self.features.build(cohort)
        elig = self.task.eligibility(cohort, self.landmark_h, base=elig)
        X = X[elig.set_index(["patient_id", "landmark_h"])["eligible"].reindex(X.index).to_numpy(dtype=bool)]
        X = X[self.feature_names]
        return X[self.estimator.explainable(X)] if len(X) else X

    def save(self, directory: str | Path) -> Path:
        """Write the model's files (JSON and XGBoost JSON) to ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / FEATURES_FILE).write_text(json.dumps(features_to_dict(self.features), indent=1))
        self.estimator.save(d / self.estimator.DIRECTORY)
        meta = {"task": self.task.name, "landmark_h": self.landmark_h, "task_params": self.task.get_params(),
                **self.metadata}
        (d / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=_json_default))
        if self.evaluation is not None:
            self.evaluation.to_csv(d / EVALUATION_FILE)
        if self.curves is not None:
            (d / CURVES_FILE).write_text(json.dumps(self.curves, default=_json_default))
        return d

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Load ``models/NAME`` (an exported MLflow model) or a directory written by :meth:`save`."""
        d = find_model_files(path)
        meta = json.loads((d / METADATA_FILE).read_text())
        name = meta.pop("task")
        params = meta.pop("task_params", None)
        if params is None:  # saved before tasks were objects: its settings sit in the metadata
            accepted = get(name).get_params()
            params = {k: meta[k] for k in accepted if k in meta}
        task = task_from_dict({"name": name, "params": params})
        evaluation = pd.read_csv(d / EVALUATION_FILE, index_col=0) if (d / EVALUATION_FILE).exists() else None
        curves = json.loads((d / CURVES_FILE).read_text()) if (d / CURVES_FILE).exists() else None
        kind = ESTIMATORS[task.model_kind]
        return cls(task=task, landmark_h=float(meta.pop("landmark_h")),
                   features=features_from_dict(json.loads((d / FEATURES_FILE).read_text())),
                   estimator=kind.load(d / kind.DIRECTORY), metadata=meta, evaluation=evaluation, curves=curves)


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def find_model_files(path: str | Path) -> Path:
    """The directory of a model's files inside ``models/NAME`` (an MLflow model), or itself."""
    p = Path(path)
    for candidate in (p, p / "artifacts" / BUNDLE_DIR, p / BUNDLE_DIR):
        if (candidate / METADATA_FILE).exists():
            return candidate
    raise CrsmlError(f"{path}: not a crsml model (no {METADATA_FILE} found)")
