"""Cross-site nearest neighbours by blocked sparse matrix products.

For each source article, the ``k`` most similar candidate articles from the
sites its site may recommend. Rows must be L2-normalised (as
:class:`~recommender.features.ArticleVectorizer` makes them), so the dot
product is the cosine.

How: candidates are grouped by site, and for each source site only the
allowed candidate sites' columns are multiplied (same-site pairs are never
computed unless allowed). Source rows go in blocks sized so that the dense
blocks of scores in flight stay under ``max_block_mb``; a score kernel
(:mod:`recommender.kernels`) fills each block, on every core when the kernel
allows, and :func:`top_k_per_row` selects each row's best with one
threshold pass (no Python loop per article). A kernel with its own
``top_k`` (the default, ``numba``) scores and selects in one pass instead,
with no dense block, by the same rule. Results are exact and
deterministic: equal scores rank by lower row index.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.config import allowed_site_pairs
from recommender.kernels import get_kernel

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


def best_first(
    parts: Sequence[Neighbors] | Neighbors, width: int, *, block: int = 4096
) -> Neighbors:
    """Each row's ``width`` best entries among ``parts`` (side by side), by
    score, ties by lower index, as :class:`Neighbors` of exactly ``width``
    columns (-1 pads). Entries with index -1 are ignored; an index should
    appear at most once per row.

    One sort of 64-bit keys per row (an order-preserving image of the
    float32 score above the index), rows a block at a time, so that every
    temporary stays in cache: on a million rows this is several times faster
    than whole-array passes.
    """
    parts = [parts] if isinstance(parts, Neighbors) else list(parts)
    n = len(parts[0].indices)
    total = sum(part.k for part in parts)
    indices = np.full((n, width), -1, dtype=np.int32)
    scores = np.zeros((n, width), dtype=np.float32)
    keep = min(width, total)
    none = np.uint64(0xFFFFFFFFFFFFFFFF)
    for start in range(0, n, block):
        rows = slice(start, start + block)
        keys = np.empty((len(indices[rows]), total), dtype=np.uint64)
        column = 0
        for part in parts:
            key = keys[:, column : column + part.k]
            column += part.k
            # -0.0 made +0.0, then the bits ordered by descending score:
            # non-negative x -> ~bits & 0x7FFFFFFF, negative -> bits (larger).
            bits = (part.scores[rows].astype(np.float32) + np.float32(0.0)).view(np.uint32)
            key[...] = np.where(bits >> 31, bits, ~bits & np.uint32(0x7FFFFFFF))
            key <<= np.uint64(32)
            part_indices = part.indices[rows]
            key |= part_indices.astype(np.int64).astype(np.uint64) & np.uint64(0xFFFFFFFF)
            np.putmask(key, part_indices < 0, none)
        keys.sort(axis=1)
        top = keys[:, :keep]
        high = (top >> np.uint64(32)).astype(np.uint32)
        pad = top == none
        found = top.astype(np.uint32).view(np.int32)
        found[pad] = -1
        bits = np.where(high >> 31, high, ~high & np.uint32(0x7FFFFFFF))
        value = bits.view(np.float32)
        value[pad] = 0.0
        indices[rows, :keep], scores[rows, :keep] = found, value
    return Neighbors(indices, scores)


def _block_rows(n_columns: int, max_block_mb: float) -> int:
    # A block holds the float32 scores and argpartition's int64 indices.
    per_row = max(1, n_columns) * (4 + 8)
    return max(1, int(max_block_mb * 2**20 // per_row))


#: Source rows per block for a kernel that selects the top k itself.
_FUSED_BLOCK_ROWS = 1024


def _float32_above(value: float) -> np.float32:
    """The smallest float32 strictly greater than ``value``."""
    f = np.float32(value)
    return f if float(f) > value else np.nextafter(f, np.float32(np.inf))


def _row_thresholds(n_rows: int, min_score: float, floor: np.ndarray | None) -> np.ndarray:
    """The score each of ``n_rows`` rows' entries must reach to count in
    :func:`top_k_per_row` (float32): above ``min_score``, and ``floor``."""
    if min_score < 0:
        raise ValueError(f"min_score must be >= 0, got {min_score}")
    above = _float32_above(min_score)
    if floor is None:
        return np.full(n_rows, above, dtype=np.float32)
    return np.maximum(np.asarray(floor, dtype=np.float32), above)


def top_k_per_row(
    scores: np.ndarray,
    k: int,
    *,
    min_score: float = 0.0,
    floor: np.ndarray | None = None,
    sample: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest entries of each row.

    Only entries strictly greater than ``min_score`` (>= 0: scores are
    cosines of non-negative vectors), and at least ``floor`` (per row, when
    given), count; missing places hold index -1 and value 0. Among equal
    values the lower column wins.

    Rows are first filtered by a threshold that cannot drop a top-k entry:
    the k-th largest of an evenly spaced sample of about ``sample`` columns
    (the whole row when it is narrower) is at most the row's k-th largest,
    so every top-k entry, and every entry tied with it, passes. The few that
    pass are then ranked exactly. On wide rows one comparison pass replaces a
    full partition of every row. With ``floor`` the floors are the
    threshold (no sample): meant for floors that few entries reach.
    """
    if min_score < 0:
        raise ValueError(f"min_score must be >= 0, got {min_score}")
    n_rows, n_cols = scores.shape
    out_idx = np.full((n_rows, k), -1, dtype=np.int64)
    out_val = np.zeros((n_rows, k), dtype=scores.dtype)
    kk = min(k, n_cols)
    if kk == 0 or n_rows == 0:
        return out_idx, out_val
    if floor is None:
        subset = scores[:, :: max(1, n_cols // sample)]
        threshold = np.partition(subset, subset.shape[1] - kk, axis=1)[:, subset.shape[1] - kk]
    else:
        threshold = np.asarray(floor, dtype=scores.dtype)
    threshold = np.maximum(threshold, _float32_above(min_score))
    flat = np.flatnonzero(scores >= threshold[:, None])  # row-major: row, then column
    rows = flat // n_cols
    cols = flat - rows * n_cols
    vals = scores.ravel()[flat].astype(np.float32, copy=False)
    # Sort by row, then value descending: a uint64 key of the row and the
    # inverted bits of the (non-negative) float32 value; the stable sort keeps
    # equal values in column order.
    key = (rows.astype(np.uint64) << np.uint64(32)) | (~vals.view(np.uint32)).astype(np.uint64)
    order = np.argsort(key, kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < kk
    out_idx[rows[keep], rank[keep]] = cols[keep]
    out_val[rows[keep], rank[keep]] = vals[keep]
    return out_idx, out_val


def _resolve_jobs(n_jobs: int) -> int:
    return max(1, os.cpu_count() or 1) if n_jobs < 1 else n_jobs


def _run_tasks(
    function: Callable[..., int],
    tasks: Sequence[tuple],
    jobs: int,
    on_progress: ProgressCallback | None = None,
) -> None:
    """``function(*task)`` for every task, on ``jobs`` threads; each call's
    return value (rows done) goes to ``on_progress``."""
    if jobs == 1:
        results = map(lambda task: function(*task), tasks)
        for done in results:
            if on_progress:
                on_progress(done)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for done in pool.map(lambda task: function(*task), tasks):
            if on_progress:
                on_progress(done)


def cross_site_neighbors(
    X: sp.csr_matrix,
    sites: Sequence[str] | np.ndarray,
    k: int,
    *,
    allowed: Mapping[str, Sequence[str]] | None = None,
    candidates: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    min_similarity: float = 0.0,
    floors: np.ndarray | None = None,
    max_block_mb: float = 64.0,
    kernel: str = "auto",
    n_jobs: int = -1,
    on_progress: ProgressCallback | None = None,
) -> Neighbors:
    """The ``k`` most similar allowed candidates of every source row of ``X``.

    Parameters
    ----------
    X : sparse matrix of shape (n_articles, n_features), L2-normalised rows.
    sites : site key of each row.
    k : neighbours per row.
    allowed : source site -> sites it may recommend. Default: every other
        site. A site may list itself; a row is never its own neighbour.
    candidates : boolean mask of rows that may be recommended (e.g. fresh,
        published articles). Default: all rows.
    rows : indices of the source rows to compute (default: all rows); the
        result has one row per entry, in this order.
    min_similarity : neighbours must score strictly above this (>= 0).
    floors : per source row (in ``rows``' order), a score neighbours must at
        least reach: only the candidates that could enter a list already
        known (see :func:`top_k_per_row`).
    max_block_mb : memory bound of the dense score blocks in flight (all
        threads together), in MiB.
    kernel : score kernel, see :mod:`recommender.kernels` (``auto``: fastest).
    n_jobs : threads computing blocks at once (< 1: one per core); used when
        the kernel releases the GIL.
    on_progress : called with the number of source rows finished per block.
    """
    X = sp.csr_matrix(X)
    sites = np.asarray(sites, dtype=object)
    n = X.shape[0]
    if len(sites) != n:
        raise ValueError(f"sites has {len(sites)} entries but X has {n} rows")
    candidates = (
        np.ones(n, dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool)
    )
    source_rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if floors is not None and len(floors) != len(source_rows):
        raise ValueError(f"floors has {len(floors)} entries for {len(source_rows)} rows")
    score_kernel = get_kernel(kernel)
    jobs = _resolve_jobs(n_jobs) if score_kernel.releases_gil else 1
    # Sites as small integer codes: a million string comparisons per site cost.
    site_codes, uniques = pd.factorize(pd.Series(sites, dtype=object), sort=True)
    site_names = [str(site) for site in uniques]
    code_of = {site: code for code, site in enumerate(site_names)}
    pairs = allowed_site_pairs(site_names, allowed)

    indices = np.full((len(source_rows), k), -1, dtype=np.int32)
    scores = np.zeros((len(source_rows), k), dtype=np.float32)
    source_codes = site_codes[source_rows]

    def run_block(
        positions: np.ndarray, column_rows: np.ndarray, prepared: object, same_site: bool
    ) -> int:
        block_rows = source_rows[positions]
        block_floors = None if floors is None else floors[positions]
        itself = None
        if same_site:
            # Same-site pairs allowed: the row itself must not be its neighbour.
            at = np.searchsorted(column_rows, block_rows)
            inside = (at < len(column_rows)) & (
                column_rows[np.minimum(at, len(column_rows) - 1)] == block_rows
            )
            itself = np.where(inside, at, -1)
        if score_kernel.top_k is not None:
            # The kernel selects the top k itself, with top_k_per_row's rule.
            top_cols, top_vals = score_kernel.top_k(
                X[block_rows],
                prepared,
                k,
                _row_thresholds(len(positions), min_similarity, block_floors),
                itself,
            )
        else:
            dense = score_kernel.scores(X[block_rows], prepared)
            if itself is not None:
                dense[np.flatnonzero(itself >= 0), itself[itself >= 0]] = -np.inf
            top_cols, top_vals = top_k_per_row(
                dense, k, min_score=min_similarity, floor=block_floors
            )
        indices[positions] = np.where(top_cols >= 0, column_rows[np.maximum(top_cols, 0)], -1)
        scores[positions] = top_vals
        return len(positions)

    tasks = []
    for code in np.unique(source_codes):  # codes follow the sorted names
        source_site = site_names[code]
        positions = np.flatnonzero(source_codes == code)
        targets = pairs.get(source_site, [])
        target_codes = [code_of[site] for site in targets if site in code_of]
        column_rows = np.flatnonzero(candidates & np.isin(site_codes, target_codes))
        if len(column_rows) == 0:
            if on_progress:
                on_progress(len(positions))
            continue
        prepared = score_kernel.prepare(X[column_rows])
        block = _block_rows(len(column_rows), max_block_mb / jobs)
        if score_kernel.top_k is not None:
            # No dense block: rows go in larger blocks, so that each tile of
            # candidates the kernel holds in cache serves many rows.
            block = max(block, _FUSED_BLOCK_ROWS)
        tasks += [
            (positions[i : i + block], column_rows, prepared, source_site in targets)
            for i in range(0, len(positions), block)
        ]

    _run_tasks(run_block, tasks, jobs, on_progress)
    return Neighbors(indices, scores)


def pair_similarity(X: sp.csr_matrix, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Cosine similarity of the row pairs (rows_a[i], rows_b[i]), for L2 rows."""
    if len(rows_a) == 0:
        return np.zeros(0, dtype=np.float32)
    products = X[rows_a].multiply(X[rows_b])
    return np.asarray(products.sum(axis=1), dtype=np.float32).ravel()


def shared_features(
    X: sp.csr_matrix, source: int, targets: Sequence[int] | np.ndarray, top: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """The features that make up the similarity of row ``source`` with each of ``targets``.

    Rows are L2-normalised, so a cosine is the sum, over the features both
    rows have, of the product of their two weights: each product is that
    feature's contribution. Returns ``(columns, contributions)``, each of
    shape (len(targets), top), largest contribution first (ties: lower
    column); -1 and 0 pad a row that shares fewer than ``top`` features.
    Name the columns with the vectorizer's ``get_feature_names_out()``.
    """
    X = sp.csr_matrix(X)
    targets = np.asarray(targets, dtype=np.int64)
    parts = sp.csr_matrix(X[targets].multiply(X[int(source)]))
    return top_k_per_row(np.asarray(parts.toarray(), dtype=np.float32), top)


@dataclass(frozen=True)
class TitleLinks:
    """The near-duplicate relation of one run's titles.

    ``vectorizer``: the character 3-gram TF-IDF fitted on the compared
    titles (None when none had a 3-gram); ``pairs``: (m, 2) article rows
    ``(r, c)``, ``r < c``, of the compared titles, each pair at least
    ``threshold`` similar. Groups are the connected components
    (:meth:`groups`).

    ``pairs`` spans the groups without listing every similar pair: titles
    with identical vectors (a *class*, named by its lowest row, ``rep``) are
    compared once, so n copies of one title cost n, not n²/2. It holds the
    representatives of every two similar classes, and each other member of a
    class paired with its representative (or, if a title is not similar to
    itself, with the lowest representative of a class similar to it; with
    none, it stays alone, as it would with every pair listed). The groups
    are those of every similar pair; the pairs are a function of the compared
    titles only, so an update (:func:`merge_title_links`) gives the same
    pairs as a full comparison.
    """

    vectorizer: TfidfVectorizer | None
    pairs: np.ndarray
    threshold: float
    #: The compared rows (ascending) and their title vectors, for an update
    #: to reuse instead of transforming every title again.
    rows: np.ndarray | None = None
    matrix: sp.csr_matrix | None = None
    #: The class of each of ``rows``: the lowest compared row with the
    #: identical title vector (None in runs before classes were kept).
    rep: np.ndarray | None = None

    def vectors_of(self, rows: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix] | None:
        """The known vectors of those of ``rows`` (this run's numbering) that
        were compared: (which of ``rows``, their vectors); None if none kept."""
        if self.rows is None or self.matrix is None or not len(self.rows):
            return None
        at = np.clip(np.searchsorted(self.rows, rows), 0, len(self.rows) - 1)
        known = self.rows[at] == rows
        return known, sp.csr_matrix(self.matrix[at[known]])

    def groups(self, n: int) -> np.ndarray:
        """Group id of each of ``n`` rows (rows in no pair are groups of their own)."""
        r, c = self.pairs[:, 0], self.pairs[:, 1]
        graph = sp.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        return labels.astype(np.int64)


_NO_PAIRS = np.zeros((0, 2), dtype=np.int64)


def title_links(
    titles: Sequence[str],
    threshold: float = 0.7,
    *,
    rows: np.ndarray | None = None,
    vectorizer: TfidfVectorizer | None = None,
    fresh: np.ndarray | None = None,
    known: tuple[np.ndarray, sp.csr_matrix] | None = None,
    kernel: str = "auto",
    n_jobs: int = -1,
    max_block_mb: float = 64.0,
) -> TitleLinks:
    """The near-duplicate relation of the titles at ``rows`` (indices or a
    mask; default all): titles whose cosine is at least ``threshold`` (see
    :func:`near_duplicate_groups`), as :class:`TitleLinks`.

    Identical title vectors are found first (linear time), and only one title
    of each is compared with the others: time and memory grow with the
    number of titles plus the number of similar pairs of *distinct* titles.

    ``vectorizer``: an already fitted title vectorizer to reuse (default: fit
    one on these titles). ``fresh`` (indices or a mask, within ``rows``):
    only the similarities of the titles identical to one in ``fresh`` — what
    an update needs when the other titles' are known (merge the two with
    :func:`merge_title_links`). Two titles count as similar when the score
    from either side reaches ``threshold``, so both ways give the same
    relation. ``known``: (mask over the compared rows, their vectors) for
    titles already transformed with ``vectorizer`` (see
    :meth:`TitleLinks.vectors_of`).
    """
    n = len(titles)
    subset = _as_indices(np.arange(n) if rows is None else rows)
    if vectorizer is None:
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 3), lowercase=True, dtype=np.float32
        )
        try:
            vectorizer.fit([str(titles[int(i)]) for i in subset])
        except ValueError:  # no title, or every one shorter than a 3-gram
            return TitleLinks(None, _NO_PAIRS, threshold)
    subset = np.sort(subset)
    if len(subset) == 0:
        return TitleLinks(vectorizer, _NO_PAIRS, threshold)
    if known is None:
        T = sp.csr_matrix(vectorizer.transform([str(titles[int(i)]) for i in subset]))
    else:
        is_known, known_matrix = known
        todo = np.flatnonzero(~is_known)
        parts = [known_matrix]
        if len(todo):
            parts.append(
                sp.csr_matrix(vectorizer.transform([str(titles[int(subset[i])]) for i in todo]))
            )
        position = np.concatenate([np.flatnonzero(is_known), todo])
        T = sp.csr_matrix(sp.vstack(parts, format="csr")[np.argsort(position)])
    # Classes of identical vectors: each compared through its first row.
    first = _identical_rows(T)
    rep = subset[first]
    heads = np.flatnonzero(first == np.arange(len(subset)))
    class_of = np.searchsorted(heads, first)  # class index of each compared row
    U = sp.csr_matrix(T[heads])
    score_kernel = get_kernel(kernel)
    jobs = _resolve_jobs(n_jobs) if score_kernel.releases_gil else 1
    found: list[np.ndarray] = []

    def links(a: np.ndarray, b: np.ndarray) -> None:
        """Every class pair (a, b), of ``a`` x ``b``, scoring at least
        ``threshold`` from a's side (a == b included: a title and its copies)."""
        A, prepared, m = U[a], score_kernel.prepare(U[b]), len(b)

        def block_links(start: int) -> int:
            dense = score_kernel.scores(A[start : start + block], prepared)
            flat = np.flatnonzero(dense >= threshold)
            found.append(np.column_stack([a[flat // m + start], b[flat % m]]))
            return 0

        block = _block_rows(m, max_block_mb / jobs)
        _run_tasks(block_links, [(start,) for start in range(0, A.shape[0], block)], jobs)

    classes = np.arange(len(heads), dtype=np.int32)
    if fresh is None:
        links(classes, classes)
    else:
        is_fresh = np.zeros(n, dtype=bool)
        is_fresh[_as_indices(fresh)] = True
        touched = np.zeros(len(heads), dtype=bool)
        touched[class_of[is_fresh[subset]]] = True
        if touched.any():
            # Fresh classes against all, then the others against the fresh ones.
            links(classes[touched], classes)
            if not touched.all():
                links(classes[~touched], classes[touched])
    hits = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int32)
    itself = hits[:, 0] == hits[:, 1]
    head_rows = subset[heads]
    similar = head_rows[_sorted_pairs(np.sort(hits[~itself], axis=1))].reshape(-1, 2)
    pairs = _spanning_pairs(subset, rep, similar, head_rows[np.unique(hits[itself, 0])])
    return TitleLinks(vectorizer, pairs, threshold, subset, T, rep)


def _as_indices(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows)
    return np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    """``pairs`` in (r, c) order, without repeats."""
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    return np.unique(pairs, axis=0)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a well-spread 64-bit hash of each uint64."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_chunks(indptr: np.ndarray, entries: int = 1 << 20) -> list[tuple[int, int]]:
    """Consecutive row ranges ``[lo, hi)`` of about ``entries`` stored entries each."""
    n, lo, chunks = len(indptr) - 1, 0, []
    while lo < n:
        hi = int(np.searchsorted(indptr, indptr[lo] + entries, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        chunks.append((lo, hi))
        lo = hi
    return chunks


def _identical_rows(T: sp.csr_matrix) -> np.ndarray:
    """For each row of ``T``, the first row with the identical vector (the
    same columns in the same order, bit for bit the same values): a hash of
    each row, checked entry by entry against the first row of its hash, so
    the answer is exact; rows of a colliding hash are sorted out one by one.
    Linear time; temporaries a chunk of rows at a time."""
    n = T.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    indptr = T.indptr.astype(np.int64)
    nnz = np.diff(indptr)
    columns = T.indices
    data = np.ascontiguousarray(T.data)
    bits = data.view(f"u{data.dtype.itemsize}")
    chunks = _row_chunks(indptr)
    key = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for lo, hi in chunks:
            a, b = indptr[lo], indptr[hi]
            entry = _mix64(_mix64(bits[a:b].astype(np.uint64)) + columns[a:b].astype(np.uint64))
            total = np.concatenate([[np.uint64(0)], np.cumsum(entry, dtype=np.uint64)])
            ends, starts = total[indptr[lo + 1 : hi + 1] - a], total[indptr[lo:hi] - a]
            key[lo:hi] = _mix64(ends - starts + nnz[lo:hi].astype(np.uint64))
    _, first_of_key, inverse = np.unique(key, return_index=True, return_inverse=True)
    first = first_of_key[inverse.ravel()].astype(np.int64)
    # Check each row against the first row of its hash, entry by entry.
    bad = nnz != nnz[first]
    check = ~bad & (first != np.arange(n))
    for lo, hi in chunks:
        rows = lo + np.flatnonzero(check[lo:hi])
        if len(rows) == 0:
            continue
        counts = nnz[rows]
        row_of = np.repeat(rows, counts)
        offset = np.arange(len(row_of)) - np.repeat(np.cumsum(counts) - counts, counts)
        mine, twin = indptr[row_of] + offset, indptr[first[row_of]] + offset
        differs = (columns[mine] != columns[twin]) | (bits[mine] != bits[twin])
        bad[row_of[differs]] = True
    if bad.any():  # a hash collision: settle its rows exactly
        suspects = np.flatnonzero(np.isin(key, key[bad]))
        seen: dict[bytes, int] = {}
        for row in suspects:
            span = slice(indptr[row], indptr[row + 1])
            content = columns[span].tobytes() + b"|" + bits[span].tobytes()
            first[row] = seen.setdefault(content, int(row))
    return first


def _spanning_pairs(
    rows: np.ndarray, rep: np.ndarray, similar: np.ndarray, itself: np.ndarray
) -> np.ndarray:
    """The pairs of :class:`TitleLinks` for the compared ``rows`` (ascending)
    of classes ``rep``, given the classes (named by their representatives)
    that are similar: ``similar`` (L, 2) distinct pairs, ``itself`` classes
    whose title is similar to itself."""
    similar = np.asarray(similar, dtype=np.int64).reshape(-1, 2)
    member = rows != rep
    m, c = rows[member], rep[member]
    if len(m) == 0:
        return _sorted_pairs(similar)
    # The lowest class similar to each class (a member's other way in).
    a = np.concatenate([similar[:, 0], similar[:, 1]])
    b = np.concatenate([similar[:, 1], similar[:, 0]])
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    lead = np.ones(len(a), dtype=bool)
    lead[1:] = a[1:] != a[:-1]
    named, lowest = a[lead], b[lead]
    target = np.full(len(m), -1, dtype=np.int64)
    if len(named):
        at = np.minimum(np.searchsorted(named, c), len(named) - 1)
        linked = named[at] == c
        target[linked] = lowest[at[linked]]
    alike = np.isin(c, itself)  # members of a class similar to itself: to their representative
    target[alike] = c[alike]
    joined = target >= 0
    members = np.sort(np.column_stack([m[joined], target[joined]]), axis=1)
    return _sorted_pairs(np.concatenate([similar, members]))


def _class_relation(pairs: np.ndarray, class_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What ``pairs`` say of the classes (``class_of`` each row; -1: unknown
    or not wanted): the distinct similar class pairs, and the classes whose
    title is similar to itself (a pair inside the class)."""
    a, b = class_of[pairs[:, 0]], class_of[pairs[:, 1]]
    wanted = (a >= 0) & (b >= 0)
    inside = wanted & (a == b)
    across = wanted & (a != b)
    similar = np.sort(np.column_stack([a[across], b[across]]), axis=1)
    return similar, np.unique(a[inside])


def merge_title_links(
    old: TitleLinks, new_of_old: np.ndarray, keep: np.ndarray, fresh: TitleLinks
) -> TitleLinks:
    """An update's links: what ``old`` knew of the rows still compared and
    unchanged (``new_of_old`` maps old rows to new ones, -1 when gone;
    ``keep``, over new rows, the rows whose old similarities still hold),
    plus ``fresh`` (the similarities of the classes holding new or changed
    titles, computed over all the compared rows). The same pairs as a full
    comparison: old classes are followed to their kept members, so a class
    whose representative left keeps its similarities."""
    if fresh.rows is None or fresh.rep is None or len(fresh.rows) == 0:
        return TitleLinks(fresh.vectorizer, _NO_PAIRS, fresh.threshold, fresh.rows, fresh.matrix)
    keep = np.asarray(keep, dtype=bool)
    rows, rep = fresh.rows, fresh.rep
    class_now = np.full(len(keep), -1, dtype=np.int64)
    class_now[rows] = rep
    touched = np.zeros(len(keep), dtype=bool)  # classes holding a fresh title
    touched[rep[~keep[rows]]] = True
    # Each old class (each row alone if ``old`` kept no classes) -> its class now.
    old_class = np.arange(len(new_of_old), dtype=np.int64)
    if old.rows is not None and old.rep is not None:
        old_class[old.rows] = old.rep
    kept = np.flatnonzero(new_of_old >= 0)
    kept = kept[keep[new_of_old[kept]] & (class_now[new_of_old[kept]] >= 0)]
    now_of_class = np.full(len(new_of_old), -1, dtype=np.int64)
    now_of_class[old_class[kept]] = class_now[new_of_old[kept]]
    now_of_class[(now_of_class >= 0) & touched[np.maximum(now_of_class, 0)]] = -1
    old_similar, old_itself = _class_relation(old.pairs, now_of_class[old_class])
    new_similar, new_itself = _class_relation(fresh.pairs, class_now)
    similar = _sorted_pairs(np.concatenate([old_similar, new_similar]))
    pairs = _spanning_pairs(rows, rep, similar, np.union1d(old_itself, new_itself))
    return TitleLinks(fresh.vectorizer, pairs, fresh.threshold, rows, fresh.matrix, rep)


def near_duplicate_groups(
    titles: Sequence[str],
    threshold: float = 0.7,
    *,
    rows: np.ndarray | None = None,
    kernel: str = "auto",
    n_jobs: int = -1,
    max_block_mb: float = 64.0,
) -> np.ndarray:
    """Group ids such that titles at least ``threshold`` similar share a group.

    Similarity is the cosine of TF-IDF weighted character 3-grams (within
    word boundaries), so "Recipe: Sakura Mochi" and "Recipe: Sakura Mochi
    (updated)" group together; groups are the connected components of the
    "similar" relation. Only the titles at ``rows`` (indices or a boolean
    mask; default all) are compared, e.g. the articles that may be shown;
    every other title is a group of its own. Returns an int array of shape
    (n_titles,).
    """
    links = title_links(
        titles, threshold, rows=rows, kernel=kernel, n_jobs=n_jobs, max_block_mb=max_block_mb
    )
    return links.groups(len(titles))
