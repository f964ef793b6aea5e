"""Integer codes of string keys, computed in Arrow's hash kernels (no Python objects)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def index_in(values: pd.Series, universe: pd.Index | list[str]) -> np.ndarray:
    """Position of each value in ``universe`` (-1 when absent or missing)."""
    if _is_arrow(values):
        arr = _arrow(values)
    else:  # a missing value (None, NaN or pd.NA) becomes Arrow's null, never a string
        arr = pa.array(values.astype("string").to_numpy(dtype=object, na_value=None), type=pa.string())
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


def distinct(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Integer codes (-1 for missing) and the distinct values of a column, as text.

    Text work (trimming, case, parsing numbers or units) is then done once per distinct value and
    spread to the rows by their codes: an 8-million-row column of a few thousand spellings costs one
    hash pass instead of millions of string operations."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
        return np.asarray(values.cat.codes.to_numpy(), dtype=np.int64), pd.Series(
            cats.astype("string") if len(cats) else pd.array([], dtype="string"), dtype="string"
        )
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), pd.Series(pd.array(np.asarray(uniques, dtype=object), dtype="string"))


def spread(codes: np.ndarray, per_value: pd.Series | np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """The rows' values from one value per code (:func:`distinct`); code -1 gives a missing value.

    Text comes back as a categorical (turned into plain text by :func:`as_text` once all work is done),
    numbers and flags as their numpy type (NaN or False where the code is -1)."""
    per_value = pd.Series(per_value).reset_index(drop=True)
    if pd.api.types.is_string_dtype(per_value.dtype) or per_value.dtype == object:
        v_codes, v_uniques = pd.factorize(per_value, use_na_sentinel=True)
        row_codes = np.append(v_codes, -1)[codes]
        cat = pd.Categorical.from_codes(
            row_codes, categories=pd.Index(np.asarray(v_uniques, dtype=object), dtype="string")
        )
        return pd.Series(cat, index=index)
    arr = per_value.to_numpy()
    if arr.dtype == bool:
        return pd.Series(np.append(arr, False)[codes], index=index)
    return pd.Series(np.append(arr.astype(float), np.nan)[codes], index=index)


def as_text(values: pd.Series) -> pd.Series:
    """A categorical text column (from :func:`spread`) as the plain ``string`` column the tables hold."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values
    codes = values.cat.codes.to_numpy()
    names = pa.array(np.asarray(values.cat.categories, dtype=object), type=pa.large_string())
    text = pc.take(names, pa.array(codes, mask=codes < 0))  # Arrow's kernel: no Python strings made
    return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, dtype="string")
