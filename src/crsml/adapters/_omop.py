"""OMOP CDM v5.4 in both directions, through SQLAlchemy: DuckDB files (``duckdb:///path.duckdb``,
the embedded default) and PostgreSQL servers (``postgresql+psycopg://...``) work the same way.

Import resolves codes through the CDM's own ``concept`` table (``vocabulary_id`` and
``concept_code``: LOINC, RxNorm, HCPCS, ICD-10-CM ...), never through source values, so it works
with any CDM whatever its concept ids. The queries push the work into the database: only persons
with a CAR-T administration, only rows from 30 days before their infusion to ``days`` after it,
only mapped concepts are sent; unmapped concepts come back as counts per code.

Export writes any cohort as a CDM: the tables below with the columns of the v5.4 specification
(OHDSI CommonDataModel), and a ``concept`` table holding the vocabulary entries it uses. It ships
no Athena vocabulary, so its concept ids are its own (from 2,000,000,001, the range OMOP leaves to
local concepts), except the gender and operator concepts whose standard ids are well known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crsml.adapters._importer import (
    DEFAULT_DAYS,
    WINDOW_BEFORE_H,
    SourceRecords,
    assemble,
    check_zone,
)
from crsml.adapters._vocabulary import CodeMap, system_key
from crsml.cohort import CANONICAL_UNITS, Cohort, crs_episodes
from crsml.errors import CohortError

GENDER = {"male": 8507, "female": 8532}  # OMOP standard gender concepts (Vocab. GENDER)
OPERATORS = {"<": 4171756, "<=": 4171754, "=": 4172703, ">": 4172704, ">=": 4171755}  # Meas Value Operator
EHR_TYPE = 32817  # type concept "EHR"
LOCAL_CONCEPT_START = 2_000_000_001
VASOPRESSOR_ORDER = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine")
#: the CDM v5.4 tables crsml writes and reads, with their columns and types (OHDSI DDL)
CDM_TABLES: dict[str, str] = {
    "person": "person_id integer NOT NULL, gender_concept_id integer NOT NULL, year_of_birth integer NOT NULL, "
    "month_of_birth integer, day_of_birth integer, birth_datetime TIMESTAMP, race_concept_id integer NOT NULL, "
    "ethnicity_concept_id integer NOT NULL, location_id integer, provider_id integer, care_site_id integer, "
    "person_source_value varchar(50), gender_source_value varchar(50), gender_source_concept_id integer, "
    "race_source_value varchar(50), race_source_concept_id integer, ethnicity_source_value varchar(50), "
    "ethnicity_source_concept_id integer",
    "observation_period": "observation_period_id integer NOT NULL, person_id integer NOT NULL, "
    "observation_period_start_date date NOT NULL, observation_period_end_date date NOT NULL, "
    "period_type_concept_id integer NOT NULL",
    "procedure_occurrence": "procedure_occurrence_id integer NOT NULL, person_id integer NOT NULL, "
    "procedure_concept_id integer NOT NULL, procedure_date date NOT NULL, procedure_datetime TIMESTAMP, "
    "procedure_end_date date, procedure_end_datetime TIMESTAMP, procedure_type_concept_id integer NOT NULL, "
    "modifier_concept_id integer, quantity integer, provider_id integer, visit_occurrence_id integer, "
    "visit_detail_id integer, procedure_source_value varchar(50), procedure_source_concept_id integer, "
    "modifier_source_value varchar(50)",
    "drug_exposure": "drug_exposure_id integer NOT NULL, person_id integer NOT NULL, drug_concept_id integer NOT NULL, "
    "drug_exposure_start_date date NOT NULL, drug_exposure_start_datetime TIMESTAMP, "
    "drug_exposure_end_date date NOT NULL, drug_exposure_end_datetime TIMESTAMP, verbatim_end_date date, "
    "drug_type_concept_id integer NOT NULL, stop_reason varchar(20), refills integer, quantity NUMERIC, "
    "days_supply integer, sig TEXT, route_concept_id integer, lot_number varchar(50), provider_id integer, "
    "visit_occurrence_id integer, visit_detail_id integer, drug_source_value varchar(50), "
    "drug_source_concept_id integer, route_source_value varchar(50), dose_unit_source_value varchar(50)",
    "device_exposure": "device_exposure_id integer NOT NULL, person_id integer NOT NULL, "
    "device_concept_id integer NOT NULL, "
    "device_exposure_start_date date NOT NULL, device_exposure_start_datetime TIMESTAMP, "
    "device_exposure_end_date date, device_exposure_end_datetime TIMESTAMP, "
    "device_type_concept_id integer NOT NULL, unique_device_id varchar(255), production_id varchar(255), "
    "quantity integer, provider_id integer, visit_occurrence_id integer, visit_detail_id integer, "
    "device_source_value varchar(50), device_source_concept_id integer, unit_concept_id integer, "
    "unit_source_value varchar(50), unit_source_concept_id integer",
    "condition_occurrence": "condition_occurrence_id integer NOT NULL, person_id integer NOT NULL, "
    "condition_concept_id integer NOT NULL, condition_start_date date NOT NULL, "
    "condition_start_datetime TIMESTAMP, condition_end_date date, condition_end_datetime TIMESTAMP, "
    "condition_type_concept_id integer NOT NULL, condition_status_concept_id integer, "
    "stop_reason varchar(20), provider_id integer, visit_occurrence_id integer, visit_detail_id integer, "
    "condition_source_value varchar(50), condition_source_concept_id integer, "
    "condition_status_source_value varchar(50)",
    "measurement": "measurement_id integer NOT NULL, person_id integer NOT NULL, "
    "measurement_concept_id integer NOT NULL, "
    "measurement_date date NOT NULL, measurement_datetime TIMESTAMP, measurement_time varchar(10), "
    "measurement_type_concept_id integer NOT NULL, operator_concept_id integer, value_as_number NUMERIC, "
    "value_as_concept_id integer, unit_concept_id integer, range_low NUMERIC, range_high NUMERIC, "
    "provider_id integer, visit_occurrence_id integer, visit_detail_id integer, "
    "measurement_source_value varchar(50), measurement_source_concept_id integer, "
    "unit_source_value varchar(50), unit_source_concept_id integer, value_source_value varchar(50), "
    "measurement_event_id integer, meas_event_field_concept_id integer",
    "observation": "observation_id integer NOT NULL, person_id integer NOT NULL, "
    "observation_concept_id integer NOT NULL, "
    "observation_date date NOT NULL, observation_datetime TIMESTAMP, observation_type_concept_id integer NOT NULL, "
    "value_as_number NUMERIC, value_as_string varchar(60), value_as_concept_id integer, "
    "qualifier_concept_id integer, unit_concept_id integer, provider_id integer, visit_occurrence_id integer, "
    "visit_detail_id integer, observation_source_value varchar(50), observation_source_concept_id integer, "
    "unit_source_value varchar(50), qualifier_source_value varchar(50), value_source_value varchar(50), "
    "observation_event_id integer, obs_event_field_concept_id integer",
    "concept": "concept_id integer NOT NULL, concept_name varchar(255) NOT NULL, domain_id varchar(20) NOT NULL, "
    "vocabulary_id varchar(20) NOT NULL, concept_class_id varchar(20) NOT NULL, standard_concept varchar(1), "
    "concept_code varchar(50) NOT NULL, valid_start_date date NOT NULL, valid_end_date date NOT NULL, "
    "invalid_reason varchar(1)",
}
_DOMAIN = {
    "analytes": "Measurement",
    "vitals": "Measurement",
    "patients": "Observation",
    "crs": "Observation",
    "drugs": "Drug",
    "vasopressors": "Drug",
    "products": "Drug",
    "devices": "Device",
    "conditions": "Condition",
}


def _engine(url: str):
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise CohortError(
            f"--db: not a database URL crsml can open ({type(exc).__name__}); "
            "use duckdb:///path.duckdb or postgresql+psycopg://user@host/db"
        ) from None


def _qualified(schema: str | None, table: str) -> str:
    if schema and not schema.replace("_", "").isalnum():
        raise CohortError(f"--schema {schema!r}: letters, digits and _ only")
    return f"{schema}.{table}" if schema else table


def _fetch_arrow(conn, sql: str) -> pa.Table:
    """Run a query and return an Arrow table; DuckDB hands Arrow over directly (ten million rows in
    a second), other databases go through SQLAlchemy's cursor."""
    import sqlalchemy as sa

    raw = conn.connection.dbapi_connection
    if hasattr(raw, "sql") and "duckdb" in type(raw).__module__:
        raw.execute("SET enable_progress_bar = false")  # DuckDB's own bar is not crsml's to print
        relation = raw.sql(sql)
        return relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    result = conn.execute(sa.text(sql.replace(":", "\\:")))  # a colon in a code is text, not a bind parameter
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for col in frame.columns:  # PostgreSQL's NUMERIC arrives as Decimal
        if frame[col].map(type).astype(str).str.contains("Decimal").any():
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return pa.Table.from_pandas(frame, preserve_index=False)


def _fetch(conn, sql: str) -> pd.DataFrame:
    return _fetch_arrow(conn, sql).to_pandas()


_EVENT_SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("when", pa.timestamp("us")),
        ("end", pa.timestamp("us")),
        ("value", pa.float64()),
        ("text", pa.string()),
        ("unit", pa.string()),
        ("qualifier", pa.string()),
        ("value_system", pa.string()),
        ("value_code", pa.string()),
        ("ref", pa.int64()),
    ]
)
#: columns that travel as integer codes into dictionaries shared by every query's rows
_CODED = ("system", "code", "src", "route")


class _Events:
    """The rows of every query, gathered in Arrow. ``system``, ``code``, ``src`` and ``route`` travel
    as integer codes into one dictionary each, shared by all the queries, so ten million rows of a
    few hundred codes are never text, and pandas receives categoricals without unifying anything.
    The rows of the standard-concept pass carry only the concept id (``cid``)."""

    def __init__(self, concepts: pd.DataFrame):
        self.values: dict[str, list[str]] = {c: [] for c in _CODED}
        self.index: dict[str, dict[str, int]] = {c: {} for c in _CODED}
        self.concept_ids = concepts["concept_id"].to_numpy(dtype=np.int64)
        self.concept_codes = {c: self.encode(c, concepts[c]) for c in ("system", "code")}
        self.parts: list[pa.Table] = []
        self.coded: dict[str, list[np.ndarray]] = {c: [] for c in _CODED}

    def encode(self, column: str, values) -> np.ndarray:
        """Integer codes of ``values`` in the column's dictionary (-1: missing), growing it."""
        s = pd.Series(values, dtype=object)
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        at = self.index[column]
        for u in uniques:
            if str(u) not in at:
                at[str(u)] = len(self.values[column])
                self.values[column].append(str(u))
        lookup = np.array([at[str(u)] for u in uniques] + [-1], dtype=np.int32)
        return lookup[codes]

    def add(self, table: pa.Table, **constants: str) -> None:
        n = len(table)
        coded = {}
        if "cid" in table.column_names:
            pos = np.searchsorted(self.concept_ids, table.column("cid").to_numpy())
            coded = {c: self.concept_codes[c][pos] for c in ("system", "code")}
        for c in _CODED:
            if c in constants:
                coded[c] = np.full(n, self.encode(c, [constants[c]])[0], dtype=np.int32)
            elif c not in coded:
                coded[c] = self.encode(c, table.column(c).to_pandas())
        cols = [
            table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
            for f in _EVENT_SCHEMA
        ]
        self.parts.append(pa.table(cols, names=_EVENT_SCHEMA.names))
        for c in _CODED:  # two bytes a row while the dictionaries stay small (they hold codes, not rows)
            small = len(self.values[c]) < np.iinfo(np.int16).max
            self.coded[c].append(coded[c].astype(np.int16 if small else np.int32))

    def frame(self) -> pd.DataFrame:
        """One frame of every query's rows, text as categoricals."""
        table = pa.concat_tables(self.parts)
        self.parts = []
        keep = [
            n
            for n, c in zip(_EVENT_SCHEMA.names, table.columns, strict=True)  # a column no row fills: left out
            if not (pa.types.is_string(c.type) and c.null_count == len(c) and n.startswith("value_"))
        ]
        out = pa.table(
            [
                table.column(n).dictionary_encode() if pa.types.is_string(table.column(n).type) else table.column(n)
                for n in keep
            ],
            names=keep,
        ).to_pandas()
        del table
        for c in _CODED:
            codes = np.concatenate(self.coded.pop(c)) if len(out) else np.zeros(0, dtype=np.int16)
            out[c] = pd.Categorical.from_codes(codes, self.values[c])
        return out


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _values(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        pairs = [("", "")]
    return ", ".join(f"({_literal(s)}, {_literal(c)})" for s, c in pairs)


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return ()
    return (duckdb.Error,)


def _utc(series: pd.Series, timezone: str) -> pd.Series:
    s = pd.to_datetime(series)
    if getattr(s.dt, "tz", None) is None:
        s = s.dt.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
    return s.dt.tz_convert("UTC")


def read_omop(
    url: str, schema: str | None = None, codes: CodeMap | None = None, days: float = DEFAULT_DAYS, timezone: str = "UTC"
) -> SourceRecords:
    """Read a CDM's CAR-T patients and their first days as :class:`SourceRecords`."""
    import sqlalchemy as sa

    codes = codes or CodeMap.load()
    check_zone(timezone)
    if url.startswith("duckdb:///") and not Path(url.removeprefix("duckdb:///").split("?")[0]).is_file():
        raise CohortError(f"OMOP database not found: {url.removeprefix('duckdb:///')}")  # DuckDB would create it
    engine = _engine(url)
    t = {name: _qualified(schema, name) for name in CDM_TABLES}
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            have = set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))
            need = {"person", "concept", "measurement", "drug_exposure", "procedure_occurrence"}
            if missing := sorted(need - have):
                raise CohortError(
                    f"OMOP database: no table {', '.join(missing)}"
                    f"{f' in schema {schema}' if schema else ''} (is this an OMOP CDM v5.4?)"
                )
            return _read(conn, t, have, codes, days, timezone)
    except (sa.exc.DBAPIError, *_driver_errors()) as exc:
        raise CohortError(
            f"OMOP database: cannot connect or query ({type(getattr(exc, 'orig', exc)).__name__})"
        ) from None
    finally:
        engine.dispose()


#: what each domain's columns are called, and where its unmapped codes most likely belong
_DOMAINS = {  # table: (prefix, datetime, date, end columns or None, value, text, unit, qualifier, joins, hint)
    "measurement": (
        "measurement",
        "measurement_datetime",
        "measurement_date",
        None,
        "m.value_as_number",
        "NULL",
        "u.concept_code",
        "CASE WHEN op.concept_name IN ('<', '<=', '>', '>=') THEN op.concept_name END",  # '=' is no qualifier
        "LEFT JOIN {concept} u ON m.unit_concept_id = u.concept_id AND m.unit_concept_id <> 0 "
        "LEFT JOIN {concept} op ON m.operator_concept_id = op.concept_id",
        "analytes",
    ),
    "observation": (
        "observation",
        "observation_datetime",
        "observation_date",
        None,
        "m.value_as_number",
        "m.value_as_string",
        "u.concept_code",
        "NULL",
        "LEFT JOIN {concept} u ON m.unit_concept_id = u.concept_id AND m.unit_concept_id <> 0",
        "patients",
    ),
    "drug_exposure": (
        "drug",
        "drug_exposure_start_datetime",
        "drug_exposure_start_date",
        ("drug_exposure_end_datetime", "drug_exposure_end_date"),
        "m.quantity",
        "NULL",
        "m.dose_unit_source_value",
        "NULL",
        "",
        "drugs",
    ),
    "device_exposure": (
        "device",
        "device_exposure_start_datetime",
        "device_exposure_start_date",
        ("device_exposure_end_datetime", "device_exposure_end_date"),
        "NULL",
        "NULL",
        "NULL",
        "NULL",
        "",
        "devices",
    ),
    "condition_occurrence": (
        "condition",
        "condition_start_datetime",
        "condition_start_date",
        ("condition_end_datetime", "condition_end_date"),
        "NULL",
        "NULL",
        "NULL",
        "NULL",
        "",
        "conditions",
    ),
}
#: sections whose rows count whenever recorded (a diagnosis made years before, a weight)
_UNTIMED = ("patients", "diagnoses")
ROUTES = ("standard concept", "source concept", "source value")


def _map_values(codes: CodeMap, products: bool) -> tuple[str, str, str]:
    """VALUES lists of the map's codes for SQL: exact codes, code prefixes (``C91.0*``), and codes
    of the system a row's source value is read under. Systems are compared as ``system_key``
    spells them (``LOWER(vocabulary_id)``), so a CDM's ``Icd10cm`` is ICD10CM."""
    e = codes.entries
    e = e[(e["section"] == "products") == products]

    def rows(frame: pd.DataFrame) -> str:
        out = [
            f"({_literal(system_key(s))}, {_literal(c)}, {_literal(sec)})"
            for s, c, sec in zip(frame["system"], frame["code"], frame["section"], strict=True)
        ]
        return ", ".join(out) or "('', '', '')"

    sv = e[(e["system"] == codes.source_value_system) & ~e["prefix"]] if codes.source_value_system else e.iloc[:0]
    return rows(e[~e["prefix"]]), rows(e[e["prefix"]]), rows(sv)


def _columns(conn, table: str) -> set[str]:
    """A table's column names (an empty query: the reflection of some drivers cannot read views)."""
    import sqlalchemy as sa

    return {str(k).lower() for k in conn.execute(sa.text(f"SELECT * FROM {table} WHERE 1 = 0")).keys()}


def _read(conn, t: dict[str, str], have: set[str], codes: CodeMap, days: float, timezone: str) -> SourceRecords:
    exact, prefix, source_values = _map_values(codes, products=False)
    p_exact, p_prefix, _ = _map_values(codes, products=True)
    sv_system = _literal(codes.source_value_system or "")

    def concepts(name: str, values: str, prefixes: str) -> str:
        return (
            f"{name}_x(vkey, concept_code, section) AS (VALUES {values}), "
            f"{name}_p(vkey, concept_code, section) AS (VALUES {prefixes}), "
            f"{name} AS (SELECT c.concept_id, c.vocabulary_id, c.concept_code, x.section FROM {t['concept']} c "
            f"JOIN {name}_x x ON LOWER(c.vocabulary_id) = x.vkey AND c.concept_code = x.concept_code "
            f"UNION SELECT c.concept_id, c.vocabulary_id, c.concept_code, x.section FROM {t['concept']} c "
            f"JOIN {name}_p x ON LOWER(c.vocabulary_id) = x.vkey "
            f"AND SUBSTR(c.concept_code, 1, LENGTH(x.concept_code)) = x.concept_code "
            # an exact code wins over a prefix, as in CodeMap.lookup
            f"WHERE NOT EXISTS (SELECT 1 FROM {name}_x y WHERE LOWER(c.vocabulary_id) = y.vkey "
            f"AND c.concept_code = y.concept_code)), "
        )

    cols = {name: _columns(conn, t[name]) for name in [*_DOMAINS, "procedure_occurrence"] if name in have}

    def given_from(table: str, prefix: str, when: str, pk: str) -> str:
        # a product by its standard concept, else by its source concept (HCPCS Q2041 under an RxNorm standard)
        sql = (
            f"SELECT m.person_id, {when} AS t, pc.vocabulary_id, pc.concept_code, '{pk} ' AS src, m.{pk} AS ref, "
            f"'standard concept' AS route FROM {t[table]} m JOIN pconcepts pc ON m.{prefix}_concept_id = pc.concept_id"
        )
        if f"{prefix}_source_concept_id" in cols.get(table, set()):
            sql += (
                f" UNION ALL SELECT m.person_id, {when}, pc.vocabulary_id, pc.concept_code, '{pk} ', m.{pk}, "
                f"'source concept' "
                f"FROM {t[table]} m JOIN pconcepts pc ON m.{prefix}_source_concept_id = pc.concept_id "
                f"WHERE NOT EXISTS (SELECT 1 FROM pconcepts q WHERE q.concept_id = m.{prefix}_concept_id)"
            )
        return sql

    cte = (
        "WITH "
        + concepts("mapped", exact, prefix)
        + concepts("pconcepts", p_exact, p_prefix)
        + f"svmap(concept_code, section) AS (SELECT concept_code, section FROM (VALUES {source_values}) "
        f"AS v(vkey, concept_code, section) WHERE vkey <> ''), "
        + "given AS ("
        + given_from(
            "procedure_occurrence",
            "procedure",
            "COALESCE(m.procedure_datetime, CAST(m.procedure_date AS TIMESTAMP))",
            "procedure_occurrence_id",
        )
        + " UNION ALL "
        + given_from(
            "drug_exposure",
            "drug",
            "COALESCE(m.drug_exposure_start_datetime, CAST(m.drug_exposure_start_date AS TIMESTAMP))",
            "drug_exposure_id",
        )
        + "), "
        + "inf AS (SELECT person_id, MIN(t) AS t0 FROM given GROUP BY person_id) "
    )
    window = (
        f"BETWEEN inf.t0 - INTERVAL '{int(WINDOW_BEFORE_H)} hours' "
        f"AND inf.t0 + INTERVAL '{int(round(days * 24 * 3600))} seconds'"
    )
    given = _fetch_arrow(
        conn,
        cte + 'SELECT person_id AS key, t AS "when", vocabulary_id AS system, concept_code AS code, '
        "route, src, ref FROM given",
    )
    persons = _fetch(
        conn,
        cte + f"SELECT p.person_id AS key, p.person_source_value AS source_id, p.gender_concept_id, "
        f"p.year_of_birth, p.month_of_birth, p.day_of_birth, p.birth_datetime "
        f"FROM {t['person']} p WHERE p.person_id IN (SELECT person_id FROM inf) "
        + (
            f"OR p.person_id IN (SELECT person_id FROM {t['condition_occurrence']} co JOIN mapped m "
            f"ON co.condition_concept_id = m.concept_id WHERE m.section = 'conditions') "
            if "condition_occurrence" in have
            else ""
        )
        + (
            f"OR p.person_id IN (SELECT person_id FROM {t['condition_occurrence']} co JOIN mapped m "
            f"ON co.condition_source_concept_id = m.concept_id WHERE m.section = 'conditions') "
            if "condition_source_concept_id" in cols.get("condition_occurrence", set())
            else ""
        ),
    )
    concepts = (
        _fetch(conn, cte + "SELECT DISTINCT concept_id, vocabulary_id AS system, concept_code AS code FROM mapped")
        .drop_duplicates("concept_id")
        .sort_values("concept_id")
    )
    parts, unmapped, outside = _Events(concepts), [], []
    parts.add(given)
    for table, (prefix, dt, d, end, value, text, unit, qual, joins, hint) in _DOMAINS.items():
        if table not in have:
            continue
        joins = joins.format(concept=t["concept"])
        has = cols[table]
        when = f"COALESCE(m.{dt}, CAST(m.{d} AS TIMESTAMP))"
        end_sql = f"COALESCE(m.{end[0]}, CAST(m.{end[1]} AS TIMESTAMP))" if end else "NULL"
        std, src_c, src_v = f"m.{prefix}_concept_id", f"m.{prefix}_source_concept_id", f"m.{prefix}_source_value"
        in_window = f"{when} {window}"
        vjoin = (
            f"LEFT JOIN {t['concept']} vc ON m.value_as_concept_id = vc.concept_id AND m.value_as_concept_id <> 0 "
            if "value_as_concept_id" in has
            else ""
        )
        columns = (
            f'm.person_id AS key, {when} AS "when", {end_sql} AS "end", '
            f"CAST({value} AS DOUBLE PRECISION) AS value, "
            f"{f'COALESCE({text}, vc.concept_name)' if vjoin else text} AS text, "
            f"COALESCE({unit}, {'m.unit_source_value' if 'unit_source_value' in has else 'NULL'}) AS unit, "
            f"{qual} AS qualifier, {'vc.vocabulary_id' if vjoin else 'NULL'} AS value_system, "
            f"{'vc.concept_code' if vjoin else 'NULL'} AS value_code, m.{table}_id AS ref"
        )
        base = f"FROM {t[table]} m JOIN inf ON m.person_id = inf.person_id "
        untimed = f"IN ({', '.join(_literal(u) for u in _UNTIMED)})"
        # most rows: the standard concept, one hash join (ten million rows in seconds)
        parts.add(
            _fetch_arrow(
                conn,
                cte
                + (
                    f"SELECT {columns}, cs.concept_id AS cid "
                    f"{base}JOIN mapped cs ON {std} = cs.concept_id {joins} {vjoin}"
                    f"WHERE ({in_window} OR cs.section {untimed})"
                ),
            ),
            route="standard concept",
            src=f"{table}_id ",
        )
        # the rest: rows whose standard concept the map does not know, by source concept, else source value
        # rows no standard concept of the map (nor a CAR-T product, read as time zero) accounts for
        product_src = (
            f"AND NOT EXISTS (SELECT 1 FROM pconcepts q WHERE q.concept_id = {prefix}_source_concept_id) "
            if f"{prefix}_source_concept_id" in has
            else ""
        )
        rest = (
            f"(SELECT * FROM {t[table]} WHERE NOT EXISTS (SELECT 1 FROM mapped q WHERE q.concept_id = "
            f"{prefix}_concept_id) AND NOT EXISTS (SELECT 1 FROM pconcepts q WHERE q.concept_id = "
            f"{prefix}_concept_id) {product_src}) m JOIN inf ON m.person_id = inf.person_id "
        )
        other, system, code, section, found = "", [], [], [], []
        if src_c.split(".")[1] in has:
            other += f"LEFT JOIN mapped ss ON {src_c} = ss.concept_id AND {src_c} <> 0 "
            system, code, section, found = ["ss.vocabulary_id"], ["ss.concept_code"], ["ss.section"], ["ss.concept_id"]
        if src_v.split(".")[1] in has and codes.source_value_system:
            other += f"LEFT JOIN svmap sv ON {src_v} = sv.concept_code "
            system.append(f"CASE WHEN sv.concept_code IS NOT NULL THEN {sv_system} END")
            code.append("sv.concept_code")
            section.append("sv.section")
            found.append("sv.concept_code")
        is_found = "(" + " OR ".join(f"{f} IS NOT NULL" for f in found) + ")" if found else "FALSE"
        if found:
            parts.add(
                _fetch_arrow(
                    conn,
                    cte
                    + (
                        f"SELECT {columns}, COALESCE({', '.join(system)}) AS system, COALESCE({', '.join(code)}) AS "
                        f"code, "
                        f"CASE WHEN {found[0]} IS NOT NULL THEN "
                        f"'{'source concept' if 'ss.' in found[0] else 'source value'}' "
                        f"ELSE 'source value' END AS route "
                        f"FROM {rest}{other}{joins} {vjoin}"
                        f"WHERE {is_found} AND ({in_window} OR COALESCE({', '.join(section)}) {untimed})"
                    ),
                ),
                src=f"{table}_id ",
            )
        # unmapped rows in a patient's window, by patient and code: the code named is the standard
        # concept's, else the source concept's, else the source value (under the map's source-value system)
        named = f"LEFT JOIN {t['concept']} c0 ON {std} = c0.concept_id AND {std} <> 0 "
        n_system, n_code, n_name = ["c0.vocabulary_id"], ["c0.concept_code"], ["c0.concept_name"]
        if "ss.concept_id" in found:
            named += f"LEFT JOIN {t['concept']} c1 ON {src_c} = c1.concept_id AND {src_c} <> 0 "
            n_system.append("c1.vocabulary_id")
            n_code.append("c1.concept_code")
            n_name.append("c1.concept_name")
        if src_v.split(".")[1] in has:
            sv_name = _literal(codes.source_value_system or "source_value")
            n_system.append(f"CASE WHEN {src_v} IS NOT NULL THEN {sv_name} END")
            n_code.append(src_v)
            n_name.append(src_v)
        unmapped.append(
            _fetch(
                conn,
                cte
                + (
                    f"SELECT m.person_id AS key, COALESCE({', '.join(n_system)}, 'concept_id') AS system, "
                    f"COALESCE({', '.join(n_code)}, CAST({std} AS VARCHAR)) AS code, "
                    f"MIN(COALESCE({', '.join(n_name)})) AS display, COUNT(*) AS rows "
                    f"FROM {rest}{other}{named}"
                    f"WHERE NOT {is_found} AND {in_window} GROUP BY 1, 2, 3"
                ),
            ).assign(hint=hint)
        )
        # mapped rows outside the window: counted where they are, never sent
        second = (
            f"UNION ALL SELECT m.person_id, {when}, COALESCE({', '.join(section)}) FROM {rest} {other}WHERE {is_found} "
            if found
            else ""
        )
        outside.append(
            _fetch(
                conn,
                cte
                + (
                    f"SELECT SUM(CASE WHEN x.w < inf.t0 THEN 1 ELSE 0 END) AS early, "
                    f"SUM(CASE WHEN x.w > inf.t0 THEN 1 ELSE 0 END) AS late FROM ("
                    f"SELECT m.person_id, {when} AS w, cs.section AS section {base}JOIN mapped cs ON {std} = "
                    f"cs.concept_id "
                    f"{second}) x JOIN inf ON x.person_id = inf.person_id "
                    f"WHERE NOT (x.w {window}) AND (x.section IS NULL OR x.section NOT {untimed})"
                ),
            )
        )
    events = parts.frame()
    guessed_rows = None
    if timezone != "UTC":  # a local time the clock change made ambiguous, or skipped: read as summer time or moved
        local = pd.to_datetime(events["when"])
        strict = local.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        shifted = (strict.isna() & local.notna()).to_numpy()
        if shifted.any():
            guessed_rows = pd.DataFrame(
                {
                    "src": events.loc[shifted, "src"].astype("string").to_numpy(),
                    "ref": events.loc[shifted, "ref"].astype("string").to_numpy(),
                    "column": "datetime",
                    "reason": "local time ambiguous or skipped at a daylight-saving change (read as summer time, or "
                    "moved forward)",
                }
            )
    for col in ("when", "end"):
        events[col] = _utc(events[col], timezone)
    patients = _persons(persons, timezone)
    by_patient = pd.concat(unmapped, ignore_index=True) if unmapped else None
    unmapped_frame = None
    if by_patient is not None:
        by_patient["rows"] = by_patient["rows"].astype(int)
        unmapped_frame = by_patient
    early = int(sum(float(o["early"].fillna(0).iloc[0]) for o in outside))
    late = int(sum(float(o["late"].fillna(0).iloc[0]) for o in outside))
    # rows outside a patient's window stay in the database: counted there, never sent (years of history)
    outside_counts = {
        f"timed more than {WINDOW_BEFORE_H / 24:g} days before the infusion": early,
        f"timed more than {days:g} days after the infusion (--days)": late,
    }
    guessed = {} if guessed_rows is None else {str(guessed_rows["reason"].iat[0]): len(guessed_rows)}
    return SourceRecords(
        "omop",
        patients,
        events,
        refused_counts={k: v for k, v in outside_counts.items() if v},
        unmapped=unmapped_frame,
        guessed=guessed,
        guessed_rows=guessed_rows,
        extra_read=(int(unmapped_frame["rows"].sum()) if unmapped_frame is not None else 0) + early + late,
    )


def _persons(persons: pd.DataFrame, timezone: str) -> pd.DataFrame:
    sex = persons["gender_concept_id"].map({v: k for k, v in GENDER.items()})
    birth = pd.to_datetime(persons["birth_datetime"])
    ymd = pd.to_datetime(
        pd.DataFrame(
            {
                "year": persons["year_of_birth"],
                "month": persons["month_of_birth"].fillna(7),
                "day": persons["day_of_birth"].fillna(1),
            }
        ),
        errors="coerce",
    )
    birth = birth.fillna(ymd)
    source_id = persons["source_id"].astype("string")
    return pd.DataFrame(
        {
            "key": persons["key"].to_numpy(),
            "patient_id": source_id.fillna(persons["key"].astype("string")).to_numpy(),
            "birth": _utc(birth, timezone).to_numpy(),
            "sex": sex.to_numpy(),
            "src": "person_id ",
            "ref": persons["key"].astype("string").to_numpy(),
        }
    ).astype({"birth": "datetime64[ns, UTC]"})


def import_omop(
    url: str,
    schema: str | None = None,
    codes: CodeMap | None = None,
    days: float = DEFAULT_DAYS,
    timezone: str = "UTC",
    require_grades: bool = False,
) -> tuple[Cohort, object]:
    """Import the CAR-T patients of an OMOP CDM v5.4 database as a validated cohort.

    Parameters
    ----------
    url : SQLAlchemy URL: ``duckdb:///cdm.duckdb`` or ``postgresql+psycopg://user@host/db``.
    schema : the CDM schema (``cdm``, say); default the connection's.
    codes : the code map (default: crsml's LOINC/RxNorm/HCPCS/ICD-10-CM map).
    days : days after the infusion to import.
    timezone : the zone of the CDM's datetimes (OMOP stores them without one).
    require_grades : refuse the import when any patient's CRS grades would be derived from its
        vitals (no recorded grade or CRS condition mapped).

    Returns
    -------
    (Cohort, ImportReport)
    """
    codes = codes or CodeMap.load()
    records = read_omop(url, schema, codes, days, timezone)
    return assemble(
        records,
        codes,
        days,
        meta={"source": "omop", "created_by": "crsml import-omop", "adapter": "omop", "omop_schema": schema or ""},
        require_grades=require_grades,
    )


# ----------------------------------------------------------------------------------------- export


def _concepts(codes: CodeMap) -> pd.DataFrame:
    e = codes.entries
    rows = pd.DataFrame(
        {
            "vocabulary_id": e["system"],
            "concept_code": e["code"],
            "concept_name": e["target"].astype(str),
            "domain_id": e["section"].map(_DOMAIN),
        }
    )
    units = sorted(set(codes.ucum.values()))
    rows = pd.concat(
        [
            rows,
            pd.DataFrame({"vocabulary_id": "UCUM", "concept_code": units, "concept_name": units, "domain_id": "Unit"}),
        ],
        ignore_index=True,
    )
    rows = rows.drop_duplicates(["vocabulary_id", "concept_code"]).reset_index(drop=True)
    rows.insert(0, "concept_id", np.arange(LOCAL_CONCEPT_START, LOCAL_CONCEPT_START + len(rows)))
    fixed = pd.DataFrame(
        [(v, k.upper(), "Gender", "Gender", k.upper()) for k, v in GENDER.items()]
        + [(v, k, "Meas Value", "Meas Value Operator", k) for k, v in OPERATORS.items()]
        + [(EHR_TYPE, "EHR", "Type Concept", "Type Concept", "EHR")],
        columns=["concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_code"],
    )
    out = pd.concat([rows, fixed], ignore_index=True)
    out["concept_class_id"] = out["domain_id"].fillna("Observation")
    out["domain_id"] = out["domain_id"].fillna("Observation")
    out["standard_concept"] = "S"
    out["valid_start_date"] = pd.Timestamp("1970-01-01").date()
    out["valid_end_date"] = pd.Timestamp("2099-12-31").date()
    out["invalid_reason"] = None
    return out


def _stamp(t0: pd.Series, hours) -> pd.Series:
    return (t0 + pd.to_timedelta(np.asarray(hours, dtype=float), unit="h")).dt.round("us")


def omop_tables(
    cohort: Cohort, codes: CodeMap | None = None, start: str = "2024-01-01 08:00"
) -> dict[str, pd.DataFrame]:
    """The cohort as CDM v5.4 tables (frames), ready to be written to any database.

    Each patient's infusion is put at ``start`` plus one day per patient (the cohort's times are
    relative; a CDM needs dates); everything else keeps its hours since infusion exactly.
    """
    codes = codes or CodeMap.load()
    concepts = _concepts(codes)
    cid = {(r.vocabulary_id, r.concept_code): int(r.concept_id) for r in concepts.itertuples()}

    def concept(section: str, target: str) -> int:
        return cid[codes.first_code(section, target)]

    def unit_id(unit: str) -> int | None:
        return cid.get(("UCUM", codes.ucum_code(unit)))

    p = cohort.patients.reset_index(drop=True)
    n = len(p)
    person_id = np.arange(1, n + 1)
    t0 = pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.arange(n), unit="D"))
    key = dict(zip(p["patient_id"].astype(str), range(n), strict=True))
    age = pd.to_numeric(p.get("age_years", pd.Series(np.nan, index=p.index)), errors="coerce")
    birth = _stamp(t0, -age.fillna(40).to_numpy() * 365.25 * 24)
    tables: dict[str, pd.DataFrame] = {"concept": concepts}
    tables["person"] = pd.DataFrame(
        {
            "person_id": person_id,
            "gender_concept_id": p["sex"].map(GENDER).fillna(0).astype(int),
            "year_of_birth": birth.dt.year,
            "month_of_birth": birth.dt.month,
            "day_of_birth": birth.dt.day,
            "birth_datetime": birth.where(age.notna().to_numpy()),
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "person_source_value": p["patient_id"].astype(str),
            "gender_source_value": p["sex"],
        }
    )
    tables["observation_period"] = pd.DataFrame(
        {
            "observation_period_id": person_id,
            "person_id": person_id,
            "observation_period_start_date": (t0 - pd.Timedelta(days=60)).dt.date,
            "observation_period_end_date": (t0 + pd.Timedelta(days=400)).dt.date,
            "period_type_concept_id": EHR_TYPE,
        }
    )
    tables["procedure_occurrence"] = pd.DataFrame(
        {
            "procedure_occurrence_id": person_id,
            "person_id": person_id,
            "procedure_concept_id": concept("products", "cart_unspecified"),
            "procedure_date": t0.dt.date,
            "procedure_datetime": t0,
            "procedure_type_concept_id": EHR_TYPE,
            "quantity": 1,
            "procedure_source_value": "CAR-T infusion",
        }
    )

    def at(frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
        idx = frame["patient_id"].astype(str).map(key).to_numpy()
        return person_id[idx], _stamp(t0.iloc[idx].reset_index(drop=True), frame["time_h"].to_numpy())

    m = cohort.measurements.reset_index(drop=True)
    pid, when = at(m)
    analyte_concept = {a: concept("analytes", a) for a in m["analyte"].unique()}
    qual = m["qualifier"] if "qualifier" in m else pd.Series(pd.NA, index=m.index)
    meas = [
        pd.DataFrame(
            {
                "person_id": pid,
                "measurement_concept_id": m["analyte"].map(analyte_concept).to_numpy(),
                "measurement_datetime": when,
                "operator_concept_id": qual.map(OPERATORS).to_numpy(),
                "value_as_number": m["value"].to_numpy(dtype=float),
                "unit_concept_id": m["analyte"].map(lambda a: unit_id(CANONICAL_UNITS[a])).to_numpy(),
                "measurement_source_value": m["analyte"].to_numpy(),
                "unit_source_value": m["analyte"].map(CANONICAL_UNITS).to_numpy(),
            }
        )
    ]
    v = cohort.vitals.reset_index(drop=True)
    obs = []
    drugs = []
    devices = pd.DataFrame(columns=["person_id", "start"])
    if len(v):
        vid, vwhen = at(v)
        for col, unit in (("temp_c", "Cel"), ("o2_flow_lpm", "L/min")):
            ok = v[col].notna().to_numpy() if col in v else np.zeros(len(v), dtype=bool)
            if ok.any():
                meas.append(
                    pd.DataFrame(
                        {
                            "person_id": vid[ok],
                            "measurement_concept_id": concept("vitals", col),
                            "measurement_datetime": vwhen[ok].to_numpy(),
                            "value_as_number": v.loc[ok, col].to_numpy(dtype=float),
                            "unit_concept_id": unit_id(unit),
                            "measurement_source_value": col,
                            "unit_source_value": unit,
                        }
                    )
                )
        low = v["hypotension"].fillna(False).to_numpy(dtype=bool)
        obs.append(
            pd.DataFrame(
                {
                    "person_id": vid[low],
                    "observation_concept_id": concept("vitals", "hypotension"),
                    "observation_datetime": vwhen[low].to_numpy(),
                    "observation_source_value": "hypotension",
                }
            )
        )
        n_press = v["vasopressors"].fillna(0).to_numpy(dtype=int)
        for k, drug in enumerate(VASOPRESSOR_ORDER):
            on = n_press > k
            drugs.append(
                pd.DataFrame(
                    {
                        "person_id": vid[on],
                        "drug_concept_id": concept("vasopressors", drug),
                        "start": vwhen[on].to_numpy(),
                        "quantity": np.nan,
                        "drug_source_value": drug,
                    }
                )
            )
        vaso = v["vasopressin"].fillna(False).to_numpy(dtype=bool)
        drugs.append(
            pd.DataFrame(
                {
                    "person_id": vid[vaso],
                    "drug_concept_id": concept("vasopressors", "vasopressin"),
                    "start": vwhen[vaso].to_numpy(),
                    "quantity": np.nan,
                    "drug_source_value": "vasopressin",
                }
            )
        )
        dev = v["o2_device"].astype("string").fillna("none")
        on = (dev != "none").to_numpy()
        devices = pd.DataFrame(
            {
                "person_id": vid[on],
                "device_concept_id": dev[on].map(lambda d: concept("devices", d)).to_numpy(dtype=int),
                "start": vwhen[on].to_numpy(),
                "device_source_value": dev[on].to_numpy(),
            }
        )
    tx = cohort.treatments.reset_index(drop=True)
    if len(tx):
        tid, twhen = at(tx)
        drugs.append(
            pd.DataFrame(
                {
                    "person_id": tid,
                    "drug_concept_id": tx["drug"].map(lambda d: concept("drugs", d)).to_numpy(),
                    "start": twhen.to_numpy(),
                    "quantity": tx["dose"].to_numpy(dtype=float),
                    "drug_source_value": tx["drug"].to_numpy(),
                    "dose_unit_source_value": tx["dose_unit"].to_numpy() if "dose_unit" in tx else None,
                }
            )
        )
    crs = cohort.crs.reset_index(drop=True)
    if len(crs):
        cid_, cwhen = at(crs)
        obs.append(
            pd.DataFrame(
                {
                    "person_id": cid_,
                    "observation_concept_id": concept("crs", "grade"),
                    "observation_datetime": cwhen.to_numpy(),
                    "value_as_number": crs["grade"].to_numpy(dtype=float),
                    "observation_source_value": "ASTCT CRS grade",
                }
            )
        )
    cols = [
        c
        for c in p.columns
        if c not in ("patient_id", "age_years", "sex")
        and c in set(codes.entries.loc[codes.entries["section"] == "patients", "target"])
    ]
    for col in cols:
        ok = p[col].notna().to_numpy()
        if col == "weight_kg":
            meas.append(
                pd.DataFrame(
                    {
                        "person_id": person_id[ok],
                        "measurement_concept_id": concept("patients", col),
                        "measurement_datetime": t0[ok].to_numpy(),
                        "value_as_number": p.loc[ok, col].to_numpy(dtype=float),
                        "unit_concept_id": unit_id("kg"),
                        "measurement_source_value": col,
                        "unit_source_value": "kg",
                    }
                )
            )
            continue
        values = p.loc[ok, col]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        obs.append(
            pd.DataFrame(
                {
                    "person_id": person_id[ok],
                    "observation_concept_id": concept("patients", col),
                    "observation_datetime": t0[ok].to_numpy(),
                    "value_as_number": values.astype(float).to_numpy() if numeric else np.nan,
                    "value_as_string": None if numeric else values.astype(str).to_numpy(),
                    "observation_source_value": col,
                }
            )
        )
    measurement = pd.concat(meas, ignore_index=True)
    measurement.insert(0, "measurement_id", np.arange(1, len(measurement) + 1))
    measurement["measurement_date"] = pd.to_datetime(measurement["measurement_datetime"]).dt.date
    measurement["measurement_type_concept_id"] = EHR_TYPE
    tables["measurement"] = measurement
    observation = pd.concat(obs, ignore_index=True) if obs else pd.DataFrame(columns=["person_id"])
    observation.insert(0, "observation_id", np.arange(1, len(observation) + 1))
    observation["observation_date"] = pd.to_datetime(observation["observation_datetime"]).dt.date
    observation["observation_type_concept_id"] = EHR_TYPE
    tables["observation"] = observation
    drug = pd.concat(drugs, ignore_index=True) if drugs else pd.DataFrame(columns=["person_id", "start"])
    tables["drug_exposure"] = _point_exposure(drug, "drug")
    tables["device_exposure"] = _point_exposure(devices, "device")
    tables["condition_occurrence"] = _crs_conditions(cohort, codes, cid, person_id, key, t0)
    return tables


def _point_exposure(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """An exposure charted at one time (its ``start``): it starts and ends then; keys from 1."""
    start_ts = pd.to_datetime(frame.pop("start"))
    frame.insert(0, f"{kind}_exposure_id", np.arange(1, len(frame) + 1))
    for edge in ("start", "end"):
        frame[f"{kind}_exposure_{edge}_date"] = start_ts.dt.date
        frame[f"{kind}_exposure_{edge}_datetime"] = start_ts
    frame[f"{kind}_type_concept_id"] = EHR_TYPE
    return frame


def _crs_conditions(
    cohort: Cohort, codes: CodeMap, cid: dict, person_id: np.ndarray, key: dict, t0: pd.Series
) -> pd.DataFrame:
    """One ICD-10-CM CRS condition per patient with CRS: its maximum grade, from onset to resolution."""
    ep = crs_episodes(cohort.crs_grades()) if len(cohort.crs) or len(cohort.vitals) else pd.DataFrame()
    if ep.empty:
        return pd.DataFrame()
    ep = ep[ep["max_grade"] >= 1].reset_index()
    if ep.empty:
        return pd.DataFrame()
    by_grade = {
        int(g): cid[(s, c)]
        for s, c, g in zip(
            *[codes.entries.loc[codes.entries["section"] == "conditions", k] for k in ("system", "code", "grade")],
            strict=True,
        )
    }
    idx = ep["patient_id"].astype(str).map(key).to_numpy()
    start = _stamp(t0.iloc[idx].reset_index(drop=True), ep["onset_h"].to_numpy())
    end = _stamp(t0.iloc[idx].reset_index(drop=True), ep["resolution_h"].to_numpy())
    return pd.DataFrame(
        {
            "condition_occurrence_id": np.arange(1, len(ep) + 1),
            "person_id": person_id[idx],
            "condition_concept_id": ep["max_grade"].astype(int).map(by_grade).to_numpy(),
            "condition_start_date": start.dt.date,
            "condition_start_datetime": start,
            "condition_end_date": end.dt.date,
            "condition_end_datetime": end,
            "condition_type_concept_id": EHR_TYPE,
            "condition_source_value": "CRS",
        }
    )


def export_omop(
    cohort: Cohort, url: str, codes: CodeMap | None = None, schema: str | None = None, replace: bool = False
) -> dict[str, int]:
    """Write a cohort as an OMOP CDM v5.4 database (``duckdb:///out.duckdb`` or a PostgreSQL URL).

    Returns the rows written per table. An existing CDM table is refused unless ``replace``.
    """
    import sqlalchemy as sa

    tables = omop_tables(cohort, codes)
    engine = _engine(url)
    written = {}
    try:
        with engine.begin() as conn:
            have = set(sa.inspect(conn).get_table_names(schema=schema))
            if (clash := sorted(have & set(CDM_TABLES))) and not replace:
                raise CohortError(f"OMOP database already holds {', '.join(clash)}; pass --replace to overwrite")
            if schema:
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {_qualified(schema, '')[:-1]}"))
            for name, ddl in CDM_TABLES.items():
                q = _qualified(schema, name)
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {q}"))
                conn.execute(sa.text(f"CREATE TABLE {q} ({ddl})"))
                frame = tables.get(name, pd.DataFrame())
                columns = [c.split()[0] for c in ddl.split(", ")]
                frame = frame.reindex(columns=columns) if len(frame) else pd.DataFrame(columns=columns)
                ints = [c.split()[0] for c in ddl.split(", ") if c.split()[1].lower() == "integer"]
                frame = frame.astype({c: "Int64" for c in ints if c in frame and frame[c].dtype != "int64"})
                _insert(conn, q, frame)
                written[name] = len(frame)
    except (sa.exc.DBAPIError, *_driver_errors()) as exc:
        raise CohortError(f"OMOP database: cannot write ({type(getattr(exc, 'orig', exc)).__name__})") from None
    finally:
        engine.dispose()
    return written


def _insert(conn, table: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    raw = conn.connection.dbapi_connection
    if "duckdb" in type(raw).__module__:
        raw.register("_crsml_frame", frame)
        raw.execute(f"INSERT INTO {table} SELECT * FROM _crsml_frame")
        raw.unregister("_crsml_frame")
        return
    if "psycopg" in type(raw).__module__:
        cols = ", ".join(frame.columns)
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None):
                copy.write_row(row)
        return
    frame.to_sql(table, conn, if_exists="append", index=False, chunksize=10_000)
