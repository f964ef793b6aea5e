"""Input tables split into groups of patients and read one group at a time.

A cohort directory is streamed once, in record batches, into a temporary Parquet dataset
partitioned by patient group (pyarrow's dataset writer); each group is then read on its own, so
memory follows the group size, not the input size. Tables already in memory are split the same
way. Every row keeps its row number in the user's file, so a problem found later names the
right row. Rows whose patient is not in the patients table are left out of every group and
their patients reported once, with the first such row.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from crsml.cohort import (
    MALFORMED_ROWS,
    ValidationProblem,
    check_columns,
    check_csv,
    find_table_file,
    patient_id_key,
    read_table,
    salvage_csv,
    table_batches,
    unreadable,
)
from crsml.errors import CohortError

TABLES = ("measurements", "vitals", "treatments", "crs")
BATCH_ROWS = 1 << 18


@dataclass
class RawChunk:
    """One group of patients: raw tables and, per table, each row's 0-based row in the input."""

    tables: dict[str, pd.DataFrame | None]
    rows: dict[str, np.ndarray]


@dataclass
class PatientChunks:
    """Patients in input order, split into consecutive groups of ``chunk_patients``.

    ``orphans`` maps ids that appear only in the other tables to the first row naming them.
    """

    patients: pd.DataFrame | None
    ids: pd.Index
    chunk_patients: int
    orphans: dict[str, ValidationProblem] = field(default_factory=dict)
    _memory: dict[str, pd.DataFrame | None] | None = None
    _dir: Path | None = None
    _schemas: dict[str, pa.Schema | None] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory | None = None
    _groups: dict[str, np.ndarray] = field(default_factory=dict)  # group of every row, per table in memory
    _keys: tuple[pd.Index, np.ndarray] | None = None  # patient id keys and their first patients
    _malformed: dict[str, dict[int, str]] = field(default_factory=dict)  # table -> {file row: why}
    _n_rows: dict[str, int] = field(default_factory=dict)  # rows read per table

    def __post_init__(self) -> None:
        if self.patients is not None:  # a table without patient_id goes whole to the first group
            has_id = "patient_id" in self.patients
            self._groups["patients"] = (
                self.chunk_of(self.patients["patient_id"]) if has_id else np.zeros(len(self.patients), dtype=np.int64)
            )

    def empty_tables(self) -> set[str]:
        """The tables (of ``measurements``, ``vitals``, ``treatments``, ``crs``) with no row or no file."""
        return {name for name in TABLES if not self._n_rows.get(name, 0)}

    @property
    def n_chunks(self) -> int:
        return max(1, -(-len(self.ids) // self.chunk_patients))

    def chunk_of(self, pids: pd.Series) -> np.ndarray:
        """Group of each row's patient: -1 for ids not in the patients table, 0 for a missing id
        (so the validation of the first group reports it)."""
        # each distinct id looked up once, by its key: another spelling of a patient's id (spaces,
        # case, number format) goes to that patient's group, where validation reports the clash
        codes, uniques = pd.factorize(patient_id_key(pids.astype("string")))
        pos = (
            self._key_index().get_indexer(pd.Index(uniques, dtype="string"))
            if len(uniques)
            else np.zeros(0, dtype=np.int64)
        )
        g = np.zeros(len(codes), dtype=np.int64)  # a missing or blank id (code -1) stays in group 0
        known = codes >= 0
        found = np.asarray(pos, dtype=np.int64)[codes[known]]
        g[known] = np.where(found >= 0, found // self.chunk_patients, -1)
        return g

    def _key_index(self) -> pd.Index:
        """Key of every patient id -> the position of the first patient with that key."""
        if self._keys is None:
            keys = patient_id_key(pd.Series(self.ids, dtype="string"))
            first = ~keys.duplicated()
            self._keys = (pd.Index(keys[first].to_numpy(), dtype="string"), np.flatnonzero(first.to_numpy()))
        return _Positions(*self._keys)

    def _note_orphans(self, table: str, pids: pd.Series, group: np.ndarray, first_row: int) -> None:
        lost = np.flatnonzero(group < 0)
        if not len(lost):
            return
        ids, first = np.unique(pids.to_numpy(dtype=object)[lost].astype(str), return_index=True)
        for pid, i in sorted(zip(ids, first, strict=True), key=lambda t: t[1]):
            self.orphans.setdefault(
                pid,
                ValidationProblem(
                    table,
                    int(first_row + lost[i] + 1),
                    "patient_id",
                    "patient is not in the patients table",
                    "error",
                    pid,
                ),
            )

    @classmethod
    def from_tables(cls, raw: dict[str, pd.DataFrame | None], chunk_patients: int) -> PatientChunks:
        """Split tables held in memory (row numbers are positions in each frame)."""
        patients = _patients(raw.get("patients"))
        if patients is None:
            raise CohortError("table patients: missing (one row per patient); every cohort needs one")
        if not len(patients):
            raise CohortError("table patients: holds no patient (only its header); nothing to score")
        self = cls(patients, patient_ids(patients), chunk_patients, _memory={})
        for name in TABLES:
            t = raw.get(name)
            self._n_rows[name] = 0 if t is None else len(t)
            if t is not None and "patient_id" in t:
                t = t.reset_index(drop=True)
                self._groups[name] = self.chunk_of(t["patient_id"])
                self._note_orphans(name, t["patient_id"], self._groups[name], 0)
            self._memory[name] = t
        return self

    @classmethod
    def from_directory(cls, directory: str | Path, chunk_patients: int) -> PatientChunks:
        """Stream a cohort directory into a temporary dataset partitioned by patient group."""
        d = Path(directory)
        if not d.is_dir():
            raise CohortError(f"cohort directory not found: {d}")
        p = find_table_file(d, "patients")
        if p is None:
            raise CohortError(
                f"table patients: {d} has no patients file (patients.csv or patients.parquet, one row "
                "per patient); every cohort needs one"
            )
        patients = _patients(read_table(p, "patients"))
        if not len(patients):
            raise CohortError(f"table patients: {p.name} holds no patient (only its header); nothing to score")
        malformed = patients.attrs.pop(MALFORMED_ROWS, None)
        self = cls(patients, patient_ids(patients), chunk_patients)
        if malformed:
            self._malformed["patients"] = malformed
        self._tmp = tempfile.TemporaryDirectory(prefix="crsml-score-")
        self._dir = Path(self._tmp.name)
        for name in TABLES:
            path = find_table_file(d, name)
            self._schemas[name] = None if path is None else self._partition(name, path)
        return self

    def _partition(self, name: str, path: Path) -> pa.Schema:
        if path.suffix != ".parquet":
            check_csv(path, name)
        try:
            schema, batches = table_batches(path, BATCH_ROWS)
            check_columns(schema.names, path, name)
            return self._write_groups(name, path, schema, batches)  # a malformed row may come late in the file
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            if path.suffix == ".parquet" or not isinstance(exc, pa.ArrowInvalid):
                raise unreadable(path, name, exc) from None
        # rows with the wrong number of fields: each keeps its patient id, who is scored invalid
        data, malformed = salvage_csv(path, name)
        if not malformed:
            raise unreadable(path, name, pa.ArrowInvalid())
        assert self._dir is not None
        salvaged = self._dir / f"{name}-salvaged.csv"
        salvaged.write_bytes(data)
        del data
        self._malformed[name] = malformed
        shutil.rmtree(self._dir / name, ignore_errors=True)  # what the first try wrote
        self.orphans = {k: v for k, v in self.orphans.items() if v.table != name}
        schema, batches = table_batches(salvaged, BATCH_ROWS)
        return self._write_groups(name, path, schema, batches)

    def _write_groups(self, name: str, path: Path, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> pa.Schema:
        if "patient_id" not in schema.names:  # validation of the first group reports the missing column
            batches_all = list(batches)
            table = pa.Table.from_batches(batches_all, schema=schema) if batches_all else schema.empty_table()
            self._n_rows[name] = table.num_rows
            pq.write_table(
                table.append_column("_row", pa.array(np.arange(table.num_rows), pa.int64())),
                self._dir / f"{name}-all.parquet",
            )
            return schema

        def tagged() -> Iterator[pa.RecordBatch]:
            start = 0
            for b in batches:
                pids = pd.Series(b.column("patient_id").to_pandas(types_mapper=pd.ArrowDtype)).astype("string")
                group = self.chunk_of(pids)
                self._note_orphans(name, pids, group, start)
                keep = np.flatnonzero(group >= 0)
                rows = pa.array(start + keep, pa.int64())
                out = b.take(pa.array(keep)).append_column("_row", rows)
                yield out.append_column("_chunk", pa.array(group[keep].astype(np.int32)))
                start += b.num_rows
            self._n_rows[name] = start

        out_schema = schema.append(pa.field("_row", pa.int64())).append(pa.field("_chunk", pa.int32()))
        ds.write_dataset(
            tagged(),
            self._dir / name,
            schema=out_schema,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("_chunk", pa.int32())])),
            max_rows_per_group=BATCH_ROWS,
            existing_data_behavior="overwrite_or_ignore",
        )
        return schema

    def __iter__(self) -> Iterator[RawChunk]:
        for i in range(self.n_chunks):
            yield self.chunk(i)

    def chunk(self, i: int) -> RawChunk:
        tables: dict[str, pd.DataFrame | None] = {"patients": None}
        rows: dict[str, np.ndarray] = {}
        if self.patients is not None:
            rows["patients"] = np.flatnonzero(self._groups["patients"] == i)
            tables["patients"] = self.patients.iloc[rows["patients"]]
        for name in TABLES:
            tables[name], r = (self._memory_part if self._memory is not None else self._disk_part)(name, i)
            if r is not None:
                rows[name] = r
        for name, bad in self._malformed.items():  # file rows -> rows of this group
            if tables.get(name) is not None and name in rows:
                hit = np.flatnonzero(np.isin(rows[name], np.fromiter(bad, dtype=np.int64)))
                tables[name] = tables[name].reset_index(drop=True)
                tables[name].attrs = {MALFORMED_ROWS: {int(k): bad[int(rows[name][k])] for k in hit}}
        return RawChunk({k: (v.reset_index(drop=True) if v is not None else None) for k, v in tables.items()}, rows)

    def _memory_part(self, name: str, i: int) -> tuple[pd.DataFrame | None, np.ndarray | None]:
        t = self._memory.get(name) if self._memory is not None else None
        if t is None:
            return None, None
        if "patient_id" in t:
            sel = np.flatnonzero(self._groups[name] == i)
        else:  # the first group's validation reports the missing column
            sel = np.arange(len(t) if i == 0 else 0)
        return t.iloc[sel], sel

    def _disk_part(self, name: str, i: int) -> tuple[pd.DataFrame | None, np.ndarray | None]:
        schema = self._schemas.get(name)
        if schema is None:
            return None, None
        assert self._dir is not None
        if "patient_id" not in schema.names:
            t = pq.read_table(self._dir / f"{name}-all.parquet")
            if i > 0:
                t = t.slice(0, 0)
        else:
            part = self._dir / name / str(i)
            t = (
                ds.dataset(part, format="parquet").to_table()
                if part.exists()
                else schema.append(pa.field("_row", pa.int64())).empty_table()
            )
            t = t.sort_by("_row")
        df = t.to_pandas(types_mapper=_types_mapper)
        rows = df.pop("_row").to_numpy(dtype=np.int64)
        return df, rows

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PatientChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _types_mapper(t: pa.DataType):
    return pd.StringDtype() if pa.types.is_string(t) or pa.types.is_large_string(t) else None


def _patients(patients: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if patients is None else patients.reset_index(drop=True)


def patient_ids(patients: pd.DataFrame | None) -> pd.Index:
    """Distinct patient ids of a patients table (as validation reads them: without surrounding
    spaces; blanks left out), in order of first appearance."""
    if patients is None or "patient_id" not in patients:
        return pd.Index([], dtype="string")
    ids = patients["patient_id"].astype("string").str.strip()
    return pd.Index(pd.unique(ids[ids.notna() & (ids != "")].to_numpy()), dtype="string")


class _Positions:
    """``get_indexer`` over keys that maps to patient positions (a key's first patient)."""

    def __init__(self, keys: pd.Index, positions: np.ndarray) -> None:
        self.keys, self.positions = keys, positions

    def get_indexer(self, values: pd.Index) -> np.ndarray:
        found = self.keys.get_indexer(values)
        return np.where(found >= 0, self.positions[np.maximum(found, 0)], -1)
