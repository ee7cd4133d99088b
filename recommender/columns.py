"""Article columns through Arrow: lookups, comparisons and row takes that
pandas does slowly on a million-row Arrow string column (its own ``iloc``
there costs seconds per column; Arrow's kernels, milliseconds)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def take_rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame.iloc[rows]`` (index reset), Arrow columns taken by Arrow:
    pandas' own take on a million-row Arrow string column costs seconds."""
    rows = np.asarray(rows, dtype=np.int64)
    n = len(frame)
    if len(rows) and (rows.min() < -n or rows.max() >= n):
        raise IndexError(f"row numbers out of range for {n} rows")
    rows = np.where(rows < 0, rows + n, rows)  # as iloc: negative rows count from the end
    columns = {}
    for name, column in frame.items():
        dtype = column.dtype
        if not (hasattr(column.array, "__arrow_array__") and hasattr(dtype, "__from_arrow__")):
            columns[name] = pd.Series(column.array.take(rows), name=name, dtype=dtype)
            continue
        # Chunk by chunk (a ChunkedArray's own take costs ~20x more here).
        chunked = as_arrow(column)
        offsets = np.cumsum([0] + [len(chunk) for chunk in chunked.chunks])
        which = np.searchsorted(offsets, rows, side="right") - 1
        parts, order = [], []
        for number in np.unique(which):
            at = np.flatnonzero(which == number)
            parts.append(chunked.chunk(int(number)).take(pa.array(rows[at] - offsets[number])))
            order.append(at)
        taken = pa.concat_arrays(parts) if parts else pa.array([], type=chunked.type)
        if len(order) > 1:
            taken = taken.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))
        columns[name] = pd.Series(dtype.__from_arrow__(pa.chunked_array([taken])), name=name)
    return pd.DataFrame(columns)


def rows_of(ids: pd.Series, among: pd.Series) -> np.ndarray:
    """Per id of ``ids``, its row in ``among`` (unique ids), -1 if absent."""
    values = as_arrow(ids)
    found = pc.index_in(values, value_set=as_arrow(among).combine_chunks().cast(values.type))
    return pc.fill_null(found, -1).to_numpy().astype(np.int64)


def as_arrow(column: pd.Series) -> Any:
    """The column as an Arrow (chunked) array; pandas' Arrow strings without a copy."""
    values = column.array
    if hasattr(values, "__arrow_array__"):
        return pa.chunked_array(values.__arrow_array__())
    array = pa.array(column.to_numpy(dtype=object), from_pandas=True)
    return pa.chunked_array([array.cast(pa.string()) if pa.types.is_null(array.type) else array])


__all__ = ["as_arrow", "rows_of", "take_rows"]
