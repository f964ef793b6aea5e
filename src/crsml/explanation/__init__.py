"""Explanations: SHAP values of any crsml model (:func:`explain` returns a ``shap.Explanation``),
their plots, the top drivers that ``crsml score`` writes beside each prediction, and a patient's
risk trajectory drawn over their course (:func:`plot_trajectory`)."""

from crsml.explanation._drivers import top_drivers
from crsml.explanation._shap import explain, explain_cohort, mean_abs_shap, plot_explanations
from crsml.explanation._trajectory import plot_trajectory
from crsml.features import readable_names

__all__ = [
    "explain",
    "explain_cohort",
    "mean_abs_shap",
    "plot_explanations",
    "plot_trajectory",
    "readable_names",
    "top_drivers",
]
