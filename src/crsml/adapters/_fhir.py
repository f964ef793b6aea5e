"""FHIR R4 in both directions: Bundles or bulk-export NDJSON of Patient, Observation (laboratory and
vital-signs, ``valueQuantity`` with UCUM and ``comparator``), MedicationAdministration, Procedure and
Condition.

Every resource is parsed with msgspec, and the elements crsml reads are validated against the R4
datatypes and each resource's required elements (:mod:`crsml.adapters._fhir_schema`); a malformed
one is refused with its resource id and the path of the first invalid element, never its content.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from crsml.adapters._fhir_schema import MODELS, CodeableConcept, Patient, check, convert, decode
from crsml.adapters._importer import DEFAULT_DAYS, SourceRecords, assemble
from crsml.adapters._vocabulary import CodeMap
from crsml.cohort import CANONICAL_UNITS, Cohort, atomic_file, crs_episodes
from crsml.errors import CohortError

RESOURCES = (
    "Patient",
    "Observation",
    "MedicationAdministration",
    "Procedure",
    "Condition",
    "DeviceUseStatement",
    "Device",
)
MANIFEST = "manifest.json"
#: where an unmapped code of a resource most likely belongs (Observation: by its category)
_HINTS = {
    "MedicationAdministration": "drugs",
    "Procedure": "products",
    "Condition": "conditions",
    "DeviceUseStatement": "devices",
}
_CATEGORY_HINTS = {
    "laboratory": "analytes",
    "vital-signs": "vitals",
    "survey": "crs",
    "exam": "patients",
    "social-history": "patients",
}
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
IDENTIFIER_SYSTEM = "urn:crsml:patient-id"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _files(directory: Path) -> list[tuple[Path, bool]]:
    """The files to read, each with whether it is NDJSON: those a bulk export's ``manifest.json``
    lists (``output`` and ``error``, by the last part of each url; NDJSON whatever their names),
    else every .ndjson and .json file of the directory."""
    if directory.is_file():
        return [(directory, directory.suffix == ".ndjson")]
    if not directory.is_dir():
        raise CohortError(f"FHIR directory not found: {directory}")
    manifest = directory / MANIFEST
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8-sig"))
            listed = [str(item["url"]) for part in ("output", "error") for item in doc.get(part) or []]
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError, TypeError):
            raise CohortError(f"{manifest}: not a FHIR bulk-data manifest (JSON with output[].url)") from None
        files = [directory / url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] for url in listed]
        if missing := [f.name for f in files if not f.is_file()]:
            raise CohortError(
                f"{manifest}: lists {missing[0]}, which is not in {directory}"
                + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else "")
            )
        return [(f, True) for f in dict.fromkeys(files)]
    found = sorted([*directory.glob("*.ndjson"), *directory.glob("*.json")])
    if not found:
        raise CohortError(f"{directory}: no .ndjson or .json files (FHIR bulk export or Bundles)")
    return [(f, f.suffix == ".ndjson") for f in found]


def _resources(path: Path, ndjson: bool):
    """(resource, provenance, Bundle fullUrl) of each resource in an NDJSON file or a JSON
    Bundle/resource: an NDJSON line's bytes, a Bundle entry's parsed dict, or None where the
    file is not JSON."""
    if ndjson:
        name = path.name
        with path.open("rb") as f:
            for i, line in enumerate(f, start=1):
                if i == 1:
                    line = line.removeprefix(_BOM)
                if line.strip():
                    yield line, f"{name} line {i}", None
        return
    try:
        doc = _decode(path.read_bytes().removeprefix(_BOM))
    except (msgspec.DecodeError, UnicodeDecodeError):
        yield None, path.name, None
        return
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for k, entry in enumerate(doc.get("entry") or [], start=1):
            yield (entry or {}).get("resource"), f"{path.name} entry {k}", (entry or {}).get("fullUrl")
    else:
        yield doc, path.name, None


_BOM = b"\xef\xbb\xbf"
_decode = msgspec.json.Decoder().decode
_encode_sorted = msgspec.json.Encoder(order="sorted").encode


def _provenance(where: str, rt: str = "", rid: str = "") -> tuple[str, str]:
    """(src, ref) of a resource: ``Type/`` and its id, else its file and line (or the file)."""
    if rid:
        return f"{rt}/", rid
    return tuple(where.rsplit(" ", 1)) if " line " in where else (where, "")


def _refusal(raw: bytes | dict | None, where: str) -> tuple[str, str, str] | None:
    """(src, ref, reason) of a resource the typed decoding refused; None for a Bundle or an
    OperationOutcome, which are skipped without a word."""
    try:
        res = _decode(raw) if isinstance(raw, bytes) else raw
    except (msgspec.DecodeError, UnicodeDecodeError):
        res = None
    if not isinstance(res, dict) or "resourceType" not in res:
        return (*_provenance(where), "not a FHIR resource (not JSON, or no resourceType)")
    rt, rid = str(res["resourceType"]), str(res.get("id") or "")
    src, ref = _provenance(where, rt, rid)
    if rt not in MODELS:
        return None if rt in ("Bundle", "OperationOutcome") else (src, ref, f"{rt} resources are not read")
    return (src, ref, check(res, rt) or "not a valid FHIR R4 resource")


class _Known:
    """The codes of the map, and each system identifier a source writes -> its short name (OIDs,
    http/https and other spellings): a coding is compared as the map would resolve it."""

    def __init__(self, codes: CodeMap):
        self.codes = codes
        e = codes.entries
        self.pairs = set(zip(e.loc[~e["prefix"], "system"], e.loc[~e["prefix"], "code"], strict=True))
        self.prefixes: dict[str, tuple[str, ...]] = {s: tuple(g["code"]) for s, g in e[e["prefix"]].groupby("system")}
        self.names: dict[object, str | None] = {}
        self.seen: dict[tuple, bool] = {}

    def knows(self, short: str | None, code: str) -> bool:
        """Whether the map resolves (system, code) as :meth:`CodeMap.lookup` would: exactly, by a
        prefix (``C91.0*``), or an ICD-10-CM code written without its dot."""
        key = (short, code)
        if key not in self.seen:
            c = str(code).strip()
            if short == "ICD10CM" and "." not in c and len(c) > 3:
                c = c[:3] + "." + c[3:]
            self.seen[key] = (short, c) in self.pairs or c.startswith(self.prefixes.get(short or "", ()) or ("\0",))
        return self.seen[key]

    def system(self, system: object) -> str | None:
        if system not in self.names:
            self.names[system] = self.codes.short_name(system)  # type: ignore[arg-type]
        return self.names[system]

    def coding(self, concept: CodeableConcept | None) -> tuple[str | None, str | None, str | None]:
        """(system, code, display) of the first coding the map knows, else of the first with a code;
        the system as the map names it when the map knows it, else as the source wrote it."""
        if concept is None:
            return None, None, None
        found = [(c.system, c.code, c.display) for c in concept.coding or () if c.code]
        for s, c, d in found:
            short = self.system(s)
            if self.knows(short, c):
                return short, c, d or concept.text
        if not found:
            return None, None, concept.text
        s, c, d = found[0]
        return s, c, d or concept.text


def _coding(concept: CodeableConcept | None) -> tuple[str | None, str | None]:
    """(system, code) of a CodeableConcept's first coding with a code (statuses, categories)."""
    found = [(c.system, c.code) for c in (concept.coding or () if concept else ()) if c.code]
    return found[0] if found else (None, None)


def _value(r, known: _Known) -> tuple[float, str | None, str | None, str | None, str | None, str | None]:
    """(number, text, unit, comparator, value system, value code) of an Observation's (or a
    component's) value[x]; a comparator other than <, <=, >, >= (``ad``: sufficient to achieve) is
    no qualifier; a coded value keeps its system and code (an oxygen device, say)."""
    q = r.valueQuantity
    if q is not None:
        comparator = q.comparator if q.comparator in ("<", "<=", ">", ">=") else None
        return (float(q.value) if q.value is not None else np.nan, None, q.code or q.unit, comparator, None, None)
    for v in (r.valueInteger, r.valueDecimal):
        if v is not None:
            return float(v), None, None, None, None, None
    if r.valueBoolean is not None:
        return float(r.valueBoolean), None, None, None, None, None
    if r.valueString is not None:
        return np.nan, r.valueString, None, None, None, None
    if r.valueCodeableConcept is not None:  # text: the coding's display, for import_unmapped.csv
        s, c, d = known.coding(r.valueCodeableConcept)
        return np.nan, d if d is not None else c, None, None, s, c
    return np.nan, None, None, None, None, None


#: statuses that mean the event did not happen (or was recorded in error): refused with the status
_NOT_HAPPENED = {
    "Observation": {"entered-in-error", "cancelled"},
    "Procedure": {"entered-in-error", "not-done"},
    "MedicationAdministration": {"entered-in-error", "not-done"},
    "DeviceUseStatement": {"entered-in-error", "intended"},
}


def read_fhir(
    directory: str | Path,
    identifier_system: str | None = None,
    codes: CodeMap | None = None,
) -> SourceRecords:
    """Parse and validate the resources of a directory (or one file) into :class:`SourceRecords`.

    Of a CodeableConcept's codings, the first the code map knows is used (else the first)."""
    codes = codes or CodeMap.load()
    known = _Known(codes)
    aliases: dict[str, str] = {}
    device_types: dict[str, tuple] = {}  # Device/id -> (system, code, display) of its type
    path = Path(directory)
    patients, events, refused = [], [], []
    seen: dict[tuple[str, str], int] = {}  # (type, id) -> hash of its text: a repeat is told apart cheaply
    duplicates = []
    for file, ndjson in _files(path):
        for raw, where, full_url in _resources(file, ndjson):
            # one pass decodes and validates the elements crsml reads; anything else (not JSON, a
            # type crsml does not read, an invalid element) is parsed again to say which
            try:
                res = decode(raw) if isinstance(raw, bytes) else convert(raw)
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                res = None
            if res is None:
                why = _refusal(raw, where)
                if why is not None:
                    refused.append(why)
                continue
            rt, rid = type(res).__name__, res.id or ""
            src, ref = _provenance(where, rt, rid)
            if full_url and rid:
                aliases[str(full_url)] = f"{rt}/{rid}"
            status = getattr(res, "status", None) or ""
            verification = _coding(res.verificationStatus)[1] if rt == "Condition" else None
            if status in _NOT_HAPPENED.get(rt, ()) or verification in ("refuted", "entered-in-error"):
                refused.append((src, ref, f"{rt} {verification or status}: did not happen"))
                continue
            if rid:
                # a repeat is compared on the elements crsml reads, however spaced or ordered
                text = _encode_sorted(res)
                if (rt, rid) in seen:
                    same = seen[(rt, rid)] == hash(text)
                    duplicates.append(
                        (
                            src,
                            ref,
                            "resource repeated (kept once)"
                            if same
                            else "resource id repeated with different content (the first is kept)",
                        )
                    )
                    continue
                seen[(rt, rid)] = hash(text)
            if rt == "Patient":
                patients.append(_patient(res, rid, identifier_system))
            elif rt == "Device":
                for name in (f"Device/{rid}" if rid else None, full_url):
                    if name:
                        device_types[str(name)] = known.coding(res.type)
            else:
                events.extend(_events(rt, res, src, ref, known))
    if not patients:
        raise CohortError(f"{path}: no Patient resources could be read (a FHIR export needs them)")
    P = pd.DataFrame(patients, columns=["key", "patient_id", "birth", "birth_date_only", "sex", "src", "ref"])
    guessed = {}
    birth_why = "birth date without a time (age counted from noon of that day)"
    date_why = "date without a time (read as noon UTC)"
    if P["birth_date_only"].any():
        guessed[birth_why] = int(P["birth_date_only"].sum())
    P["birth"] = pd.to_datetime(P["birth"], utc=True, format="ISO8601")
    E = pd.DataFrame(
        events,
        columns=[
            "key",
            "when",
            "end",
            "system",
            "code",
            "value",
            "text",
            "unit",
            "qualifier",
            "value_system",
            "value_code",
            "display",
            "hint",
            "src",
            "ref",
            "date_only",
        ],
    )
    used = (E["hint"].eq("devices") & E["code"].isna()).to_numpy()
    if used.any():  # a DeviceUseStatement names its Device: the device's type is the code
        ref = E.loc[used, "system"]
        device = ref.map(
            lambda r: device_types.get(r, device_types.get(aliases.get(r, r))) if isinstance(r, str) else None
        )
        typed = device.map(lambda d: isinstance(d, tuple) and d[1] is not None).to_numpy(dtype=bool)
        rows = E.index[used][typed]
        if len(rows):
            E.loc[rows, ["system", "code", "display"]] = np.array(device[typed].tolist(), dtype=object)
        lost = E.index[used][~typed]  # no Device, or one without a type: unmapped under one fixed name
        E.loc[lost, ["system", "code", "display"]] = [None, "(Device without a type)", None]
    if E["date_only"].any():
        guessed[date_why] = int(E["date_only"].sum())
    guessed_rows = pd.concat(
        [
            P.loc[P["birth_date_only"], ["src", "ref"]].assign(column="birthDate", reason=birth_why),
            E.loc[E["date_only"].astype(bool), ["src", "ref"]].assign(column="date", reason=date_why),
        ],
        ignore_index=True,
    )
    for col in ("when", "end"):
        E[col] = pd.to_datetime(E[col], utc=True, format="ISO8601")
    E = E.drop(columns="date_only")
    if aliases:  # Bundle entries refer to each other by fullUrl (urn:uuid:...)
        E["key"] = E["key"].map(lambda k: aliases.get(k, k))
    dups = pd.DataFrame(duplicates, columns=["src", "ref", "reason"])
    return SourceRecords(
        "fhir",
        P.drop(columns="birth_date_only"),
        E,
        refused=pd.DataFrame(refused, columns=["src", "ref", "reason"]).astype("string"),
        guessed=guessed,
        guessed_rows=guessed_rows if len(guessed_rows) else None,
        extra_read=len(refused) + len(duplicates),
        repeated=dups,
    )


def _time(value: str | None) -> tuple[str | None, bool]:
    if not value:
        return None, False
    if "T" not in value:
        return value + ("T12:00:00+00:00" if len(value) == 10 else ""), True
    return value, False


def _patient(r: Patient, rid: str, identifier_system: str | None) -> tuple:
    ident = None
    for i in r.identifier or ():
        if i.value and (identifier_system is None or i.system == identifier_system):
            ident = i.value
            break
    birth = r.birthDate
    ext = (r.birthDate_extensions.extension if r.birthDate_extensions else None) or ()
    exact = next((e.valueDateTime for e in ext if e.url == BIRTH_TIME), None)
    when, date_only = (exact, False) if exact else _time(birth)
    return (f"Patient/{rid}", ident or rid, when, bool(date_only and birth), r.gender, "Patient/", rid)


def _subject(r) -> str | None:
    """``Patient/id`` of the subject, from a relative, absolute or versioned reference; a Bundle's
    ``urn:uuid:`` reference is kept and resolved through the entries' fullUrl."""
    ref = r.subject.reference if r.subject is not None else None
    if not ref:
        return None
    if ref.startswith("urn:"):
        return ref
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def _events(rt: str, r, src: str, ref: str, known: _Known) -> list[tuple]:
    """The events of one resource; an Observation's components (a blood-pressure panel's systolic
    and diastolic) are events of their own, with the Observation's time and provenance. A
    DeviceUseStatement's code is its Device's type, filled in once every Device is read (until
    then its system holds the device reference)."""
    key = _subject(r)
    parts = []
    hint = _HINTS.get(rt)
    none = (None, None)
    if rt == "Observation":
        category = next((c for cat in r.category or () for c in [_coding(cat)[1]] if c), None)
        hint = _CATEGORY_HINTS.get(str(category), "analytes")
        period = r.effectivePeriod
        when = r.effectiveDateTime or (period.start if period else None) or r.effectiveInstant
        end = period.end if period else None
        components = r.component or ()
        if not components or r.values():
            s, c, d = known.coding(r.code)
            parts.append((s, c, *_value(r, known), d))
        for comp in components:
            s, c, d = known.coding(comp.code)
            parts.append((s, c, *_value(comp, known), d))
    elif rt == "MedicationAdministration":
        period = r.effectivePeriod
        when = r.effectiveDateTime or (period.start if period else None)
        end = period.end if period else None
        dose = r.dosage.dose if r.dosage is not None else None
        value = float(dose.value) if dose is not None and dose.value is not None else np.nan
        s, c, d = known.coding(r.medicationCodeableConcept)
        parts.append((s, c, value, None, (dose.unit or dose.code) if dose else None, None, *none, d))
    elif rt == "Procedure":
        when = r.performedDateTime or (r.performedPeriod.start if r.performedPeriod else None)
        end = None
        s, c, d = known.coding(r.code)
        parts.append((s, c, np.nan, None, None, None, *none, d))
    elif rt == "DeviceUseStatement":
        period = r.timingPeriod
        when = r.timingDateTime or (period.start if period else None) or r.recordedOn
        end = period.end if period else None
        device = r.device.reference or ""
        device = device if device.startswith("urn:") else "/".join(device.split("/_history/")[0].split("/")[-2:])
        parts.append((device or None, None, np.nan, None, None, None, *none, None))
    else:  # Condition
        when = r.onsetDateTime or (r.onsetPeriod.start if r.onsetPeriod else None) or r.recordedDate
        end = r.abatementDateTime or (r.abatementPeriod.start if r.abatementPeriod else None)
        s, c, d = known.coding(r.code)
        parts.append((s, c, np.nan, None, None, None, *none, d))
    when, date_only = _time(when)
    end, _ = _time(end)
    return [
        (key, when, end, system, code, value, text, unit, comparator, vs, vc, display, hint, src, ref, date_only)
        for system, code, value, text, unit, comparator, vs, vc, display in parts
    ]


def import_fhir(
    directory: str | Path,
    codes: CodeMap | None = None,
    days: float = DEFAULT_DAYS,
    identifier_system: str | None = None,
    require_grades: bool = False,
) -> tuple[Cohort, object]:
    """Import FHIR R4 resources (a directory of NDJSON or Bundles) as a validated cohort.

    The patient identifier is ``Patient.identifier`` (the first, or the one of
    ``identifier_system``), else the resource id; time zero is each patient's first CAR-T
    Procedure or MedicationAdministration.

    Returns
    -------
    (Cohort, ImportReport)
    """
    codes = codes or CodeMap.load()
    records = read_fhir(directory, identifier_system, codes)
    return assemble(
        records,
        codes,
        days,
        meta={"source": "fhir", "created_by": "crsml import-fhir", "adapter": "fhir"},
        require_grades=require_grades,
    )


# ----------------------------------------------------------------------------------------- export


def _iso(ts: pd.Series) -> list[str]:
    return [t.isoformat() for t in ts]


def fhir_resources(
    cohort: Cohort, codes: CodeMap | None = None, start: str = "2024-01-01 08:00"
) -> dict[str, list[dict]]:
    """The cohort as FHIR R4 resources (dicts) by type, coded with the map's first code of each
    target (LOINC, RxNorm, CPT, ICD-10-CM; crsml's own codes where no standard one exists)."""
    codes = codes or CodeMap.load()
    p = cohort.patients.reset_index(drop=True)
    n = len(p)
    t0 = pd.Series(pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="D"))
    key = {pid: i for i, pid in enumerate(p["patient_id"].astype(str))}
    out: dict[str, list[dict]] = {r: [] for r in RESOURCES}
    counter = {"n": 0}

    def coding(section: str, target: str) -> dict:
        s, c = codes.first_code(section, target)
        return {"coding": [{"system": codes.uri(s), "code": c, "display": target}]}

    def ref(i: int) -> dict:
        return {"reference": f"Patient/p{i}"}

    def new_id(prefix: str) -> str:
        counter["n"] += 1
        return f"{prefix}{counter['n']}"

    def times(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        idx = frame["patient_id"].astype(str).map(key).to_numpy()
        ts = t0.iloc[idx].reset_index(drop=True) + pd.to_timedelta(frame["time_h"].to_numpy(dtype=float), unit="h")
        return idx, _iso(ts.dt.round("us"))

    def observation(i: int, when: str, code: dict, category: str, **value) -> dict:
        return {
            "resourceType": "Observation",
            "id": new_id("o"),
            "status": "final",
            "category": [{"coding": [{"system": _CATEGORY, "code": category}]}],
            "code": code,
            "subject": ref(i),
            "effectiveDateTime": when,
            **value,
        }

    def quantity(v: float, unit: str, comparator=None) -> dict:
        q = {"value": float(v), "unit": unit, "system": codes.uri("UCUM"), "code": codes.ucum_code(unit)}
        if isinstance(comparator, str) and comparator:
            q["comparator"] = comparator
        return {"valueQuantity": q}

    age = pd.to_numeric(p["age_years"], errors="coerce") if "age_years" in p else pd.Series(np.nan, index=p.index)
    for i in range(n):
        pat = {
            "resourceType": "Patient",
            "id": f"p{i}",
            "identifier": [{"system": IDENTIFIER_SYSTEM, "value": str(p["patient_id"].iat[i])}],
        }
        if isinstance(p["sex"].iat[i], str):
            pat["gender"] = p["sex"].iat[i]
        if pd.notna(age.iat[i]):
            birth = (t0.iat[i] - pd.to_timedelta(float(age.iat[i]) * 365.25, unit="D")).round("s")
            pat["birthDate"] = birth.date().isoformat()
            pat["_birthDate"] = {"extension": [{"url": BIRTH_TIME, "valueDateTime": birth.isoformat()}]}
        out["Patient"].append(pat)
        out["Procedure"].append(
            {
                "resourceType": "Procedure",
                "id": new_id("pr"),
                "status": "completed",
                "code": coding("products", "cart_unspecified"),
                "subject": ref(i),
                "performedDateTime": t0.iat[i].isoformat(),
            }
        )
    patient_cols = [
        c
        for c in p.columns
        if c not in ("patient_id", "age_years", "sex")
        and c in set(codes.entries.loc[codes.entries["section"] == "patients", "target"])
    ]
    for col in patient_cols:
        for i, v in enumerate(p[col]):
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                continue
            if col == "weight_kg":
                val = quantity(v, "kg")
            elif isinstance(v, (bool, np.bool_)):
                val = {"valueBoolean": bool(v)}
            elif isinstance(v, str):
                val = {"valueString": v}
            else:
                val = {"valueQuantity": {"value": float(v)}}
            out["Observation"].append(observation(i, t0.iat[i].isoformat(), coding("patients", col), "exam", **val))
    m = cohort.measurements.reset_index(drop=True)
    idx, whens = times(m)
    qual = m["qualifier"].astype("string").fillna("") if "qualifier" in m else pd.Series("", index=m.index)
    for i, when, a, v, q in zip(idx, whens, m["analyte"], m["value"], qual, strict=True):
        out["Observation"].append(
            observation(int(i), when, coding("analytes", a), "laboratory", **quantity(v, CANONICAL_UNITS[a], q))
        )
    v = cohort.vitals.reset_index(drop=True)
    if len(v):
        idx, whens = times(v)
        for col, unit in (("temp_c", "Cel"), ("o2_flow_lpm", "L/min")):
            for i, when, x in zip(idx, whens, v[col], strict=True):
                if pd.notna(x):
                    out["Observation"].append(
                        observation(int(i), when, coding("vitals", col), "vital-signs", **quantity(x, unit))
                    )
        for i, when, low, dev, npress, vaso in zip(
            idx,
            whens,
            v["hypotension"].fillna(False),
            v["o2_device"].fillna("none"),
            v["vasopressors"].fillna(0),
            v["vasopressin"].fillna(False),
            strict=True,
        ):
            if low:
                out["Observation"].append(
                    observation(int(i), when, coding("vitals", "hypotension"), "vital-signs", valueBoolean=True)
                )
            if dev != "none":
                out["Observation"].append(
                    observation(int(i), when, coding("devices", dev), "vital-signs", valueBoolean=True)
                )
            drugs = [
                d
                for k, d in enumerate(("norepinephrine", "epinephrine", "phenylephrine", "dopamine"))
                if k < int(npress)
            ]
            for d in drugs + (["vasopressin"] if vaso else []):
                out["MedicationAdministration"].append(
                    {
                        "resourceType": "MedicationAdministration",
                        "id": new_id("ma"),
                        "status": "completed",
                        "medicationCodeableConcept": coding("vasopressors", d),
                        "subject": ref(int(i)),
                        "effectiveDateTime": when,
                    }
                )
    tx = cohort.treatments.reset_index(drop=True)
    if len(tx):
        idx, whens = times(tx)
        units = tx["dose_unit"] if "dose_unit" in tx else pd.Series(None, index=tx.index)
        for i, when, d, dose, unit in zip(idx, whens, tx["drug"], tx["dose"], units, strict=True):
            ma = {
                "resourceType": "MedicationAdministration",
                "id": new_id("ma"),
                "status": "completed",
                "medicationCodeableConcept": coding("drugs", d),
                "subject": ref(int(i)),
                "effectiveDateTime": when,
            }
            if pd.notna(dose):
                ma["dosage"] = {
                    "dose": {"value": float(dose), **({"unit": str(unit)} if isinstance(unit, str) else {})}
                }
            out["MedicationAdministration"].append(ma)
    crs = cohort.crs.reset_index(drop=True)
    if len(crs):
        idx, whens = times(crs)
        for i, when, g in zip(idx, whens, crs["grade"], strict=True):
            out["Observation"].append(observation(int(i), when, coding("crs", "grade"), "survey", valueInteger=int(g)))
    if len(cohort.crs) or len(cohort.vitals):
        ep = crs_episodes(cohort.crs_grades())
        ep = ep[ep["max_grade"] >= 1].reset_index()
        cond = codes.entries[codes.entries["section"] == "conditions"]
        by_grade = {int(g): (s, c) for s, c, g in zip(cond["system"], cond["code"], cond["grade"], strict=True)}
        for r in ep.itertuples():
            i = key[str(r.patient_id)]
            s, c = by_grade[int(r.max_grade)]
            res = {
                "resourceType": "Condition",
                "id": new_id("c"),
                "subject": ref(i),
                "code": {"coding": [{"system": codes.uri(s), "code": c}]},
                "onsetDateTime": (t0.iat[i] + pd.Timedelta(hours=float(r.onset_h))).isoformat(),
            }
            if pd.notna(r.resolution_h):
                res["abatementDateTime"] = (t0.iat[i] + pd.Timedelta(hours=float(r.resolution_h))).isoformat()
            out["Condition"].append(res)
    return out


def export_fhir(cohort: Cohort, directory: str | Path, codes: CodeMap | None = None) -> dict[str, int]:
    """Write a cohort as FHIR R4 bulk-export NDJSON (one file per resource type); returns the counts."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = {}
    for rt, items in fhir_resources(cohort, codes).items():
        with atomic_file(d / f"{rt}.ndjson") as tmp, tmp.open("w", encoding="utf-8") as f:
            for item in items:
                f.write(json.dumps(item, separators=(",", ":")) + "\n")
        written[rt] = len(items)
    return written
