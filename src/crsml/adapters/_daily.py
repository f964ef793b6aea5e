"""Adapter for one-row-per-patient-day tables (such as ``shared/data/real/bal_daily_cohort.csv``).

Patient columns go to ``patients``, daily labs and cytokines to ``measurements`` at
``time_h = 24 * day`` in their source units (converted to canonical units by the cohort
loader), and the daily CRS grade to ``crs``. Suspected fill values and values impossible in
the stated unit are reported as warnings with counts; the data are never altered.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from crsml.cohort import (
    CANONICAL_UNITS,
    Cohort,
    ValidationProblem,
    ValidationReport,
    check_csv,
    conversion_factor,
    ids_as_text,
    implausible_values,
    unreadable,
    validate_tables,
)
from crsml.errors import CohortError

DEFAULT_CONFIG = "daily_default.toml"


@dataclass(frozen=True)
class DailyMapping:
    """Which source column holds what: keys, patient columns and measured analytes."""

    keys: dict[str, str]
    constants: dict[str, object]
    patients: dict[str, dict]
    measurements: dict[str, dict]

    @classmethod
    def load(cls, path: str | Path | None = None) -> DailyMapping:
        """Read and check a TOML mapping; ``None`` gives the packaged default for the shared real
        cohort. Unknown keys, wrong types, unknown analytes or units and a column mapped to two
        analytes are refused in one line naming the entry."""
        where = "the default mapping" if path is None else f"mapping config {path}"
        if path is None:
            text = resources.files("crsml.data").joinpath(DEFAULT_CONFIG).read_text()
        else:
            p = Path(path)
            if not p.is_file():
                raise CohortError(f"mapping config not found: {p}")
            text = p.read_text()
        try:
            cfg = _MappingFile.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise CohortError(f"{where}: not valid TOML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            entry = ".".join(str(x) for x in first["loc"] if not str(x).startswith(("str", "_")))
            raise CohortError(f"{where}: {entry}: {first['msg']} ({len(exc.errors())} problem(s))") from None
        for analyte, spec in cfg.measurements.items():
            if analyte not in CANONICAL_UNITS:
                raise CohortError(f"{where}: measurements.{analyte}: not an analyte crsml knows (docs/cohort_format.md)")
            if conversion_factor(analyte, spec.unit) is None:
                raise CohortError(f"{where}: measurements.{analyte}: unit {spec.unit!r} is not one crsml converts "
                                  f"for {analyte} (canonical {CANONICAL_UNITS[analyte]})")
        used: dict[str, str] = {}
        for analyte, spec in cfg.measurements.items():
            if spec.column in used:
                raise CohortError(f"{where}: column {spec.column!r} is mapped to both {used[spec.column]} and "
                                  f"{analyte}; each column holds one analyte")
            used[spec.column] = analyte
        patients = {k: (v.model_dump(exclude_none=True) if isinstance(v, _PatientColumn) else {"column": v})
                    for k, v in cfg.patients.items()}
        return cls(cfg.keys.model_dump(exclude_none=True), dict(cfg.constants), patients,
                   {a: s.model_dump() for a, s in cfg.measurements.items()})


class _Keys(BaseModel, extra="forbid"):
    patient_id: str = "patient_id"
    day: str = "day"
    crs_grade: str | None = None


class _PatientColumn(BaseModel, extra="forbid"):
    column: str
    scale: float | None = None


class _Measurement(BaseModel, extra="forbid"):
    column: str
    unit: str


class _MappingFile(BaseModel, extra="forbid"):
    """The TOML mapping file's schema (pydantic): sections and their keys, with types."""

    keys: _Keys = _Keys()
    constants: dict[str, str | int | float | bool] = {}
    patients: dict[str, str | _PatientColumn] = {}
    measurements: dict[str, _Measurement] = {}


def import_daily(
    csv: str | Path, mapping: DailyMapping | None = None
) -> tuple[Cohort, ValidationReport]:
    """Read a daily table into a validated :class:`Cohort` plus the adapter's warnings."""
    mapping = mapping or DailyMapping.load()
    path = Path(csv)
    if not path.exists():
        raise CohortError(f"daily table not found: {path}")
    pid_col = mapping.keys.get("patient_id", "patient_id")
    check_csv(path, path.name)
    try:
        wide = pd.read_csv(path, dtype={pid_col: "string"})
    except (ValueError, OSError, EOFError) as exc:
        raise unreadable(path, path.name, exc) from None
    if pid_col in wide and wide[pid_col].isna().any():  # ids are text: a patient called NA stays NA
        ids = ids_as_text(path, pid_col)
        wide[pid_col] = ids.where(ids.str.strip() != "").to_numpy()
    day_col = mapping.keys.get("day", "day")
    grade_col = mapping.keys.get("crs_grade")
    needed = [pid_col, day_col] + [s["column"] for s in mapping.patients.values()]
    needed += [s["column"] for s in mapping.measurements.values()]
    if grade_col:
        needed.append(grade_col)
    missing = [c for c in dict.fromkeys(needed) if c not in wide]
    if missing:
        raise CohortError(f"table {path.name}: missing columns {', '.join(missing)}")

    warnings, wide = _repeated_days(wide, pid_col, day_col, path.name)
    file_rows = wide.pop("_file_row").to_numpy()  # each kept row's data row in the user's file
    day = pd.to_numeric(wide[day_col], errors="coerce")
    time_h = 24.0 * day

    first = wide.groupby(pid_col, sort=False).head(1)
    patients = pd.DataFrame({"patient_id": first[pid_col].to_numpy()})
    for canon, spec in mapping.patients.items():
        col = spec["column"]
        values = first[col].to_numpy()
        if "scale" in spec:
            values = pd.to_numeric(first[col], errors="coerce").to_numpy() * float(spec["scale"])
        patients[canon] = values
        varying = wide.groupby(pid_col, sort=False)[col].nunique(dropna=False)
        if (n := int((varying > 1).sum())) > 0:
            warnings.append(ValidationProblem(path.name, None, col, f"patient column varies within {n} patients; first day kept", "warning"))
    for canon, value in mapping.constants.items():
        patients[canon] = value

    source = {a: spec["column"] for a, spec in mapping.measurements.items()}
    long = wide[[pid_col, *source.values()]].assign(time_h=time_h.to_numpy())
    long["source_row"] = file_rows
    long = long.melt(id_vars=[pid_col, "time_h", "source_row"], value_vars=list(source.values()),
                     var_name="source_column", value_name="value")
    long = long[long["value"].notna()]
    by_column = {spec["column"]: a for a, spec in mapping.measurements.items()}
    units = {spec["column"]: spec["unit"] for spec in mapping.measurements.values()}
    measurements = pd.DataFrame(
        {
            "patient_id": long[pid_col].to_numpy(),
            "time_h": long["time_h"].to_numpy(dtype=float),
            "analyte": long["source_column"].map(by_column).to_numpy(),
            "value": long["value"].to_numpy(),
            "unit": long["source_column"].map(units).to_numpy(),
            "source_row": long["source_row"].to_numpy(),
        }
    ).sort_values(["patient_id", "time_h", "analyte"], kind="stable").reset_index(drop=True)

    raw = {"patients": patients, "measurements": measurements}
    if grade_col:
        raw["crs"] = pd.DataFrame(
            {"patient_id": wide[pid_col].to_numpy(), "time_h": time_h.to_numpy(), "grade": wide[grade_col].to_numpy()}
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {
        "source": path.name,
        "source_sha256": digest,
        "created_by": "crsml import-daily",
        "adapter": "daily",
        "mapping": {"keys": mapping.keys, "patients": mapping.patients, "measurements": mapping.measurements},
    }
    tables, report = validate_tables(raw)
    m = tables["measurements"]
    src_rows = m["source_row"].to_numpy()
    labels = {a: f"{c} ({a})" if c != a else a for a, c in source.items()}
    where = {"patients": (file_rows[first.index.to_numpy()],
                          {"patient_id": pid_col, **{k: s["column"] for k, s in mapping.patients.items()}}),
             "crs": (file_rows, {"patient_id": pid_col, "time_h": day_col, "grade": grade_col})}
    problems = [_to_source(p, path.name, src_rows, m, labels, where) for p in report.problems
                if "impossible in" not in p.message]
    # implausible values are reported against the rows of the user's file, not our long table
    problems += implausible_values(m, labels, rows=src_rows, table=path.name)
    report = ValidationReport(warnings + problems)
    tables["measurements"] = m.drop(columns="source_row")
    cohort = Cohort.from_validated(tables, report, meta=meta, on_error="raise")
    return cohort, report


def _repeated_days(wide: pd.DataFrame, pid: str, day: str, name: str) -> tuple[list[ValidationProblem], pd.DataFrame]:
    """A patient-day written twice: identical rows collapse (a warning), different ones are errors
    naming the rows (crsml cannot tell which is right)."""
    rows = np.arange(1, len(wide) + 1)
    same = wide.duplicated(keep="first").to_numpy()
    found: list[ValidationProblem] = []
    if same.any():
        found.append(ValidationProblem(name, None, day, f"{int(same.sum())} rows repeat an earlier row exactly "
                                       f"(rows {', '.join(map(str, rows[same][:5]))}); kept once", "warning"))
    kept = wide[~same].assign(_file_row=rows[~same])
    clash = kept.duplicated([pid, day], keep="first").to_numpy()
    for r, p in zip(rows[~same][clash], kept[pid].to_numpy()[clash], strict=True):
        found.append(ValidationProblem(name, int(r), day, "this patient's day appears again with different values",
                                       "error", None if pd.isna(p) else str(p).strip()))
    return found, kept.reset_index(drop=True)


def _to_source(p: ValidationProblem, csv_name: str, src_rows, m: pd.DataFrame, labels: dict[str, str],
               where: dict[str, tuple[np.ndarray, dict[str, str | None]]] | None = None) -> ValidationProblem:
    """Point a problem found in a table built from the CSV at the row and column of the CSV."""
    if where and p.table in where and p.row is not None:
        rows, columns = where[p.table]
        column = columns.get(p.column or "") or p.column
        return ValidationProblem(csv_name, int(rows[p.row - 1]), column, p.message, p.severity, p.patient_id)
    if p.table != "measurements" or p.row is None:
        return _relabel(p, labels)
    analyte = m["analyte"].iat[p.row - 1]
    column = labels.get(analyte, p.column) if p.column == "value" else p.column
    return ValidationProblem(csv_name, int(src_rows[p.row - 1]), column, p.message, p.severity, p.patient_id)


def _relabel(p: ValidationProblem, labels: dict[str, str]) -> ValidationProblem:
    if p.column in labels and p.row is None:
        return ValidationProblem(p.table, p.row, labels[p.column], p.message, p.severity, p.patient_id)
    return p


def summarise(cohort: Cohort) -> dict[str, object]:
    """Counts a user checks after an import: patients, patient-days, grades, follow-up."""
    crs = cohort.crs
    max_grade = crs.groupby("patient_id")["grade"].max()
    days = crs.groupby("patient_id")["time_h"].max() / 24.0
    return {
        "patients": len(cohort.patients),
        "patient_days": int(crs[["patient_id", "time_h"]].drop_duplicates().shape[0]),
        "measurements": len(cohort.measurements),
        "analytes": int(cohort.measurements["analyte"].nunique()),
        "crs_any": int((max_grade >= 1).sum()),
        "crs_grade_ge3": int((max_grade >= 3).sum()),
        "max_grade_counts": {int(k): int(v) for k, v in max_grade.value_counts().sort_index().items()},
        "follow_up_days_median": float(np.median(days)) if len(days) else float("nan"),
    }
