"""Models: the tuned, calibrated XGBoost risk classifier, the tocilizumab benefit model and the
:class:`Model` that carries either from cohort tables to predictions.

Both estimators follow scikit-learn's conventions (parameters stored unchanged, fitted state
ending in ``_``) and save as XGBoost JSON plus JSON settings: loading unpickles nothing.
"""

from crsml.models._benefit import BenefitModel, RiskEffect, choose
from crsml.models._calibration import LANDMARK_METHOD as LANDMARK_CALIBRATION
from crsml.models._calibration import METHODS as CALIBRATION_METHODS
from crsml.models._calibration import Calibrator, choose_calibration, log_odds
from crsml.models._causal import (
    DEFAULT_SPLITS,
    DEFAULT_TRIM,
    Nuisances,
    aipw,
    average_effect,
    balance_table,
    crossfit,
    crossfit_splits,
    crump_bound,
    overlap,
    plot_overlap,
    smd,
)
from crsml.models._folds import patient_groups, stratified_folds
from crsml.models._heterogeneity import (
    BenefitValidation,
    blp,
    clan,
    gates,
    groups_of,
    rate,
    rate_difference,
    validate_benefit,
)
from crsml.models._learners import CANDIDATES, Candidate
from crsml.models._metadata import METADATA_VERSION, ModelMetadata
from crsml.models._model import (
    BUNDLE_DIR,
    ESTIMATORS,
    MANIFEST_FILE,
    Model,
    find_model_files,
    verify_manifest,
    write_manifest,
)
from crsml.models._nuisance import tune_xgb
from crsml.models._risk import MONOTONE_INCREASING, XGBRiskClassifier
from crsml.models._xgb import FIXED_CONFIG, MAX_BIN, base_params

__all__ = [
    "patient_groups",
    "stratified_folds",
    "validate_benefit",
    "rate_difference",
    "rate",
    "groups_of",
    "gates",
    "clan",
    "blp",
    "BenefitValidation",
    "BUNDLE_DIR",
    "CALIBRATION_METHODS",
    "LANDMARK_CALIBRATION",
    "MANIFEST_FILE",
    "CANDIDATES",
    "DEFAULT_SPLITS",
    "DEFAULT_TRIM",
    "ESTIMATORS",
    "MAX_BIN",
    "METADATA_VERSION",
    "MONOTONE_INCREASING",
    "FIXED_CONFIG",
    "BenefitModel",
    "Calibrator",
    "Candidate",
    "Model",
    "ModelMetadata",
    "Nuisances",
    "RiskEffect",
    "XGBRiskClassifier",
    "aipw",
    "average_effect",
    "balance_table",
    "base_params",
    "choose",
    "choose_calibration",
    "crossfit",
    "crossfit_splits",
    "crump_bound",
    "find_model_files",
    "log_odds",
    "overlap",
    "plot_overlap",
    "smd",
    "tune_xgb",
    "verify_manifest",
    "write_manifest",
]
