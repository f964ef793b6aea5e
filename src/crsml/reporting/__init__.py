"""Reports for people: the model card (intended use, training counts, sample size, out-of-fold
evaluation, curves, SHAP, lineage, TRIPOD+AI items, limitations), the evaluation report of a model
judged on a labelled cohort, and a headless-Chromium screenshot of either."""

from crsml.reporting._card_text import estimator_rows, estimator_sections
from crsml.reporting._evaluation_report import write_evaluation_report
from crsml.reporting._model_card import screenshot, tripod_items, write_model_card

__all__ = [
    "estimator_rows",
    "estimator_sections",
    "screenshot",
    "tripod_items",
    "write_evaluation_report",
    "write_model_card",
]
