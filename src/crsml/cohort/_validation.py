"""Parse raw cohort tables into typed, canonical-unit frames and collect every problem.

Parsing never stops at the first problem: each one becomes a :class:`ValidationProblem` naming the
table, the 1-based data row (the header is not counted) and the column. Range and category
checks are declared once in :mod:`crsml.cohort._schema` (pandera checks); type coercion, qualifiers,
units and cross-table checks (orphans, duplicates) are done here because they need the raw text.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pandera.pandas as pa

from crsml.cohort._codes import as_text, distinct, id_text, index_in, patient_id_key, spread
from crsml.cohort._files import MALFORMED_ROWS
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
    ids = df["patient_id"].iloc[rows]
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


def _on_rows(codes: np.ndarray, per_value: np.ndarray | pd.Series) -> np.ndarray:
    """A flag per distinct value (:func:`distinct`) spread to the rows (False where missing)."""
    return np.append(np.asarray(per_value, dtype=bool), False)[codes]


def _coerce_float(table: str, df: pd.DataFrame, col: str, problems: list[ValidationProblem]) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):  # a number column stored as true/false (Parquet): never cast to 0/1
        problems.append(ValidationProblem(table, None, col, "holds true/false where numbers are expected"))
        return pd.Series(np.nan, index=df.index)
    spelled_non_finite = None
    if pd.api.types.is_numeric_dtype(raw):
        num = raw.astype(float)
    else:  # text: parsed once per distinct spelling
        codes, text = distinct(raw)
        text = text.str.strip()
        parsed = pd.to_numeric(text, errors="coerce").astype(float)
        non_finite = text.str.lower().isin(_NON_FINITE).fillna(False).to_numpy(dtype=bool)
        bad = _problem_rows(_on_rows(codes, text.notna() & (text != "") & parsed.isna() & ~non_finite))
        if len(bad):
            what = "time is not a number" if col == "time_h" else "non-numeric value"
            problems.extend(_row_problems(table, df, bad, col, what))
        num = spread(codes, parsed, df.index)
        spelled_non_finite = _on_rows(codes, non_finite)
    # inf, -inf, nan spelled out, or beyond what the models' float32 holds: a row problem, never a crash
    values = num.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        infinite = ~np.isnan(values) & ~(np.abs(values) <= FLOAT32_MAX)
    if spelled_non_finite is not None:
        infinite |= spelled_non_finite
    bad = _problem_rows(infinite)
    if len(bad):
        problems.extend(_row_problems(table, df, bad, col, "not a finite number"))
        num = num.where(~infinite)
    return num


def _coerce_bool(table: str, df: pd.DataFrame, col: str, problems: list[ValidationProblem]) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
        return raw.astype("boolean")
    codes, text = distinct(raw)
    text = text.str.strip().str.lower()
    is_true = text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
    is_false = text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)
    out = pd.Series(pd.NA, index=df.index, dtype="boolean")
    out[_on_rows(codes, is_true)] = True
    out[_on_rows(codes, is_false)] = False
    bad = _problem_rows(_on_rows(codes, text.notna() & (text != "") & ~is_true & ~is_false))
    if len(bad):
        problems.extend(_row_problems(table, df, bad, col, "not true/false"))
    return out


_QUALIFIER_CODES = {"<": 0, ">": 1}


def _qualifier(name: str, df: pd.DataFrame, problems: list[ValidationProblem]) -> tuple[pd.DataFrame, pd.Series]:
    """Move '<' / '>' (or '<=' / '>=') prefixes of ``value`` into ``qualifier`` (kept, never dropped);
    a qualifier other than <, >, <= or >= is a row problem. '<=' censors as '<' does."""
    n = len(df)
    q_rows = np.full(n, -1, dtype=np.int64)
    if "qualifier" in df:
        q_codes, q_text = distinct(df["qualifier"])
        q_text = q_text.str.strip()
        q_text = q_text.where(q_text != "")
        known = q_text.isin(list(QUALIFIERS)).fillna(False).to_numpy(dtype=bool)
        per_value = np.array(
            [_QUALIFIER_CODES[QUALIFIERS[q]] if k else -1 for q, k in zip(q_text, known, strict=True)], dtype=np.int64
        )
        q_rows = np.append(per_value, -1)[q_codes]
        unknown = _on_rows(q_codes, q_text.notna().to_numpy(dtype=bool) & ~known)
    else:
        unknown = np.zeros(n, dtype=bool)
    value = df["value"]
    if not pd.api.types.is_numeric_dtype(value):
        v_codes, text = distinct(value)
        text = text.str.strip()
        first = text.str[:1]
        prefixed = first.isin(["<", ">"]).fillna(False).to_numpy(dtype=bool)
        text = text.where(~prefixed, text.str[1:].str.lstrip("=").str.strip())
        df = df.assign(value=spread(v_codes, text, df.index))
        if prefixed.any():
            first_code = np.array(
                [_QUALIFIER_CODES[f] if p else -1 for f, p in zip(first, prefixed, strict=True)], dtype=np.int64
            )
            on_row = _on_rows(v_codes, prefixed)
            q_rows = np.where(on_row, np.append(first_code, -1)[v_codes], q_rows)
            unknown &= ~on_row
    bad = _problem_rows(unknown)
    if len(bad):
        problems.extend(_row_problems(name, df, bad, "qualifier", "qualifier must be <, >, <= or >="))
    qualifier = pd.Series(
        pd.Categorical.from_codes(q_rows, categories=pd.Index(["<", ">"], dtype="string")), index=df.index
    )
    return df, qualifier


def _text(raw: pd.Series, kind: str, lower: bool, index: pd.Index) -> pd.Series:
    """A text column trimmed (blank is missing), lower-cased where asked, as a categorical."""
    codes, text = distinct(id_text(raw) if kind == "id" and pd.api.types.is_float_dtype(raw) else raw)
    text = text.str.strip()
    text = text.where(text != "")
    if lower:
        text = text.str.lower()
    return spread(codes, text, index)


def _fill(s: pd.Series, default: object) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype) and default not in s.cat.categories:
        s = s.cat.add_categories([default])
    return s.fillna(default)


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
        df, out["qualifier"] = _qualifier(name, df, problems)
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
            out[col] = _text(df[col], kind, col in _LOWER_CASE, df.index)
    extra = {c: df[c] for c in df.columns if c not in spec.columns}
    parsed = pd.DataFrame({**out, **extra}, index=df.index)
    if "patient_id" in df:
        bad = _problem_rows(parsed["patient_id"].isna())
        problems.extend(_row_problems(name, parsed, bad, "patient_id", "missing patient_id"))
    for col, default in spec.defaults.items():
        if col in df and default is not pd.NA:
            parsed[col] = _fill(parsed[col], default)
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
        return (
            f"time outside {stats['min_value']:g} to {stats['max_value']:g} h (30 days before to 365 days after "
            "infusion)"
        )
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


def _schema_problems(
    name: str, df: pd.DataFrame, already: set[tuple[int, str]], raw: pd.DataFrame | None = None
) -> list[ValidationProblem]:
    """Range and category problems; a category is quoted as the file has it (before lower-casing)."""
    schema = TABLES[name].schema()
    written = {str(c).strip(): raw[c] for c in raw.columns} if raw is not None else {}
    cols = {c: s for c, s in schema.columns.items() if c in df}
    try:
        pa.DataFrameSchema(cols, strict=False).validate(df, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        fc = fc[fc["index"].notna() & fc["column"].notna()]
        out = []
        for col, check, case, idx in zip(fc["column"], fc["check"], fc["failure_case"], fc["index"], strict=True):
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
    factors = conversion_factors(m["analyte"], m["unit"])
    known = m["analyte"].isin(list(CANONICAL_UNITS)).fillna(False).to_numpy(dtype=bool)
    bad_an = _problem_rows(~known & m["analyte"].notna().to_numpy(dtype=bool))
    if len(bad_an):
        problems += _row_problems(
            "measurements", m, bad_an, "analyte", "unknown analyte (known ones: docs/cohort_format.md)"
        )
    if "analyte" not in absent:
        missing_an = _problem_rows(m["analyte"].isna())
        problems += _row_problems("measurements", m, missing_an, "analyte", "missing analyte")
    bad_unit = _problem_rows(known & np.isnan(factors)) if "unit" not in absent else np.array([], dtype=int)
    if len(bad_unit):
        an = m["analyte"].iloc[bad_unit]
        msgs = [f"unknown unit for {a} (canonical {CANONICAL_UNITS[a]})" for a in an]
        problems += _row_problems("measurements", m, bad_unit, "unit", msgs)
    return problems, factors


def _normalise_units(units: pd.Series) -> pd.Series:
    codes, text = distinct(units)
    return spread(codes, pd.Series([normalize_unit(u) for u in text], dtype=object), units.index)


def _canonical_units(m: pd.DataFrame) -> pd.Series:
    """Each row's unit after conversion: its analyte's canonical unit, or the unit as written where
    the analyte is unknown."""
    a_codes, analytes = distinct(m["analyte"])
    u_codes, units = distinct(m["unit"])
    canon = analytes.map(CANONICAL_UNITS)
    names = pd.Index(pd.concat([canon.dropna(), units.dropna()]).unique(), dtype="string")
    canon_code = np.append(names.get_indexer(canon.fillna("")).astype(np.int64), -1)[a_codes]
    unit_code = np.append(names.get_indexer(units.fillna("")).astype(np.int64), -1)[u_codes]
    known = np.append(canon.notna().to_numpy(dtype=bool), False)[a_codes]
    codes = np.where(known, canon_code, unit_code)
    return pd.Series(pd.Categorical.from_codes(codes, categories=names), index=m.index)


def _spelling_problems(raw: dict[str, pd.DataFrame | None]) -> list[ValidationProblem]:
    """Patients whose id is written in more than one way across the tables (spaces, case, number
    format): every spelling's patient is invalid, so nobody is scored on rows that may be another's.
    Each problem names the first row of that spelling; no message names the id."""
    seen = []
    for name in TABLE_ORDER:
        df = raw.get(name)
        if df is None or "patient_id" not in df:
            continue
        ids = df["patient_id"].reset_index(drop=True)
        codes, spellings = distinct(id_text(ids) if pd.api.types.is_float_dtype(ids) else ids)
        first = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy() & (codes >= 0))
        seen.append(
            pd.DataFrame({"table": name, "row": first + 1, "spelling": spellings.to_numpy(dtype=object)[codes[first]]})
        )
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
        msg = (
            f"patient_id written in {g['spelling'].nunique()} ways across tables ({tables}: surrounding spaces, "
            "letter case or number format); its rows cannot be told apart, so none is used"
        )
        for spelling, rows in g.groupby("spelling", sort=False):
            first = rows.iloc[0]
            out.append(
                ValidationProblem(
                    str(first["table"]), int(first["row"]), "patient_id", msg, "error", str(spelling).strip()
                )
            )
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
    m["unit"] = _canonical_units(m)

    c = tables["crs"]
    c["grade"] = c["grade"].round().astype("Int64") if c["grade"].notna().all() else c["grade"]

    known_ids = set(tables["patients"]["patient_id"].dropna())
    # without a patients table (reported once above) every row would be an orphan
    has_patients = raw.get("patients") is not None and "patient_id" in raw["patients"]
    others = any(len(tables[n]) for n in TABLE_ORDER[1:])
    if has_patients and not len(raw["patients"]) and others:  # one problem, not one per row of every other table
        problems.append(
            ValidationProblem(
                "patients", None, None, "holds no patient (only its header); a cohort needs one row per patient"
            )
        )
        has_patients = False
    for name in TABLE_ORDER[1:]:
        df = tables[name]
        if "patient_id" not in df or df.empty or not has_patients:
            continue
        # index_in (Arrow): Series.isin of an Arrow string column walks the 100,000 known identifiers
        # in Python (3.7 s a table; issue #36)
        orphan = _problem_rows(df["patient_id"].notna().to_numpy() & (index_in(df["patient_id"], known_ids) < 0))
        problems += _row_problems(name, df, orphan, "patient_id", "patient is not in the patients table")

    if tables["crs"].empty and len(tables["vitals"]):  # never silently: the labels are crsml's own grading
        problems.append(
            ValidationProblem(
                "crs",
                None,
                None,
                "no recorded CRS grade: grades are derived by crsml "
                "from the vitals (ASTCT grading), a lower bound where a device or "
                "vasopressor was not recorded",
                "warning",
            )
        )
    problems += _spelling_problems(raw)
    problems += suspected_fill_values(m)
    m_rows = None if not rows or "measurements" not in rows else rows["measurements"] + 1
    problems += implausible_values(m, rows=m_rows)
    identical, found = _duplicate_measurements(m, m_rows)
    problems += found
    malformed = _malformed_problems(raw, tables)
    if malformed:  # a row read without its cells: its own reason first, nothing else about it
        set_aside = {(p.table, p.row) for p in malformed}
        problems = malformed + [p for p in problems if (p.table, p.row) not in set_aside]
    if rows:
        problems = [_in_file(p, rows) for p in problems]
    if identical.any():  # the same result twice is one result (after every row number is taken)
        tables["measurements"] = m[~identical].reset_index(drop=True)
    for df in tables.values():  # text was worked on as categoricals: the tables hold plain text
        for col in [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]:
            df[col] = as_text(df[col])
    return tables, ValidationReport(problems)


def _malformed_problems(
    raw: dict[str, pd.DataFrame | None], tables: dict[str, pd.DataFrame]
) -> list[ValidationProblem]:
    """An error for each row a reader found with the wrong number of fields (``attrs``
    :data:`~crsml.cohort.MALFORMED_ROWS`), naming its patient so that only that patient is invalid."""
    found = []
    for name in TABLE_ORDER:
        df = raw.get(name)
        if df is None or not df.attrs.get(MALFORMED_ROWS):
            continue
        for r, why in sorted(df.attrs[MALFORMED_ROWS].items()):
            pid = _pid_at(tables[name], np.array([r]))[0] if r < len(tables[name]) else None
            found.append(ValidationProblem(name, int(r) + 1, None, f"malformed row: {why}", "error", pid))
    return found


def _duplicate_measurements(
    m: pd.DataFrame, file_rows: np.ndarray | None
) -> tuple[np.ndarray, list[ValidationProblem]]:
    """Rows repeating an earlier one exactly (to drop), and a warning where one patient has
    different values of one analyte at one time (all kept: crsml cannot tell which is right).

    One sort of 64-bit hashes finds the candidates (cheap when, as usual, there are none);
    only those rows are compared in full."""
    none = np.zeros(len(m), dtype=bool), []
    key = ["patient_id", "time_h", "analyte"]
    if m.empty or not set(key) <= set(m.columns):
        return none
    p_codes, _ = pd.factorize(m["patient_id"])
    a_codes, a_uniques = pd.factorize(m["analyte"])
    t = np.ascontiguousarray(m["time_h"].to_numpy(dtype=float)) + 0.0  # + 0.0: -0.0 is 0.0
    ok = np.flatnonzero((p_codes >= 0) & (a_codes >= 0) & ~np.isnan(t))
    # one 64-bit hash of (patient, analyte, time): rows sharing a key share a hash, so the rows whose
    # hash repeats hold every candidate (a rare collision only adds rows, which the full comparison
    # below clears)
    with np.errstate(over="ignore"):
        h = (p_codes[ok].astype(np.int64) * (len(a_uniques) + 1) + a_codes[ok]) * np.int64(-7046029254386353131) + t[
            ok
        ].view(np.int64)
    sorted_h = np.sort(h)
    repeats = sorted_h[1:][sorted_h[1:] == sorted_h[:-1]]
    if not len(repeats):
        return none
    involved = np.flatnonzero(np.isin(h, repeats))
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
    patients = tuple(pd.unique(m["patient_id"].iloc[at].astype(str)))
    return identical, [
        ValidationProblem(
            "measurements",
            None,
            "value",
            f"{n_groups} patient, analyte and time combinations hold different values ({len(shown)} rows: "
            f"{rows_text}); all are kept",
            "warning",
            kind="conflicting_values",
            patients=patients,
        )
    ]


def _in_file(p: ValidationProblem, rows: dict[str, np.ndarray]) -> ValidationProblem:
    if p.row is None or p.table not in rows:
        return p
    return dataclasses.replace(p, row=int(rows[p.table][p.row - 1]) + 1)
