"""Article rows across two runs: which articles kept their content, and the
feature matrix reassembled from kept rows and transformed ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recommender.columns import as_arrow

#: What an article's feature row and lists depend on, besides its id.
CONTENT_COLUMNS = ("site", "title", "body", "category_key", "language")


def same_content(before: pd.DataFrame, previous: np.ndarray, after: pd.DataFrame) -> np.ndarray:
    """Per article of ``after``: was it in ``before`` (at row ``previous``,
    -1 if not) with the same site, title, body, category key and language
    (which chooses its analyzer)? A column neither frame has is not compared.

    Compared as Arrow arrays (no Python object per value). Where rows kept
    their place (the leading rows with ``previous[i] == i``: articles are
    usually appended) the two columns are compared in place, without a copy.
    """

    same = previous >= 0
    moved = previous != np.arange(len(previous))
    in_place = int(np.argmax(moved)) if moved.any() else len(previous)
    in_place = min(in_place, len(before))
    rest = np.flatnonzero(same[in_place:]) + in_place
    for column in CONTENT_COLUMNS:
        if column not in before and column not in after:
            continue
        old, new = as_arrow(before[column]), as_arrow(after[column])
        pairs = [(old.slice(0, in_place), new.slice(0, in_place))]
        if len(rest):
            pairs.append((old.take(pa.array(previous[rest])), new.take(pa.array(rest))))
        equal = []
        for a, b in pairs:
            if a.type != b.type:
                b = b.cast(a.type)
            both_missing = pc.and_(pc.is_null(a), pc.is_null(b))
            equal.append(pc.or_(pc.fill_null(pc.equal(a, b), False), both_missing))
        equal_values = np.concatenate(
            [e.to_numpy(zero_copy_only=False).astype(bool) for e in equal]
        )
        same[:in_place] &= equal_values[:in_place]
        same[rest] &= equal_values[in_place:]
    return same


def assemble_rows(
    old: sp.csr_matrix,
    previous: np.ndarray,
    same: np.ndarray,
    transform: Callable[[np.ndarray], sp.csr_matrix],
) -> sp.csr_matrix:
    """Feature rows in the new order: old rows where ``same``, else transformed.

    Built in one pass: each run of rows taken from consecutive old rows (or
    from consecutive transformed rows) is one slice copied.
    """
    n = len(same)
    fresh_rows = np.flatnonzero(~same)
    fresh = sp.csr_matrix(transform(fresh_rows)) if len(fresh_rows) else None
    lengths = np.zeros(n, dtype=np.int64)
    lengths[same] = np.diff(old.indptr)[previous[same]]
    if fresh is not None:
        lengths[fresh_rows] = np.diff(fresh.indptr)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    data = np.empty(indptr[-1], dtype=old.dtype)
    indices = np.empty(indptr[-1], dtype=dtype)
    # Source row of each new row: an old row, or (past them) a transformed one.
    source = np.where(same, previous, -1).astype(np.int64)
    source[fresh_rows] = np.arange(len(fresh_rows)) + old.shape[0]
    cut = np.flatnonzero((np.diff(source) != 1) | (same[1:] != same[:-1])) + 1
    starts, ends = np.concatenate([[0], cut]), np.concatenate([cut, [n]])
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True) if n else ():
        if same[start]:
            matrix, first = old, source[start]
        else:
            assert fresh is not None
            matrix, first = fresh, source[start] - old.shape[0]
        begin, stop = matrix.indptr[first], matrix.indptr[first + end - start]
        data[indptr[start] : indptr[end]] = matrix.data[begin:stop]
        indices[indptr[start] : indptr[end]] = matrix.indices[begin:stop]
    shape = (n, old.shape[1])
    return sp.csr_matrix((data, indices, indptr.astype(dtype)), shape=shape, copy=False)


__all__ = ["CONTENT_COLUMNS", "assemble_rows", "same_content"]
