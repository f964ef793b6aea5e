"""Checks of a table file before it is parsed, so that a file crsml cannot read as it should is
one line naming the file (and the line) and never echoing its content: text that is not UTF-8,
a header with a column twice or holding ``;`` / tabs (another separator), a row with the wrong
number of fields or an unterminated quote, a broken or looping link, two formats of one table."""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crsml.errors import CohortError

SUFFIXES = (".parquet", ".csv", ".csv.gz")
_BLOCK = 16 << 20
#: ``DataFrame.attrs`` key of a table read from a CSV file some of whose rows had the wrong number
#: of fields: {0-based data row: why}. Each such row holds only its patient id; validation makes
#: that patient invalid with the reason and leaves every other patient as it is.
MALFORMED_ROWS = "crsml_malformed_rows"


def find_table_file(directory: Path, name: str) -> Path | None:
    """The file of table ``name`` in a cohort directory, or None; two formats of one table, or a
    link that leads nowhere (broken, or a loop), are refused in one line."""
    found = []
    for suffix in SUFFIXES:
        p = directory / f"{name}{suffix}"
        if os.path.lexists(p):
            if not p.exists():
                raise CohortError(f"table {name}: {p.name} is a link that leads nowhere (broken or a loop)")
            found.append(p)
    if len(found) > 1:
        raise CohortError(f"table {name}: {' and '.join(p.name for p in found)} are both in {directory}; keep one")
    if found and not found[0].is_file():
        raise CohortError(f"table {name}: {found[0].name} is not a file")
    return found[0] if found else None


def check_csv(path: Path, name: str) -> None:
    """Refuse a CSV file that is not UTF-8 (with or without BOM), or whose header repeats a column
    or holds another separator, naming the file and line."""
    if path.suffix == ".gz":
        return  # compressed: the reader reports what it finds
    if path.stat().st_size == 0:
        raise CohortError(f"table {name}: {path.name} is empty (not even a header line)")
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    try:
        with path.open("rb") as f:
            while True:
                block = f.read(_BLOCK)
                try:
                    decoder.decode(block, final=not block)
                except UnicodeDecodeError as exc:
                    line = lines + block[: exc.start].count(b"\n")
                    raise CohortError(
                        f"table {name}: {path.name} line {line}: not UTF-8 text; save the file as "
                        "UTF-8 (crsml reads UTF-8, with or without BOM)"
                    ) from None
                if not block:
                    break
                lines += block.count(b"\n")
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except OSError as exc:
        raise CohortError(f"table {name}: cannot read {path.name} ({exc.strerror or type(exc).__name__})") from None
    check_columns(header, path, name, where="line 1")
    names = [h.strip() for h in header]
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        sep = next(s for s in (";", "\t", "|") if s in names[0])
        shown = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}[sep]
        raise CohortError(
            f"table {name}: {path.name} has one column whose name holds {shown}: it seems separated "
            "by them; crsml reads comma-separated files"
        )


def check_columns(columns: Sequence[object], path: Path, name: str, where: str = "") -> None:
    """Refuse a table whose columns repeat a name (after surrounding spaces)."""
    names = [str(c).strip() for c in columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        at = f" {where}" if where else ""
        raise CohortError(f"table {name}: {path.name}{at}: column {', '.join(twice)} appears more than once")


def unreadable(path: Path, name: str, exc: BaseException) -> CohortError:
    """The one line for a table file a reader failed on, never quoting its content: a Parquet file
    it cannot read, the first malformed line of a CSV file, or the file's I/O error."""
    if isinstance(exc, (OSError, EOFError)):
        return CohortError(
            f"table {name}: cannot read {path.name} ({getattr(exc, 'strerror', None) or 'damaged or not CSV text'})"
        )
    if path.suffix == ".parquet":
        return CohortError(f"table {name}: cannot read {path.name} as Parquet ({type(exc).__name__})")
    return locate_parse_error(path, name)


def ids_as_text(path: Path | io.BytesIO, column: str) -> pd.Series:
    """A CSV file's id column exactly as written (``NA`` stays ``NA``, a blank stays blank): the
    readers' missing-value spellings must never turn a patient's id into a missing one."""
    ids = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            include_columns=[column], column_types={column: pa.string()}, strings_can_be_null=False
        ),
    )
    return pd.Series(
        ids.column(column).to_pandas(types_mapper=pd.ArrowDtype).astype("string").to_numpy(), dtype="string"
    )


def locate_parse_error(path: Path, name: str) -> CohortError:
    """The first line of a CSV file that cannot be parsed, and why, without its content."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    reader = None
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, [])
            for row in reader:
                if row and len(row) != len(header):  # a blank line is skipped, as the reader does
                    return CohortError(
                        f"table {name}: {path.name} line {reader.line_num}: {len(row)} fields where "
                        f"the header has {len(header)}"
                    )
    except (OSError, UnicodeDecodeError, EOFError):
        return CohortError(f"table {name}: cannot read {path.name} (damaged or not CSV text)")
    except csv.Error as exc:
        text = str(exc).lower()
        what = (
            "a quote is not closed"
            if "end of data" in text or "eof" in text or "quot" in text
            else f"a cell longer than {csv.field_size_limit():,} characters (not a value crsml reads)"
            if "field limit" in text
            else "malformed CSV"
        )
        return CohortError(f"table {name}: {path.name} near line {reader.line_num if reader else 1}: {what}")
    return CohortError(f"table {name}: cannot parse {path.name}")


def salvage_csv(path: Path, name: str, id_column: str = "patient_id") -> tuple[bytes, dict[int, str]]:
    """A CSV file some of whose rows have the wrong number of fields, rewritten so that each such
    row keeps only its patient id (every other cell blank), with the 0-based data row of each and
    why. Row numbers stay those of the file, so problems found later still name the right row.

    Refused in one line, as before: a malformed row whose patient id cannot be read (no id
    column, the row too short to reach it, or a blank id), and an unterminated quote, which
    swallows the rest of the file. The standard ``csv`` module is used because pyarrow's
    ``invalid_row_handler`` can only skip a row (shifting every later row number) and pandas'
    fast readers silently pad a short row with missing values.
    """
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    malformed: dict[int, str] = {}
    reader = None
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, [])
            writer.writerow(header)
            idx = [h.strip() for h in header].index(id_column) if id_column in [h.strip() for h in header] else None
            data_row = 0
            for row in reader:
                if not row:  # a blank line is skipped, as the table readers do
                    continue
                if len(row) != len(header):
                    pid = row[idx].strip() if idx is not None and idx < len(row) else ""
                    if not pid:
                        raise CohortError(
                            f"table {name}: {path.name} line {reader.line_num}: {len(row)} fields where "
                            f"the header has {len(header)}, and no patient id to set aside"
                        )
                    malformed[data_row] = f"{len(row)} fields where the header has {len(header)}"
                    row = ["" if i != idx else row[idx] for i in range(len(header))]
                writer.writerow(row)
                data_row += 1
    except (OSError, UnicodeDecodeError, EOFError, csv.Error):
        raise locate_parse_error(path, name) from None
    return out.getvalue().encode("utf-8"), malformed


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Write a file under a temporary name beside ``path`` and rename it into place only when the
    block finishes: a reader (or a crash) never sees a partial file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """The same for a directory: written beside ``path``, swapped in when complete (an earlier
    directory at ``path`` is replaced only then)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        if old.exists() and not path.exists():  # stopped between the two renames: the earlier one stays
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def check_output(path: str | Path, kind: str = "file", option: str = "--out", example: str = "scores.csv") -> None:
    """Refuse, before any work, an output crsml could not write: under a regular file, a folder
    where a file is written (``kind="file"``) or a file where a folder is (``kind="dir"``), or in
    a folder this user cannot write to. Each is one line saying what to do (``example``: a file
    name to suggest inside a folder given for a file)."""
    p = Path(path)
    if kind == "file" and p.is_dir():
        raise CohortError(f"{option} {p} is a folder; give a file name inside it ({p / example}, say)")
    if kind == "dir" and p.exists() and not p.is_dir():
        raise CohortError(f"{option} {p} is a file; give a folder to write into")
    ancestor = p.parent if kind == "file" or not p.exists() else p
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CohortError(f"{option} {p}: {ancestor} is a file, not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CohortError(f"{option} {p}: cannot write in {ancestor} (no permission); choose another path")


def refuse_inside(out: str | Path, cohort_dir: str | Path, option: str = "--out") -> None:
    """Refuse an output path inside the input cohort directory (it could overwrite a table)."""
    o, c = Path(out).resolve(), Path(cohort_dir).resolve()
    if o == c or c in o.parents:
        raise CohortError(f"{option} {out} is inside the input cohort {cohort_dir}; write it elsewhere")


def table_batches(path: Path, batch_rows: int = 1 << 18) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Record batches of one table file, read as :func:`read_table` reads it whole (the same
    missing-value spellings, ids as written): Parquet as stored, CSV with every column as text (a
    later block holding text in a numeric column must not fail the read; validation types it).
    Memory follows ``batch_rows``, not the file: ``crsml score`` streams any input through it."""
    if path.suffix == ".parquet":
        f = pq.ParquetFile(path)
        return f.schema_arrow, f.iter_batches(batch_size=batch_rows)
    with pacsv.open_csv(path) as probe:
        names = probe.schema.names
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=32 << 20),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names}, strings_can_be_null=False),
    )
    return reader.schema, (_nulls_but_ids(b) for b in reader)


def _null_tokens() -> pa.Array:
    """The spellings of a missing value that the table reader (pandas) uses, so that validate and
    score read a cohort alike."""
    try:
        from pandas._libs.parsers import STR_NA_VALUES

        tokens = sorted(STR_NA_VALUES)
    except ImportError:  # pragma: no cover - pandas moved it
        tokens = list(pacsv.ConvertOptions().null_values)
    return pa.array(tokens, pa.string())


_NULL_TOKENS = _null_tokens()


def _nulls_but_ids(batch: pa.RecordBatch) -> pa.RecordBatch:
    """CSV null spellings (``NA``, blank ...) as nulls in every column but ``patient_id``, which
    stays the text it is (a patient may be called ``NA``; a blank id is reported by validation)."""
    cols = [
        c if name == "patient_id" else pc.if_else(pc.is_in(c, value_set=_NULL_TOKENS), pa.scalar(None, pa.string()), c)
        for name, c in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema)
