"""The public API of crsml, loaded on first use (see ``__init__.py``)."""

from . import (
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
    training,
    validation,
)
from ._version import __version__
from .adapters import (
    CodeMap,
    ImportReport,
    export_fhir,
    export_omop,
    import_daily,
    import_fhir,
    import_long,
    import_omop,
)
from .cohort import Cohort, ValidationProblem, ValidationReport, read_cohort, validate_tables
from .errors import CohortError, CrsmlError, FeatureError
from .evaluation import sample_size
from .explanation import explain
from .features import LandmarkFeatures
from .models import BenefitModel, Model, XGBRiskClassifier
from .reporting import write_evaluation_report, write_model_card
from .scoring import score, score_trajectory
from .simulation import simulate
from .tasks import RiskTask, Task
from .tracking import export_model, load_model, log_evaluation, log_training, log_update
from .training import BenefitSettings, TrainingResult, TrainSettings, train
from .validation import EvaluationResult, UpdateResult, evaluate, update

__all__ = [
    "BenefitModel",
    "BenefitSettings",
    "Cohort",
    "EvaluationResult",
    "UpdateResult",
    "evaluate",
    "log_evaluation",
    "log_update",
    "sample_size",
    "update",
    "write_evaluation_report",
    "CohortError",
    "CrsmlError",
    "FeatureError",
    "LandmarkFeatures",
    "Model",
    "RiskTask",
    "Task",
    "TrainSettings",
    "TrainingResult",
    "ValidationProblem",
    "ValidationReport",
    "XGBRiskClassifier",
    "__version__",
    "adapters",
    "cohort",
    "evaluation",
    "explain",
    "explanation",
    "export_model",
    "features",
    "CodeMap",
    "ImportReport",
    "export_fhir",
    "export_omop",
    "import_daily",
    "import_fhir",
    "import_long",
    "import_omop",
    "load_model",
    "log_training",
    "models",
    "read_cohort",
    "reporting",
    "score",
    "score_trajectory",
    "scoring",
    "simulate",
    "simulation",
    "tasks",
    "tracking",
    "train",
    "training",
    "validation",
    "validate_tables",
    "write_model_card",
]
