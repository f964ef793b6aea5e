"""The :class:`Cohort`: the tables of DESIGN.md in canonical units, read from and written to a
directory of CSV or Parquet files with a ``cohort.json`` describing where it came from."""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crsml._version import __version__
from crsml.cohort._eligibility import eligibility_of
from crsml.cohort._files import (
    MALFORMED_ROWS,
    atomic_file,
    check_columns,
    check_csv,
    find_table_file,
    ids_as_text,
    salvage_csv,
    unreadable,
)
from crsml.cohort._grading import grade_vitals_table
from crsml.cohort._problems import ValidationReport
from crsml.cohort._schema import ALL_TABLES, TABLES
from crsml.cohort._validation import validate_tables
from crsml.errors import CohortError, FeatureError


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    """Fast typed read; a column holding any text falls back to strings for row-level checks, and
    a file with rows of the wrong length to a salvaged copy (:func:`salvage_csv`) whose
    malformed rows are listed in ``attrs``.

    Identifiers are text, never NA-parsed: a patient called ``NA`` stays ``NA`` (and a blank one
    stays blank, which validation reports)."""
    source: Path | io.BytesIO = path
    malformed: dict[int, str] = {}
    try:
        df = pd.read_csv(path, engine="pyarrow", dtype={"patient_id": "string"})
    except (pa.ArrowInvalid, ValueError):
        try:
            df = pd.read_csv(path, engine="pyarrow", dtype="string")
        except (pa.ArrowInvalid, ValueError):
            data, malformed = salvage_csv(path, name)
            if not malformed:
                raise
            source = io.BytesIO(data)
            df = pd.read_csv(source, engine="pyarrow", dtype="string")
    if "patient_id" in df and df["patient_id"].isna().any():
        if isinstance(source, io.BytesIO):
            source.seek(0)
        df["patient_id"] = ids_as_text(source, "patient_id").to_numpy()
    if malformed:
        df.attrs[MALFORMED_ROWS] = malformed
    return df


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    """The table's own text columns come as categoricals (Parquet's dictionary encoding, kept): validation works
    once per distinct spelling, and millions of repeated ids and analyte names take little memory."""
    schema = pq.read_schema(path)
    ours = TABLES[name].columns if name in TABLES else {}
    text = [
        f.name for f in schema if f.name in ours and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    return pd.read_parquet(path, read_dictionary=text)


def read_raw_tables(directory: str | Path) -> dict[str, pd.DataFrame | None]:
    """Read every table file of a cohort directory as it is (missing tables are ``None``)."""
    d = Path(directory)
    if not d.is_dir():
        raise CohortError(f"cohort directory not found: {d}")
    raw: dict[str, pd.DataFrame | None] = {}
    for name in ALL_TABLES:
        p = find_table_file(d, name)
        raw[name] = None if p is None else read_table(p, name)
    return raw


def read_table(path: Path, name: str) -> pd.DataFrame:
    """One table file as it is; an unreadable file is one clear line naming it, never a traceback
    and never its content."""
    if path.suffix != ".parquet":
        check_csv(path, name)
    try:
        df = _read_parquet(path, name) if path.suffix == ".parquet" else _read_csv(path, name)
    except (pa.ArrowInvalid, ValueError, OSError, EOFError) as exc:  # EOFError: a truncated .csv.gz
        raise unreadable(path, name, exc) from None
    if path.suffix == ".parquet":
        check_columns(df.columns, path, name)
    return df


@dataclass
class Cohort:
    """A cohort in canonical form. ``invalid`` maps patients removed on load to the reason;
    ``warnings`` maps patients concerned by a validation warning to its kinds (a value
    implausible in its unit, a suspected fill value, conflicting values at one time), which reach
    their rows in the scores and features."""

    patients: pd.DataFrame
    measurements: pd.DataFrame
    vitals: pd.DataFrame
    treatments: pd.DataFrame
    crs: pd.DataFrame
    truth: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_tables(
        cls,
        raw: dict[str, pd.DataFrame | None],
        meta: dict | None = None,
        on_error: Literal["raise", "drop"] = "raise",
    ) -> tuple[Cohort, ValidationReport]:
        """Validate raw tables and build a cohort.

        ``on_error='raise'`` refuses a cohort with any error; ``'drop'`` removes only the
        patients whose rows have errors, recording why in :attr:`invalid`, and still refuses
        problems that concern a whole table (a missing table or column).
        """
        tables, report = validate_tables(raw)
        return cls.from_validated(tables, report, raw.get("truth"), meta, on_error), report

    @classmethod
    def from_validated(
        cls,
        tables: dict[str, pd.DataFrame],
        report: ValidationReport,
        truth: pd.DataFrame | None = None,
        meta: dict | None = None,
        on_error: Literal["raise", "drop"] = "raise",
    ) -> Cohort:
        """Build a cohort from :func:`validate_tables` output, applying ``on_error``."""
        if report.errors and (on_error == "raise" or report.table_errors()):
            shown = report.table_errors() if on_error == "drop" else report.errors
            lines = "\n".join(str(p) for p in shown[:50])
            more = f"\n... and {len(shown) - 50} more" if len(shown) > 50 else ""
            raise CohortError(f"cohort is not valid ({len(shown)} problems):\n{lines}{more}")
        invalid = report.invalid_patients()
        if invalid or report.unattributed():
            # rows of invalid patients go, and rows that name no patient (reported, counted apart)
            bad = set(invalid)
            tables = {
                k: v[~v["patient_id"].isin(bad) & v["patient_id"].notna()].reset_index(drop=True)
                for k, v in tables.items()
            }
        warned = {k: v for k, v in report.patient_warnings().items() if k not in invalid}
        return cls(**tables, truth=truth, meta=dict(meta or {}), invalid=invalid, warnings=warned)

    @classmethod
    def load(cls, directory: str | Path, on_error: Literal["raise", "drop"] = "raise") -> Cohort:
        """Load and validate a cohort directory (see :meth:`from_tables`)."""
        return cls.load_with_report(directory, on_error)[0]

    @classmethod
    def load_with_report(
        cls, directory: str | Path, on_error: Literal["raise", "drop"] = "raise"
    ) -> tuple[Cohort, ValidationReport]:
        d = Path(directory)
        raw = read_raw_tables(d)
        meta_path = d / "cohort.json"
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        except (ValueError, OSError):
            raise CohortError(
                f"{meta_path}: not valid JSON (cohort.json describes the cohort; fix or remove it)"
            ) from None
        return cls.from_tables(raw, meta, on_error)

    def save(self, directory: str | Path, fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write every table and ``cohort.json``; returns the directory."""
        if fmt not in ("parquet", "csv"):
            raise CohortError(f"unknown cohort format {fmt!r}: use parquet or csv")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        counts = {}
        for name in ALL_TABLES:
            df = getattr(self, name)
            if df is None:
                continue
            for stale in (d / f"{name}.parquet", d / f"{name}.csv", d / f"{name}.csv.gz"):
                stale.unlink(missing_ok=True)
            with atomic_file(d / f"{name}.{fmt}") as tmp:
                if fmt == "parquet":
                    df.to_parquet(tmp, index=False)
                else:
                    df.to_csv(tmp, index=False)
            counts[name] = len(df)
        meta = {
            "format_version": 1,
            **self.meta,
            "crsml_version": __version__,
            "python": platform.python_version(),
            "pandas": pd.__version__,
            "file_format": fmt,
            "rows": counts,
        }
        with atomic_file(d / "cohort.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return d

    def eligibility(self, landmark_h: float | Sequence[float]) -> pd.DataFrame:
        """Every patient at every landmark: ``eligible`` (alive, no grade >= 3 by then) and the reason."""
        return eligibility(self, landmark_h)

    @property
    def patient_ids(self) -> pd.Series:
        return self.patients["patient_id"]

    def __len__(self) -> int:
        return len(self.patients)

    def subset(self, patient_ids: pd.Series | list[str]) -> Cohort:
        """The same cohort restricted to some patients."""
        keep = set(patient_ids)
        tables = {
            name: df[df["patient_id"].isin(keep)].reset_index(drop=True)
            for name in ALL_TABLES
            if (df := getattr(self, name)) is not None
        }
        return Cohort(
            **tables,
            meta=dict(self.meta),
            invalid={k: v for k, v in self.invalid.items() if k in keep},
            warnings={k: v for k, v in self.warnings.items() if k in keep},
        )

    def truth_at(self, landmark_h: float) -> pd.DataFrame:
        """A simulated cohort's ``truth`` rows at one landmark, indexed by ``patient_id``."""
        if self.truth is None:
            raise ValueError("this cohort has no truth table: only simulated cohorts carry one")
        return self.truth[self.truth["landmark_h"] == landmark_h].set_index("patient_id")

    def warnings_of(self, patient_ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        """Each patient's warning kinds as one text, ``"; "``-separated (``""`` when none)."""
        ids = pd.Series(np.asarray(patient_ids, dtype=object))
        if not self.warnings:
            return np.full(len(ids), "", dtype=object)
        joined = {k: "; ".join(v) for k, v in self.warnings.items()}
        return ids.map(joined).fillna("").to_numpy(dtype=object)

    def crs_grades(self) -> pd.DataFrame:
        """The ``crs`` table, or grades derived from ``vitals`` by ASTCT grading when absent."""
        if not self.crs.empty or self.vitals.empty:
            return self.crs
        return grade_vitals_table(self.vitals, self.treatments)


def eligibility(cohort: Cohort, landmark_h: float | Sequence[float], crs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every patient of ``cohort`` at every landmark: ``eligible`` and, when not, the ``reason``.

    Eligible (DESIGN.md): alive and no grade >= 3 CRS by the landmark. ``crs`` passes grades
    already derived from the cohort (``cohort.crs_grades()``) so they are not derived again.
    """
    crs = cohort.crs_grades() if crs is None else crs
    return eligibility_of(cohort.patients, cohort.vitals, crs, landmark_h)


def require_columns(frame: pd.DataFrame, table: str, columns: Sequence[str], why: str = "named by --extra") -> None:
    """Refuse, in one line naming the table, columns that ``frame`` lacks (``why``: who needs them)."""
    missing = [str(c) for c in columns if c not in frame]
    if missing:
        raise FeatureError(f"table {table}: no column {', '.join(missing)} ({why})")


def empty_table(name: str) -> pd.DataFrame:
    """An empty table with the DESIGN.md columns of ``name``."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[name].columns})


def read_cohort(directory: str | Path, on_error: Literal["raise", "drop"] = "raise") -> Cohort:
    """Read and validate a cohort directory (CSV or Parquet tables, canonical units on load).

    Parameters
    ----------
    directory : path of the cohort directory (``patients``, ``measurements`` ... files).
    on_error : ``"raise"`` refuses a cohort with any error (:class:`~crsml.errors.CohortError`
        listing table, row and column); ``"drop"`` removes only the patients with a bad row and
        records the reason in :attr:`Cohort.invalid`.

    Returns
    -------
    Cohort
    """
    return Cohort.load(directory, on_error)
