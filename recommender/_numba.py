"""The ``numba`` score kernel's compiled loops (see :mod:`recommender.kernels`).

Imported only when that kernel is used, so that importing the package does
not load Numba.

The candidates come prepared in *tiles* of consecutive candidates, each
tile the transposed CSR of its candidates (feature -> the tile's candidates
holding it, local indices), small enough to stay in a core's L2 cache while
every source row of a block is scored against it. Scoring a source row
against a tile is a row of a gather-scatter sparse product: for every stored
entry ``(j, v)`` of the row, in stored order, and every candidate ``c`` of
the tile holding feature ``j``, ``acc[c] += v * value``. Each score is so
summed in SciPy's own order (``csr_matmat``), in the same precision (float32,
or float64 for float64 sources, as SciPy upcasts), without fused
multiply-adds (Numba sets no fast-math flags): SciPy's scores bit for bit.

Compiled on first call per argument types and cached on disk
(``cache=True``: seconds once, then a load); ``nogil=True``: the similarity
search runs blocks in parallel threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Scores per chunk of the top-k scan.
_CHUNK = 64


@njit(nogil=True, cache=True)
def _accumulate(row, s_indptr, s_indices, s_data, t_indptr, t_indices, t_data, acc):
    """``acc`` += source ``row`` x one tile (``t_indptr``: that tile's).

    Unrolled by four (the adds stay in program order, so each score's sum
    keeps its order); unsigned indices spare Numba's negative-index check.
    """
    for jj in range(s_indptr[row], s_indptr[row + 1]):
        j = s_indices[jj]
        v = s_data[jj]
        kk, end = t_indptr[j], t_indptr[j + 1]
        while kk + 4 <= end:
            c0 = np.uint32(t_indices[kk])
            c1 = np.uint32(t_indices[kk + 1])
            c2 = np.uint32(t_indices[kk + 2])
            c3 = np.uint32(t_indices[kk + 3])
            acc[c0] += v * t_data[kk]
            acc[c1] += v * t_data[kk + 1]
            acc[c2] += v * t_data[kk + 2]
            acc[c3] += v * t_data[kk + 3]
            kk += 4
        while kk < end:
            acc[np.uint32(t_indices[kk])] += v * t_data[kk]
            kk += 1


@njit(nogil=True, cache=True)
def dense_scores(s_indptr, s_indices, s_data, starts, offsets, t_indptr, t_indices, t_data, out):
    """``out`` (zeros, shape (sources, candidates)) += the product."""
    for t in range(len(starts) - 1):
        lo, hi = starts[t], starts[t + 1]
        indices = t_indices[offsets[t] : offsets[t + 1]]
        data = t_data[offsets[t] : offsets[t + 1]]
        for i in range(len(s_indptr) - 1):
            _accumulate(i, s_indptr, s_indices, s_data, t_indptr[t], indices, data, out[i, lo:hi])


@njit(nogil=True, cache=True)
def top_k_scores(
    s_indptr,
    s_indices,
    s_data,
    starts,
    offsets,
    t_indptr,
    t_indices,
    t_data,
    acc,
    threshold,
    exclude,
    out_idx,
    out_val,
):
    """Each source row's best ``k = out_idx.shape[1]`` candidates among those
    scoring at least ``threshold[i]`` (float32, > 0), best first, equal scores
    by lower candidate; candidate ``exclude[i]`` (if >= 0) never counts.
    ``acc``: zeros, one per candidate of the widest tile (left zeroed);
    ``out_idx``/``out_val`` come filled with -1 and 0 and keep them where
    fewer pass.

    Per tile and row, the accumulator is read in chunks: a chunk with no
    score that beats the row's k-th best so far (and its threshold) is
    skipped after a vectorised count; the others' few such scores go into
    the row's sorted list of k. Tiles and candidates come in
    ascending order, so a later equal score never displaces an earlier one.
    """
    n = len(s_indptr) - 1
    k = min(out_idx.shape[1], starts[-1])
    if k == 0:
        return
    count = np.zeros(n, dtype=np.int64)
    last = np.full(n, -np.inf, dtype=np.float32)  # a row's k-th best, once it has k
    for t in range(len(starts) - 1):
        lo, width = starts[t], starts[t + 1] - starts[t]
        indices = t_indices[offsets[t] : offsets[t + 1]]
        data = t_data[offsets[t] : offsets[t + 1]]
        for i in range(n):
            _accumulate(i, s_indptr, s_indices, s_data, t_indptr[t], indices, data, acc)
            e = exclude[i] - lo
            if 0 <= e < width:
                acc[e] = 0
            floor = threshold[i]
            worst = last[i]
            filled = count[i]
            top_val = out_val[i]
            top_idx = out_idx[i]
            for start in range(0, width, _CHUNK):
                stop = min(start + _CHUNK, width)
                # A vectorised count first: most chunks hold no entry to insert.
                hits = 0
                for c in range(start, stop):
                    hits += (acc[c] > worst) & (acc[c] >= floor)
                if hits == 0:
                    continue
                for c in range(start, stop):
                    s = np.float32(acc[c])
                    if s > worst and s >= floor:
                        p = filled if filled < k else k - 1
                        while p > 0 and top_val[p - 1] < s:
                            top_val[p] = top_val[p - 1]
                            top_idx[p] = top_idx[p - 1]
                            p -= 1
                        top_val[p] = s
                        top_idx[p] = lo + c
                        if filled < k:
                            filled += 1
                        if filled == k:
                            worst = top_val[k - 1]
            acc[:width] = 0
            last[i] = worst
            count[i] = filled
