"""Data-quality warnings that do not make a cohort invalid: suspected fill values and values
implausible in their stated unit. They are reported, never silently altered."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crsml.cohort._problems import ValidationProblem
from crsml.cohort._units import CANONICAL_UNITS, PLAUSIBLE_RANGES

#: one exact value making up at least this share of an analyte's values ...
FILL_MIN_SHARE = 0.15
#: ... across at least this many patients is a suspected fill value
FILL_MIN_PATIENTS = 10


def suspected_fill_values(
    measurements: pd.DataFrame, labels: dict[str, str] | None = None
) -> list[ValidationProblem]:
    """Warn where one exact value dominates an analyte across many patients.

    Real exports often fill missing results with a constant (the shared real cohort has
    D-dimer 0.43 and IL-6 5.2 on hundreds of rows); such values are not measurements. Values
    with a ``<``/``>`` qualifier are assay limits, not fills, and are not counted.
    """
    table = fill_value_table(measurements)
    out = []
    for analyte, value, n, share, n_pat in table.itertuples(index=False):
        col = (labels or {}).get(analyte, analyte)
        out.append(
            ValidationProblem(
                "measurements",
                None,
                col,
                f"suspected fill value {value:g} {CANONICAL_UNITS.get(analyte, '')}: "
                f"{share:.0%} of values ({n} rows, {n_pat} patients)",
                "warning",
            )
        )
    return out


def fill_value_table(measurements: pd.DataFrame) -> pd.DataFrame:
    """Suspected fill values: columns analyte, value, n (rows), share, patients.

    Counted on integer analyte codes (not strings) so that millions of rows cost one hash pass;
    only the few candidate values are then looked at patient by patient."""
    cols = ["analyte", "value", "n", "share", "patients"]
    m = measurements
    if m.empty:
        return pd.DataFrame(columns=cols)
    keep = (m["qualifier"].isna() & m["value"].notna() & m["analyte"].notna()).to_numpy(dtype=bool)
    a_codes, a_names = pd.factorize(m["analyte"].to_numpy(dtype=object)[keep])
    values = m["value"].to_numpy(dtype=float)[keep]
    plain = pd.DataFrame({"a": a_codes, "value": values})
    counts = plain.groupby(["a", "value"], sort=False).size().rename("n").reset_index()
    totals = np.bincount(a_codes, minlength=len(a_names))
    counts["share"] = counts["n"] / totals[counts["a"].to_numpy()]
    cand = counts[counts["share"] >= FILL_MIN_SHARE]
    if cand.empty:
        return pd.DataFrame(columns=cols)
    pids = m["patient_id"].to_numpy(dtype=object)[keep]
    patients = [pd.unique(pids[(a_codes == a) & (values == v)]).size for a, v in zip(cand["a"], cand["value"], strict=True)]
    out = cand.assign(analyte=pd.array(np.asarray(a_names, dtype=object)[cand["a"].to_numpy()], dtype="string"),
                      patients=patients)
    out = out[out["patients"] >= FILL_MIN_PATIENTS]
    return out[cols].sort_values(["analyte", "value"]).reset_index(drop=True)


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
            )
        )
    return out
