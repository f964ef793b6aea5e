"""Exceptions that the command line turns into one clear line and exit code 2."""

from __future__ import annotations


class CrsmlError(Exception):
    """A user-facing failure caused by bad input or configuration (exit code 2)."""


class CohortError(CrsmlError):
    """A cohort directory cannot be read or is not valid."""


class FeatureError(CrsmlError, ValueError):
    """A patients column named as a feature cannot be one (missing, not numeric, free text)."""
