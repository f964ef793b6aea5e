"""Risk models: the tuned, calibrated XGBoost classifier and the bundle that exports it."""

from crsml.models.bundle import ModelBundle, load_bundle
from crsml.models.risk import XGBRiskClassifier

__all__ = ["ModelBundle", "XGBRiskClassifier", "load_bundle"]
