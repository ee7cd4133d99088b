"""Score kernels: the sparse product behind the similarity search.

A kernel turns a block of source rows and a prepared candidate matrix into
a dense block of scores (float32, one row per source, one column per
candidate). A kernel may also select each row's top k itself (``top_k``),
without a dense block: the similarity search then uses that. The results
are the same whichever kernel runs it; only speed differs:

``numba``
    Numba's compiled loops (:mod:`recommender._numba`; ``numba`` is a core
    dependency, with wheels for x86-64 and aarch64), fused: per block of
    source rows and tile of candidates (``TILE_CANDIDATES``, whose
    accumulator stays in L1), a gather-scatter sparse product row by row, in
    SciPy's own order of summation and precision (so SciPy's scores, bit for
    bit), and each row's top k selected from the accumulator as it is read:
    no dense block is written and read again (``top_k``). Compiled on first
    use and cached on disk; runs without the GIL. Its ``scores`` fills a
    dense block the same way (for the near-duplicate titles).
``mkl``
    Intel MKL's sparse x sparse -> dense product (``mkl_sparse_s_spmmd``)
    through the `sparse_dot_mkl` package (``pip install 'recommender[fast]'``).
    It writes the dense block directly, several times faster than building a
    sparse result first. x86-64 only.
``scipy``
    SciPy's sparse product, then ``toarray``: always available.

``auto`` picks the fastest available, in the order measured at 100k articles
(``benchmarks/RESULTS.md``): ``numba``, ``mkl``, ``scipy``.
"""

from __future__ import annotations

import glob
import itertools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp

TopK = Callable[
    [sp.csr_matrix, Any, int, np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]
]


@dataclass(frozen=True)
class Kernel:
    """A named score kernel (see module docs).

    ``prepare(candidates)`` runs once per candidate set; ``scores(sources,
    prepared)`` once per block; ``releases_gil`` tells whether blocks may run
    in parallel threads.

    ``top_k(sources, prepared, k, threshold, exclude)``, when a kernel has
    it, selects each source row's ``k`` best candidates itself, without a
    dense block: the entries of that row of ``scores(sources, prepared)``
    that are at least ``threshold[i]`` (float32, > 0; NaN: none), except
    column ``exclude[i]`` when given and >= 0, best first, equal scores by
    lower column. Returns ``(columns, values)`` of shape (n_sources, k),
    int64 and float32, -1 and 0 where fewer qualify: exactly what
    :func:`recommender.similarity.top_k_per_row` gives on the dense block.
    """

    name: str
    prepare: Callable[[sp.csr_matrix], Any]
    scores: Callable[[sp.csr_matrix, Any], np.ndarray]
    releases_gil: bool
    top_k: TopK | None = None


def _as_csr32(matrix: sp.spmatrix) -> sp.csr_matrix:
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.indices = csr.indices.astype(np.int32, copy=False)
    csr.indptr = csr.indptr.astype(np.int32, copy=False)
    return csr


def _scipy_prepare(candidates: sp.csr_matrix) -> sp.csr_matrix:
    return _as_csr32(candidates.T)


def _scipy_scores(sources: sp.csr_matrix, candidates_t: sp.csr_matrix) -> np.ndarray:
    return np.asarray((sources @ candidates_t).toarray(), dtype=np.float32)


@cache
def _mkl_module() -> Any | None:
    """sparse_dot_mkl with MKL loaded, or None where it is not installed."""
    if "MKL_RT" not in os.environ:
        # pip puts libmkl_rt in <prefix>/lib, which the loader does not search.
        found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
        if found:
            os.environ["MKL_RT"] = found[0]
    try:
        import sparse_dot_mkl
    except (ImportError, OSError):
        return None
    # Blocks run in parallel threads: one MKL thread each.
    sparse_dot_mkl.mkl_set_num_threads(1)
    return sparse_dot_mkl


def _mkl_scores(sources: sp.csr_matrix, candidates_t: sp.csr_matrix) -> np.ndarray:
    module = _mkl_module()
    assert module is not None
    product = module.dot_product_mkl(_as_csr32(sources), candidates_t, dense=True)
    return np.asarray(product, dtype=np.float32)


@cache
def _numba_module() -> Any | None:
    """recommender._numba (the compiled loops), or None where Numba is not installed."""
    try:
        from recommender import _numba
    except ImportError:
        return None
    return _numba


#: Candidates per tile of the ``numba`` kernel: a tile's float32 accumulator
#: (24 KiB) stays in a core's L1 cache while a block's rows are scored
#: against the tile (measured at 100k: 4096-13,000 within 10%; one tile of
#: all candidates, the accumulator in L2, 25% slower).
TILE_CANDIDATES = 6144


@dataclass(frozen=True)
class NumbaCandidates:
    """Candidates prepared for the ``numba`` kernel: tiles of consecutive
    candidates (``starts``: the first of each, then the count), each the
    transposed CSR of its candidates with local column indices; tile ``t``'s
    row pointers ``indptr[t]`` index its slice ``offsets[t]:offsets[t + 1]``
    of ``indices`` and ``data``."""

    shape: tuple[int, int]  # (candidates, features)
    starts: np.ndarray
    offsets: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def width(self) -> int:
        """Candidates in the widest tile."""
        return int(np.diff(self.starts).max(initial=0))


def _numba_prepare(candidates: sp.csr_matrix) -> NumbaCandidates:
    width = max(1, TILE_CANDIDATES)
    csr = _as_csr32(candidates)
    m, n_features = csr.shape
    starts = np.append(np.arange(0, m, width), m).astype(np.int64)
    tiles = [_as_csr32(csr[lo:hi].T) for lo, hi in itertools.pairwise(starts)]
    indptr = np.zeros((len(tiles), n_features + 1), dtype=np.int32)
    for t, tile in enumerate(tiles):
        indptr[t] = tile.indptr
    offsets = np.concatenate([[0], np.cumsum([tile.nnz for tile in tiles])]).astype(np.int64)

    def joined(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    return NumbaCandidates(
        (m, n_features),
        starts,
        offsets,
        indptr,
        joined([tile.indices for tile in tiles], np.int32),
        joined([tile.data for tile in tiles], np.float32),
    )


def _numba_sources(
    sources: sp.spmatrix, candidates: NumbaCandidates
) -> tuple[tuple[np.ndarray, ...], np.dtype]:
    """The source block's CSR arrays and the candidates' tiles, as the
    compiled loops take them, and the accumulator's dtype: SciPy's product's
    (float32 for float32 sources, float64 for float64 or integer ones)."""
    csr = sp.csr_matrix(sources)
    if csr.shape[1] != candidates.shape[1]:
        raise ValueError(f"sources have {csr.shape[1]} features, candidates {candidates.shape[1]}")
    wide = np.result_type(csr.dtype, np.float32) != np.float32
    dtype = np.dtype(np.float64 if wide else np.float32)
    arrays = (
        csr.indptr.astype(np.int64, copy=False),
        csr.indices.astype(np.int64, copy=False),
        csr.data.astype(dtype, copy=False),
        candidates.starts,
        candidates.offsets,
        candidates.indptr,
        candidates.indices,
        candidates.data,
    )
    return arrays, dtype


def _numba_scores(sources: sp.csr_matrix, candidates: NumbaCandidates) -> np.ndarray:
    module = _numba_module()
    assert module is not None
    arrays, dtype = _numba_sources(sources, candidates)
    out = np.zeros((sources.shape[0], candidates.shape[0]), dtype=dtype)
    if out.size:
        module.dense_scores(*arrays, out)
    return out.astype(np.float32, copy=False)


def _numba_top_k(
    sources: sp.csr_matrix,
    candidates: NumbaCandidates,
    k: int,
    threshold: np.ndarray,
    exclude: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    module = _numba_module()
    assert module is not None
    arrays, dtype = _numba_sources(sources, candidates)
    n = sources.shape[0]
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_val = np.zeros((n, k), dtype=np.float32)
    if n == 0 or k == 0 or candidates.shape[0] == 0:
        return out_idx, out_val
    threshold = np.ascontiguousarray(np.broadcast_to(threshold, n), dtype=np.float32)
    exclude = (
        np.full(n, -1, dtype=np.int64)
        if exclude is None
        else np.ascontiguousarray(exclude, dtype=np.int64)
    )
    acc = np.zeros(candidates.width, dtype=dtype)
    module.top_k_scores(*arrays, acc, threshold, exclude, out_idx, out_val)
    return out_idx, out_val


KERNELS = {
    "scipy": Kernel("scipy", _scipy_prepare, _scipy_scores, releases_gil=False),
    "mkl": Kernel("mkl", _scipy_prepare, _mkl_scores, releases_gil=True),
    "numba": Kernel("numba", _numba_prepare, _numba_scores, releases_gil=True, top_k=_numba_top_k),
}

#: ``auto``'s order of preference: the fastest first (benchmarks/RESULTS.md).
AUTO_ORDER = ("numba", "mkl", "scipy")

_LOADERS: dict[str, Callable[[], Any]] = {"mkl": _mkl_module, "numba": _numba_module}

_INSTALL = {
    "mkl": "pip install 'recommender[fast]' (x86-64 only)",
    "numba": "pip install numba",
}


def available_kernels() -> list[str]:
    """Names of the kernels that can run here."""
    return [name for name in KERNELS if name not in _LOADERS or _LOADERS[name]() is not None]


def get_kernel(name: str = "auto") -> Kernel:
    """The kernel called ``name`` (``auto``: the fastest available, see ``AUTO_ORDER``)."""
    if name == "auto":
        here = available_kernels()
        name = next(name for name in AUTO_ORDER if name in here)
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; expected auto, {', '.join(KERNELS)}")
    if name not in available_kernels():
        raise ValueError(f"kernel {name!r} is not available here: {_INSTALL[name]}")
    return KERNELS[name]
