"""The cohort tables of DESIGN.md, declared once: columns, their kinds, the checks on their
values and which are required. Validation builds its pandera schemas from here, the readers
type columns from here and ``docs/cohort_format.md`` is generated from here."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.pandas as pa
from pandera import Check

from crsml.cohort._units import ALTERNATIVE_UNITS, CANONICAL_UNITS, PLAUSIBLE_RANGES

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
GRADES = (0, 1, 2, 3, 4, 5)
#: diagnoses importers write from coded conditions (``diagnosis`` stays free text for other sources):
#: B-cell acute lymphoblastic leukaemia, large B-cell lymphoma (DLBCL, PMBCL), follicular and
#: mantle-cell lymphoma, chronic lymphocytic leukaemia, multiple myeloma
DIAGNOSES = ("B-ALL", "LBCL", "FL", "MCL", "CLL", "MM")


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its kind (``id``, ``float``, ``bool`` or ``str``), the pandera checks on its
    values, whether a value may be missing (``None``: not checked) and whether it is unique."""

    kind: str
    checks: tuple[Check, ...] = ()
    nullable: bool | None = None
    unique: bool = False
    doc: str = ""

    @property
    def checked(self) -> bool:
        return bool(self.checks) or self.nullable is not None or self.unique


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table, which are required, and the defaults of optional ones."""

    name: str
    columns: dict[str, ColumnSpec]
    required: tuple[str, ...]
    optional_table: bool = False
    defaults: dict[str, object] = field(default_factory=dict)
    doc: str = ""

    @property
    def kinds(self) -> dict[str, str]:
        return {c: s.kind for c, s in self.columns.items()}

    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema of the checked columns (extra columns allowed)."""
        return pa.DataFrameSchema(
            {
                c: pa.Column(
                    float if s.kind == "float" else None,
                    list(s.checks),
                    nullable=True if s.nullable is None else s.nullable,
                    unique=s.unique,
                )
                for c, s in self.columns.items()
                if s.checked
            },
            strict=False,
        )


#: plausible times, hours since infusion: 30 days before to 365 days after (outside: a row problem)
TIME_WINDOW_H = (-30 * 24.0, 365 * 24.0)


def _time(doc: str = "hours since infusion (negative: before)") -> ColumnSpec:
    return ColumnSpec("float", (Check.in_range(*TIME_WINDOW_H),), nullable=False, doc=doc)


_ID = ColumnSpec("id", doc="patient identifier (text)")

TABLES: dict[str, TableSpec] = {
    "patients": TableSpec(
        "patients",
        {
            "patient_id": ColumnSpec("id", nullable=False, unique=True, doc="patient identifier (text, unique)"),
            "age_years": ColumnSpec("float", (Check.in_range(0, 120),), doc="age at infusion, years"),
            "sex": ColumnSpec("str", (Check.isin(SEXES),), doc="female or male"),
            "weight_kg": ColumnSpec("float", (Check.in_range(0, 400, include_min=False),), doc="kg"),
            "diagnosis": ColumnSpec("str", doc="free text; importers write B-ALL, LBCL, FL, MCL, CLL or MM"),
            "marrow_blast_pct": ColumnSpec("float", (Check.in_range(0, 100),), doc="bone-marrow blasts, %"),
            "costim": ColumnSpec("str", (Check.isin(COSTIMS),), doc="cd28 or 4-1bb"),
            "cart_dose_per_kg": ColumnSpec("float", (Check.gt(0),), doc="CAR-T cells infused per kg"),
            "prior_lines": ColumnSpec("float", (Check.in_range(0, 50),), doc="prior lines of therapy"),
            "prior_transplant": ColumnSpec("bool", doc="prior allogeneic transplant"),
        },
        required=("patient_id", "age_years", "sex"),
        doc="one row per patient; extra columns allowed (a centre, say: `--extra site`)",
    ),
    "measurements": TableSpec(
        "measurements",
        {
            "patient_id": _ID,
            "time_h": _time(),
            "analyte": ColumnSpec("str", doc="canonical analyte name (see units)"),
            "value": ColumnSpec("float", (Check.ge(0),), nullable=False, doc="result; '<1.5' keeps its qualifier"),
            "unit": ColumnSpec("str", doc="unit as recorded; converted to the canonical unit"),
            "qualifier": ColumnSpec("str", doc="'<' or '>' for values beyond the assay range"),
        },
        required=("patient_id", "time_h", "analyte", "value", "unit"),
        doc="one row per lab or cytokine result",
    ),
    "vitals": TableSpec(
        "vitals",
        {
            "patient_id": _ID,
            "time_h": _time(),
            "temp_c": ColumnSpec("float", (Check.in_range(30, 45),), nullable=True, doc="temperature, C"),
            "hypotension": ColumnSpec("bool", doc="hypotension at this observation"),
            "vasopressors": ColumnSpec(
                "float", (Check.in_range(0, 10),), nullable=True, doc="count of non-vasopressin vasopressors"
            ),
            "vasopressin": ColumnSpec("bool", doc="vasopressin given"),
            "o2_device": ColumnSpec("str", (Check.isin(O2_DEVICES),), nullable=True, doc="oxygen device"),
            "o2_flow_lpm": ColumnSpec("float", (Check.in_range(0, 80),), nullable=True, doc="oxygen flow, L/min"),
        },
        required=("patient_id", "time_h", "temp_c"),
        optional_table=True,
        defaults={"hypotension": False, "vasopressors": 0.0, "vasopressin": False, "o2_device": "none"},
        doc="one row per vital-sign observation; CRS is graded from it when `crs` is absent",
    ),
    "treatments": TableSpec(
        "treatments",
        {
            "patient_id": _ID,
            "time_h": _time(),
            "drug": ColumnSpec("str", (Check.isin(DRUGS),), nullable=False, doc="drug given"),
            "dose": ColumnSpec("float", (Check.ge(0),), nullable=True, doc="dose"),
            "dose_unit": ColumnSpec("str", doc="unit of the dose"),
        },
        required=("patient_id", "time_h", "drug"),
        optional_table=True,
        doc="one row per administration",
    ),
    "crs": TableSpec(
        "crs",
        {
            "patient_id": _ID,
            "time_h": _time(),
            "grade": ColumnSpec("float", (Check.isin(list(GRADES)),), nullable=False, doc="ASTCT grade 0-5"),
        },
        required=("patient_id", "time_h", "grade"),
        optional_table=True,
        doc="one row per graded observation",
    ),
}

TABLE_ORDER = ("patients", "measurements", "vitals", "treatments", "crs")
ALL_TABLES = (*TABLE_ORDER, "truth")


def schema_markdown() -> str:
    """The tables, analytes and units as Markdown (``docs/cohort_format.md``), from their declarations."""
    lines = [
        "# Cohort format\n",
        "Generated from `src/crsml/cohort/_schema.py` and `_units.py` by "
        "`crsml.cohort.schema_markdown()`; do not edit.\n",
        "A cohort is a directory of CSV or Parquet files with these names. Checks are applied by "
        "`crsml validate` (pandera), one problem per table, row and column.\n",
    ]
    for spec in TABLES.values():
        need = "optional table" if spec.optional_table else "required table"
        lines += [
            f"## `{spec.name}` ({need})\n",
            spec.doc + "\n",
            "| column | kind | required | checks | meaning |",
            "|---|---|---|---|---|",
        ]
        for c, s in spec.columns.items():
            checks = ", ".join(_describe(k) for k in s.checks)
            if s.unique:
                checks = ", ".join(x for x in (checks, "unique") if x)
            lines.append(f"| `{c}` | {s.kind} | {'yes' if c in spec.required else 'no'} | {checks} | {s.doc} |")
        if spec.defaults:
            lines.append(
                "\nDefaults when the column is absent: "
                + ", ".join(f"`{k}` = {v!r}" for k, v in spec.defaults.items())
                + "."
            )
        lines.append("")
    lines += [
        "## Analytes and units\n",
        "Values are converted to the canonical unit on load (factor: multiply a value in that unit to get "
        "the canonical one); an unknown analyte or unit is an error, never a guess. Unit spellings are "
        "normalised first (`mg/dl` is `mg/dL`, `x10^9/l` is `10^9/L`, `µ` is `u`, UCUM's `10*9/L` is `10^9/L`). "
        "A unit not in this table but of the same dimension as the canonical one in UCUM (`ng/dL` for a "
        "cytokine, `mmol/L` for creatinine) is converted exactly through pint (ucumvert); factors that "
        "need the analyte (a molar mass, an enzyme's international unit) come only from this table.\n",
        "| analyte | canonical unit | also accepted (factor) | plausible range (warning outside) |",
        "|---|---|---|---|",
    ]
    for analyte, unit in CANONICAL_UNITS.items():
        alt = ", ".join(f"{u} ({f:g})" for u, f in ALTERNATIVE_UNITS.get(analyte, {}).items())
        lo_hi = PLAUSIBLE_RANGES.get(analyte)
        rng = f"{lo_hi[0]:g}-{lo_hi[1]:g}" if lo_hi else ""
        lines.append(f"| `{analyte}` | {unit} | {alt} | {rng} |")
    return "\n".join(lines) + "\n"


def _describe(check: Check) -> str:
    s = check.statistics
    if check.name == "in_range":
        return f"{s['min_value']:g} to {s['max_value']:g}"
    if check.name == "isin":
        return "one of " + "/".join(str(v) for v in s["allowed_values"])
    if check.name == "greater_than":
        return f"> {s['min_value']:g}"
    if check.name == "greater_than_or_equal_to":
        return f">= {s['min_value']:g}"
    return check.name
