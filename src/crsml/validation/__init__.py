"""A saved model on a new centre's labelled patients: :func:`evaluate` judges it
(discrimination, calibration, net benefit, subgroups and case mix, with bootstrap intervals;
an :class:`EvaluationResult`), :func:`update` updates it for that centre (recalibration in the
large, logistic recalibration or a refit, chosen by a closed test; an :class:`UpdateResult` whose
model keeps its lineage)."""

from crsml.validation._benefit import BenefitEvaluation, evaluate_benefit
from crsml.validation._external import (
    METRIC_TITLES,
    EvaluationResult,
    age_band,
    calibration_curve,
    evaluate,
    flexible_calibration,
    labelled_rows,
    loess_bootstrap,
    net_benefit_curves,
    performance,
)
from crsml.validation._update import UpdateResult, closed_test, recalibration_tests, update

__all__ = [
    "BenefitEvaluation",
    "evaluate_benefit",
    "METRIC_TITLES",
    "EvaluationResult",
    "UpdateResult",
    "age_band",
    "calibration_curve",
    "closed_test",
    "evaluate",
    "flexible_calibration",
    "labelled_rows",
    "loess_bootstrap",
    "net_benefit_curves",
    "performance",
    "recalibration_tests",
    "update",
]
