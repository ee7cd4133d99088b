"""Second-order relatedness on the TF-IDF rows: neighbour smoothing.

Each row moves towards its neighbours' rows::

    x_i' = normalize(x_i + beta * sum_r w_ir x_{n_ir})

over row ``i``'s neighbours ``n_ir`` (a :class:`~recommender.similarity.Neighbors`
of the same rows), with ``w_ir = 1 / (number of neighbours)`` (the plain
mean) or, when ``weighted``, the neighbours' cosines divided by their sum.
A row without neighbours (or whose neighbours all score 0) is unchanged.
Two articles that share neighbours become similar even when they share few
words (measured in ``benchmarks/second_order.py``).

:func:`prune_rows` keeps each smoothed row's largest entries, up to a
multiple of its original length, so that a search on the smoothed rows
costs about what a search on the original rows costs.

Both are exact and deterministic: float64 sums in a fixed order (the
neighbours' rank, then the column), no randomness; a row's result depends
only on its own row, its neighbours' rows and their scores, so reordering
the articles reorders the result and changes no value.

Not wired into the engine yet (issue 17, point 2).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.similarity import Neighbors


def _normalized(M: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (float64, columns sorted; empty rows stay)."""
    M = sp.csr_matrix(M, dtype=np.float64)
    M.sum_duplicates()
    M.sort_indices()
    lengths = np.diff(M.indptr)
    row = np.repeat(np.arange(M.shape[0]), lengths)
    # bincount adds in storage order: each row's squares in column order.
    norms = np.sqrt(np.bincount(row, weights=M.data * M.data, minlength=M.shape[0]))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    M.data *= np.repeat(scale, lengths)
    return M


def smooth_rows(
    X: sp.spmatrix, neighbors: Neighbors, beta: float, weighted: bool = True
) -> sp.csr_matrix:
    """``normalize(x_i + beta * sum_r w_ir x_{n_ir})`` for every row (module docs).

    Parameters
    ----------
    X : (n, n_features) rows (L2-normalised for a cosine; not required).
    neighbors : neighbours of the rows of ``X``: ``indices`` (n, k) into
        ``X``, ``-1`` where there is none, and their ``scores``.
    beta : weight of the neighbours' mean (>= 0; 0 returns ``X`` normalised).
    weighted : weight each neighbour by its score instead of equally.

    Returns
    -------
    float32 CSR matrix of the same shape, rows L2-normalised (empty rows stay
    empty), columns sorted.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    n = X.shape[0]
    idx = np.asarray(neighbors.indices, dtype=np.int64)
    scores = np.asarray(neighbors.scores, dtype=np.float64)
    if idx.shape[0] != n or scores.shape != idx.shape:
        raise ValueError(
            f"neighbors has shape {idx.shape} (scores {scores.shape}) for {n} rows of X"
        )
    if beta < 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    if idx.size and (idx.max() >= n or idx.min() < -1):
        raise ValueError(f"neighbors.indices must be in [-1, {n}), got {idx.min()}..{idx.max()}")
    found = idx >= 0
    w = np.where(found, scores if weighted else 1.0, 0.0)
    total = w.sum(axis=1)
    w = np.divide(w, total[:, None], out=np.zeros_like(w), where=total[:, None] > 0) * beta
    out = X.copy()
    # One neighbour rank at a time: every row's terms add in rank order.
    for r in range(idx.shape[1]):
        column = np.maximum(idx[:, r], 0)
        weights = np.where(found[:, r], w[:, r], 0.0)
        if not weights.any():
            continue
        out = out + sp.diags(weights) @ X[column]
    return sp.csr_matrix(_normalized(out), dtype=np.float32)


def prune_rows(smoothed: sp.spmatrix, original: sp.spmatrix, factor: float) -> sp.csr_matrix:
    """Each row of ``smoothed`` cut to its ``ceil(factor * nnz(original row))``
    largest entries (ties: the lower column first), renormalised."""
    if factor <= 0 or not np.isfinite(factor):
        raise ValueError(f"factor must be a finite number > 0, got {factor}")
    S = sp.csr_matrix(smoothed, dtype=np.float64)
    S.sum_duplicates()
    S.sort_indices()
    orig = sp.csr_matrix(original)
    if orig.shape[0] != S.shape[0]:
        raise ValueError(f"original has {orig.shape[0]} rows, smoothed {S.shape[0]}")
    n = S.shape[0]
    row = np.repeat(np.arange(n), np.diff(S.indptr))
    order = np.lexsort((S.indices, -S.data, row))  # by row, value down, column up
    rank = np.arange(len(order)) - S.indptr[row[order]]
    limit = np.ceil(factor * np.diff(orig.indptr)).astype(np.int64)
    kept = np.sort(order[rank < limit[row[order]]])  # back to (row, column) order
    counts = np.bincount(row[kept], minlength=n)
    pruned = sp.csr_matrix(
        (S.data[kept], S.indices[kept], np.r_[0, np.cumsum(counts)]), shape=S.shape
    )
    return sp.csr_matrix(_normalized(pruned), dtype=np.float32)


__all__ = ["prune_rows", "smooth_rows"]
