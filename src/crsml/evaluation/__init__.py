"""How good a prediction is: metrics with bootstrap intervals, curves (ROC, calibration, decision
curve), the published baseline scores, nested cross-validation, sample size, prediction
instability and internal-external cross-validation, uplift metrics for benefit scores, and the
simulated feature ceiling. Training (:mod:`crsml.training`) and validation on a new centre
(:mod:`crsml.validation`) are built from these."""

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
from crsml.evaluation._dynamic import (
    by_landmark_frame,
    format_landmark_auroc,
    landmark_of,
    landmark_tables,
    plot_by_landmark,
)
from crsml.evaluation._metrics import (
    FUNCTIONS,
    METRICS,
    auprc,
    auroc,
    bootstrap_weights,
    brier,
    cal_intercept,
    cal_slope,
    format_interval,
    format_intervals,
    metric_table,
    paired_difference,
)
from crsml.evaluation._sample_size import SampleSize, max_r2_cs, r2_cs_from_c, sample_size
from crsml.evaluation._stability import (
    internal_external,
    plot_instability,
    plot_instability_summary,
    pool,
    prediction_instability,
)
from crsml.evaluation._transport import (
    baseline_fits,
    development_summary,
    fit_baselines,
    predict_baseline,
)
from crsml.evaluation._uplift import coverage, policy_share, qini, share_of_oracle, uplift_table

__all__ = [
    "by_landmark_frame",
    "format_landmark_auroc",
    "plot_by_landmark",
    "landmark_of",
    "landmark_tables",
    "FUNCTIONS",
    "LOGISTIC",
    "METRICS",
    "SCORE_BASELINES",
    "SampleSize",
    "ScoreBaseline",
    "auprc",
    "auroc",
    "auto_folds",
    "auto_repeats",
    "available_baselines",
    "baseline_fits",
    "bootstrap_weights",
    "brier",
    "cal_intercept",
    "cal_slope",
    "calibration_bins",
    "coverage",
    "cross_validated_predictions",
    "curve_data",
    "decision_curve",
    "development_summary",
    "feature_ceiling",
    "fit_baselines",
    "format_interval",
    "format_intervals",
    "internal_external",
    "max_r2_cs",
    "metric_table",
    "net_benefit",
    "outer_splits",
    "paired_difference",
    "plot_curves",
    "plot_instability",
    "plot_instability_summary",
    "policy_share",
    "pool",
    "predict_baseline",
    "prediction_instability",
    "qini",
    "r2_cs_from_c",
    "roc_points",
    "sample_size",
    "save_figure",
    "share_of_oracle",
    "uplift_table",
]
