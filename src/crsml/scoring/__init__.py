"""Batch scoring of new patients: every patient comes out once, ``ok`` with its predictions and
top SHAP drivers, ``not_eligible`` or ``invalid`` with the reason; locally or on Dask. A landmark
supermodel scores at any hour of its grid's range, or gives each patient's trajectory.

>>> scores = crsml.score(model, cohort)                      # doctest: +SKIP
>>> at36 = crsml.score(supermodel, cohort, landmark_h=36)    # doctest: +SKIP
>>> path = crsml.score_trajectory(supermodel, cohort)        # doctest: +SKIP
"""

from crsml.scoring._dask import check_scheduler
from crsml.scoring._score import (
    STATUSES,
    check_compatible,
    iter_scores,
    last_record_h,
    score,
    score_chunk,
    score_cohort,
    score_directory,
    score_tables,
    score_trajectory,
    write_scores,
)
from crsml.scoring._source import PatientChunks

__all__ = [
    "STATUSES",
    "PatientChunks",
    "check_compatible",
    "check_scheduler",
    "iter_scores",
    "last_record_h",
    "score",
    "score_chunk",
    "score_cohort",
    "score_directory",
    "score_tables",
    "score_trajectory",
    "write_scores",
]
