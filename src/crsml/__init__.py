"""crsml: landmark prediction of CRS severity, duration and tocilizumab benefit after CD19 CAR-T.

From a cohort directory to a fitted model, predictions and SHAP values::

    import crsml
    cohort = crsml.read_cohort("out/demo/sim")
    X, y = crsml.tasks.get("severe_crs").dataset(cohort, landmark_h=48)
    model = crsml.XGBRiskClassifier(n_trials=10).fit(X, y)
    risk = model.predict_proba(X)[:, 1]
    shap_values = crsml.explain(model, X)

and a whole training run (nested cross-validation, baselines), then tracking and export as
separate steps::

    result = crsml.train(cohort, "severe_crs", landmark_h=48, trials=20)
    result.summary()
    crsml.log_training(result)                     # MLflow run + registered version
    crsml.export_model(result.model, "models/severe48")
    scores = crsml.score(crsml.load_model("models/severe48"), new_cohort)

Subpackages, in the order data flows: :mod:`crsml.cohort`, :mod:`crsml.adapters`,
:mod:`crsml.simulation`, :mod:`crsml.features`, :mod:`crsml.tasks`, :mod:`crsml.models`,
:mod:`crsml.evaluation`, :mod:`crsml.explanation`, :mod:`crsml.scoring`, :mod:`crsml.reporting`,
:mod:`crsml.tracking`, :mod:`crsml.cli`.
"""

from crsml import (
    adapters,
    cohort,
    evaluation,
    explanation,
    features,
    models,
    reporting,
    scoring,
    simulation,
    tasks,
    tracking,
)
from crsml._version import __version__
from crsml.adapters import import_daily
from crsml.cohort import Cohort, ValidationProblem, ValidationReport, read_cohort, validate_tables
from crsml.errors import CohortError, CrsmlError, FeatureError
from crsml.evaluation import BenefitSettings, TrainingResult, TrainSettings, train
from crsml.explanation import explain
from crsml.features import LandmarkFeatures
from crsml.models import BenefitModel, Model, XGBRiskClassifier
from crsml.reporting import write_model_card
from crsml.scoring import score
from crsml.simulation import simulate
from crsml.tasks import RiskTask, Task
from crsml.tracking import export_model, load_model, log_training

__all__ = [
    "BenefitModel", "BenefitSettings", "Cohort", "CohortError", "CrsmlError", "FeatureError", "LandmarkFeatures",
    "Model", "RiskTask", "Task", "TrainSettings", "TrainingResult", "ValidationProblem", "ValidationReport",
    "XGBRiskClassifier", "__version__", "adapters", "cohort", "evaluation", "explain", "explanation", "export_model",
    "features",
    "import_daily", "load_model", "log_training", "models", "read_cohort", "reporting", "score", "scoring",
    "simulate", "simulation", "tasks", "tracking", "train", "validate_tables", "write_model_card",
]
