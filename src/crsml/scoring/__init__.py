"""Batch scoring of new patients: every patient comes out once, ``ok`` with its predictions and
top SHAP drivers, ``not_eligible`` or ``invalid`` with the reason; locally or on Dask.

>>> scores = crsml.score(model, cohort)                      # doctest: +SKIP
"""

from crsml.scoring._dask import check_scheduler
from crsml.scoring._score import (
    STATUSES,
    check_compatible,
    iter_scores,
    score,
    score_chunk,
    score_cohort,
    score_directory,
    score_tables,
    write_scores,
)
from crsml.scoring._source import PatientChunks

__all__ = [
    "STATUSES",
    "PatientChunks",
    "check_compatible",
    "check_scheduler",
    "iter_scores",
    "score",
    "score_chunk",
    "score_cohort",
    "score_directory",
    "score_tables",
    "write_scores",
]
