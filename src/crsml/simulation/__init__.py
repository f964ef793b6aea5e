"""Literature-calibrated simulator of CD19 CAR-T cohorts with known counterfactuals."""

from crsml.simulation._core import (
    LATENT_COLUMNS,
    LATENT_STATE,
    LATENT_TRAITS,
    draw_traits,
    simulate,
)
from crsml.simulation._profiles import PROFILES, Profile, get_profile

__all__ = [
    "LATENT_COLUMNS",
    "LATENT_STATE",
    "LATENT_TRAITS",
    "PROFILES",
    "Profile",
    "draw_traits",
    "get_profile",
    "simulate",
]
