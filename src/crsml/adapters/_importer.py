"""The importer every source shares.

A source reader (long export, OMOP CDM, FHIR, daily table) turns what it reads into
:class:`SourceRecords`: one frame of patients (the source's key, its patient identifier, the CAR-T
infusion time when the source states it) and one frame of events (a code, a value, a unit, a time),
each row carrying its provenance (file and line, table and primary key, or resource id).
:func:`assemble` then does the rest the same way for every source:

1. codes are resolved through the :class:`~crsml.adapters.CodeMap` (unmapped codes counted by code);
2. the infusion is the patient's first CAR-T administration where the source has no column for it;
3. times become hours since that patient's infusion; rows before the window, after it, or of a
   patient without an infusion are refused with the reason;
4. units are converted to canonical units (crsml's table for analyte-specific factors, UCUM through
   pint for the generic part);
5. vitals, treatments, CRS grades and patient columns are assembled into the DESIGN.md tables and
   validated like any cohort: a patient whose rows fail is marked invalid with the reason, never
   dropped silently, and never changes another patient's rows.

The :class:`ImportReport` says what was read, mapped, converted, guessed, refused and left
unmapped, and what became of every patient.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.cohort import (
    ANTICYTOKINE_DRUGS,
    CANONICAL_UNITS,
    HYPOTENSION_MAP_MMHG,
    HYPOTENSION_SBP_MMHG,
    TIME_WINDOW_H,
    VITAL_UNITS,
    Cohort,
    ValidationProblem,
    ValidationReport,
    atomic_file,
    conversion_factors,
    grade_vitals_table,
    grouped_lines,
    validate_tables,
)
from crsml.errors import CohortError

#: days after the infusion an importer keeps by default (CRS starts within two weeks)
DEFAULT_DAYS = 30.0
WINDOW_BEFORE_H = -TIME_WINDOW_H[0]
EVENT_COLUMNS = (
    "key",
    "system",
    "code",
    "value",
    "text",
    "unit",
    "qualifier",
    "src",
    "ref",
    "route",
    "value_system",
    "value_code",
    "display",
    "hint",
)
GRADED = "ASTCT grading of vitals"


@dataclass
class SourceRecords:
    """What a source reader hands to :func:`assemble`.

    Attributes
    ----------
    kind : ``long``, ``omop``, ``fhir`` or ``daily``.
    patients : ``key`` (the source's own key), ``patient_id`` (its patient identifier),
        ``infusion`` (UTC timestamp or NaT), ``birth`` (UTC timestamp or NaT), ``age_years``,
        ``sex``, ``src``/``ref`` (provenance), and any patient columns the source holds directly.
    events : ``key``, ``when`` (UTC timestamp) or ``time_h`` (hours since infusion, for sources
        that count from it), optional ``end``, ``system``, ``code``, ``value`` (number),
        ``text`` (a coded or text value), ``unit``, ``qualifier``, ``src``/``ref``; optional
        ``value_system``/``value_code`` (a coded value: the device of an oxygen-device
        observation), ``route`` (how the code was found: an OMOP standard or source concept, or a
        source value), ``display`` (the source's text for the code) and ``hint`` (the section the
        source's table or resource suggests, for codes left unmapped).
    refused : rows the reader could not turn into events (``src``, ``ref``, ``reason``).
    guessed : counts of what the reader had to assume (an ambiguous local time, say).
    unmapped : ``system``, ``code``, ``rows`` counted by the source itself (a database counts its
        unmapped codes without sending the rows), with ``key`` (the patient), ``display`` and ``hint``
        where the source has them.
    extra_read : rows read by the source but not passed on (counted in ``unmapped``).
    meta : what ``cohort.json`` records of the source (never patient data).
    warnings : problems the reader found itself (a patient-day written twice, say).
    columns : the source's name of each canonical column, for problems (``time_h`` is ``day``).
    guessed_rows : each row counted in ``guessed``, with provenance (``src``, ``ref``, ``column``, ``reason``).
    refused_counts : rows refused where they are (a database counts them, by reason, without
        sending them); counted in ``extra_read`` and in the report, not listed row by row.
    repeated : records the reader found repeated (a FHIR resource id seen twice), kept once; they
        are counted in ``extra_read`` and reported as duplicates.
    """

    kind: str
    patients: pd.DataFrame
    events: pd.DataFrame
    refused: pd.DataFrame = field(default_factory=lambda: _provenance_frame())
    guessed: dict[str, int] = field(default_factory=dict)
    unmapped: pd.DataFrame | None = None
    extra_read: int = 0
    meta: dict = field(default_factory=dict)
    warnings: list[ValidationProblem] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    guessed_rows: pd.DataFrame | None = None
    repeated: pd.DataFrame | None = None
    refused_counts: dict[str, int] = field(default_factory=dict)


def _provenance_frame(reason: str | None = None, src=(), ref=()) -> pd.DataFrame:
    n = len(src)
    return pd.DataFrame(
        {
            "src": pd.Series(list(src), dtype="string"),
            "ref": pd.Series(list(ref), dtype="string"),
            "column": pd.Series([pd.NA] * n, dtype="string"),
            "reason": pd.Series([reason] * n, dtype="string"),
        }
    )


def check_zone(timezone: str) -> None:
    """Refuse, in one line, a ``--timezone`` that is not a zone of the system's database."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CohortError(f"--timezone {timezone!r}: not a time zone (use a name such as Europe/Berlin)") from None


def _numbers(rows: pd.DataFrame, refused: list) -> pd.DataFrame:
    """The rows with a numeric value (as float); the others are refused: ``no value`` when the cell
    is empty, ``non-numeric value`` when it holds text (never quoted)."""
    text = rows["text"] if "text" in rows else pd.Series(pd.NA, index=rows.index)
    empty = (rows["value"].isna() & text.isna()).to_numpy()
    refused.append(refused_rows(rows, empty, "no value"))
    rows = rows.loc[~empty]
    number = pd.to_numeric(rows["value"], errors="coerce")
    refused.append(refused_rows(rows, number.isna(), "non-numeric value"))
    return rows.loc[number.notna()].assign(value=number[number.notna()].astype(float))


def _unit_reason(rows: pd.DataFrame) -> pd.Series:
    """'unit X is not a unit of Y' for each of ``rows`` (built only for the rows refused)."""
    return (
        "unit "
        + rows["unit"].astype("string").fillna("(none)")
        + " is not a unit of "
        + rows["target"].astype("string")
    )


def refused_rows(frame: pd.DataFrame, mask, reason: str | pd.Series) -> pd.DataFrame:
    """Provenance rows of ``frame`` where ``mask`` holds (``src``, ``ref``, the source's code as
    ``column``), with the reason (one text, or one per refused row, in order)."""
    sub = frame.loc[np.asarray(mask, dtype=bool)]
    why = reason.to_numpy() if isinstance(reason, pd.Series) else reason
    code = sub["code"].astype("string").to_numpy() if "code" in sub else pd.array([pd.NA] * len(sub), dtype="string")
    return pd.DataFrame(
        {
            "src": sub["src"].astype("string").to_numpy(),
            "ref": sub["ref"].astype("string").to_numpy(),
            "column": code,
            "reason": pd.Series(why, index=sub.index, dtype="string").to_numpy(),
        }
    )


def where(src: object, ref: object) -> tuple[str, int | None]:
    """The table and row a problem names: a data row of a file (``results.csv``, row 12), or a
    record's key (``measurement_id 123``, ``Observation/abc``) where the source has no row numbers."""
    src, ref = "" if pd.isna(src) else str(src), "" if pd.isna(ref) else str(ref)
    if ref.isdigit() and not src.endswith((" ", "/")):
        return src, int(ref)
    return (src + ref).strip(), None


@dataclass
class ImportReport:
    """What an import did, the same for every source.

    ``counts`` holds rows read, mapped, converted, guessed, unmapped, refused and duplicated, and
    patients read, imported, invalid and without an infusion time; ``unmapped`` counts rows by
    (system, code); ``refused`` counts rows by reason; ``rows`` lists each refused, duplicated or
    guessed row with its provenance; ``patients`` says what became of every patient read.
    ``routes`` counts the rows mapped by each route a code can take (OMOP: standard concept,
    source concept, source value).
    ``validation`` holds the cohort checks, problems pointing at the source's rows.
    """

    kind: str
    counts: dict[str, int]
    unmapped: pd.DataFrame
    refused: pd.DataFrame
    guessed: dict[str, int]
    rows: pd.DataFrame
    patients: pd.DataFrame
    validation: ValidationReport
    crs_source: dict[str, int]
    routes: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> list[ValidationProblem]:
        return self.validation.problems

    @property
    def warnings(self) -> list[ValidationProblem]:
        return self.validation.warnings

    @property
    def errors(self) -> list[ValidationProblem]:
        return self.validation.errors

    def to_dict(self) -> dict:
        """Counts only (no identifier, no provenance): what ``cohort.json`` and logs may hold."""
        return {
            "kind": self.kind,
            "counts": dict(self.counts),
            "unmapped_codes": {_code_label(r): int(r.rows) for r in self.unmapped.itertuples()},
            "refused": {str(r.reason): int(r.rows) for r in self.refused.itertuples()},
            "guessed": dict(self.guessed),
            "crs_source": dict(self.crs_source),
            "mapped_by_route": dict(self.routes),
        }

    def unmapped_map(self) -> pd.DataFrame:
        """The unmapped codes as a code map to fill (``import_unmapped.csv``): ``section`` (the
        one each code most likely belongs to), ``target`` and ``grade`` left blank, ``system``,
        ``code``, the source's ``display`` text and the ``rows`` it has. Fill ``target`` (a
        condition's ``grade``) of the rows that matter, fix a ``section`` where the guess is wrong,
        and pass the file back with ``--map``: rows left blank stay unmapped."""
        u = self.unmapped
        return pd.DataFrame(
            {
                "section": u["section"].to_numpy(),
                "target": "",
                "grade": "",
                "system": u["system"].to_numpy(),
                "code": u["code"].to_numpy(),
                "display": u["display"].to_numpy(),
                "rows": u["rows"].astype(int).to_numpy(),
            }
        )

    def summary(self) -> str:
        """A few lines for a person: rows, patients, the top unmapped codes and refusal reasons."""
        c = self.counts
        lines = [
            f"{self.kind} import: {c['rows_read']:,} rows read, {c['rows_mapped']:,} mapped "
            f"({c['rows_converted']:,} unit-converted), {c['rows_unmapped']:,} unmapped, "
            f"{c['rows_refused']:,} refused, {c['rows_duplicate']:,} duplicates kept once, {c['rows_guessed']:,} "
            f"guessed",
            f"patients: {c['patients_read']:,} read, {c['patients_imported']:,} imported, {c['patients_invalid']:,} "
            f"invalid, {c['patients_without_infusion']:,} without an infusion time",
            "CRS grades from: " + (", ".join(f"{k} {v}" for k, v in self.crs_source.items()) or "none"),
        ]
        if self.routes:
            lines.append("codes found by: " + ", ".join(f"{k} {v:,}" for k, v in self.routes.items()))
        if c.get("patients_graded_from_vitals"):
            lines.append(
                f"CRS grades derived by crsml from the vitals (no recorded grade or CRS condition) for "
                f"{c['patients_graded_from_vitals']:,} patients, from {c['oxygen_records_of_graded_patients']:,} "
                f"mapped oxygen and {c['vasopressor_records_of_graded_patients']:,} vasopressor records (each "
                f"patient's in import_patients.csv)"
            )
        if c.get("patients_grade_lower_bound"):
            lines.append(
                f"WARNING: {c['patients_grade_lower_bound']:,} of them had oxygen-device or vasopressor codes "
                f"unmapped in their window: their worst CRS grade is a lower bound (map the codes listed in "
                f"import_unmapped.csv and pass it back with --map; --require-grades refuses grading from "
                f"vitals)"
            )
        code = self.unmapped["code"].astype(str)
        # a code that reads like text (a source value with spaces, a long one) is counted, never printed:
        # a row's free text can hold a name
        printable = self.unmapped[~code.str.contains(r"\s", regex=True) & (code.str.len() <= 40)]
        if c["patients_without_infusion"]:
            products = printable[printable["section"] == "products"].head(5) if len(printable) else []
            lines.append(
                f"{c['patients_without_infusion']:,} patients have no mapped CAR-T product or administration "
                f"procedure (time zero)"
                + (
                    ": unmapped codes that may be one: "
                    + ", ".join(f"{_code_label(r)} ({int(r.rows):,})" for r in products.itertuples())
                    if len(products)
                    else ""
                )
            )
        if len(self.unmapped):
            top = printable.head(8)
            hidden = len(self.unmapped) - len(printable)
            shown = [f"{_code_label(r)} ({int(r.rows):,})" for r in top.itertuples()]
            if len(printable) > 8:
                shown.append(f"{len(printable) - 8} more")
            if hidden:
                shown.append(f"{hidden} written as text (import_unmapped.csv lists them)")
            lines.append("unmapped codes: " + ", ".join(shown))
        for r in self.refused.itertuples():
            lines.append(f"refused: {int(r.rows):,} rows: {r.reason}")
        for k, v in self.guessed.items():
            lines.append(f"guessed: {v:,} rows: {k}")
        return "\n".join(lines)

    def save(self, directory: str | Path) -> None:
        """Write ``import_report.json`` (counts), ``import_rows.csv`` (each refused, duplicated or
        guessed row: provenance and reason), ``import_patients.csv`` (every patient read and what
        became of it) and ``import_unmapped.csv`` (the unmapped codes as a map to fill) into the
        cohort directory: source identifiers stay there."""
        d = Path(directory)
        with atomic_file(d / "import_report.json") as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        with atomic_file(d / "import_rows.csv") as tmp:
            self.rows.to_csv(tmp, index=False)
        with atomic_file(d / "import_patients.csv") as tmp:
            self.patients.to_csv(tmp, index=False)
        with atomic_file(d / "import_unmapped.csv") as tmp:
            self.unmapped_map().to_csv(tmp, index=False)


def _code_label(r) -> str:
    """``SYSTEM:CODE`` of an unmapped-codes row (the code alone where the source gave no system)."""
    return f"{r.system + ':' if r.system else ''}{r.code}"


def _hours(when: pd.Series, t0: pd.Series) -> np.ndarray:
    return ((when - t0) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


def _closest_to_infusion(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group, the row nearest the infusion, the latest before it winning a tie."""
    order = np.lexsort((df["time_h"].to_numpy() > 0, np.abs(df["time_h"].to_numpy())))
    return df.iloc[order].drop_duplicates(by, keep="first")


def assemble(
    records: SourceRecords,
    codes,
    days: float = DEFAULT_DAYS,
    meta: dict | None = None,
    strict: bool = False,
    require_grades: bool = False,
) -> tuple[Cohort, ImportReport]:
    """Resolve, convert, time and validate a source's records into a :class:`Cohort`.

    Parameters
    ----------
    records : what the source reader produced.
    codes : the :class:`~crsml.adapters.CodeMap` resolving the records' codes.
    days : days after the infusion to keep (rows later are refused as after the window).
    meta : extra ``cohort.json`` entries (the command, say).
    strict : refuse the whole import (:class:`~crsml.errors.CohortError` listing each problem's
        table, row and column) when any row is refused or any patient fails validation, instead
        of marking those patients invalid (a daily table's contract).
    require_grades : refuse the import (one line) when any patient's CRS grades would be derived by
        crsml from the vitals rather than read from a recorded grade or CRS condition.
    """
    refused = [records.refused]
    rows_listed = []
    guessed = Counter(records.guessed)
    P = records.patients.reset_index(drop=True)
    for col in ("infusion", "birth"):
        if col not in P:
            P[col] = pd.Series(pd.NaT, index=P.index, dtype="datetime64[ns, UTC]")
    details = [c for c in P.columns if c not in ("src", "ref")]
    twice = P.duplicated("key", keep="first").to_numpy()
    differing = P.drop_duplicates(details)["key"]
    differing = set(differing[differing.duplicated()])  # one key, two different records
    patient_repeats = refused_rows(P, twice, "patient record repeated (the first is kept)")
    P = P[~twice].reset_index(drop=True)
    # two different records under one identifier cannot be told apart in the cohort: neither is imported
    shared = ((P["patient_id"].duplicated(keep=False) & P["patient_id"].notna()) | P["key"].isin(differing)).to_numpy()
    E = records.events.reset_index(drop=True)
    for col in EVENT_COLUMNS[:9]:  # an empty categorical costs a byte a row, not an object each
        if col not in E:
            E[col] = np.nan if col == "value" else pd.Categorical.from_codes(np.full(len(E), -1, dtype=np.int8), [])
    n_read = len(E) + records.extra_read

    found = codes.lookup(E["system"], E["code"])
    routes = (
        {str(k): int(v) for k, v in E.loc[found["section"].notna().to_numpy(), "route"].value_counts().items() if v}
        if "route" in E
        else {}
    )
    # columns that only coded values need are not copied along with ten million rows when no row has one
    drop = () if (found["target"] == "o2_device").any() else ("route", "value_system", "value_code")
    E = _device_values(pd.concat([E[[c for c in E.columns if c not in drop]], found], axis=1), codes)
    unmapped_mask = E["section"].isna().to_numpy()
    um = E.loc[unmapped_mask, [c for c in ("key", "system", "code", "display", "hint", "when", "time_h") if c in E]]
    spent = ["route", "display", "hint", "value_system"]
    if "value_code" in E and not E["value_code"].notna().any():
        spent.append("value_code")
    E = E.loc[~unmapped_mask, [c for c in E.columns if c not in spent]].reset_index(drop=True)

    # time zero: the source's own column, else the first CAR-T product administration
    prod = E[E["section"] == "products"]
    if "when" in E and len(prod):
        first = prod.sort_values("when", kind="stable").drop_duplicates("key")
        P["infusion"] = P["infusion"].fillna(P["key"].map(first.set_index("key")["when"]))
        P["product_costim"] = P["key"].map(first.set_index("key")["costim"])
    elif "product_costim" not in P:
        P["product_costim"] = pd.Series(pd.NA, index=P.index, dtype="string")
    counts_from_time = "time_h" in E
    um_h = (
        um["time_h"].to_numpy(dtype=float)
        if counts_from_time
        else _hours(um["when"], um["key"].map(P.set_index("key")["infusion"]))
        if len(um)
        else np.zeros(0)
    )
    with np.errstate(invalid="ignore"):
        um_window = (um_h >= -WINDOW_BEFORE_H) & (um_h <= 24.0 * days)
    unmapped, unmapped_kinds = _unmapped(um, records.unmapped, um_window)
    no_infusion = P["infusion"].isna().to_numpy() if not counts_from_time else np.zeros(len(P), dtype=bool)

    # every filter is a mask over the same rows, and the rows are copied once: a CDM sends millions
    known = E["key"].isin(P["key"]).to_numpy()
    ambiguous = known & E["key"].isin(set(P.loc[shared, "key"])).to_numpy()
    no_infusion = no_infusion & ~shared
    keep = known & ~ambiguous
    refused.append(refused_rows(E, ~known, "patient is not among the source's patients"))
    refused.append(refused_rows(E, ambiguous, "patient identifier not unique in the source (two different records)"))
    if not counts_from_time:
        t0 = E["key"].map(P.set_index("key")["infusion"])
        lost = keep & t0.isna().to_numpy()
        no_time = keep & ~lost & E["when"].isna().to_numpy()
        refused.append(refused_rows(E, lost, "patient has no CAR-T infusion time"))
        refused.append(refused_rows(E, no_time, "no date or time"))
        keep &= ~lost & ~no_time
        E["time_h"] = _hours(E["when"], t0)
        E["end_h"] = _hours(E["end"], t0) if "end" in E else np.nan
    elif "end_h" not in E:
        E["end_h"] = np.nan
    # a weight, a prior transplant or a diagnosis counts whenever recorded
    timed = ~E["section"].isin(UNTIMED_SECTIONS).to_numpy()
    early = keep & (E["time_h"] < -WINDOW_BEFORE_H).to_numpy() & timed
    late = keep & (E["time_h"] > 24.0 * days).to_numpy() & timed
    refused.append(refused_rows(E, early, f"timed more than {WINDOW_BEFORE_H / 24:g} days before the infusion"))
    refused.append(refused_rows(E, late, f"timed more than {days:g} days after the infusion (--days)"))
    E = E.loc[keep & ~early & ~late].reset_index(drop=True)
    before = int(((E["time_h"] < 0) & ~E["section"].isin(UNTIMED_SECTIONS)).sum())

    if records.repeated is not None and len(records.repeated):
        rows_listed.append(records.repeated)
    same = ["key", "time_h", "system", "code", "value", "text", "unit", "qualifier"]
    same += ["value_code"] if "value_code" in E else []  # coded values: rare, hashed only when present
    dup = pd.util.hash_pandas_object(E[same], index=False).duplicated(keep="first").to_numpy()
    rows_listed.append(refused_rows(E, dup, "repeats an earlier row exactly (kept once)"))
    E = E.loc[~dup].reset_index(drop=True)

    pid = P.set_index("key")["patient_id"]
    parts: dict[str, pd.DataFrame] = {}
    prov: dict[str, pd.DataFrame] = {}
    sections = {
        s: E[E["section"] == s]
        for s in (
            "analytes",
            "vitals",
            "devices",
            "drugs",
            "vasopressors",
            "crs",
            "conditions",
            "diagnoses",
            "patients",
        )
    }

    a = _numbers(sections["analytes"], refused)
    factors = conversion_factors(a["target"].astype(str), a["unit"].astype("string").fillna(""))
    bad = np.isnan(factors)
    refused.append(refused_rows(a, bad, _unit_reason(a.loc[bad])))
    converted = int((~bad & (factors != 1.0)).sum())
    a, factors = a.loc[~bad], factors[~bad]
    parts["measurements"] = pd.DataFrame(
        {
            "patient_id": a["key"].map(pid).to_numpy(),
            "time_h": a["time_h"].to_numpy(),
            "analyte": a["target"].to_numpy(),
            "value": a["value"].to_numpy(dtype=float) * factors,
            "unit": a["target"].map(CANONICAL_UNITS).to_numpy(),
            "qualifier": a["qualifier"].to_numpy(),
        }
    )
    prov["measurements"] = a[["src", "ref", "code", "target"]]

    vitals, v_refused, v_converted = _vitals(sections["vitals"], sections["devices"], sections["vasopressors"], pid)
    refused.append(v_refused)
    converted += v_converted
    parts["vitals"] = vitals

    d = sections["drugs"]
    parts["treatments"] = pd.DataFrame(
        {
            "patient_id": d["key"].map(pid).to_numpy(),
            "time_h": d["time_h"].to_numpy(),
            "drug": d["target"].to_numpy(),
            "dose": pd.to_numeric(d["value"], errors="coerce").to_numpy(dtype=float),
            "dose_unit": d["unit"].to_numpy(),
        }
    )
    prov["treatments"] = d[["src", "ref", "code", "target"]]

    crs, crs_prov, crs_source = _grades(sections["crs"], sections["conditions"], parts, P, pid, refused)
    parts["crs"] = crs
    prov["crs"] = crs_prov

    imported = ~no_infusion & ~shared
    graded = P.loc[imported, "patient_id"].map(crs_source).eq(GRADED)
    if require_grades and graded.any():
        raise CohortError(
            f"--require-grades: {int(graded.sum()):,} of {int(imported.sum()):,} patients have no recorded "
            f"CRS grade or CRS condition, so their grades would be derived from the vitals; map the "
            f"centre's grade or condition codes (an import without --require-grades lists the unmapped "
            f"ones in import_unmapped.csv)"
        )
    d = sections["diagnoses"]  # a coded diagnosis is the patients table's diagnosis, in its vocabulary
    observed = pd.concat(
        [sections["patients"], d.assign(text=d["target"].astype(str).to_numpy(), value=np.nan, target="diagnosis")]
    )
    patients, p_refused = _patients(P[imported], observed)
    refused.append(p_refused)
    parts["patients"] = patients
    prov["patients"] = P.loc[imported, ["src", "ref"]]

    order = {
        "measurements": ["patient_id", "time_h", "analyte"],
        "vitals": ["patient_id", "time_h"],
        "treatments": ["patient_id", "time_h", "drug"],
        "crs": ["patient_id", "time_h"],
    }
    for name, key in order.items():  # one row order whatever the source's, provenance kept beside it
        if len(parts[name]):
            at = np.lexsort(
                [
                    parts[name][c].to_numpy(dtype=float)
                    if c == "time_h"
                    else pd.factorize(parts[name][c].to_numpy(dtype=object), sort=True)[0]
                    for c in reversed(key)
                ]
            )
            parts[name] = parts[name].iloc[at]
            if name in prov:
                prov[name] = prov[name].iloc[at]
    tables, vreport = validate_tables({k: v.reset_index(drop=True) for k, v in parts.items()})
    problems = [_at_source(p, prov, records.columns) for p in vreport.problems]
    report_v = ValidationReport(records.warnings + problems)
    refused_all = (
        pd.concat([r for r in refused if len(r)], ignore_index=True)
        if any(len(r) for r in refused)
        else _provenance_frame()
    )
    if strict and (report_v.errors or len(refused_all)):
        shown = grouped_lines([_refusal(r) for r in refused_all.itertuples()] + report_v.errors)
        more = f"\n... and {len(shown) - 50} more" if len(shown) > 50 else ""
        raise CohortError(f"cohort is not valid ({len(shown)} problems):\n" + "\n".join(shown[:50]) + more)
    guessed_rows = [records.guessed_rows.assign(status="guessed")] if records.guessed_rows is not None else []
    listed = pd.concat(
        [r.assign(status="duplicate") for r in [*rows_listed, patient_repeats] if len(r)]
        + [refused_all.assign(status="refused")]
        + guessed_rows,
        ignore_index=True,
    )
    by_reason = refused_all.groupby("reason").size()
    for why, n in records.refused_counts.items():
        by_reason[why] = by_reason.get(why, 0) + n
    refused_counts = (
        by_reason.rename("rows")
        .rename_axis("reason")
        .reset_index()
        .sort_values(["rows", "reason"], ascending=[False, True])
        .reset_index(drop=True)
    )
    n_refused = len(refused_all) + sum(records.refused_counts.values())
    cohort_meta = {**records.meta, **(meta or {})}
    cohort = Cohort.from_validated(tables, report_v, meta=cohort_meta, on_error="drop")
    status = pd.Series("imported", index=P.index, dtype="string")
    reason = pd.Series("", index=P.index, dtype="string")
    status[no_infusion] = "not imported"
    reason[no_infusion] = "no CAR-T infusion time"
    status[shared] = "not imported"
    reason[shared] = "patient identifier not unique in the source (two different records)"
    inv = P["patient_id"].map(cohort.invalid)
    status[inv.notna().to_numpy()] = "invalid"
    reason[inv.notna().to_numpy()] = inv[inv.notna()].astype("string")
    patient_rows = pd.DataFrame(
        {
            "patient_id": P["patient_id"].astype("string"),
            "status": status,
            "reason": reason,
            "crs_source": P["patient_id"].map(crs_source).astype("string"),
        }
    )
    oxygen = pd.concat(
        [
            sections["devices"]["key"],
            sections["vitals"].loc[(sections["vitals"]["target"] == "o2_flow_lpm").to_numpy(), "key"],
        ]
    ).value_counts()
    patient_rows["oxygen_records"] = P["key"].map(oxygen).fillna(0).astype(int).to_numpy()
    patient_rows["vasopressor_records"] = (
        P["key"].map(sections["vasopressors"]["key"].value_counts()).fillna(0).astype(int).to_numpy()
    )
    for col in ("unmapped_oxygen_records", "unmapped_vasopressor_records"):
        patient_rows[col] = P["key"].map(unmapped_kinds[col]).fillna(0).astype(int).to_numpy()
    graded_rows = patient_rows["crs_source"].eq(GRADED).fillna(False).to_numpy()
    lower = (
        graded_rows & (patient_rows["unmapped_oxygen_records"] + patient_rows["unmapped_vasopressor_records"] > 0)
    ).to_numpy()
    patient_rows["grade_warning"] = pd.Series("", index=P.index, dtype="string")
    patient_rows.loc[lower, "grade_warning"] = (
        "worst CRS grade is a lower bound: graded from vitals with "
        + patient_rows.loc[lower, "unmapped_oxygen_records"].astype(str)
        + " oxygen-device and "
        + patient_rows.loc[lower, "unmapped_vasopressor_records"].astype(str)
        + " vasopressor records unmapped in the window"
    )
    counts = {
        "rows_read": int(n_read),
        "rows_mapped": int(n_read - n_refused - int(unmapped["rows"].sum()) - sum(len(r) for r in rows_listed)),
        "rows_converted": converted,
        "rows_unmapped": int(unmapped["rows"].sum()),
        "rows_refused": n_refused,
        "rows_duplicate": sum(len(r) for r in rows_listed),
        "rows_guessed": int(sum(guessed.values())),
        "rows_before_infusion": before,
        "patients_read": len(P),
        "patients_imported": int((status == "imported").sum()),
        "patients_invalid": int((status == "invalid").sum()),
        "patients_without_infusion": int(no_infusion.sum()),
        "patients_sharing_an_identifier": int(shared.sum()),
        "patient_records_repeated": len(patient_repeats),
        "patients_graded_from_vitals": int(graded_rows.sum()),
        "oxygen_records_of_graded_patients": int(patient_rows.loc[graded_rows, "oxygen_records"].sum()),
        "vasopressor_records_of_graded_patients": int(patient_rows.loc[graded_rows, "vasopressor_records"].sum()),
        "patients_grade_lower_bound": int(lower.sum()),
    }
    report = ImportReport(
        records.kind,
        counts,
        unmapped,
        refused_counts,
        dict(guessed),
        listed,
        patient_rows,
        report_v,
        dict(Counter(crs_source.values())),
        routes,
    )
    cohort.meta["import"] = report.to_dict()
    cohort.meta["code_map_sha256"] = codes.digest
    if codes.source:
        cohort.meta["code_map"] = codes.source
    return cohort, report


UNTIMED_SECTIONS = ("patients", "diagnoses")
#: the code an unmapped value written as text is listed under (its text goes only to import_unmapped.csv)
TEXT_VALUE = "(text value)"


def _as_object(E: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    return E.astype({c: object for c in cols if isinstance(E[c].dtype, pd.CategoricalDtype) or E[c].dtype == "string"})


def _device_values(E: pd.DataFrame, codes) -> pd.DataFrame:
    """An oxygen-device observation (LOINC 107117-4, say) is the device its value names: a device
    code of the map makes it that device's event; any other value leaves the row unmapped under the
    value's own code (so that it is listed, with the devices, in ``import_unmapped.csv``)."""
    at = (E["target"] == "o2_device").fillna(False).to_numpy()
    if not at.any():
        return E
    for col in ("value_system", "value_code", "display", "hint"):
        if col not in E:
            E[col] = pd.Series(pd.NA, index=E.index, dtype=object)
    E = _as_object(E, ("section", "target", "system", "code", "display", "hint", "value_system", "value_code"))
    sub = E.loc[at]
    coded = sub["value_code"].astype("string")
    # a value written as text (no code) is looked up as a code, but never becomes one in a message
    value = coded.fillna(sub["text"].astype("string"))
    found = codes.lookup(sub["value_system"].astype("string"), value)
    device = (found["section"] == "devices").fillna(False).to_numpy()
    idx = sub.index
    E.loc[idx[device], "section"] = "devices"
    E.loc[idx[device], "target"] = found["target"].astype(object).to_numpy()[device]
    other = idx[~device]
    E.loc[other, ["section", "target"]] = np.nan
    E.loc[other, "system"] = sub["value_system"].astype(object).to_numpy()[~device]
    E.loc[other, "code"] = coded.fillna(TEXT_VALUE).astype(object).to_numpy()[~device]
    E.loc[other, "display"] = sub["text"].astype(object).to_numpy()[~device]
    E.loc[other, "hint"] = "oxygen"  # whatever its text says, the value of an oxygen-device observation
    return E


def _unmapped(
    um: pd.DataFrame, counted: pd.DataFrame | None, in_window: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unmapped rows by code (``system``, ``code``, the source's ``display``, the ``section`` each
    most likely belongs to, ``rows``) and, per patient, the rows in its window of codes that look like
    an oxygen device or a vasopressor (``unmapped_oxygen_records``, ``unmapped_vasopressor_records``):
    what crsml's grading of the vitals could not see."""
    from crsml.adapters._vocabulary import SECTION_WORDS, likely_section

    cols = ["key", "system", "code", "display", "hint", "rows", "in_window"]
    parts = [um.assign(rows=1, in_window=in_window).reindex(columns=cols)]
    if counted is not None and len(counted):  # a database counts its own, in the window, by patient where it can
        parts.append(counted.assign(in_window="key" in counted).reindex(columns=cols))
    rows = pd.concat(
        [p.astype({c: object for c in ("key", "system", "code", "display", "hint")}) for p in parts], ignore_index=True
    )
    rows["system"] = rows["system"].fillna("").astype(str)
    rows["code"] = rows["code"].astype(str)
    by_code = (
        rows.groupby(["system", "code"], sort=False, dropna=False)
        .agg(rows=("rows", "sum"), display=("display", "first"), hint=("hint", "first"))
        .reset_index()
    )
    oxygen_value = by_code["hint"].eq("oxygen").fillna(False).to_numpy()
    by_code["section"] = likely_section(by_code["hint"].replace("oxygen", "devices"), by_code["display"]).to_numpy()
    by_code.loc[oxygen_value, "section"] = "devices"
    shown = by_code["display"].astype("string").fillna("").str.lower()
    oxygen_word = shown.str.contains("|".join(SECTION_WORDS["devices"]), regex=True)
    by_code["kind"] = np.where(
        oxygen_value | ((by_code["section"] == "devices") & (oxygen_word | shown.eq(""))).to_numpy(),
        "unmapped_oxygen_records",
        np.where(by_code["section"] == "vasopressors", "unmapped_vasopressor_records", ""),
    )
    by_code = by_code.sort_values(["rows", "system", "code"], ascending=[False, True, True]).reset_index(drop=True)
    w = rows[rows["in_window"].astype(bool) & rows["key"].notna()].merge(
        by_code[["system", "code", "kind"]], on=["system", "code"]
    )
    w = w[w["kind"] != ""]
    kinds = (
        w.groupby(["key", "kind"])["rows"]
        .sum()
        .unstack()
        .reindex(columns=["unmapped_oxygen_records", "unmapped_vasopressor_records"])
        .fillna(0)
    )
    return by_code.drop(columns=["hint", "kind"]), kinds


def _label(code: object, target: object) -> str | None:
    if code is None or pd.isna(code):
        return None if target is None or pd.isna(target) else str(target)
    return str(code) if target is None or pd.isna(target) or str(code) == str(target) else f"{code} ({target})"


def _refusal(r) -> ValidationProblem:
    table, row = where(r.src, r.ref)
    return ValidationProblem(table, row, None if pd.isna(r.column) else str(r.column), str(r.reason))


def _at_source(p: ValidationProblem, prov: dict[str, pd.DataFrame], columns: dict[str, str]) -> ValidationProblem:
    """Point a problem in an assembled table at the source row and column it came from: a value at
    its code (``il6``, ``26881-3 (il6)``), other columns by the source's own names."""
    if p.row is None or p.table not in prov or p.row - 1 >= len(prov[p.table]):
        return p
    row = prov[p.table].iloc[p.row - 1]
    table, at = where(row["src"], row["ref"])
    column = p.column
    if p.column in ("value", "grade", "drug") and "code" in row:
        column = _label(row["code"], row.get("target"))
    elif p.column in columns:
        column = columns[p.column]
    return ValidationProblem(table, at, column, p.message, p.severity, p.patient_id)


def _unit_factor(target: pd.Series, unit: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per vital-sign row: a factor to the canonical unit (NaN: not a unit of it) and whether the
    unit is Fahrenheit (an offset, not a factor)."""
    u_codes, u_uniques = pd.factorize(unit, use_na_sentinel=True)
    spelled = [str(x).strip().lower() for x in u_uniques]
    factor = np.full(len(unit), np.nan)
    fahrenheit = np.zeros(len(unit), dtype=bool)
    for t, table in VITAL_UNITS.items():
        rows = (target == t).to_numpy()
        if not rows.any():
            continue
        per_unit = np.array(
            [np.nan if x not in table else (-1.0 if table[x] is None else table[x]) for x in spelled] + [np.nan]
        )
        f = per_unit[u_codes[rows]]
        fahrenheit[rows] = f == -1.0
        factor[rows] = np.where(f == -1.0, 1.0, f)
    none_needed = (target == "hypotension").to_numpy()
    factor[none_needed] = 1.0
    return factor, fahrenheit


def _vitals(
    v: pd.DataFrame, devices: pd.DataFrame, pressors: pd.DataFrame, pid: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The vitals table: one row per patient and time at which a vital sign was charted (signs charted
    together share a row), with the oxygen device and the vasopressors running at that time."""
    refused = []
    findings = v[(v["target"] == "hypotension").to_numpy() & v["value"].isna().to_numpy() & v["text"].isna().to_numpy()]
    v = pd.concat([findings, _numbers(v.drop(index=findings.index), refused)])
    factor, fahrenheit = _unit_factor(v["target"], v["unit"])
    bad = np.isnan(factor)
    refused.append(refused_rows(v, bad, _unit_reason(v.loc[bad])))
    v, factor, fahrenheit = v.loc[~bad], factor[~bad], fahrenheit[~bad]
    value = v["value"].to_numpy(dtype=float)
    value = np.where(fahrenheit, (value - 32.0) * 5.0 / 9.0, value * factor)
    converted = int((fahrenheit | (factor != 1.0)).sum())
    v = v.assign(value=value)
    low_bp = (
        ((v["target"] == "sbp_mmhg") & (v["value"] < HYPOTENSION_SBP_MMHG))
        | ((v["target"] == "map_mmhg") & (v["value"] < HYPOTENSION_MAP_MMHG))
        | ((v["target"] == "hypotension") & (v["value"].isna() | (v["value"] != 0)))
    ).to_numpy()
    times = pd.concat([v[["key", "time_h"]], devices[["key", "time_h"]], pressors[["key", "time_h"]]])
    if times.empty:
        return pd.DataFrame(columns=["patient_id", "time_h", "temp_c"]), pd.concat(refused), converted
    # integer patient codes shared by every frame: grouping and as-of joins on integers, not on text
    keys = pd.Index(pd.unique(times["key"].to_numpy(dtype=object)))
    times = times.assign(k=keys.get_indexer(times["key"].to_numpy(dtype=object)))
    rows = times[["k", "time_h"]].drop_duplicates().sort_values(["k", "time_h"], kind="stable").reset_index(drop=True)
    slot = pd.MultiIndex.from_frame(rows).get_indexer(
        pd.MultiIndex.from_arrays([keys.get_indexer(v["key"].to_numpy(dtype=object)), v["time_h"].to_numpy()])
    )

    def per_row(mask: np.ndarray, how: str) -> pd.Series:
        values = pd.Series(v["value"].to_numpy(dtype=float)[mask])
        return getattr(values.groupby(slot[mask]), how)().reindex(range(len(rows)))

    target = v["target"].to_numpy(dtype=object)
    out = pd.DataFrame(
        {
            "patient_id": pd.Series(keys[rows["k"].to_numpy()]).map(pid).to_numpy(),
            "time_h": rows["time_h"].to_numpy(),
            "temp_c": per_row(target == "temp_c", "max").to_numpy(),
            "hypotension": per_row(low_bp, "size").fillna(0).to_numpy() > 0,
            "o2_flow_lpm": per_row(target == "o2_flow_lpm", "max").to_numpy(),
        }
    )
    out["o2_device"] = _running(rows, devices, keys).fillna("none").to_numpy()
    running = {
        drug: _running(rows, pressors[pressors["target"] == drug], keys).notna().to_numpy()
        for drug in pressors["target"].dropna().unique()
    }
    out["vasopressin"] = running.pop("vasopressin", np.zeros(len(out), dtype=bool))
    out["vasopressors"] = np.sum(list(running.values()), axis=0) if running else 0
    return out, pd.concat(refused, ignore_index=True), converted


def _running(rows: pd.DataFrame, events: pd.DataFrame, keys: pd.Index) -> pd.Series:
    """For each (patient code ``k``, ``time_h``) row, the target of the latest event started at or
    before it and not yet ended (an event without an end lasts only its own instant)."""
    if events.empty:
        return pd.Series(pd.NA, index=rows.index, dtype="string")
    ev = pd.DataFrame(
        {
            "k": keys.get_indexer(events["key"].to_numpy(dtype=object)),
            "start_h": events["time_h"].to_numpy(dtype=float),
            "end_h": events["end_h"].fillna(events["time_h"]).to_numpy(dtype=float),
            "target": events["target"].astype("string").to_numpy(),
        }
    ).sort_values("start_h", kind="stable")
    left = rows.reset_index().sort_values("time_h", kind="stable")
    hit = pd.merge_asof(left, ev, left_on="time_h", right_on="start_h", by="k", direction="backward")
    vals = hit["target"].astype("string").where((hit["end_h"] >= hit["time_h"]).to_numpy())
    return pd.Series(vals.to_numpy(), index=hit["index"].to_numpy(), dtype="string").reindex(rows.index)


def _grades(
    obs: pd.DataFrame,
    cond: pd.DataFrame,
    parts: dict[str, pd.DataFrame],
    P: pd.DataFrame,
    pid: pd.Series,
    refused: list,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """CRS grades, per patient from the best source it has: recorded grades, else ICD-10-CM CRS
    conditions (the grade from its start, 0 from its end), else crsml's ASTCT grading of its vitals."""
    obs = _numbers(obs, refused)
    recorded = pd.DataFrame(
        {
            "patient_id": obs["key"].map(pid).to_numpy(),
            "time_h": obs["time_h"].to_numpy(),
            "grade": obs["value"].to_numpy(dtype=float),
        }
    )
    rec_prov = obs[["src", "ref", "code", "target"]]
    has_rec = set(obs["key"])
    cond = cond[~cond["key"].isin(has_rec)]
    ends = cond[cond["end_h"].notna()]
    from_cond = pd.DataFrame(
        {
            "patient_id": np.concatenate([cond["key"].map(pid).to_numpy(), ends["key"].map(pid).to_numpy()]),
            "time_h": np.concatenate([cond["time_h"].to_numpy(dtype=float), ends["end_h"].to_numpy(dtype=float)]),
            "grade": np.concatenate([cond["grade"].to_numpy(dtype=float), np.zeros(len(ends))]),
        }
    )
    cond_prov = pd.concat(
        [cond[["src", "ref", "code", "target"]], ends[["src", "ref", "code", "target"]]], ignore_index=True
    )
    has_cond = set(cond["key"])
    source = {pid[k]: "recorded grades" for k in has_rec if k in pid.index}
    source.update({pid[k]: "ICD-10-CM conditions" for k in has_cond if k in pid.index})
    vit = parts["vitals"]
    rest = vit[~vit["patient_id"].isin(set(source))] if len(vit) else vit
    if not (has_rec or has_cond):
        return (
            pd.DataFrame(columns=["patient_id", "time_h", "grade"]),
            _provenance_frame(),
            {p: GRADED for p in pd.unique(vit["patient_id"])} if len(vit) else {},
        )
    graded = pd.DataFrame(columns=["patient_id", "time_h", "grade"])
    if len(rest):
        tx = parts["treatments"]
        graded = grade_vitals_table(_vitals_defaults(rest), tx[tx["drug"].isin(ANTICYTOKINE_DRUGS)])
        source.update({p: GRADED for p in pd.unique(rest["patient_id"])})
    crs = pd.concat([recorded, from_cond, graded], ignore_index=True)
    prov = pd.concat(
        [
            rec_prov,
            cond_prov,
            _provenance_frame("graded", ["crsml ASTCT grading"] * len(graded), [""] * len(graded))[["src", "ref"]],
        ],
        ignore_index=True,
    )
    return crs, prov, source


def _vitals_defaults(v: pd.DataFrame) -> pd.DataFrame:
    return v.assign(o2_device=v["o2_device"].fillna("none"))


def _patients(P: pd.DataFrame, obs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The patients table: identifiers, age at infusion, sex, the columns the source holds directly
    and those recorded as observations (the one nearest the infusion)."""
    out = pd.DataFrame({"patient_id": P["patient_id"].astype("string").to_numpy()})
    raw_age = P["age_years"] if "age_years" in P else pd.Series(np.nan, index=P.index)
    age = pd.to_numeric(raw_age, errors="coerce").to_numpy(dtype=float)
    if "birth" in P and P["birth"].notna().any():
        from_birth = ((P["infusion"] - P["birth"]) / pd.Timedelta(days=365.25)).to_numpy(dtype=float)
        age = np.where(np.isnan(age), from_birth, age)
    out["age_years"] = age
    text = (
        np.isnan(age)
        & raw_age.notna().to_numpy()
        & raw_age.astype("string").str.strip().ne("").fillna(False).to_numpy()
    )
    if text.any():  # an age written as text stays, for validation to name its row and column
        out["age_years"] = out["age_years"].astype(object)
        out.loc[text, "age_years"] = raw_age[text].to_numpy()
    out["sex"] = P["sex"].to_numpy() if "sex" in P else pd.NA
    skip = {"key", "patient_id", "infusion", "birth", "age_years", "sex", "src", "ref", "product_costim"}
    for col in [c for c in P.columns if c not in skip]:
        out[col] = P[col].to_numpy()
    refused = _provenance_frame()
    if len(obs):
        o = obs[obs["key"].isin(set(P["key"]))]
        nearest = _closest_to_infusion(o, ["key", "target"])
        value = nearest["value"].astype(object).where(nearest["value"].notna(), nearest["text"])
        wide = nearest.assign(v=value.to_numpy()).pivot(index="key", columns="target", values="v")
        for col in wide.columns:
            mapped = P["key"].map(wide[col]).to_numpy()
            out[col] = mapped if col not in out else pd.Series(out[col]).where(pd.Series(out[col]).notna(), mapped)
    if "costim" not in out:
        out["costim"] = pd.NA
    costim = pd.Series(out["costim"].to_numpy(), dtype="string")
    out["costim"] = costim.fillna(pd.Series(P["product_costim"].to_numpy(), dtype="string")).to_numpy()
    if "prior_transplant" in out:  # 1/0 and yes/no as booleans; anything else stays for validation to flag
        raw = pd.Series(out["prior_transplant"], dtype="string")
        as_bool = raw.str.lower().map(
            {"1": True, "1.0": True, "true": True, "yes": True, "0": False, "0.0": False, "false": False, "no": False}
        )
        out["prior_transplant"] = as_bool.astype(object).where(as_bool.notna(), raw.astype(object)).to_numpy()
    return out, refused
