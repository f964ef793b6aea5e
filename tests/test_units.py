from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crsml.cohort import (
    ALTERNATIVE_UNITS,
    CANONICAL_UNITS,
    from_canonical,
    normalize_unit,
    to_canonical,
)

PAIRS = [(a, u) for a, units in ALTERNATIVE_UNITS.items() for u in units]


@given(st.sampled_from(PAIRS), st.floats(0, 1e7, allow_nan=False))
def test_round_trip(pair, value):
    analyte, unit = pair
    back = from_canonical(to_canonical(value, analyte, unit), analyte, unit)
    assert math.isclose(back, value, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("analyte", "unit", "value", "expected"),
    [
        ("crp", "mg/dL", 1.0, 10.0),
        ("creatinine", "mg/dL", 1.0, 88.42),
        ("hemoglobin", "g/dL", 12.0, 120.0),
        ("ferritin", "ug/L", 500.0, 500.0),
        ("il6", "ng/L", 7.0, 7.0),
        ("il6", "ng/mL", 1.0, 1000.0),
        ("platelets", "/uL", 150_000, 150.0),
        ("wbc", "cells/uL", 4000, 4.0),
        ("neutrophil_pct", "fraction", 0.5, 50.0),
    ],
)
def test_known_conversions(analyte, unit, value, expected):
    assert to_canonical(value, analyte, unit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("mg/dl", "mg/dL"),
        (" MG/L ", "mg/L"),
        ("x10^9/l", "10^9/L"),
        ("10*9/L", "10^9/L"),
        ("µmol/L", "umol/L"),
        ("g/l", "g/L"),
        ("G/L", "G/L"),
        ("pg/ml", "pg/mL"),
    ],
)
def test_unit_spellings(raw, canon):
    assert normalize_unit(raw) == canon


def test_unknown_is_an_error_not_a_guess():
    with pytest.raises(KeyError):
        to_canonical(1.0, "crp", "furlongs")
    with pytest.raises(KeyError):
        to_canonical(1.0, "unobtainium", "mg/L")


def test_every_canonical_analyte_has_a_unit():
    assert all(CANONICAL_UNITS.values())
