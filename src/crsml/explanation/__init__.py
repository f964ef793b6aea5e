"""Explanations: SHAP values of any crsml model (:func:`explain` returns a ``shap.Explanation``),
their plots, and the top drivers that ``crsml score`` writes beside each prediction."""

from crsml.explanation._drivers import top_drivers
from crsml.explanation._shap import explain, explain_cohort, mean_abs_shap, plot_explanations
from crsml.features import readable_names

__all__ = ["explain", "explain_cohort", "mean_abs_shap", "plot_explanations", "readable_names", "top_drivers"]
