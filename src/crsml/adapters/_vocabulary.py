"""The code map shared by every importer and exporter: which code of which system stands for which
canonical analyte, vital sign, device, drug, CAR-T product, CRS grade or patient column.

The default (``crsml/data/vocabulary.toml``) holds LOINC, RxNorm, HCPCS, ICD-10-CM and SNOMED
codes; a centre's map (TOML with the same sections, or CSV ``section,target,code``) is laid over
it and wins where both name a code. Lookups are one merge over the distinct (system, code) pairs,
so millions of rows cost one hash join.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.cohort import CANONICAL_UNITS, DIAGNOSES, DRUGS, GRADES, O2_DEVICES, TABLES
from crsml.errors import CohortError

DEFAULT_VOCABULARY = "vocabulary.toml"
#: vital-sign targets an importer understands (hypotension: a recorded finding, no value needed;
#: o2_device: an observation whose value is a device code)
VITAL_TARGETS = ("temp_c", "sbp_mmhg", "map_mmhg", "o2_flow_lpm", "hypotension", "o2_device")
VASOPRESSORS = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin")
#: sections of a code map and the targets each accepts (None: any column name)
SECTIONS: dict[str, tuple[str, ...] | None] = {
    "analytes": tuple(CANONICAL_UNITS),
    "vitals": VITAL_TARGETS,
    "devices": O2_DEVICES,  # none: a record of room air, which ends a device
    "drugs": DRUGS,
    "vasopressors": VASOPRESSORS,
    "products": None,
    "crs": ("grade",),
    "conditions": None,
    "diagnoses": DIAGNOSES,
    "patients": None,
}
_COLUMNS = ["system", "code", "section", "target", "grade", "costim", "prefix", "order"]
#: words of a code's display text that say which section an unmapped code most likely belongs to,
#: checked in this order (a vasopressor before any drug, a device before any observation)
SECTION_WORDS: dict[str, tuple[str, ...]] = {
    "vasopressors": (
        "norepinephrine",
        "noradrenaline",
        "epinephrine",
        "adrenaline",
        "phenylephrine",
        "dopamine",
        "vasopressin",
        "levophed",
    ),
    "devices": (
        "oxygen",
        "cannula",
        "mask",
        "cpap",
        "bipap",
        "ventilat",
        "airway pressure",
        "rebreath",
        "venturi",
        "high flow",
        "high-flow",
        "blow-by",
        "blow by",
    ),
    "crs": ("crs grade", "cytokine release syndrome grade", "astct"),
    "conditions": ("cytokine release",),
    "diagnoses": ("leukemia", "leukaemia", "lymphoma", "myeloma"),
    "products": ("cabtagene", "leucel", "car-t", "car t", "chimeric antigen"),
    "vitals": ("temperature", "blood pressure", "systolic", "diastolic", "hypotension", "oxygen flow"),
}


def system_key(name: object) -> str | None:
    """A code system's identifier as compared: case, http/https, a trailing slash and a bare OID's
    missing ``urn:oid:`` make no difference (``HTTPS://LOINC.org/`` is ``http://loinc.org``)."""
    if name is None or (not isinstance(name, str) and pd.isna(name)):
        return None
    text = str(name).strip().lower().rstrip("/")
    if not text:
        return None
    if text.startswith("https://"):
        text = "http://" + text[len("https://") :]
    if text[:1].isdigit() and text.replace(".", "").isdigit() and "." in text:
        text = "urn:oid:" + text
    return text


def likely_section(hint: pd.Series, display: pd.Series) -> pd.Series:
    """The section an unmapped code most likely belongs to: a word of its display text
    (:data:`SECTION_WORDS`), else where the source kept it (``hint``: the OMOP table, the FHIR
    resource or category, the long export's file)."""
    text = display.astype("string").fillna("").str.lower()
    out = hint.astype("string").copy()
    decided = pd.Series(False, index=hint.index)
    for section, words in SECTION_WORDS.items():
        hit = text.str.contains("|".join(words), regex=True) & ~decided
        if section == "devices":  # an oxygen saturation or flow is a vital sign, not a device
            hit &= ~text.str.contains("saturation|flow rate", regex=True)
        out[hit] = section
        decided |= hit
    return out


@dataclass(frozen=True)
class CodeMap:
    """Codes and what they stand for.

    Attributes
    ----------
    entries : one row per (system, code): ``section``, ``target``, ``grade`` (conditions) and
        ``costim`` (products); a centre's entries come first and win.
    systems : short system name (OMOP ``vocabulary_id``) -> FHIR system URI.
    ucum : canonical unit -> the UCUM code it is written with.
    digest : SHA-256 of the map files read (default, then the centre's), for ``cohort.json``.
    source : where the centre's map came from (``None``: the default alone).
    columns : the long export's column names where the centre's differ (``[columns]``).
    aliases : every identifier a system is written with, as :func:`system_key` compares it (the
        short name, THO URI, OID and ``[system_aliases]``) -> the short name.
    source_value_system : OMOP: the system a row's ``*_source_value`` is read under when neither
        of its concepts is in the map (``[omop] source_value_system``).
    """

    entries: pd.DataFrame
    systems: dict[str, str]
    ucum: dict[str, str]
    digest: str
    source: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    source_value_system: str | None = None

    @classmethod
    def load(cls, path: str | Path | list[str | Path] | tuple | None = None) -> CodeMap:
        """The default map, with a centre's TOML or CSV maps (``path``, one or several) laid over
        it; of several, a later one wins (the centre's map, then the filled ``import_unmapped.csv``).

        A file crsml cannot read, an unknown section or target, or a code given twice in one
        file is refused in one line naming the file and the entry.
        """
        paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
        text = resources.files("crsml.data").joinpath(DEFAULT_VOCABULARY).read_text()
        default = tomllib.loads(text)
        systems = dict(default["systems"])
        ucum = dict(default["ucum"])
        aliases = {k: list(v) for k, v in default["system_aliases"].items()}
        omop = dict(default.get("omop", {}))
        digest = hashlib.sha256(text.encode())
        frames = []
        columns: dict[str, str] = {}
        for p in map(Path, paths):
            if not p.is_file():
                raise CohortError(f"code map not found: {p}")
            raw = p.read_bytes()
            digest.update(raw)
            if p.suffix.lower() == ".csv":
                frames.insert(0, _csv_entries(p))
            else:
                try:
                    user = tomllib.loads(raw.decode("utf-8"))
                except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                    raise CohortError(f"code map {p.name}: not valid TOML ({exc})") from None
                systems.update({str(k): str(v) for k, v in user.pop("systems", {}).items()})
                for k, v in user.pop("system_aliases", {}).items():
                    aliases.setdefault(str(k), []).extend([v] if isinstance(v, str) else list(v))
                omop.update(user.pop("omop", {}))
                user.pop("ucum", None)
                columns.update({str(k): str(v) for k, v in user.pop("columns", {}).items()})
                frames.insert(0, _toml_entries(user, p.name))
        frames.append(_toml_entries({k: v for k, v in default.items() if k not in _NOT_SECTIONS}, "the default map"))
        entries = pd.concat(frames, ignore_index=True)
        spelled = {system_key(k): k for k in systems} | {system_key(v): k for k, v in systems.items()}
        for short, names in aliases.items():
            spelled.update({system_key(n): short for n in names})
        # LOCAL is local, an OID is its system; a system no table names is compared as system_key spells it
        entries["system"] = [spelled.get(system_key(x), system_key(x)) for x in entries["system"]]
        entries["order"] = range(len(entries))
        entries = entries.drop_duplicates(["system", "code"], keep="first").reset_index(drop=True)
        sv = omop.get("source_value_system")
        return cls(
            entries,
            systems,
            ucum,
            digest.hexdigest(),
            ", ".join(Path(p).name for p in paths) or None,
            columns,
            spelled,
            spelled.get(system_key(sv), system_key(sv)) if sv else None,
        )

    def normalise_system_names(self, names: pd.Index | list) -> list[str | None]:
        """Short system names for the identifiers sources write (URI, OID, vocabulary id, in any of
        the spellings :func:`system_key` ignores); an unknown system as :func:`system_key` spells it."""
        out = []
        for n in names:
            key = system_key(n)
            out.append(None if key is None else self.aliases.get(key, key))
        return out

    def lookup(self, systems: pd.Series, codes: pd.Series) -> pd.DataFrame:
        """``section``, ``target``, ``grade`` and ``costim`` of each (system, code) row; missing where
        unmapped. A row without a system matches its code in any system (the centre's map first).

        The work is done once per distinct (system, code) pair, so ten million rows of a few
        hundred codes cost two factorisations and one gather."""
        s_codes, s_uniques = pd.factorize(systems, use_na_sentinel=True)
        c_codes, c_uniques = pd.factorize(codes, use_na_sentinel=True)
        pair = (s_codes.astype(np.int64) + 1) * (len(c_uniques) + 1) + (c_codes + 1)
        uniq, inverse = np.unique(pair, return_inverse=True)
        s_at, c_at = uniq // (len(c_uniques) + 1) - 1, uniq % (len(c_uniques) + 1) - 1
        names = self.normalise_system_names(list(s_uniques))
        pairs = pd.DataFrame(
            {
                "system": pd.array([names[i] if i >= 0 else None for i in s_at], dtype="string"),
                "code": pd.array([str(c_uniques[i]).strip() if i >= 0 else None for i in c_at], dtype="string"),
            }
        )
        # ICD-10 codes are often written without their dot (C9100 for C91.00, as in claims files)
        icd = (
            pairs["system"].isin(["ICD10CM"]).fillna(False)
            & ~pairs["code"].str.contains(".", regex=False).fillna(True)
            & (pairs["code"].str.len() > 3).fillna(False)
        )
        pairs.loc[icd, "code"] = pairs.loc[icd, "code"].str[:3] + "." + pairs.loc[icd, "code"].str[3:]
        e = self.entries.astype({"system": "string", "code": "string"})
        found = pairs.merge(e[~e["prefix"]], on=["system", "code"], how="left")
        blank = found["system"].isna().to_numpy()
        if blank.any():
            by_code = e[~e["prefix"]].sort_values("order").drop_duplicates("code").drop(columns="system")
            fill = pairs.loc[blank, ["code"]].merge(by_code, on="code", how="left")
            for col in ("section", "target", "grade", "costim"):
                found.loc[blank, col] = fill[col].to_numpy()
        prefixes = e[e["prefix"]]
        if len(prefixes):  # ICD-10-CM C91.0*: a few prefixes tried on the distinct unmatched codes only
            for p in prefixes.sort_values("order").itertuples():
                open_ = found["section"].isna().to_numpy()
                hit = (
                    open_
                    & (found["system"] == p.system).fillna(False).to_numpy()
                    & found["code"].str.startswith(p.code).fillna(False).to_numpy()
                )
                for col in ("section", "target", "grade", "costim"):
                    found.loc[hit, col] = getattr(p, col)
        cols = {
            c: found[c].astype("category") if c != "grade" else found[c].astype(float)
            for c in ("section", "target", "grade", "costim")
        }
        out = {
            c: (
                found[c].to_numpy(dtype=np.float32)[inverse]
                if c == "grade"
                else pd.Categorical.from_codes(v.cat.codes.to_numpy()[inverse], v.cat.categories)
            )
            for c, v in cols.items()
        }
        return pd.DataFrame(out, index=systems.index)

    def codes(self, section: str, target: str | None = None, prefixes: bool = False) -> list[tuple[str, str]]:
        """(system, code) pairs of a section (and target), in the map's order: exact codes, or the
        prefixes of codes written with a trailing ``*`` (``prefixes=True``)."""
        e = self.entries[(self.entries["section"] == section) & (self.entries["prefix"] == prefixes)]
        if target is not None:
            e = e[e["target"] == target]
        return list(zip(e["system"], e["code"], strict=True))

    def short_name(self, system: str | None) -> str | None:
        """The short system name of any identifier (URI, OID, vocabulary id); None for a blank."""
        return self.normalise_system_names([system])[0]

    def first_code(self, section: str, target: str) -> tuple[str, str]:
        """The code an exporter writes for a target: the map's first (a centre's own when it gave one)."""
        found = self._first_codes.get((section, target))
        if found is None:
            raise CohortError(f"the code map has no code for {section}.{target}")
        return found

    @cached_property
    def _first_codes(self) -> dict[tuple[str, str], tuple[str, str]]:
        e = (
            self.entries[~self.entries["prefix"]]
            .sort_values("order", kind="stable")
            .drop_duplicates(["section", "target"])
        )
        return {(s, t): (sy, c) for s, t, sy, c in zip(e["section"], e["target"], e["system"], e["code"], strict=True)}

    def uri(self, system: str) -> str:
        """The FHIR system URI of a short system name."""
        return self.systems.get(system, system)

    def ucum_code(self, unit: str) -> str:
        """The UCUM code of a canonical unit (the unit itself when UCUM writes it the same)."""
        return self.ucum.get(unit, unit)

    def markdown(self) -> str:
        """The map as Markdown tables, one per section (``docs/importers.md``)."""
        lines = ["### Code systems\n", "| system | URI (THO) | also read as |", "|---|---|---|"]
        for short, uri in self.systems.items():
            others = sorted({k for k, v in self.aliases.items() if v == short} - {system_key(short), system_key(uri)})
            lines.append(f"| {short} | `{uri}` | {', '.join(f'`{o}`' for o in others)} |")
        lines.append("")
        for section in SECTIONS:
            e = self.entries[self.entries["section"] == section]
            if e.empty:
                continue
            lines += [f"### `{section}`\n", "| target | system | code | |", "|---|---|---|---|"]
            for r in e.itertuples():
                extra = (
                    f"grade {int(r.grade)}"
                    if pd.notna(r.grade)
                    else (f"costim {r.costim}" if pd.notna(r.costim) else "")
                )
                lines.append(f"| `{r.target}` | {r.system} | `{r.code}{'*' if r.prefix else ''}` | {extra} |")
            lines.append("")
        return "\n".join(lines)


_NOT_SECTIONS = ("systems", "ucum", "system_aliases", "omop", "columns")


def _split(code: object, where: str) -> tuple[str, str]:
    text = str(code).strip()
    system, sep, value = text.rpartition(":") if text.lower().startswith(("http", "urn:")) else text.partition(":")
    if not sep or not system or not value:
        raise CohortError(f"{where}: code {text!r} is not written SYSTEM:CODE (LOINC:26881-3, say)")
    return system.strip(), value.strip()


def _check_target(section: str, target: str, where: str) -> None:
    if section not in SECTIONS:
        raise CohortError(f"{where}: unknown section {section!r} (one of {', '.join(SECTIONS)})")
    allowed = SECTIONS[section]
    if allowed is not None and target not in allowed:
        raise CohortError(f"{where}: {section}.{target} is not a target crsml knows (one of {', '.join(allowed)})")
    if section == "patients" and target == "patient_id":
        raise CohortError(f"{where}: patients.patient_id comes from the source's patient identifier, not a code")


def _toml_entries(doc: dict, name: str) -> pd.DataFrame:
    rows: list[tuple] = []
    for section, body in doc.items():
        if section == "crs" and isinstance(body, dict):
            conditions = body.get("conditions", {})
            for code, grade in conditions.items():
                if grade not in GRADES or isinstance(grade, bool):
                    raise CohortError(f"code map {name}: crs.conditions.{code}: grade must be 0-5")
                rows.append(
                    (
                        *_split(code, f"code map {name}: crs.conditions"),
                        "conditions",
                        "crs_condition",
                        float(grade),
                        None,
                        False,
                    )
                )
            body = {k: v for k, v in body.items() if k != "conditions"}
        if not isinstance(body, dict):
            raise CohortError(f"code map {name}: [{section}] is not a table of target = [codes]")
        for target, spec in body.items():
            where = f"code map {name}: {section}.{target}"
            _check_target(section, target, f"code map {name}")
            costim = None
            if isinstance(spec, dict):
                extra = set(spec) - {"codes", "costim"}
                if extra or section != "products":
                    raise CohortError(f"{where}: unknown keys {', '.join(sorted(extra)) or 'codes'}")
                costim = spec.get("costim")
                if (
                    costim is not None
                    and costim not in TABLES["patients"].columns["costim"].checks[0].statistics["allowed_values"]
                ):
                    raise CohortError(f"{where}: costim must be cd28 or 4-1bb")
                spec = spec.get("codes", [])
            if isinstance(spec, str):
                spec = [spec]
            if not isinstance(spec, list):
                raise CohortError(f"{where}: give a list of SYSTEM:CODE strings")
            rows += [(*_split(c, where), section, target, None, costim, False) for c in spec]
    return _entries(rows, name)


def _csv_entries(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError):
        raise CohortError(f"code map {path.name}: not a readable CSV file") from None
    need = {"section", "target", "code"}
    if not need <= set(df.columns):
        raise CohortError(
            f"code map {path.name}: needs columns section, target, code "
            f"(missing {', '.join(sorted(need - set(df.columns)))})"
        )
    rows = []
    with_system = "system" in df.columns  # import_unmapped.csv: system and code apart, any other columns kept
    for i, r in enumerate(df.itertuples(index=False), start=2):
        where = f"code map {path.name} line {i}"
        section, target = str(r.section).strip(), str(r.target).strip()
        if not target and not str(getattr(r, "grade", "") or "").strip():
            continue  # a row of import_unmapped.csv left unfilled: that code stays unmapped
        grade = None
        if section == "conditions":
            try:
                grade = float(getattr(r, "grade", ""))
            except ValueError:
                grade = -1.0
            if grade not in GRADES:
                raise CohortError(f"{where}: a condition needs a grade 0-5") from None
            target = "crs_condition"
        else:
            _check_target(section, target, where)
        costim = (str(getattr(r, "costim", "")).strip() or None) if section == "products" else None
        if costim is not None and costim not in ("cd28", "4-1bb"):
            raise CohortError(f"{where}: costim must be cd28 or 4-1bb")
        system = str(r.system).strip() if with_system else ""
        if with_system and not system:
            raise CohortError(f"{where}: no system for code {str(r.code).strip()!r}")
        code = (system, str(r.code).strip()) if with_system else _split(r.code, where)
        rows.append((*code, section, target, grade, costim, False))
    return _entries(rows, path.name)


def _entries(rows: list[tuple], name: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=_COLUMNS[:-1])
    star = df["code"].str.endswith("*")  # ICD10CM:C91.0* stands for every code it begins
    df.loc[star, "code"] = df.loc[star, "code"].str[:-1]
    df["prefix"] = star.to_numpy(dtype=bool)
    twice = df[df.duplicated(["system", "code"], keep=False)]
    if not twice.empty and twice.groupby(["system", "code"])["target"].nunique().max() > 1:
        s, c = twice.iloc[0][["system", "code"]]
        raise CohortError(f"code map {name}: {s}:{c} is mapped to two targets; a code stands for one thing")
    return df.drop_duplicates(["system", "code"])
