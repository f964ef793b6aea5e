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

from crsml.cohort import CANONICAL_UNITS, DRUGS, GRADES, O2_DEVICES, TABLES
from crsml.errors import CohortError

DEFAULT_VOCABULARY = "vocabulary.toml"
#: vital-sign targets an importer understands (hypotension: a recorded finding, no value needed)
VITAL_TARGETS = ("temp_c", "sbp_mmhg", "map_mmhg", "o2_flow_lpm", "hypotension")
VASOPRESSORS = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin")
#: sections of a code map and the targets each accepts (None: any column name)
SECTIONS: dict[str, tuple[str, ...] | None] = {
    "analytes": tuple(CANONICAL_UNITS),
    "vitals": VITAL_TARGETS,
    "devices": tuple(d for d in O2_DEVICES if d != "none"),
    "drugs": DRUGS,
    "vasopressors": VASOPRESSORS,
    "products": None,
    "crs": ("grade",),
    "conditions": None,
    "patients": None,
}
_COLUMNS = ["system", "code", "section", "target", "grade", "costim", "order"]


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
    """

    entries: pd.DataFrame
    systems: dict[str, str]
    ucum: dict[str, str]
    digest: str
    source: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> CodeMap:
        """The default map, with a centre's TOML or CSV map (``path``) laid over it.

        A file crsml cannot read, an unknown section or target, or a code given twice in one
        file is refused in one line naming the file and the entry.
        """
        text = resources.files("crsml.data").joinpath(DEFAULT_VOCABULARY).read_text()
        default = tomllib.loads(text)
        systems = dict(default["systems"])
        ucum = dict(default["ucum"])
        digest = hashlib.sha256(text.encode())
        frames = []
        columns: dict[str, str] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise CohortError(f"code map not found: {p}")
            raw = p.read_bytes()
            digest.update(raw)
            if p.suffix.lower() == ".csv":
                frames.append(_csv_entries(p))
            else:
                try:
                    user = tomllib.loads(raw.decode("utf-8"))
                except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                    raise CohortError(f"code map {p.name}: not valid TOML ({exc})") from None
                systems.update({str(k): str(v) for k, v in user.pop("systems", {}).items()})
                user.pop("ucum", None)
                columns = {str(k): str(v) for k, v in user.pop("columns", {}).items()}
                frames.append(_toml_entries(user, p.name))
        frames.append(_toml_entries({k: v for k, v in default.items() if k not in ("systems", "ucum")},
                                    "the default map"))
        entries = pd.concat(frames, ignore_index=True)
        spelled = {k.lower(): k for k in systems} | {v.lower(): k for k, v in systems.items()}
        entries["system"] = [spelled.get(str(x).lower(), x) for x in entries["system"]]  # LOCAL is local, as in files
        entries["order"] = range(len(entries))
        entries = entries.drop_duplicates(["system", "code"], keep="first").reset_index(drop=True)
        return cls(entries, systems, ucum, digest.hexdigest(), None if path is None else Path(path).name, columns)

    def normalise_system_names(self, names: pd.Index | list) -> list[str | None]:
        """Short system names for URIs or vocabulary ids as sources write them (unknown ones kept)."""
        by_uri = {v.lower(): k for k, v in self.systems.items()}
        by_name = {k.lower(): k for k in self.systems}
        out = []
        for n in names:
            if n is None or (not isinstance(n, str) and pd.isna(n)) or not str(n).strip():
                out.append(None)
                continue
            low = str(n).strip().lower()
            out.append(by_uri.get(low, by_name.get(low, str(n).strip())))
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
        pairs = pd.DataFrame({
            "system": pd.array([names[i] if i >= 0 else None for i in s_at], dtype="string"),
            "code": pd.array([str(c_uniques[i]).strip() if i >= 0 else None for i in c_at], dtype="string"),
        })
        e = self.entries.astype({"system": "string", "code": "string"})
        found = pairs.merge(e, on=["system", "code"], how="left")
        blank = found["system"].isna().to_numpy()
        if blank.any():
            by_code = e.sort_values("order").drop_duplicates("code").drop(columns="system")
            fill = pairs.loc[blank, ["code"]].merge(by_code, on="code", how="left")
            for col in ("section", "target", "grade", "costim"):
                found.loc[blank, col] = fill[col].to_numpy()
        cols = {c: found[c].astype("category") if c != "grade" else found[c].astype(float)
                for c in ("section", "target", "grade", "costim")}
        out = {c: (found[c].to_numpy(dtype=float)[inverse] if c == "grade" else
                   pd.Categorical.from_codes(v.cat.codes.to_numpy()[inverse], v.cat.categories))
               for c, v in cols.items()}
        return pd.DataFrame(out, index=systems.index)

    def codes(self, section: str, target: str | None = None) -> list[tuple[str, str]]:
        """(system, code) pairs of a section (and target), in the map's order."""
        e = self.entries[self.entries["section"] == section]
        if target is not None:
            e = e[e["target"] == target]
        return list(zip(e["system"], e["code"], strict=True))

    def first_code(self, section: str, target: str) -> tuple[str, str]:
        """The code an exporter writes for a target: the map's first (a centre's own when it gave one)."""
        found = self._first_codes.get((section, target))
        if found is None:
            raise CohortError(f"the code map has no code for {section}.{target}")
        return found

    @cached_property
    def _first_codes(self) -> dict[tuple[str, str], tuple[str, str]]:
        e = self.entries.sort_values("order", kind="stable").drop_duplicates(["section", "target"])
        return {(s, t): (sy, c) for s, t, sy, c in zip(e["section"], e["target"], e["system"], e["code"], strict=True)}

    def uri(self, system: str) -> str:
        """The FHIR system URI of a short system name."""
        return self.systems.get(system, system)

    def ucum_code(self, unit: str) -> str:
        """The UCUM code of a canonical unit (the unit itself when UCUM writes it the same)."""
        return self.ucum.get(unit, unit)

    def markdown(self) -> str:
        """The map as Markdown tables, one per section (``docs/importers.md``)."""
        lines = []
        for section in SECTIONS:
            e = self.entries[self.entries["section"] == section]
            if e.empty:
                continue
            lines += [f"### `{section}`\n", "| target | system | code | |", "|---|---|---|---|"]
            for r in e.itertuples():
                extra = f"grade {int(r.grade)}" if pd.notna(r.grade) else (f"costim {r.costim}" if pd.notna(r.costim) else "")
                lines.append(f"| `{r.target}` | {r.system} | `{r.code}` | {extra} |")
            lines.append("")
        return "\n".join(lines)


def _split(code: object, where: str) -> tuple[str, str]:
    text = str(code).strip()
    system, sep, value = text.partition(":")
    if not sep or not system or not value:
        raise CohortError(f"{where}: code {text!r} is not written SYSTEM:CODE (LOINC:26881-3, say)")
    return system.strip(), value.strip()


def _check_target(section: str, target: str, where: str) -> None:
    if section not in SECTIONS:
        raise CohortError(f"{where}: unknown section {section!r} (one of {', '.join(SECTIONS)})")
    allowed = SECTIONS[section]
    if allowed is not None and target not in allowed:
        raise CohortError(f"{where}: {section}.{target} is not a target crsml knows "
                          f"(one of {', '.join(allowed)})")
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
                rows.append((*_split(code, f"code map {name}: crs.conditions"), "conditions", "crs_condition",
                             float(grade), None))
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
                if costim is not None and costim not in TABLES["patients"].columns["costim"].checks[0].statistics["allowed_values"]:
                    raise CohortError(f"{where}: costim must be cd28 or 4-1bb")
                spec = spec.get("codes", [])
            if isinstance(spec, str):
                spec = [spec]
            if not isinstance(spec, list):
                raise CohortError(f"{where}: give a list of SYSTEM:CODE strings")
            rows += [(*_split(c, where), section, target, None, costim) for c in spec]
    return _entries(rows, name)


def _csv_entries(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError):
        raise CohortError(f"code map {path.name}: not a readable CSV file") from None
    need = {"section", "target", "code"}
    if not need <= set(df.columns):
        raise CohortError(f"code map {path.name}: needs columns section, target, code "
                          f"(missing {', '.join(sorted(need - set(df.columns)))})")
    rows = []
    for i, r in enumerate(df.itertuples(index=False), start=2):
        where = f"code map {path.name} line {i}"
        section, target = str(r.section).strip(), str(r.target).strip()
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
        rows.append((*_split(r.code, where), section, target, grade, costim))
    return _entries(rows, path.name)


def _entries(rows: list[tuple], name: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=_COLUMNS[:-1])
    twice = df[df.duplicated(["system", "code"], keep=False)]
    if not twice.empty and twice.groupby(["system", "code"])["target"].nunique().max() > 1:
        s, c = twice.iloc[0][["system", "code"]]
        raise CohortError(f"code map {name}: {s}:{c} is mapped to two targets; a code stands for one thing")
    return df.drop_duplicates(["system", "code"])
