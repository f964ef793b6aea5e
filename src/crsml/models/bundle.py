"""Everything a trained model needs from cohort tables to predictions, as plain files:
feature-builder settings (JSON), the classifier (XGBoost JSON boosters plus JSON settings),
and metadata (task, landmark, counts, digest, metrics). Loading reads JSON only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crsml.features.builder import LandmarkFeatures, features_from_dict, features_to_dict
from crsml.models.risk import XGBRiskClassifier

if TYPE_CHECKING:
    from crsml.causal.benefit import BenefitModel

FEATURES_FILE = "features.json"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.csv"
CURVES_FILE = "curves.json"
CLASSIFIER_DIR = "classifier"
BENEFIT_DIR = "benefit"
BUNDLE_DIR = "crsml"  # name of the bundle inside an MLflow model's artifacts


@dataclass
class ModelBundle:
    task: str
    landmark_h: float
    features: LandmarkFeatures
    classifier: XGBRiskClassifier
    metadata: dict[str, Any] = field(default_factory=dict)
    evaluation: pd.DataFrame | None = None
    curves: dict[str, Any] | None = None
    benefit: BenefitModel | None = None  # tocilizumab_benefit models; ``classifier`` is then its risk model

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.classifier.feature_names_in_]

    def predict_features(self, X: pd.DataFrame) -> pd.DataFrame:
        """Risk (and for benefit models the benefit columns) for a feature frame with the
        model's feature columns."""
        if self.benefit is not None:
            return self.benefit.predict(X)[["risk", "benefit", "benefit_low", "benefit_high", "propensity"]]
        return pd.DataFrame({"risk": self.classifier.predict_proba(X)[:, 1]}, index=X.index)

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / FEATURES_FILE).write_text(json.dumps(features_to_dict(self.features), indent=1))
        self.classifier.save(d / CLASSIFIER_DIR)
        if self.benefit is not None:
            self.benefit.save(d / BENEFIT_DIR)
        meta = {"task": self.task, "landmark_h": self.landmark_h, **self.metadata}
        (d / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=_json_default))
        if self.evaluation is not None:
            self.evaluation.to_csv(d / EVALUATION_FILE)
        if self.curves is not None:
            (d / CURVES_FILE).write_text(json.dumps(self.curves, default=_json_default))
        return d


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def find_bundle(path: str | Path) -> Path:
    """The bundle directory inside ``models/NAME`` (an MLflow model) or the bundle itself."""
    p = Path(path)
    for candidate in (p, p / "artifacts" / BUNDLE_DIR, p / BUNDLE_DIR):
        if (candidate / METADATA_FILE).exists():
            return candidate
    raise FileNotFoundError(f"{path}: not a crsml model (no {METADATA_FILE} found)")


def load_bundle(path: str | Path) -> ModelBundle:
    """Load a bundle from ``models/NAME`` or a bundle directory; JSON and XGBoost files only."""
    d = find_bundle(path)
    meta = json.loads((d / METADATA_FILE).read_text())
    evaluation = pd.read_csv(d / EVALUATION_FILE, index_col=0) if (d / EVALUATION_FILE).exists() else None
    curves = json.loads((d / CURVES_FILE).read_text()) if (d / CURVES_FILE).exists() else None
    return ModelBundle(
        task=meta.pop("task"), landmark_h=float(meta.pop("landmark_h")),
        features=features_from_dict(json.loads((d / FEATURES_FILE).read_text())),
        classifier=XGBRiskClassifier.load(d / CLASSIFIER_DIR),
        metadata=meta, evaluation=evaluation, curves=curves, benefit=_load_benefit(d),
    )


def _load_benefit(d: Path) -> BenefitModel | None:
    if not (d / BENEFIT_DIR).exists():
        return None
    from crsml.causal.benefit import BenefitModel

    return BenefitModel.load(d / BENEFIT_DIR)
