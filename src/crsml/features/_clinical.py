"""Patient characteristics known before infusion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort import require_columns
from crsml.errors import FeatureError

CLINICAL_FEATURES: dict[str, tuple[str, str]] = {
    "age_years": ("age at infusion", "years"),
    "sex_female": ("1 female, 0 male", "indicator"),
    "weight_kg": ("body weight", "kg"),
    "marrow_blast_pct": ("bone-marrow blasts before infusion", "%"),
    "log10_cart_dose_per_kg": ("log10 of CAR-T cells infused per kg", "log10 cells/kg"),
    "costim_cd28": ("1 CD28 costimulatory domain, 0 4-1BB", "indicator"),
    "prior_lines": ("number of prior lines of therapy", "count"),
    "prior_transplant": ("prior allogeneic transplant", "indicator"),
}


MAX_CATEGORIES = 30


def extra_categories(patients: pd.DataFrame, extra_columns: tuple[str, ...]) -> dict[str, list[str]]:
    """The values of each text ``extra_columns`` column (a centre, a product), learned when the
    feature builder is fitted; numeric and true/false columns are not listed."""
    require_columns(patients, "patients", extra_columns)
    found = {}
    for col in extra_columns:
        s = patients[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            continue
        values = sorted({str(v) for v in s.dropna()})
        if len(values) > MAX_CATEGORIES:
            raise FeatureError(
                f"extra patient column {col!r} has {len(values)} different text values; a text column "
                f"becomes one indicator per value, so it must have at most {MAX_CATEGORIES} "
                "(a centre or a product, not free text)"
            )
        found[col] = values
    return found


def category_feature(col: str, value: str) -> str:
    """Name of the indicator of one value of a text column: ``extra_site=centre_a``."""
    return f"extra_{col}={value}"


def category_of(name: str) -> tuple[str, str] | None:
    """Inverse of :func:`category_feature`: ``("site", "centre_a")``, or None for other features."""
    if not name.startswith("extra_") or "=" not in name:
        return None
    col, value = name.removeprefix("extra_").split("=", 1)
    return col, value


def clinical_features(
    patients: pd.DataFrame, extra_columns: tuple[str, ...] = (), categories: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """One row per patient (in the order of ``patients``); ``extra_columns`` (``patients``
    columns named by the user) are passed through as numbers, or, for the text columns in
    ``categories``, as one 0/1 indicator per value seen in training. A blank or unseen value
    leaves all of its column's indicators missing: the model treats it as not recorded."""
    p = patients
    categories = categories or {}
    dose = pd.to_numeric(p["cart_dose_per_kg"], errors="coerce").to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "age_years": pd.to_numeric(p["age_years"], errors="coerce").to_numpy(dtype=float),
            "sex_female": np.where(p["sex"].isna(), np.nan, (p["sex"] == "female").fillna(False)).astype(float),
            "weight_kg": pd.to_numeric(p["weight_kg"], errors="coerce").to_numpy(dtype=float),
            "marrow_blast_pct": pd.to_numeric(p["marrow_blast_pct"], errors="coerce").to_numpy(dtype=float),
            "log10_cart_dose_per_kg": np.log10(np.where(dose > 0, dose, np.nan)),
            "costim_cd28": np.where(p["costim"].isna(), np.nan, (p["costim"] == "cd28").fillna(False)).astype(float),
            "prior_lines": pd.to_numeric(p["prior_lines"], errors="coerce").to_numpy(dtype=float),
            "prior_transplant": p["prior_transplant"].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
        }
    )
    require_columns(p, "patients", extra_columns)
    for col in extra_columns:
        s = p[col]
        if col in categories:
            text = s.astype("string").to_numpy(dtype=object, na_value=None)
            known = pd.Series(text).isin(categories[col]).to_numpy()
            for value in categories[col]:
                out[category_feature(col, value)] = np.where(known, text == value, np.nan).astype(float)
            continue
        if pd.api.types.is_bool_dtype(s):
            s = s.astype("Float64")
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().sum() < s.notna().sum():
            raise FeatureError(
                f"extra patient column {col!r} must be numeric or true/false, or text when the "
                "feature builder is fitted"
            )
        out[f"extra_{col}"] = num.to_numpy(dtype=float, na_value=np.nan)
    return out
