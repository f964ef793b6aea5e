"""``crsml validate`` and ``crsml import-daily``: cohort checks and the daily-table adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crsml.cli._console import err, out, print_problems, write_warnings


def validate_command(
    directory: Annotated[Path, typer.Argument(help="cohort directory (CSV or Parquet tables)")],
    max_problems: Annotated[int, typer.Option(help="most problem lines to print")] = 10_000,
) -> None:
    """Check a cohort: exit 0 when valid (warnings printed), 2 with one line per problem."""
    from crsml.cohort import read_raw_tables, validate_tables

    _, report = validate_tables(read_raw_tables(directory))
    problems = report.errors + report.warnings
    print_problems(problems, max_problems)
    n_err, n_warn = len(report.errors), len(report.warnings)
    if n_err:
        err.print(f"{directory}: NOT valid: {n_err} errors, {n_warn} warnings")
        raise typer.Exit(2)
    err.print(f"{directory}: valid ({n_warn} warnings)")


def import_daily_command(
    csv: Annotated[Path, typer.Argument(help="one-row-per-patient-day CSV")],
    out_dir: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    config: Annotated[
        Path | None, typer.Option(help="column mapping (TOML); default fits the shared real cohort")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Import a daily table (such as shared/data/real/bal_daily_cohort.csv) as a cohort."""
    from crsml.adapters import DailyMapping, import_daily, summarise
    from crsml.cohort import check_output

    check_output(out_dir, "dir")
    cohort, report = import_daily(csv, DailyMapping.load(config))
    cohort.save(out_dir, fmt=fmt)  # type: ignore[arg-type]
    report.save(out_dir)
    write_warnings(out_dir, report.warnings)
    print_problems(report.warnings, 10_000)
    out.print(json.dumps(summarise(cohort), indent=2))
    listed = f", listed in {out_dir / 'validation_warnings.txt'}" if report.warnings else ""
    err.print(f"wrote {out_dir} ({len(report.warnings)} warnings{listed})")


_MAP = Annotated[
    list[Path] | None,
    typer.Option(
        "--map",
        help="the centre's code map (TOML or CSV) laid over the "
        "default; give it again to lay a filled import_unmapped.csv "
        "over that (the later wins); the default "
        "LOINC/RxNorm/HCPCS/ICD-10-CM map (docs/importers.md)",
    ),
]
_DAYS = Annotated[float, typer.Option(help="days after the infusion to import")]
_FMT = Annotated[str, typer.Option("--format", help="parquet or csv")]
_GRADES = Annotated[
    bool,
    typer.Option(
        "--require-grades",
        help="refuse the import when any patient's CRS grades would "
        "be derived from its vitals (no recorded grade or CRS condition mapped)",
    ),
]


def _write_import(cohort, report, out_dir: Path, fmt: str) -> None:
    """Save the cohort and its import report; print counts only (identifiers stay in the directory)."""
    cohort.save(out_dir, fmt=fmt)  # type: ignore[arg-type]
    report.save(out_dir)
    write_warnings(out_dir, report.warnings)
    out.print(report.summary(), markup=False)
    err.print(
        f"wrote {out_dir}: {len(cohort.patients)} patients; every refused, duplicated or guessed row with its "
        f"source row in {out_dir / 'import_rows.csv'}, every patient read in {out_dir / 'import_patients.csv'}, "
        f"the unmapped codes as a map to fill in {out_dir / 'import_unmapped.csv'}",
        markup=False,
    )


def import_long_command(
    directory: Annotated[
        Path, typer.Argument(help="long export: patients, results, vitals, administrations (CSV or Parquet)")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    code_map: _MAP = None,
    timezone: Annotated[
        str | None, typer.Option(help="time zone of timestamps written without one (Europe/Berlin)")
    ] = None,
    code_system: Annotated[
        str | None, typer.Option(help="system of codes in files without a code_system column")
    ] = None,
    days: _DAYS = 30.0,
    fmt: _FMT = "parquet",
    require_grades: _GRADES = False,
) -> None:
    """Import a long EHR export (one row per result, vital sign or administration)."""
    from crsml.adapters import CodeMap, import_long
    from crsml.cohort import check_output

    check_output(out_dir, "dir")

    cohort, report = import_long(directory, CodeMap.load(code_map), timezone, days, code_system, require_grades)
    _write_import(cohort, report, out_dir, fmt)


def import_omop_command(
    db: Annotated[
        str, typer.Option("--db", help="SQLAlchemy URL: duckdb:///cdm.duckdb or postgresql+psycopg://user@host/db")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    schema: Annotated[str | None, typer.Option(help="the CDM's schema")] = None,
    code_map: _MAP = None,
    timezone: Annotated[str, typer.Option(help="time zone of the CDM's datetimes")] = "UTC",
    days: _DAYS = 30.0,
    fmt: _FMT = "parquet",
    require_grades: _GRADES = False,
) -> None:
    """Import the CAR-T patients of an OMOP CDM v5.4 database (DuckDB or PostgreSQL)."""
    from crsml.adapters import CodeMap, import_omop
    from crsml.cohort import check_output

    check_output(out_dir, "dir")

    cohort, report = import_omop(db, schema, CodeMap.load(code_map), days, timezone, require_grades)
    _write_import(cohort, report, out_dir, fmt)


def import_fhir_command(
    directory: Annotated[Path, typer.Argument(help="FHIR R4 bulk export (NDJSON) or Bundles (JSON)")],
    out_dir: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    code_map: _MAP = None,
    identifier_system: Annotated[
        str | None, typer.Option(help="the Patient.identifier system to use as patient_id")
    ] = None,
    days: _DAYS = 30.0,
    fmt: _FMT = "parquet",
    require_grades: _GRADES = False,
) -> None:
    """Import FHIR R4 Patient, Observation, MedicationAdministration, Procedure, Condition, Device and
    DeviceUseStatement resources (a bulk export's manifest.json says which files)."""
    from crsml.adapters import CodeMap, import_fhir
    from crsml.cohort import check_output

    check_output(out_dir, "dir")

    cohort, report = import_fhir(directory, CodeMap.load(code_map), days, identifier_system, require_grades)
    _write_import(cohort, report, out_dir, fmt)


def export_command(
    cohort_dir: Annotated[Path, typer.Argument(help="cohort directory")],
    fmt: Annotated[str, typer.Option("--format", help="omop, fhir or long")],
    out: Annotated[str, typer.Option("--out", help="omop: a .duckdb path or SQLAlchemy URL; fhir, long: a directory")],
    code_map: _MAP = None,
    replace: Annotated[bool, typer.Option(help="omop: overwrite the CDM tables of an existing database")] = False,
) -> None:
    """Write a cohort (a simulated one included) as an OMOP CDM database, FHIR NDJSON or a long export."""
    from crsml.adapters import CodeMap, export_fhir, export_long, export_omop
    from crsml.cohort import check_output, read_cohort
    from crsml.errors import CohortError

    if fmt not in ("omop", "fhir", "long"):
        raise CohortError(f"--format {fmt!r}: use omop, fhir or long")
    if "://" not in out:
        check_output(out, "file" if fmt == "omop" else "dir")
    cohort = read_cohort(cohort_dir)
    codes = CodeMap.load(code_map)
    if fmt == "omop":
        if "://" not in out:
            Path(out).resolve().parent.mkdir(parents=True, exist_ok=True)
        url = out if "://" in out else f"duckdb:///{Path(out).resolve()}"
        written = export_omop(cohort, url, codes, replace=replace)
    elif fmt == "fhir":
        written = export_fhir(cohort, out, codes)
    else:
        written = export_long(cohort, out, codes)
    err.print(f"wrote {out} ({fmt}): " + ", ".join(f"{k} {v:,}" for k, v in written.items()), markup=False)
