"""Canonical analytes, their units, and conversions from common alternatives.

Canonical units follow DESIGN.md. Conversions are multiplicative factors to the canonical
unit; an analyte or unit not listed here is a validation error, never a guess.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

#: canonical unit of every analyte crsml understands
CANONICAL_UNITS: dict[str, str] = {
    # cytokines (DESIGN.md)
    "il6": "pg/mL",
    "ifng": "pg/mL",
    "il10": "pg/mL",
    "il2": "pg/mL",
    "il4": "pg/mL",
    "tnfa": "pg/mL",
    "il17a": "pg/mL",
    "il1ra": "pg/mL",
    "sgp130": "pg/mL",
    "mcp1": "pg/mL",
    # labs (DESIGN.md)
    "crp": "mg/L",
    "ferritin": "ng/mL",
    "ldh": "U/L",
    "platelets": "10^9/L",
    "creatinine": "umol/L",
    "d_dimer": "mg/L",
    "fibrinogen": "g/L",
    "hemoglobin": "g/L",
    "wbc": "10^9/L",
    "anc": "10^9/L",
    "alc": "10^9/L",
    "alt": "U/L",
    "ast": "U/L",
    "cart_copies": "copies/ug",
    # further labs found in real daily tables (shared/data/real/README.md)
    "amc": "10^9/L",
    "neutrophil_pct": "%",
    "lymphocyte_pct": "%",
    "monocyte_pct": "%",
    "rbc": "10^12/L",
    "hbdh": "U/L",
    "procalcitonin": "ng/mL",
    "bnp": "pg/mL",
    "prealbumin": "mg/L",
    "pt": "s",
    "aptt": "s",
    "sodium": "mmol/L",
    "potassium": "mmol/L",
    "chloride": "mmol/L",
    "calcium": "mmol/L",
    "uric_acid": "umol/L",
    "glucose": "mmol/L",
    "triglyceride": "mmol/L",
    "albumin": "g/L",
    "alp": "U/L",
    "ggt": "U/L",
}

CYTOKINES: tuple[str, ...] = (
    "il6",
    "ifng",
    "il10",
    "il2",
    "il4",
    "tnfa",
    "il17a",
    "il1ra",
    "sgp130",
    "mcp1",
)

_COUNT_ALTERNATIVES = {"10^3/uL": 1.0, "G/L": 1.0, "/uL": 1e-3, "/mm3": 1e-3, "10^6/L": 1e-3}
_CYTOKINE_ALTERNATIVES = {"ng/L": 1.0, "ng/mL": 1000.0}
_ENZYME_ALTERNATIVES = {"IU/L": 1.0, "ukat/L": 60.0}
_PCT_ALTERNATIVES = {"fraction": 100.0}

#: extra units per analyte: factor that multiplies a value in that unit to the canonical unit
ALTERNATIVE_UNITS: dict[str, dict[str, float]] = {
    **{c: _CYTOKINE_ALTERNATIVES for c in CYTOKINES},
    **{c: _COUNT_ALTERNATIVES for c in ("platelets", "wbc", "anc", "alc", "amc")},
    **{c: _ENZYME_ALTERNATIVES for c in ("ldh", "alt", "ast", "hbdh", "alp", "ggt")},
    **{c: _PCT_ALTERNATIVES for c in ("neutrophil_pct", "lymphocyte_pct", "monocyte_pct")},
    "crp": {"mg/dL": 10.0},
    "creatinine": {"mg/dL": 88.42},
    "hemoglobin": {"g/dL": 10.0},
    "ferritin": {"ug/L": 1.0},
    "d_dimer": {"ug/mL": 1.0, "ug/L": 1e-3, "ng/mL": 1e-3},
    "fibrinogen": {"mg/dL": 0.01},
    "uric_acid": {"mg/dL": 59.48},
    "glucose": {"mg/dL": 1 / 18.016},
    "albumin": {"g/dL": 10.0},
    "prealbumin": {"mg/dL": 10.0},
    "rbc": {"10^6/uL": 1.0},
    "calcium": {"mg/dL": 0.2495, "mEq/L": 0.5},
    **{c: {"mEq/L": 1.0} for c in ("sodium", "potassium", "chloride")},  # monovalent: 1 mEq is 1 mmol
    "cart_copies": {"copies/ugDNA": 1.0},
}

#: values outside these canonical-unit bounds are implausible (entry or unit errors): warnings
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "hemoglobin": (20.0, 250.0),
    "sodium": (100.0, 190.0),
    "potassium": (1.5, 10.0),
    "chloride": (60.0, 150.0),
    "calcium": (0.8, 5.0),
    "albumin": (5.0, 70.0),
    "platelets": (0.0, 2000.0),
    "wbc": (0.0, 500.0),
    "rbc": (0.3, 10.0),
    "creatinine": (5.0, 2000.0),
    "glucose": (0.5, 60.0),
    "pt": (5.0, 150.0),
    "aptt": (10.0, 250.0),
    "neutrophil_pct": (0.0, 100.0),
    "lymphocyte_pct": (0.0, 100.0),
    "monocyte_pct": (0.0, 100.0),
    "ldh": (30.0, 50000.0),
    "uric_acid": (20.0, 2000.0),
    "prealbumin": (10.0, 800.0),
    "hbdh": (20.0, 50000.0),
}

_SPELLINGS = [
    (re.compile(r"[µμ]"), "u"),
    (re.compile(r"\s+"), ""),
    (re.compile(r"(x)?10[\^*e]?(\d+)/", re.IGNORECASE), r"10^\2/"),
    (re.compile(r"cells/", re.IGNORECASE), "/"),
    (re.compile(r"\[iu\]", re.IGNORECASE), "IU"),  # UCUM's international unit
    (re.compile(r"\{([^}]*)\}"), r"\1"),  # UCUM annotations: {copies}/ug is copies/ug
]
_KNOWN_UNITS = set(CANONICAL_UNITS.values()).union(*ALTERNATIVE_UNITS.values())
# lower-case lookup for sloppy spellings; canonical units win a clash ("g/l" is g/L, not G/L)
_CASE_CANON = {u.lower(): u for units in ALTERNATIVE_UNITS.values() for u in units}
_CASE_CANON.update({u.lower(): u for u in CANONICAL_UNITS.values()})
_CASE_CANON.update({"/ul": "/uL", "mcg/l": "ug/L", "mcg/ml": "ug/mL", "percent": "%", "pct": "%"})


def normalize_unit(unit: str) -> str:
    """Return the standard spelling of a unit string (``mg/dl`` -> ``mg/dL``, ``x10^9/l`` -> ``10^9/L``)."""
    u = str(unit).strip()
    for pattern, repl in _SPELLINGS:
        u = pattern.sub(repl, u)
    if u in _KNOWN_UNITS:
        return u
    return _CASE_CANON.get(u.lower(), u)


#: the units a vital sign is charted in, spelled as UCUM or as people write them, to the vitals
#: table's unit: the factor, or None for Fahrenheit (an offset, converted by its formula)
VITAL_UNITS: dict[str, dict[str, float | None]] = {
    "temp_c": {"cel": 1.0, "c": 1.0, "degc": 1.0, "°c": 1.0, "[degf]": None, "degf": None, "f": None, "°f": None},
    "sbp_mmhg": {"mm[hg]": 1.0, "mmhg": 1.0, "kpa": 7.50062},
    "map_mmhg": {"mm[hg]": 1.0, "mmhg": 1.0, "kpa": 7.50062},
    "o2_flow_lpm": {"l/min": 1.0, "lpm": 1.0, "ml/min": 1e-3},
}


def conversion_factor(analyte: str, unit: str) -> float | None:
    """Factor taking ``unit`` to the analyte's canonical unit, or None when unknown."""
    canonical = CANONICAL_UNITS.get(analyte)
    if canonical is None:
        return None
    u = normalize_unit(unit)
    if u == canonical:
        return 1.0
    known = ALTERNATIVE_UNITS.get(analyte, {}).get(u)
    return known if known is not None or not u else ucum_factor(u, canonical)


#: crsml spellings that UCUM writes differently
_TO_UCUM = {
    "10^9/L": "10*9/L",
    "10^12/L": "10*12/L",
    "10^3/uL": "10*3/uL",
    "10^6/uL": "10*6/uL",
    "10^6/L": "10*6/L",
    "G/L": "10*9/L",
    "IU/L": "[iU]/L",
    "copies/ug": "{copies}/ug",
    "copies/ugDNA": "{copies}/ug",
    "fraction": "1",
}


@lru_cache(maxsize=1)
def _ucum_registry():
    """pint with UCUM's grammar, loaded only when a unit needs it (0.7 s)."""
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


@lru_cache(maxsize=4096)
def ucum_factor(unit: str, canonical: str) -> float | None:
    """The factor from ``unit`` to ``canonical`` when both are UCUM units of one dimension
    (``ng/dL`` to ``pg/mL``, ``mmol/L`` to ``umol/L``), else None.

    This is the generic part of unit conversion (pint through ucumvert); factors that depend on the
    analyte (a molar mass, an enzyme's international unit) are crsml's own table above and are
    looked up first.
    """
    if "eq" in unit.lower():  # UCUM counts an equivalent as a mole: right only for a monovalent ion (crsml's table)
        return None
    try:
        registry = _ucum_registry()
        src = registry.from_ucum(_TO_UCUM.get(unit, unit))
        dst = registry.from_ucum(_TO_UCUM.get(canonical, canonical))
        factor = float((1 * src).to(dst).magnitude)
    except Exception:  # noqa: BLE001 - any unit ucumvert cannot read or pint cannot convert is "unknown"
        return None
    return float(f"{factor:.12g}") if np.isfinite(factor) and factor > 0 else None  # 10.000000000000002 is 10


def to_canonical(value: float | np.ndarray, analyte: str, unit: str) -> float | np.ndarray:
    """Convert ``value`` in ``unit`` to the canonical unit of ``analyte``."""
    factor = conversion_factor(analyte, unit)
    if factor is None:
        raise KeyError(f"unknown analyte or unit: {analyte!r} in {unit!r}")
    return value * factor


def from_canonical(value: float | np.ndarray, analyte: str, unit: str) -> float | np.ndarray:
    """Convert ``value`` in the canonical unit of ``analyte`` to ``unit``."""
    factor = conversion_factor(analyte, unit)
    if factor is None:
        raise KeyError(f"unknown analyte or unit: {analyte!r} in {unit!r}")
    return value / factor


def conversion_factors(analytes: pd.Series, units: pd.Series) -> np.ndarray:
    """Vectorised conversion factors for paired analyte/unit columns (NaN where unknown).

    Factors are looked up once per distinct analyte and unit, so millions of rows cost
    two hash passes and one table lookup.
    """
    a_codes, a_uniques = pd.factorize(analytes, use_na_sentinel=True)
    u_codes, u_uniques = pd.factorize(units, use_na_sentinel=True)
    table = np.full((len(a_uniques) + 1, len(u_uniques) + 1), np.nan)  # last row and column: missing
    present = np.unique(a_codes.astype(np.int64) * (len(u_uniques) + 1) + u_codes)  # only pairs that occur
    for ai, ui in zip(present // (len(u_uniques) + 1), present % (len(u_uniques) + 1), strict=True):
        if ai >= 0 and 0 <= ui < len(u_uniques):
            f = conversion_factor(str(a_uniques[ai]), str(u_uniques[ui]))
            table[ai, ui] = np.nan if f is None else f
    return table[a_codes, u_codes]
