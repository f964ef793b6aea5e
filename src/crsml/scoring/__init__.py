"""Batch scoring of new patients: statuses, risks and SHAP drivers, locally or on Dask."""

from crsml.scoring.score import STATUSES, resolve_model, score_cohort, score_tables

__all__ = ["STATUSES", "resolve_model", "score_cohort", "score_tables"]
