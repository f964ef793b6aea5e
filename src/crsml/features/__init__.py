"""Landmark features: what is known about each patient at ``L`` hours after infusion."""

from crsml.features.builder import LandmarkFeatures, eligibility
from crsml.features.dictionary import feature_dictionary

__all__ = ["LandmarkFeatures", "eligibility", "feature_dictionary"]
