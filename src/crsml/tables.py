"""The cohort tables of DESIGN.md: their columns, types and allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field

SEXES = ("female", "male")
COSTIMS = ("cd28", "4-1bb")
O2_DEVICES = (
    "none",
    "blow_by",
    "nasal_cannula",
    "high_flow_nasal_cannula",
    "facemask",
    "non_rebreather",
    "venturi",
    "cpap",
    "bipap",
    "mechanical_ventilation",
)
DRUGS = ("tocilizumab", "dexamethasone", "methylprednisolone", "siltuximab", "anakinra")
STEROIDS = ("dexamethasone", "methylprednisolone")
ANTICYTOKINE_DRUGS = DRUGS  # any of these given makes fever unnecessary for ASTCT grading


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table: name -> kind ('id', 'float', 'int', 'bool', 'str'), and which are required."""

    name: str
    columns: dict[str, str]
    required: tuple[str, ...]
    optional_table: bool = False
    defaults: dict[str, object] = field(default_factory=dict)


TABLES: dict[str, TableSpec] = {
    "patients": TableSpec(
        "patients",
        {
            "patient_id": "id",
            "age_years": "float",
            "sex": "str",
            "weight_kg": "float",
            "diagnosis": "str",
            "marrow_blast_pct": "float",
            "costim": "str",
            "cart_dose_per_kg": "float",
            "prior_lines": "float",
            "prior_transplant": "bool",
        },
        required=("patient_id", "age_years", "sex"),
    ),
    "measurements": TableSpec(
        "measurements",
        {
            "patient_id": "id",
            "time_h": "float",
            "analyte": "str",
            "value": "float",
            "unit": "str",
            "qualifier": "str",
        },
        required=("patient_id", "time_h", "analyte", "value", "unit"),
    ),
    "vitals": TableSpec(
        "vitals",
        {
            "patient_id": "id",
            "time_h": "float",
            "temp_c": "float",
            "hypotension": "bool",
            "vasopressors": "float",
            "vasopressin": "bool",
            "o2_device": "str",
            "o2_flow_lpm": "float",
        },
        required=("patient_id", "time_h", "temp_c"),
        optional_table=True,
        defaults={"hypotension": False, "vasopressors": 0.0, "vasopressin": False, "o2_device": "none"},
    ),
    "treatments": TableSpec(
        "treatments",
        {
            "patient_id": "id",
            "time_h": "float",
            "drug": "str",
            "dose": "float",
            "dose_unit": "str",
        },
        required=("patient_id", "time_h", "drug"),
        optional_table=True,
    ),
    "crs": TableSpec(
        "crs",
        {"patient_id": "id", "time_h": "float", "grade": "float"},
        required=("patient_id", "time_h", "grade"),
        optional_table=True,
    ),
}

TABLE_ORDER = ("patients", "measurements", "vitals", "treatments", "crs")
