"""Landmark features: what is known about each patient at ``L`` hours after infusion.

:class:`LandmarkFeatures` is a scikit-learn transformer from a :class:`~crsml.cohort.Cohort` to
one row per eligible patient and landmark, built only from rows with ``time_h <= L``; the
feature dictionary (name, meaning, unit, source) is generated from the same code.
"""

from crsml.features._builder import INDEX, LANDMARK_TIME_FEATURE, LandmarkFeatures, features_from_dict, features_to_dict
from crsml.features._clinical import MAX_CATEGORIES, category_feature, category_of
from crsml.features._course import COURSE_FEATURES, VITAL_SIGN_FEATURES
from crsml.features._dictionary import describe, feature_dictionary, readable_names
from crsml.features._docs import dictionary_markdown
from crsml.features._kinetics import KINETIC_STATS
from crsml.features._scores import HAY_FEVER_C, HAY_MCP1_PG_ML, HAY_WINDOW_H, SCORE_FEATURES

__all__ = [
    "COURSE_FEATURES",
    "HAY_FEVER_C",
    "HAY_MCP1_PG_ML",
    "HAY_WINDOW_H",
    "INDEX",
    "LANDMARK_TIME_FEATURE",
    "KINETIC_STATS",
    "MAX_CATEGORIES",
    "SCORE_FEATURES",
    "VITAL_SIGN_FEATURES",
    "LandmarkFeatures",
    "category_feature",
    "category_of",
    "describe",
    "dictionary_markdown",
    "feature_dictionary",
    "features_from_dict",
    "features_to_dict",
    "readable_names",
]
