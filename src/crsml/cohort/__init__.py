"""Cohorts: the tables of DESIGN.md, their schema, units, validation, ASTCT grading and
landmark eligibility.

>>> import crsml
>>> cohort = crsml.read_cohort("out/demo/sim")          # doctest: +SKIP
>>> cohort.eligibility(48).head()                        # doctest: +SKIP
"""

from crsml.cohort._codes import has_rows, index_in, patient_id_key
from crsml.cohort._cohort import (
    Cohort,
    eligibility,
    empty_table,
    read_cohort,
    read_raw_tables,
    read_table,
    require_columns,
)
from crsml.cohort._eligibility import check_landmark, check_window, landmarks
from crsml.cohort._files import (
    MALFORMED_ROWS,
    atomic_dir,
    atomic_file,
    check_columns,
    check_csv,
    check_output,
    find_table_file,
    ids_as_text,
    locate_parse_error,
    refuse_inside,
    salvage_csv,
    table_batches,
    unreadable,
)
from crsml.cohort._grading import (
    DEVICE_GRADE,
    FEVER_C,
    HYPOTENSION_MAP_MMHG,
    HYPOTENSION_SBP_MMHG,
    LOW_FLOW_MAX_LPM,
    anticytokine_before,
    combine_grade,
    crs_episodes,
    grade_astct,
    grade_vitals_table,
    hypotension_grade,
    hypoxia_grade,
    pressor_grade,
)
from crsml.cohort._problems import ValidationProblem, ValidationReport, grouped_lines
from crsml.cohort._quality import fill_value_table, implausible_values, suspected_fill_values
from crsml.cohort._schema import (
    ALL_TABLES,
    ANTICYTOKINE_DRUGS,
    COSTIMS,
    DIAGNOSES,
    DRUGS,
    GRADES,
    O2_DEVICES,
    SEXES,
    STEROIDS,
    TABLE_ORDER,
    TABLES,
    TIME_WINDOW_H,
    ColumnSpec,
    TableSpec,
    schema_markdown,
)
from crsml.cohort._units import (
    ALTERNATIVE_UNITS,
    CANONICAL_UNITS,
    CYTOKINES,
    PLAUSIBLE_RANGES,
    VITAL_UNITS,
    conversion_factor,
    conversion_factors,
    from_canonical,
    normalize_unit,
    to_canonical,
)
from crsml.cohort._validation import MISSING_COLUMN, validate_tables

__all__ = [
    "ALL_TABLES", "ALTERNATIVE_UNITS", "ANTICYTOKINE_DRUGS", "CANONICAL_UNITS", "COSTIMS", "CYTOKINES",
    "DEVICE_GRADE", "DIAGNOSES", "MALFORMED_ROWS", "DRUGS", "FEVER_C", "GRADES", "HYPOTENSION_MAP_MMHG", "HYPOTENSION_SBP_MMHG", "LOW_FLOW_MAX_LPM", "MISSING_COLUMN", "O2_DEVICES",
    "PLAUSIBLE_RANGES", "SEXES", "STEROIDS", "TABLES", "TABLE_ORDER", "TIME_WINDOW_H", "VITAL_UNITS", "Cohort", "ColumnSpec", "TableSpec",
    "ValidationProblem", "ValidationReport", "anticytokine_before", "atomic_dir", "atomic_file", "check_columns", "check_csv", "check_output", "check_landmark", "check_window", "combine_grade",
    "conversion_factor", "conversion_factors", "crs_episodes", "eligibility", "empty_table", "fill_value_table",
    "find_table_file", "from_canonical", "grouped_lines", "grade_astct", "grade_vitals_table", "has_rows", "hypotension_grade",
    "hypoxia_grade", "ids_as_text", "implausible_values", "index_in", "landmarks", "locate_parse_error", "normalize_unit", "patient_id_key", "pressor_grade",
    "read_cohort", "read_raw_tables", "read_table", "refuse_inside", "require_columns", "salvage_csv", "schema_markdown", "suspected_fill_values", "table_batches", "to_canonical",
    "unreadable", "validate_tables",
]
