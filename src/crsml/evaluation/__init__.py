"""Training and evaluation: out-of-fold metrics with bootstrap intervals beside the published
baselines, curves, uplift metrics for benefit scores, the simulated feature ceiling, and
:func:`train`, which fits any task and returns a :class:`TrainingResult`."""

from crsml.evaluation._baselines import (
    LOGISTIC,
    SCORE_BASELINES,
    ScoreBaseline,
    available_baselines,
)
from crsml.evaluation._ceiling import feature_ceiling
from crsml.evaluation._crossval import (
    auto_folds,
    auto_repeats,
    cross_validated_predictions,
    outer_splits,
)
from crsml.evaluation._curves import (
    calibration_bins,
    curve_data,
    decision_curve,
    net_benefit,
    plot_curves,
    roc_points,
    save_figure,
)
from crsml.evaluation._external import (
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
from crsml.evaluation._metrics import (
    METRICS,
    auprc,
    auroc,
    bootstrap_weights,
    brier,
    cal_intercept,
    cal_slope,
    metric_table,
    paired_difference,
)
from crsml.evaluation._result import MODEL_NAME, TrainingResult
from crsml.evaluation._sample_size import SampleSize, max_r2_cs, r2_cs_from_c, sample_size
from crsml.evaluation._stability import (
    internal_external,
    plot_instability,
    plot_instability_summary,
    pool,
    prediction_instability,
)
from crsml.evaluation._train_benefit import (
    BenefitSettings,
    benefit_data,
    thin_data_warnings,
    unused_centre_columns,
)
from crsml.evaluation._train_risk import (
    TrainSettings,
    data_digest,
    format_table,
    left_out,
    library_versions,
    mean_abs_shap,
    versus_best_baseline,
    weak_model_reasons,
)
from crsml.evaluation._training import SETTINGS, TRAINERS, settings_for, train
from crsml.evaluation._transport import baseline_fits, development_summary, predict_baseline
from crsml.evaluation._update import UpdateResult, closed_test, recalibration_tests, update
from crsml.evaluation._uplift import coverage, policy_share, qini, share_of_oracle, uplift_table

__all__ = [
    "EvaluationResult", "SampleSize", "UpdateResult", "age_band", "baseline_fits", "calibration_curve", "closed_test",
    "development_summary", "evaluate", "flexible_calibration", "labelled_rows", "loess_bootstrap", "max_r2_cs", "net_benefit_curves",
    "performance", "predict_baseline", "internal_external", "plot_instability", "plot_instability_summary", "pool",
    "prediction_instability", "r2_cs_from_c", "recalibration_tests", "sample_size", "update",
    "LOGISTIC", "METRICS", "MODEL_NAME", "SCORE_BASELINES", "SETTINGS", "TRAINERS", "BenefitSettings",
    "ScoreBaseline", "TrainSettings", "TrainingResult", "auprc", "auroc", "auto_folds", "auto_repeats",
    "available_baselines", "benefit_data", "bootstrap_weights", "brier", "cal_intercept", "cal_slope", "calibration_bins", "coverage",
    "cross_validated_predictions", "curve_data", "data_digest", "decision_curve", "feature_ceiling", "format_table",
    "left_out", "library_versions", "mean_abs_shap", "metric_table", "net_benefit", "outer_splits",
    "paired_difference", "plot_curves", "policy_share", "qini", "roc_points", "save_figure", "settings_for", "share_of_oracle",
    "thin_data_warnings", "train", "unused_centre_columns", "uplift_table", "versus_best_baseline", "weak_model_reasons",
]
