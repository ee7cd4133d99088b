"""Cross-site nearest neighbours by blocked sparse matrix products.

For each source article, the ``k`` most similar candidate articles from the
sites its site may recommend. Rows must be L2-normalised (as
:class:`~recommender.features.ArticleVectorizer` makes them), so the dot
product is the cosine.

How: candidates are grouped by site, and for each source site only the
allowed candidate sites' columns are multiplied (same-site pairs are never
computed unless allowed). Source rows go in blocks sized so that the dense
block of scores stays under ``max_block_mb``; the top-k of each block is
selected with ``argpartition`` (no Python loop per article). Ties are broken
deterministically: equal scores rank by lower row index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class Neighbors:
    """Top-k neighbours of every row.

    ``indices[i]`` holds row indices (into the matrix given) of row ``i``'s
    neighbours, best first, ``-1`` where there are fewer than ``k``;
    ``scores[i]`` their cosine similarities (0 where the index is -1).
    Both have shape (n_rows, k).
    """

    indices: np.ndarray
    scores: np.ndarray

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def counts(self) -> np.ndarray:
        """Number of neighbours found per row."""
        return (self.indices >= 0).sum(axis=1)


def _block_rows(n_columns: int, max_block_mb: float) -> int:
    # A block holds the float32 scores and argpartition's int64 indices.
    per_row = max(1, n_columns) * (4 + 8)
    return max(1, int(max_block_mb * 2**20 // per_row))


def top_k_per_row(
    scores: np.ndarray, k: int, *, min_score: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest entries of each row.

    Only entries strictly greater than ``min_score`` count; missing places
    hold index -1 and value 0. Among equal values the lower column wins, so
    the result does not depend on the order ``argpartition`` leaves them in.
    """
    n_rows, n_cols = scores.shape
    out_idx = np.full((n_rows, k), -1, dtype=np.int64)
    out_val = np.zeros((n_rows, k), dtype=scores.dtype)
    kk = min(k, n_cols)
    if kk == 0 or n_rows == 0:
        return out_idx, out_val
    part = np.argpartition(scores, n_cols - kk, axis=1)[:, n_cols - kk :]
    vals = np.take_along_axis(scores, part, axis=1)
    threshold = vals.min(axis=1)
    # Rows whose k-th value is tied with entries left out: choose by column.
    candidates = np.flatnonzero(threshold > min_score)
    if len(candidates):
        n_at_least = (scores[candidates] >= threshold[candidates, None]).sum(axis=1)
        tied = candidates[n_at_least > kk]
        if len(tied):
            sub = scores[tied]
            above = sub > threshold[tied, None]
            equal = sub == threshold[tied, None]
            need = kk - above.sum(axis=1)
            chosen = above | (equal & (np.cumsum(equal, axis=1) <= need[:, None]))
            part[tied] = np.nonzero(chosen)[1].reshape(len(tied), kk)
            vals[tied] = np.take_along_axis(sub, part[tied], axis=1)
    order = np.lexsort((part, -vals), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    keep = vals > min_score
    out_idx[:, :kk] = np.where(keep, part, -1)
    out_val[:, :kk] = np.where(keep, vals, 0)
    return out_idx, out_val


def allowed_site_pairs(
    site_keys: Sequence[str], allowed: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """Each site's allowed candidate sites; default every *other* site."""
    explicit = allowed or {}
    return {
        s: list(explicit[s]) if s in explicit else [t for t in site_keys if t != s]
        for s in site_keys
    }


def cross_site_neighbors(
    X: sp.csr_matrix,
    sites: Sequence[str] | np.ndarray,
    k: int,
    *,
    allowed: Mapping[str, Sequence[str]] | None = None,
    candidates: np.ndarray | None = None,
    min_similarity: float = 0.0,
    max_block_mb: float = 64.0,
    on_progress: ProgressCallback | None = None,
) -> Neighbors:
    """The ``k`` most similar allowed candidates of every row of ``X``.

    Parameters
    ----------
    X : sparse matrix of shape (n_articles, n_features), L2-normalised rows.
    sites : site key of each row.
    k : neighbours per row.
    allowed : source site -> sites it may recommend. Default: every other
        site. A site may list itself; a row is never its own neighbour.
    candidates : boolean mask of rows that may be recommended (e.g. fresh,
        published articles). Default: all rows.
    min_similarity : neighbours must score strictly above this.
    max_block_mb : memory bound of one block of dense scores.
    on_progress : called with the number of source rows finished per block.
    """
    X = sp.csr_matrix(X)
    sites = np.asarray(sites, dtype=object)
    n = X.shape[0]
    if len(sites) != n:
        raise ValueError(f"sites has {len(sites)} entries but X has {n} rows")
    if candidates is None:
        candidates = np.ones(n, dtype=bool)
    candidates = np.asarray(candidates, dtype=bool)
    site_keys = sorted(set(sites.tolist()))
    pairs = allowed_site_pairs(site_keys, allowed)

    indices = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    rows_of_site = {s: np.flatnonzero(sites == s) for s in site_keys}

    for source_site in site_keys:
        source_rows = rows_of_site[source_site]
        targets = set(pairs.get(source_site, []))
        column_rows = np.flatnonzero(candidates & np.isin(sites, list(targets)))
        if len(column_rows) == 0 or len(source_rows) == 0:
            if on_progress:
                on_progress(len(source_rows))
            continue
        candidates_t = X[column_rows].T.tocsr()
        block = _block_rows(len(column_rows), max_block_mb)
        for start in range(0, len(source_rows), block):
            rows = source_rows[start : start + block]
            dense = (X[rows] @ candidates_t).toarray().astype(np.float32, copy=False)
            if source_site in targets:
                # Same-site pairs allowed: the row itself must not be its neighbour.
                position = np.searchsorted(column_rows, rows)
                inside = (position < len(column_rows)) & (
                    column_rows[np.minimum(position, len(column_rows) - 1)] == rows
                )
                dense[np.flatnonzero(inside), position[inside]] = -np.inf
            top_cols, top_vals = top_k_per_row(dense, k, min_score=min_similarity)
            found = top_cols >= 0
            indices[rows] = np.where(found, column_rows[np.maximum(top_cols, 0)], -1)
            scores[rows] = top_vals
            if on_progress:
                on_progress(len(rows))
    return Neighbors(indices, scores)


def pair_similarity(X: sp.csr_matrix, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Cosine similarity of the row pairs (rows_a[i], rows_b[i]), for L2 rows."""
    if len(rows_a) == 0:
        return np.zeros(0, dtype=np.float32)
    products = X[rows_a].multiply(X[rows_b])
    return np.asarray(products.sum(axis=1), dtype=np.float32).ravel()


def near_duplicate_groups(
    titles: Sequence[str], threshold: float = 0.7, *, max_block_mb: float = 64.0
) -> np.ndarray:
    """Group ids such that titles at least ``threshold`` similar share a group.

    Similarity is the cosine of TF-IDF weighted character 3-grams (within
    word boundaries), so "Recipe: Sakura Mochi" and "Recipe: Sakura Mochi
    (updated)" group together; groups are the connected components of the
    "similar" relation. Returns an int array of shape (n_titles,).
    """
    n = len(titles)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 3), lowercase=True, dtype=np.float32
    )
    try:
        T = vectorizer.fit_transform([str(t) for t in titles]).tocsr()
    except ValueError:  # every title empty or shorter than a 3-gram
        return np.arange(n)
    Tt = T.T.tocsr()
    block = _block_rows(n, max_block_mb)
    links_r: list[np.ndarray] = []
    links_c: list[np.ndarray] = []
    for start in range(0, n, block):
        product = (T[start : start + block] @ Tt).tocoo()
        keep = (product.data >= threshold) & (product.row + start < product.col)
        links_r.append(product.row[keep] + start)
        links_c.append(product.col[keep])
    r = np.concatenate(links_r)
    c = np.concatenate(links_c)
    graph = sp.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)
