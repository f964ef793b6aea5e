"""Adapter for one-row-per-patient-day tables (such as ``shared/data/real/bal_daily_cohort.csv``).

A source reader for the importer every source shares: patient columns go to ``patients``, each
cell of a lab or cytokine column is an event at ``time_h = 24 * day`` coded by its column (system
``daily``) in the column's unit, and the daily CRS grade goes to ``crs``. Suspected fill values and values impossible in
the stated unit are reported as warnings with counts; the data are never altered.
"""

from __future__ import annotations

import hashlib
import io
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from crsml.adapters._importer import ImportReport, SourceRecords, assemble
from crsml.adapters._vocabulary import CodeMap
from crsml.cohort import (
    CANONICAL_UNITS,
    TIME_WINDOW_H,
    Cohort,
    ValidationProblem,
    check_csv,
    conversion_factor,
    ids_as_text,
    salvage_csv,
    unreadable,
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
                raise CohortError(
                    f"{where}: measurements.{analyte}: not an analyte crsml knows (docs/cohort_format.md)"
                )
            if conversion_factor(analyte, spec.unit) is None:
                raise CohortError(
                    f"{where}: measurements.{analyte}: unit {spec.unit!r} is not one crsml converts "
                    f"for {analyte} (canonical {CANONICAL_UNITS[analyte]})"
                )
        used: dict[str, str] = {}
        for analyte, spec in cfg.measurements.items():
            if spec.column in used:
                raise CohortError(
                    f"{where}: column {spec.column!r} is mapped to both {used[spec.column]} and "
                    f"{analyte}; each column holds one analyte"
                )
            used[spec.column] = analyte
        patients = {
            k: (v.model_dump(exclude_none=True) if isinstance(v, _PatientColumn) else {"column": v})
            for k, v in cfg.patients.items()
        }
        return cls(
            cfg.keys.model_dump(exclude_none=True),
            dict(cfg.constants),
            patients,
            {a: s.model_dump() for a, s in cfg.measurements.items()},
        )

    def code_map(self) -> CodeMap:
        """This mapping as a :class:`CodeMap` of the ``daily`` system: each source column is a code."""
        rows = [
            ("daily", spec["column"], "analytes", analyte, None, None) for analyte, spec in self.measurements.items()
        ]
        if self.keys.get("crs_grade"):
            rows.append(("daily", self.keys["crs_grade"], "crs", "grade", None, None))
        entries = pd.DataFrame(rows, columns=["system", "code", "section", "target", "grade", "costim"])
        entries["order"] = range(len(entries))
        entries["prefix"] = False
        digest = hashlib.sha256(repr(sorted(self.measurements.items())).encode()).hexdigest()
        return CodeMap(entries, {"daily": "daily"}, {}, digest, "daily mapping")


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


def read_daily(csv: str | Path, mapping: DailyMapping | None = None) -> SourceRecords:
    """A daily table as :class:`SourceRecords`: each cell of a mapped column is an event at
    ``time_h = 24 * day`` coded by its column, with the file's data row as provenance."""
    mapping = mapping or DailyMapping.load()
    path = Path(csv)
    if not path.exists():
        raise CohortError(f"daily table not found: {path}")
    pid_col = mapping.keys.get("patient_id", "patient_id")
    check_csv(path, path.name)
    # a daily table is small: every row's length is checked (pandas pads a short row silently)
    data, malformed = salvage_csv(path, path.name, pid_col)
    source = io.BytesIO(data)
    try:
        wide = pd.read_csv(source, dtype={pid_col: "string"})
    except (ValueError, OSError, EOFError) as exc:
        raise unreadable(path, path.name, exc) from None
    if pid_col in wide and wide[pid_col].isna().any():  # ids are text: a patient called NA stays NA
        source.seek(0)
        ids = ids_as_text(source, pid_col)
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

    bad_rows = [
        ValidationProblem(path.name, r + 1, None, f"malformed row: {why}", "error", str(wide[pid_col].iloc[r]).strip())
        for r, why in sorted(malformed.items())
    ]
    warnings, wide = _repeated_days(wide, pid_col, day_col, path.name)
    warnings[:0] = bad_rows
    file_rows = wide.pop("_file_row").to_numpy()  # each kept row's data row in the user's file
    time_h = 24.0 * pd.to_numeric(wide[day_col], errors="coerce")

    first = wide.groupby(pid_col, sort=False, dropna=False).head(1)
    patients = pd.DataFrame(
        {
            "key": first[pid_col].to_numpy(),
            "patient_id": first[pid_col].to_numpy(),
            "src": path.name,
            "ref": file_rows[first.index.to_numpy()].astype(str),
        }
    )
    for canon, spec in mapping.patients.items():
        col = spec["column"]
        values = first[col].to_numpy()
        if "scale" in spec:
            values = pd.to_numeric(first[col], errors="coerce").to_numpy() * float(spec["scale"])
        patients[canon] = values
        varying = wide.groupby(pid_col, sort=False)[col].nunique(dropna=False)
        if (n := int((varying > 1).sum())) > 0:
            warnings.append(
                ValidationProblem(
                    path.name, None, col, f"patient column varies within {n} patients; first day kept", "warning"
                )
            )
    for canon, value in mapping.constants.items():
        patients[canon] = value

    columns = [spec["column"] for spec in mapping.measurements.values()] + ([grade_col] if grade_col else [])
    units = {spec["column"]: spec["unit"] for spec in mapping.measurements.values()}
    long = wide[[pid_col, *columns]].assign(time_h=time_h.to_numpy(), ref=file_rows.astype(str))
    long = long.melt(id_vars=[pid_col, "time_h", "ref"], value_vars=columns, var_name="code", value_name="value")
    long = long[long["value"].notna()]
    events = pd.DataFrame(
        {
            "key": long[pid_col].to_numpy(),
            "time_h": long["time_h"].to_numpy(dtype=float),
            "system": "daily",
            "code": long["code"].to_numpy(),
            "value": long["value"].to_numpy(),
            "unit": long["code"].map(units).to_numpy(),
            "src": path.name,
            "ref": long["ref"].to_numpy(),
        }
    )
    labels = {"time_h": day_col, "patient_id": pid_col, **{k: s["column"] for k, s in mapping.patients.items()}}
    meta = {
        "source": path.name,
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "created_by": "crsml import-daily",
        "adapter": "daily",
        "mapping": {"keys": mapping.keys, "patients": mapping.patients, "measurements": mapping.measurements},
    }
    return SourceRecords("daily", patients, events, meta=meta, warnings=warnings, columns=labels)


def import_daily(csv: str | Path, mapping: DailyMapping | None = None) -> tuple[Cohort, ImportReport]:
    """Read a daily table into a validated :class:`Cohort` and its :class:`ImportReport`.

    The table goes through the importer every source shares (:func:`~crsml.adapters.assemble`):
    each mapped column is a code of the ``daily`` system resolved by the mapping, units become
    canonical, the cohort is validated. A daily table is refused whole when any row is bad (one line
    per problem naming the file's data row and column), as it always was.
    """
    mapping = mapping or DailyMapping.load()
    records = read_daily(csv, mapping)
    return assemble(records, mapping.code_map(), days=TIME_WINDOW_H[1] / 24.0, strict=True)


def _repeated_days(wide: pd.DataFrame, pid: str, day: str, name: str) -> tuple[list[ValidationProblem], pd.DataFrame]:
    """A patient-day written twice: identical rows collapse (a warning), different ones are errors
    naming the rows (crsml cannot tell which is right)."""
    rows = np.arange(1, len(wide) + 1)
    same = wide.duplicated(keep="first").to_numpy()
    found: list[ValidationProblem] = []
    if same.any():
        found.append(
            ValidationProblem(
                name,
                None,
                day,
                f"{int(same.sum())} rows repeat an earlier row exactly "
                f"(rows {', '.join(map(str, rows[same][:5]))}); kept once",
                "warning",
            )
        )
    kept = wide[~same].assign(_file_row=rows[~same])
    clash = kept.duplicated([pid, day], keep="first").to_numpy()
    for r, p in zip(rows[~same][clash], kept[pid].to_numpy()[clash], strict=True):
        found.append(
            ValidationProblem(
                name,
                int(r),
                day,
                "this patient's day appears again with different values",
                "error",
                None if pd.isna(p) else str(p).strip(),
            )
        )
    return found, kept.reset_index(drop=True)


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
