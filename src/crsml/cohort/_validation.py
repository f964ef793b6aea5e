"""Parse raw cohort tables into typed, canonical-unit frames and collect every problem.

Parsing never stops at the first problem: each one becomes a :class:`ValidationProblem` naming the
table, the 1-based data row (the header is not counted) and the column. Range and category
checks are declared once in :mod:`crsml.cohort._schema` (pandera checks); type coercion, qualifiers, units and cross-table
checks (orphans, duplicates) are done here because they need the raw text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from crsml.cohort._codes import id_text, patient_id_key
from crsml.cohort._problems import ValidationProblem, ValidationReport
from crsml.cohort._quality import implausible_values, suspected_fill_values
from crsml.cohort._schema import TABLE_ORDER, TABLES
from crsml.cohort._units import CANONICAL_UNITS, conversion_factors, normalize_unit

MISSING_COLUMN = "required column is missing"
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}
_LOWER_CASE = {"sex", "costim", "o2_device", "drug", "analyte", "diagnosis_lower"}
_NON_FINITE = {"inf", "-inf", "+inf", "infinity", "-infinity", "+infinity", "nan", "-nan"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: the qualifiers of a value beyond an assay's range, and the one each stands for
QUALIFIERS = {"<": "<", "<=": "<", ">": ">", ">=": ">"}

_CHECK_TEXT = {
    "in_range": "outside the allowed range",
    "greater_than": "must be positive",
    "greater_than_or_equal_to": "must not be negative",
    "isin": "not an allowed value",
    "not_nullable": "missing value",
    "field_uniqueness": "duplicate",
}


def _problem_rows(mask: np.ndarray | pd.Series) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask, dtype=bool))


def _pid_at(df: pd.DataFrame, rows: np.ndarray) -> list[str | None]:
    if "patient_id" not in df or not len(rows):
        return [None] * len(rows)
    ids = df["patient_id"].to_numpy(dtype=object)[rows]
    return [None if pd.isna(x) else str(x) for x in ids]


def _row_problems(
    table: str, df: pd.DataFrame, rows: np.ndarray, column: str, messages: list[str] | str
) -> list[ValidationProblem]:
    if isinstance(messages, str):
        messages = [messages] * len(rows)
    pids = _pid_at(df, rows)
    return [
        ValidationProblem(table, int(r) + 1, column, m, "error", pid)
        for r, m, pid in zip(rows, messages, pids, strict=True)
    ]


def _coerce_float(
    table: str, df: pd.DataFrame, col: str, problems: list[ValidationProblem]
) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):  # a number column stored as true/false (Parquet): never cast to 0/1
        problems.append(ValidationProblem(table, None, col, "holds true/false where numbers are expected"))
        return pd.Series(np.nan, index=df.index)
    if pd.api.types.is_numeric_dtype(raw):
        num = raw.astype(float)
    else:
        text = raw.astype("string").str.strip()
        num = pd.to_numeric(text, errors="coerce").astype(float)
        bad = _problem_rows(text.notna() & (text != "") & num.isna() & ~text.str.lower().isin(_NON_FINITE).fillna(False))
        if len(bad):
            what = "time is not a number" if col == "time_h" else "non-numeric value"
            problems.extend(_row_problems(table, df, bad, col, what))
    # inf, -inf, nan spelled out, or beyond what the models' float32 holds: a row problem, never a crash
    values = num.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        infinite = ~np.isnan(values) & ~(np.abs(values) <= FLOAT32_MAX)
    if not pd.api.types.is_numeric_dtype(raw):
        infinite |= raw.astype("string").str.strip().str.lower().isin(_NON_FINITE).fillna(False).to_numpy(dtype=bool)
    bad = _problem_rows(infinite)
    if len(bad):
        problems.extend(_row_problems(table, df, bad, col, "not a finite number"))
        num = num.where(~infinite)
    return num


def _coerce_bool(table: str, df: pd.DataFrame, col: str, problems: list[ValidationProblem]) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
        return raw.astype("boolean")
    text = raw.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=df.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = True
    out[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = False
    bad = _problem_rows(text.notna() & (text != "") & out.isna())
    if len(bad):
        problems.extend(_row_problems(table, df, bad, col, "not true/false"))
    return out


def _split_qualifier(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Move '<' / '>' (or '<=' / '>=') prefixes of ``value`` into ``qualifier`` (kept, never dropped)."""
    value = df["value"]
    qual = (
        df["qualifier"].astype("string").str.strip()
        if "qualifier" in df
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    qual = qual.where(qual != "")
    if pd.api.types.is_numeric_dtype(value):
        return df, qual
    text = value.astype("string").str.strip()
    first = text.str[:1]
    prefixed = first.isin(["<", ">"]).fillna(False)
    if prefixed.any():
        text = text.where(~prefixed, text.str[1:].str.lstrip("=").str.strip())
        qual = qual.where(~prefixed, first)
    df = df.assign(value=text)
    return df, qual


def parse_table(name: str, raw: pd.DataFrame | None, problems: list[ValidationProblem]) -> pd.DataFrame:
    """Typed frame for table ``name`` with every DESIGN.md column present; problems appended."""
    spec = TABLES[name]
    if raw is None:
        if not spec.optional_table:
            problems.append(ValidationProblem(name, None, None, "required table is missing"))
        raw = pd.DataFrame({c: pd.Series(dtype=object) for c in spec.required})
    df = raw.reset_index(drop=True)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in spec.required if c not in df]
    for c in missing:
        problems.append(ValidationProblem(name, None, c, MISSING_COLUMN))
    out: dict[str, pd.Series] = {}
    if name == "measurements" and "value" in df:
        df, qualifier = _split_qualifier(df)
        known = qualifier.isin(list(QUALIFIERS)).fillna(False).to_numpy(dtype=bool)
        bad = _problem_rows(qualifier.notna().to_numpy(dtype=bool) & ~known)
        if len(bad):
            problems.extend(_row_problems(name, df, bad, "qualifier", "qualifier must be <, >, <= or >="))
        if qualifier.isin(["<=", ">="]).any():  # '<=' censors as '<' does
            qualifier = qualifier.replace({"<=": "<", ">=": ">"})
        out["qualifier"] = qualifier.where(known | qualifier.isna().to_numpy(dtype=bool))
    for col, kind in spec.kinds.items():
        if col in out:
            continue
        if col not in df:
            default = spec.defaults.get(col, pd.NA)
            dtype = {"float": float, "bool": "boolean"}.get(kind, "string")
            out[col] = pd.Series(
                np.nan if kind == "float" and default is pd.NA else default,
                index=df.index,
                dtype=dtype,
            )
            continue
        if kind == "float":
            out[col] = _coerce_float(name, df, col, problems)
        elif kind == "bool":
            out[col] = _coerce_bool(name, df, col, problems)
        else:
            s = (id_text(df[col]) if kind == "id" else df[col].astype("string")).str.strip()
            s = s.where(s != "")
            if col in _LOWER_CASE:
                s = s.str.lower()
            out[col] = s
    extra = {c: df[c] for c in df.columns if c not in spec.columns}
    parsed = pd.DataFrame({**out, **extra}, index=df.index)
    if "patient_id" in df:
        bad = _problem_rows(parsed["patient_id"].isna())
        problems.extend(_row_problems(name, parsed, bad, "patient_id", "missing patient_id"))
    for col, default in spec.defaults.items():
        if col in df and default is not pd.NA:
            parsed[col] = parsed[col].fillna(default)
    return parsed


def _shown(value: object) -> str:
    """A failing value as the user wrote it: 9 rather than 9.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _check_text(schema: pa.DataFrameSchema, col: str, check: str, case: object) -> str:
    """A failed pandera check in words, with the allowed values or range it checked."""
    name = check.split("(")[0]
    found = [c for c in schema.columns[col].checks if c.name == name] if col in schema.columns else []
    stats = found[0].statistics if found else {}
    if name == "in_range" and col == "time_h":
        return (f"time outside {stats['min_value']:g} to {stats['max_value']:g} h (30 days before to 365 days after "
                "infusion)")
    if name == "in_range":
        return f"impossible value (allowed {stats['min_value']:g} to {stats['max_value']:g})"
    if name in ("greater_than", "greater_than_or_equal_to"):
        return f"impossible value ({_CHECK_TEXT[name]})"
    if name == "isin":
        allowed = ", ".join(_shown(v).strip("'") for v in stats.get("allowed_values", []))
        return f"{_CHECK_TEXT[name]} (allowed: {allowed})"
    if name == "field_uniqueness":
        return "duplicate patient_id"
    return _CHECK_TEXT.get(name, check)


def _schema_problems(name: str, df: pd.DataFrame, already: set[tuple[int, str]],
                     raw: pd.DataFrame | None = None) -> list[ValidationProblem]:
    """Range and category problems; a category is quoted as the file has it (before lower-casing)."""
    schema = TABLES[name].schema()
    written = {str(c).strip(): raw[c] for c in raw.columns} if raw is not None else {}
    cols = {c: s for c, s in schema.columns.items() if c in df}
    try:
        pa.DataFrameSchema(cols, strict=False).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        fc = fc[fc["index"].notna() & fc["column"].notna()]
        out = []
        for col, check, case, idx in zip(
            fc["column"], fc["check"], fc["failure_case"], fc["index"], strict=True
        ):
            row = int(idx)
            if (row, str(col)) in already:  # already reported as non-numeric or missing
                continue
            if str(col) in _LOWER_CASE and str(col) in written:
                case = str(written[str(col)].iloc[row]).strip()
            what = _check_text(schema, str(col), str(check), case)
            out.append(ValidationProblem(name, row + 1, str(col), what, "error", _pid_at(df, np.array([row]))[0]))
        return out
    return []


def _units_problems(m: pd.DataFrame, absent: set[str]) -> tuple[list[ValidationProblem], np.ndarray]:
    """Unknown analytes and units, row by row; a column missing from the file (``absent``) is
    reported once as missing, not again on every row."""
    problems: list[ValidationProblem] = []
    m_unit = m["unit"]
    factors = conversion_factors(m["analyte"], m_unit)
    known = m["analyte"].isin(list(CANONICAL_UNITS)).fillna(False).to_numpy(dtype=bool)
    bad_an = _problem_rows(~known & m["analyte"].notna().to_numpy(dtype=bool))
    if len(bad_an):
        problems += _row_problems("measurements", m, bad_an, "analyte", "unknown analyte (known ones: docs/cohort_format.md)")
    if "analyte" not in absent:
        missing_an = _problem_rows(m["analyte"].isna())
        problems += _row_problems("measurements", m, missing_an, "analyte", "missing analyte")
    bad_unit = _problem_rows(known & np.isnan(factors)) if "unit" not in absent else np.array([], dtype=int)
    if len(bad_unit):
        an = m["analyte"].to_numpy(dtype=object)[bad_unit]
        msgs = [f"unknown unit for {a} (canonical {CANONICAL_UNITS[a]})" for a in an]
        problems += _row_problems("measurements", m, bad_unit, "unit", msgs)
    return problems, factors


def _normalise_units(units: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(units)
    mapped = np.array([normalize_unit(u) for u in uniques] + [pd.NA], dtype=object)
    return pd.Series(mapped[codes], index=units.index, dtype="string")


def _spelling_problems(raw: dict[str, pd.DataFrame | None]) -> list[ValidationProblem]:
    """Patients whose id is written in more than one way across the tables (spaces, case, number
    format): every spelling's patient is invalid, so nobody is scored on rows that may be another's.
    Each problem names the first row of that spelling; no message names the id."""
    seen = []
    for name in TABLE_ORDER:
        df = raw.get(name)
        if df is None or "patient_id" not in df:
            continue
        ids = id_text(df["patient_id"].reset_index(drop=True))
        first = ~ids.duplicated() & ids.notna()
        seen.append(pd.DataFrame({"table": name, "row": np.flatnonzero(first.to_numpy()) + 1,
                                  "spelling": ids[first].to_numpy()}))
    if not seen:
        return []
    s = pd.concat(seen, ignore_index=True)
    s["key"] = patient_id_key(s["spelling"])
    s = s[s["key"].notna()]
    n = s.groupby("key")["spelling"].nunique()
    clash = s[s["key"].isin(n[n > 1].index)]
    out = []
    for _key, g in clash.groupby("key", sort=False):
        tables = ", ".join(dict.fromkeys(g["table"]))
        msg = (f"patient_id written in {g['spelling'].nunique()} ways across tables ({tables}: surrounding spaces, "
               "letter case or number format); its rows cannot be told apart, so none is used")
        for spelling, rows in g.groupby("spelling", sort=False):
            first = rows.iloc[0]
            out.append(ValidationProblem(str(first["table"]), int(first["row"]), "patient_id", msg, "error",
                                         str(spelling).strip()))
    return out


def validate_tables(
    raw: dict[str, pd.DataFrame | None], rows: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, pd.DataFrame], ValidationReport]:
    """Parse and check every table; return canonical-unit tables and the full report.

    Rows are kept even when they have problems, so callers decide whether to refuse the cohort
    or to mark the affected patients invalid. ``rows`` gives, per table, each row's 0-based row in
    the user's file when ``raw`` holds only part of it (a group of patients being scored), so
    problems name the row of the file, not of the part.
    """
    problems: list[ValidationProblem] = []
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLE_ORDER:
        before = len(problems)
        df = parse_table(name, raw.get(name), problems)
        already = {(p.row - 1, p.column) for p in problems[before:] if p.row is not None}
        problems += _schema_problems(name, df, already, raw.get(name))
        tables[name] = df

    m = tables["measurements"]
    m["unit"] = _normalise_units(m["unit"])
    absent = {p.column for p in problems if p.table == "measurements" and p.message == MISSING_COLUMN}
    unit_problems, factors = _units_problems(m, absent)
    problems += unit_problems
    m["value"] = m["value"].to_numpy(dtype=float) * np.where(np.isnan(factors), 1.0, factors)
    canon = m["analyte"].map(CANONICAL_UNITS).astype("string")
    m["unit"] = canon.fillna(m["unit"])

    c = tables["crs"]
    c["grade"] = c["grade"].round().astype("Int64") if c["grade"].notna().all() else c["grade"]

    known_ids = set(tables["patients"]["patient_id"].dropna())
    # without a patients table (reported once above) every row would be an orphan
    has_patients = raw.get("patients") is not None and "patient_id" in raw["patients"]
    for name in TABLE_ORDER[1:]:
        df = tables[name]
        if "patient_id" not in df or df.empty or not has_patients:
            continue
        orphan = _problem_rows(df["patient_id"].notna() & ~df["patient_id"].isin(known_ids))
        problems += _row_problems(name, df, orphan, "patient_id", "patient is not in the patients table")

    problems += _spelling_problems(raw)
    problems += suspected_fill_values(m)
    m_rows = None if not rows or "measurements" not in rows else rows["measurements"] + 1
    problems += implausible_values(m, rows=m_rows)
    identical, found = _duplicate_measurements(m, m_rows)
    problems += found
    if rows:
        problems = [_in_file(p, rows) for p in problems]
    if identical.any():  # the same result twice is one result (after every row number is taken)
        tables["measurements"] = m[~identical].reset_index(drop=True)
    return tables, ValidationReport(problems)


def _duplicate_measurements(m: pd.DataFrame, file_rows: np.ndarray | None) -> tuple[np.ndarray, list[ValidationProblem]]:
    """Rows repeating an earlier one exactly (to drop), and a warning where one patient has
    different values of one analyte at one time (all kept: crsml cannot tell which is right).

    One sort of integer keys finds the candidates (cheap when, as usual, there are none); only
    those rows are compared in full."""
    none = np.zeros(len(m), dtype=bool), []
    key = ["patient_id", "time_h", "analyte"]
    if m.empty or not set(key) <= set(m.columns):
        return none
    p_codes, _ = pd.factorize(m["patient_id"])
    a_codes, a_uniques = pd.factorize(m["analyte"])
    t = np.ascontiguousarray(m["time_h"].to_numpy(dtype=float))
    ok = np.flatnonzero((p_codes >= 0) & (a_codes >= 0) & ~np.isnan(t))
    k = p_codes[ok].astype(np.int64) * (len(a_uniques) + 1) + a_codes[ok]
    bits = t[ok].view(np.int64)
    order = np.lexsort((bits, k))
    same = (k[order][1:] == k[order][:-1]) & (bits[order][1:] == bits[order][:-1])
    if not same.any():
        return none
    involved = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
    sub = m.iloc[ok[involved]]
    identical = np.zeros(len(m), dtype=bool)
    identical[ok[involved]] = sub.duplicated(subset=[*key, "value", "qualifier"], keep="first").to_numpy()
    rest = sub[~identical[ok[involved]]]
    clash_sub = rest.duplicated(subset=key, keep=False).to_numpy()
    if not clash_sub.any():
        return identical, []
    at = np.sort(ok[involved][~identical[ok[involved]]][clash_sub])
    shown = at + 1 if file_rows is None else np.asarray(file_rows)[at]
    n_groups = int(rest[clash_sub].groupby(key, dropna=False, observed=True).ngroups)
    rows_text = ", ".join(str(int(r)) for r in shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
    return identical, [ValidationProblem(
        "measurements", None, "value",
        f"{n_groups} patient, analyte and time combinations hold different values ({len(shown)} rows: "
        f"{rows_text}); all are kept", "warning")]


def _in_file(p: ValidationProblem, rows: dict[str, np.ndarray]) -> ValidationProblem:
    if p.row is None or p.table not in rows:
        return p
    return ValidationProblem(p.table, int(rows[p.table][p.row - 1]) + 1, p.column, p.message, p.severity, p.patient_id)
