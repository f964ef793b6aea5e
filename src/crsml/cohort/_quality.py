"""Data-quality warnings that do not make a cohort invalid: suspected fill values and values
implausible in their stated unit. They are reported, never silently altered."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort._codes import distinct
from crsml.cohort._problems import ValidationProblem
from crsml.cohort._units import CANONICAL_UNITS, PLAUSIBLE_RANGES

#: one exact value making up at least this share of an analyte's values ...
FILL_MIN_SHARE = 0.15
#: ... across at least this many patients is a suspected fill value
FILL_MIN_PATIENTS = 10


def suspected_fill_values(measurements: pd.DataFrame, labels: dict[str, str] | None = None) -> list[ValidationProblem]:
    """Warn where one exact value dominates an analyte across many patients.

    Real exports often fill missing results with a constant (the shared real cohort has
    D-dimer 0.43 and IL-6 5.2 on hundreds of rows); such values are not measurements. Values
    with a ``<``/``>`` qualifier are assay limits, not fills, and are not counted.
    """
    table = fill_value_table(measurements)
    out = []
    m = measurements
    for analyte, value, n, share, n_pat in table.itertuples(index=False):
        col = (labels or {}).get(analyte, analyte)
        at = (
            ((m["analyte"] == analyte) & (m["value"] == value) & m["qualifier"].isna())
            .fillna(False)
            .to_numpy(dtype=bool)
        )
        out.append(
            ValidationProblem(
                "measurements",
                None,
                col,
                f"suspected fill value {value:g} {CANONICAL_UNITS.get(analyte, '')}: "
                f"{share:.0%} of values ({n} rows, {n_pat} patients)",
                "warning",
                kind="suspected_fill_value",
                patients=tuple(pd.unique(m["patient_id"].to_numpy()[at].astype(str))),
            )
        )
    return out


def fill_value_table(measurements: pd.DataFrame) -> pd.DataFrame:
    """Suspected fill values: columns analyte, value, n (rows), share, patients.

    Rows are grouped by analyte with one sort of small integer codes, and each analyte's values are
    counted by sorting them (exact; millions of rows cost well under a second); only the few
    candidate values are then counted patient by patient."""
    cols = ["analyte", "value", "n", "share", "patients"]
    m = measurements
    if m.empty:
        return pd.DataFrame(columns=cols)
    keep = np.flatnonzero((m["qualifier"].isna() & m["value"].notna() & m["analyte"].notna()).to_numpy(dtype=bool))
    a_all, a_names = distinct(m["analyte"])
    a_codes = a_all[keep]
    small = a_codes.astype(np.int32 if len(a_names) > 2**15 else np.int16)  # a radix sort for small codes
    order = keep[np.argsort(small, kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(a_codes, minlength=len(a_names)))])
    values = m["value"].to_numpy(dtype=float)
    p_codes = None
    rows = []
    for a in range(len(a_names)):
        at = order[bounds[a] : bounds[a + 1]]
        if not len(at):
            continue
        v = values[at]
        uniq, counts = np.unique(v, return_counts=True)
        for value, n in zip(
            uniq[counts >= FILL_MIN_SHARE * len(at)], counts[counts >= FILL_MIN_SHARE * len(at)], strict=True
        ):
            if p_codes is None:
                p_codes = distinct(m["patient_id"])[0]
            n_pat = int(np.unique(p_codes[at[v == value]]).size)
            rows.append((str(a_names.iloc[a]), float(value), int(n), n / len(at), n_pat))
    out = pd.DataFrame(rows, columns=cols).astype(
        {"analyte": "string", "value": float, "n": "int64", "share": float, "patients": "int64"}
    )
    out = out[out["patients"] >= FILL_MIN_PATIENTS]
    return out.sort_values(["analyte", "value"]).reset_index(drop=True)


def implausible_values(
    measurements: pd.DataFrame,
    labels: dict[str, str] | None = None,
    rows: np.ndarray | None = None,
    table: str = "measurements",
) -> list[ValidationProblem]:
    """Warn about values outside the plausible range of their analyte in its canonical unit.

    ``rows`` gives each measurement's row number in the user's file (default: 1-based position).
    """
    m = measurements
    rows = np.arange(1, len(m) + 1) if rows is None else np.asarray(rows)
    out = []
    for analyte, (lo, hi) in PLAUSIBLE_RANGES.items():
        sel = (m["analyte"] == analyte).fillna(False).to_numpy(dtype=bool)
        if not sel.any():
            continue
        v = m["value"].to_numpy(dtype=float)
        bad = np.flatnonzero(sel & ((v < lo) | (v > hi)))
        if len(bad) == 0:
            continue
        shown = ", ".join(str(int(rows[i])) for i in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        unit = CANONICAL_UNITS[analyte]
        out.append(
            ValidationProblem(
                table,
                None,
                (labels or {}).get(analyte, analyte),
                f"{len(bad)} values impossible in {unit} (plausible {lo:g}-{hi:g}; "
                f"seen {v[bad].min():g}-{v[bad].max():g}): rows {shown}{more}",
                "warning",
                kind="implausible_value",
                patients=tuple(pd.unique(m["patient_id"].to_numpy()[bad].astype(str))) if "patient_id" in m else (),
            )
        )
    return out
