"""Long EHR exports: one row per result, vital sign or drug administration, with a timestamp, a code
(LOINC, RxNorm or a local code) and a unit, and a patients table with the infusion datetime.

The export is a directory holding (CSV or Parquet, by name)::

    patients      patient_id, infusion_datetime, [birth_date | age_years], sex, other patient columns
    results       patient_id, datetime, code, value, unit, [qualifier], [code_system], [display]
    vitals        the same columns as results (temperature, blood pressure, oxygen ...)
    administrations  patient_id, datetime, code, [dose], [unit], [end_datetime], [code_system]

Column names can be renamed in the centre's code map (``[columns] patient_id = "MRN"``).
Timestamps may carry a time zone (``2024-03-05T08:00:00+01:00``) or not; naive ones need
``--timezone``, and a local time that is ambiguous or does not exist at a daylight-saving change is
read as the first (summer) one or moved forward, and counted as guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.adapters._importer import DEFAULT_DAYS, SourceRecords, assemble, check_zone
from crsml.adapters._vocabulary import CodeMap
from crsml.cohort import Cohort, check_csv, find_table_file, read_table, unreadable
from crsml.errors import CohortError

FILES = ("patients", "results", "vitals", "administrations")
DEFAULT_COLUMNS = {
    "patient_id": "patient_id",
    "infusion_datetime": "infusion_datetime",
    "birth_date": "birth_date",
    "age_years": "age_years",
    "sex": "sex",
    "datetime": "datetime",
    "end_datetime": "end_datetime",
    "code": "code",
    "code_system": "code_system",
    "value": "value",
    "unit": "unit",
    "qualifier": "qualifier",
    "dose": "dose",
    "display": "display",
}
#: where an unmapped code of each file most likely belongs
_HINTS = {"results": "analytes", "vitals": "vitals", "administrations": "drugs"}
_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_QUALIFIED = re.compile(r"^\s*(<=|>=|<|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")


def _read(directory: Path, name: str) -> tuple[pd.DataFrame, Path] | None:
    path = find_table_file(directory, name)
    if path is None:
        return None
    if path.suffix != ".parquet":
        check_csv(path, name)
        try:
            return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""]), path
        except (ValueError, OSError, EOFError) as exc:
            raise unreadable(path, name, exc) from None
    return read_table(path, name), path


def _times(raw: pd.Series, timezone: str | None, file: str, column: str, guessed: list) -> pd.Series:
    """UTC timestamps from text; NaT where unreadable. Naive local times need ``timezone``; each row
    whose local time had to be guessed is appended to ``guessed`` (file, data row, column, why)."""
    where = f"{file} column {column}"
    codes, uniques = pd.factorize(raw.astype("string").str.strip(), use_na_sentinel=True)
    text = pd.Series(uniques, dtype="string")
    zoned = text.str.contains(_ZONE, na=False).to_numpy()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if zoned.any():
        out[zoned] = pd.to_datetime(text[zoned], utc=True, errors="coerce", format="ISO8601")
    naive = ~zoned & text.notna().to_numpy()
    local = pd.Series(pd.to_datetime(text[naive], errors="coerce", format="ISO8601"))
    naive[np.flatnonzero(naive)[local.isna().to_numpy()]] = False  # unreadable: refused row by row later
    local = local.dropna()
    if naive.any():
        if timezone is None:
            raise CohortError(
                f"{where}: {int(naive.sum())} distinct timestamps carry no time zone; pass --timezone "
                "(the zone the EHR wrote them in, e.g. Europe/Berlin)"
            )
        try:
            strict = local.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        except Exception:  # noqa: BLE001 - pytz/zoneinfo raise different types for an unknown zone
            raise CohortError(f"--timezone {timezone!r}: not a time zone (use a name such as Europe/Berlin)") from None
        resolved = local.dt.tz_localize(
            timezone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
        )
        shifted = strict.isna() & resolved.notna()
        if shifted.any():
            rows = np.flatnonzero(np.isin(codes, np.flatnonzero(naive)[shifted.to_numpy()]))
            guessed.append(
                pd.DataFrame(
                    {
                        "src": file,
                        "ref": (rows + 1).astype(str),
                        "column": column,
                        "reason": "local time ambiguous or skipped at a daylight-saving change "
                        "(read as summer time, or moved forward)",
                    }
                )
            )
        out[naive] = resolved.dt.tz_convert("UTC").to_numpy()
    return pd.Series(
        np.append(out.to_numpy(), np.datetime64("NaT"))[codes], index=raw.index, dtype="datetime64[ns, UTC]"
    )


def _values(raw: pd.Series) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """(number, qualifier, not-a-number flag) of each value text; ``<1.5`` is 1.5 with ``<``."""
    if pd.api.types.is_numeric_dtype(raw):
        v = raw.to_numpy(dtype=float)
        return v, pd.Series(pd.NA, index=raw.index, dtype="string"), np.zeros(len(raw), dtype=bool)
    codes, uniques = pd.factorize(raw.astype("string").str.strip(), use_na_sentinel=True)
    text = pd.Series(uniques, dtype="string")
    num = pd.to_numeric(text, errors="coerce")
    parts = text.str.extract(_QUALIFIED)
    num = num.fillna(pd.to_numeric(parts[1], errors="coerce"))
    qual = parts[0].astype("string")
    bad = num.isna().to_numpy() & text.notna().to_numpy()
    ext = lambda a, fill: np.append(np.asarray(a, dtype=object if fill is None else float), fill)[codes]  # noqa: E731
    return (
        ext(num.to_numpy(dtype=float), np.nan),
        pd.Series(ext(qual.to_numpy(dtype=object), None), index=raw.index, dtype="string"),
        np.append(bad, False)[codes],
    )


def read_long(
    directory: str | Path, codes: CodeMap | None = None, timezone: str | None = None, code_system: str | None = None
) -> SourceRecords:
    """Read a long export directory into :class:`SourceRecords`."""
    codes = codes or CodeMap.load()
    if timezone is not None:
        check_zone(timezone)
    d = Path(directory)
    if not d.is_dir():
        raise CohortError(f"long export directory not found: {d}")
    col = {**DEFAULT_COLUMNS, **codes.columns}
    guessed: list[pd.DataFrame] = []
    got = _read(d, "patients")
    if got is None:
        raise CohortError(
            f"{d}: no patients file (patients.csv or patients.parquet with {col['patient_id']} and "
            f"{col['infusion_datetime']})"
        )
    pt, ppath = got
    for need in ("patient_id", "infusion_datetime"):
        if col[need] not in pt:
            raise CohortError(f"table patients: {ppath.name} has no column {col[need]}")
    patients = pd.DataFrame(
        {
            "key": pt[col["patient_id"]].astype("string").str.strip(),
            "patient_id": pt[col["patient_id"]].astype("string").str.strip(),
            "infusion": _times(pt[col["infusion_datetime"]], timezone, ppath.name, col["infusion_datetime"], guessed),
            "src": ppath.name,
            "ref": pd.Series(np.arange(len(pt)) + 1).astype("string"),
        }
    )
    if col["birth_date"] in pt:
        b = pt[col["birth_date"]].astype("string")
        patients["birth"] = pd.to_datetime(
            b.where(b.str.len() != 10, b + "T12:00:00"), errors="coerce", format="ISO8601"
        )
        patients["birth"] = (
            patients["birth"].dt.tz_localize(timezone or "UTC")
            if patients["birth"].dt.tz is None
            else patients["birth"]
        )
    if col["age_years"] in pt:
        patients["age_years"] = pd.to_numeric(pt[col["age_years"]], errors="coerce")
    if col["sex"] in pt:
        patients["sex"] = pt[col["sex"]].astype("string").str.strip().str.lower()
    used = {col[k] for k in ("patient_id", "infusion_datetime", "birth_date", "age_years", "sex")}
    for c in pt.columns:
        if c not in used:
            patients[c] = pt[c].to_numpy()

    frames, refused = [], []
    for name in FILES[1:]:
        got = _read(d, name)
        if got is None:
            continue
        df, path = got
        need = ["patient_id", "datetime", "code"] + (["unit"] if name != "administrations" else [])
        missing = [col[k] for k in need if col[k] not in df]
        if missing:
            raise CohortError(f"table {name}: {path.name} has no column {', '.join(missing)}")
        value_col = col["dose"] if name == "administrations" and col["dose"] in df else col["value"]
        value, qual, bad = (
            _values(df[value_col])
            if value_col in df
            else (
                np.full(len(df), np.nan),
                pd.Series(pd.NA, index=df.index, dtype="string"),
                np.zeros(len(df), dtype=bool),
            )
        )
        if col["qualifier"] in df:
            qual = df[col["qualifier"]].astype("string").str.strip().fillna(qual)
        ev = pd.DataFrame(
            {
                "key": df[col["patient_id"]].astype("string").str.strip(),
                "when": _times(df[col["datetime"]], timezone, path.name, col["datetime"], guessed),
                "end": (
                    _times(df[col["end_datetime"]], timezone, path.name, col["end_datetime"], guessed)
                    if col["end_datetime"] in df
                    else pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
                ),
                "system": (
                    df[col["code_system"]].astype("string")
                    if col["code_system"] in df
                    else pd.Series(code_system, index=df.index, dtype="string")
                ),
                "code": df[col["code"]].astype("string").str.strip(),
                "value": value,
                "qualifier": qual,
                "unit": df[col["unit"]].astype("string").str.strip() if col["unit"] in df else pd.NA,
                "src": path.name,
                "ref": pd.Series(np.arange(len(df)) + 1, index=df.index).astype(
                    "string"
                ),  # data row, as validation counts
                "display": df[col["display"]].astype("string") if col["display"] in df else pd.NA,
                "hint": _HINTS[name],
            }
        )
        ev["text"] = df[value_col].astype("string").where(pd.Series(bad, index=df.index)) if value_col in df else pd.NA
        unreadable_time = ev["when"].isna().to_numpy() & df[col["datetime"]].notna().to_numpy()
        why = pd.Series("", index=ev.index, dtype="string")
        why[unreadable_time] = "date or time not readable"
        refuse = (why != "").to_numpy()
        refused.append(
            pd.DataFrame(
                {
                    "src": ev.loc[refuse, "src"].astype("string"),
                    "ref": ev.loc[refuse, "ref"].astype("string"),
                    "column": ev.loc[refuse, "code"].astype("string"),
                    "reason": why[refuse],
                }
            )
        )
        frames.append(ev.loc[~refuse])
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["key", "when"])
    for c in ("system", "code", "unit", "qualifier", "src", "display", "hint"):
        if c in events:
            events[c] = events[c].astype("category")
    return SourceRecords(
        "long",
        patients,
        events,
        refused=pd.concat(refused, ignore_index=True) if refused else pd.DataFrame(columns=["src", "ref", "reason"]),
        guessed=dict(Counter(r for g in guessed for r in g["reason"])),
        guessed_rows=pd.concat(guessed, ignore_index=True) if guessed else None,
        extra_read=int(sum(len(r) for r in refused)),
    )


def import_long(
    directory: str | Path,
    codes: CodeMap | None = None,
    timezone: str | None = None,
    days: float = DEFAULT_DAYS,
    code_system: str | None = None,
    require_grades: bool = False,
) -> tuple[Cohort, object]:
    """Import a long EHR export directory as a validated cohort.

    Parameters
    ----------
    directory : the export (``patients``, ``results``, ``vitals``, ``administrations`` files).
    codes : the code map: the default LOINC/RxNorm map with the centre's local codes laid over it.
    timezone : the zone of timestamps written without one (``Europe/Berlin``, say).
    days : days after the infusion to import.
    code_system : the system of codes in files without a ``code_system`` column (default: any system
        in the map, the centre's own codes first).
    require_grades : refuse the import when any patient's CRS grades would be derived from its
        vitals (no recorded grade or CRS condition mapped).

    Returns
    -------
    (Cohort, ImportReport)
    """
    codes = codes or CodeMap.load()
    records = read_long(directory, codes, timezone, code_system)
    return assemble(
        records,
        codes,
        days,
        meta={"source": Path(directory).name, "created_by": "crsml import-long", "adapter": "long"},
        require_grades=require_grades,
    )


def export_long(
    cohort: Cohort, directory: str | Path, codes: CodeMap | None = None, start: str = "2024-01-01 08:00"
) -> dict[str, int]:
    """Write a cohort as a long EHR export (the layout :func:`import_long` reads), coded with the
    map's first code of each target; each infusion at ``start`` plus one day per patient."""
    from crsml.cohort import CANONICAL_UNITS, atomic_file

    codes = codes or CodeMap.load()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    p = cohort.patients.reset_index(drop=True)
    t0 = pd.Series(pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(len(p)), unit="D"))
    key = {pid: i for i, pid in enumerate(p["patient_id"].astype(str))}
    age = pd.to_numeric(p["age_years"], errors="coerce")
    patients = p.drop(columns=["age_years"]).assign(
        infusion_datetime=t0.map(pd.Timestamp.isoformat).to_numpy(),
        birth_date=(t0 - pd.to_timedelta(age.to_numpy() * 365.25, unit="D"))
        .dt.round("s")
        .map(lambda t: t.isoformat() if pd.notna(t) else None)
        .to_numpy(),
    )

    def rows(frame: pd.DataFrame, section: str, target, value, unit, qualifier=None) -> pd.DataFrame:
        idx = frame["patient_id"].astype(str).map(key).to_numpy()
        when = t0.iloc[idx].reset_index(drop=True) + pd.to_timedelta(frame["time_h"].to_numpy(dtype=float), unit="h")
        targets = (
            pd.Series(target, index=frame.index) if isinstance(target, str) else pd.Series(target, index=frame.index)
        )
        coded = targets.map(lambda t: codes.first_code(section, t))
        return pd.DataFrame(
            {
                "patient_id": frame["patient_id"].to_numpy(),
                "datetime": when.dt.round("us").map(pd.Timestamp.isoformat).to_numpy(),
                "code_system": [c[0] for c in coded],
                "code": [c[1] for c in coded],
                "value": np.asarray(value, dtype=object),
                "unit": np.asarray(unit, dtype=object),
                "qualifier": qualifier if qualifier is not None else None,
            }
        )

    m = cohort.measurements.reset_index(drop=True)
    results = [
        rows(
            m,
            "analytes",
            m["analyte"],
            m["value"],
            m["analyte"].map(CANONICAL_UNITS),
            m["qualifier"].to_numpy() if "qualifier" in m else None,
        )
    ]
    crs = cohort.crs.reset_index(drop=True)
    if len(crs):
        results.append(rows(crs, "crs", "grade", crs["grade"], None))
    v = cohort.vitals.reset_index(drop=True)
    vitals, admin = [], []
    if len(v):
        for col, unit in (("temp_c", "Cel"), ("o2_flow_lpm", "L/min")):
            ok = v[col].notna()
            vitals.append(rows(v[ok], "vitals", col, v.loc[ok, col], unit))
        low = v["hypotension"].fillna(False).astype(bool)
        vitals.append(rows(v[low], "vitals", "hypotension", 1, None))
        dev = v["o2_device"].astype("string").fillna("none")
        on = dev != "none"
        vitals.append(rows(v[on], "devices", dev[on].astype(str), 1, None))
        n = v["vasopressors"].fillna(0).astype(int)
        for k, drug in enumerate(("norepinephrine", "epinephrine", "phenylephrine", "dopamine")):
            admin.append(rows(v[n > k], "vasopressors", drug, None, None))
        vaso = v["vasopressin"].fillna(False).astype(bool)
        admin.append(rows(v[vaso], "vasopressors", "vasopressin", None, None))
    tx = cohort.treatments.reset_index(drop=True)
    if len(tx):
        admin.append(rows(tx, "drugs", tx["drug"].astype(str), tx["dose"], tx.get("dose_unit")))
    written = {}
    for name, frame in (
        ("patients", patients),
        ("results", pd.concat(results, ignore_index=True)),
        ("vitals", pd.concat(vitals, ignore_index=True) if vitals else None),
        ("administrations", pd.concat(admin, ignore_index=True).rename(columns={"value": "dose"}) if admin else None),
    ):
        if frame is None:
            continue
        with atomic_file(d / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        written[name] = len(frame)
    return written
