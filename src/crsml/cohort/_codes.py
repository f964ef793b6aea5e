"""Integer codes of string keys, computed in Arrow's hash kernels (no Python objects)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def index_in(values: pd.Series, universe: pd.Index | list[str]) -> np.ndarray:
    """Position of each value in ``universe`` (-1 when absent or missing)."""
    arr = pa.array(values.astype("string").to_numpy(dtype=object)) if not _is_arrow(values) else _arrow(values)
    value_set = pa.array(list(universe), type=pa.large_string() if pa.types.is_large_string(arr.type) else pa.string())
    if not arr.type.equals(value_set.type):
        arr = arr.cast(value_set.type)
    out = pc.index_in(arr, value_set=value_set)
    return out.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def has_rows(row_ids: pd.Series, universe: pd.Index | list[str]) -> np.ndarray:
    """For each patient in ``universe``: whether any of ``row_ids`` names it."""
    universe = pd.Index(universe).astype("string")
    hit = np.zeros(len(universe), dtype=bool)
    pos = index_in(row_ids, universe)
    hit[pos[pos >= 0]] = True
    return hit


def _is_arrow(values: pd.Series) -> bool:
    return hasattr(values.array, "_pa_array")


def _arrow(values: pd.Series) -> pa.Array:
    chunked = values.array._pa_array
    return chunked.combine_chunks() if isinstance(chunked, pa.ChunkedArray) else chunked


def patient_id_key(ids: pd.Series) -> pd.Series:
    """The identity of each patient id, whatever its spelling: surrounding spaces and letter case
    ignored, and numbers by value (``1``, ``1.0`` and ``001`` are one key). Blank ids have none.

    Two different spellings of one key across tables are reported, never joined silently.
    """
    codes, uniques = pd.factorize(ids.astype("string"), use_na_sentinel=True)
    u = pd.Series(uniques, dtype="string").str.strip().str.casefold()
    u = u.where(u != "")
    num = pd.to_numeric(u, errors="coerce").to_numpy(dtype=float)
    whole = _whole_numbers(num)
    with np.errstate(invalid="ignore"):
        other = np.isfinite(num) & (np.abs(num) < _EXACT) & ~whole
    key = u.to_numpy(dtype=object, na_value=None)
    key[whole] = num[whole].astype(np.int64).astype(str)
    key[other] = [repr(float(x)) for x in num[other]]
    out = np.append(key, [None])[codes]
    return pd.Series(out, index=ids.index, dtype="string")


def id_text(ids: pd.Series) -> pd.Series:
    """Identifiers as text. A numeric column (Parquet) writes whole numbers without a decimal part,
    so ids 1, 2 stored as floats (because one is missing) read ``1``, ``2`` as in the other tables."""
    if pd.api.types.is_float_dtype(ids):
        values = ids.to_numpy(dtype=float)
        whole = _whole_numbers(values)
        text = ids.astype("string")
        text[whole] = values[whole].astype(np.int64).astype(str)
        return text
    return ids.astype("string")


#: numbers at or beyond this cannot tell two ids apart as floats: such ids are compared as text
_EXACT = 1e15


def _whole_numbers(values: np.ndarray) -> np.ndarray:
    """Which values are whole numbers small enough to be written exactly as integers."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) < _EXACT) & (values == np.round(values))
