"""Literature-calibrated simulator of CD19 CAR-T cohorts with known counterfactuals."""

from crsml.simulate.core import simulate
from crsml.simulate.profiles import PROFILES, Profile

__all__ = ["simulate", "Profile", "PROFILES"]
