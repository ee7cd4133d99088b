"""Score kernels: the sparse product behind the similarity search.

A kernel turns a block of source rows and a prepared candidate matrix into
a dense block of scores (float32, one row per source, one column per
candidate). The similarity search is the same whichever kernel runs it; only
speed differs:

``mkl``
    Intel MKL's sparse x sparse -> dense product (``mkl_sparse_s_spmmd``)
    through the `sparse_dot_mkl` package (``pip install 'recommender[fast]'``).
    It writes the dense block directly, several times faster than building a
    sparse result first. x86-64 only.
``scipy``
    SciPy's sparse product, then ``toarray``: always available.

``auto`` picks ``mkl`` when it loads, else ``scipy``.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Kernel:
    """A named score kernel (see module docs).

    ``prepare(candidates)`` runs once per candidate set; ``scores(sources,
    prepared)`` once per block; ``releases_gil`` tells whether blocks may run
    in parallel threads.
    """

    name: str
    prepare: Callable[[sp.csr_matrix], Any]
    scores: Callable[[sp.csr_matrix, Any], np.ndarray]
    releases_gil: bool


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


KERNELS = {
    "scipy": Kernel("scipy", _scipy_prepare, _scipy_scores, releases_gil=False),
    "mkl": Kernel("mkl", _scipy_prepare, _mkl_scores, releases_gil=True),
}


def available_kernels() -> list[str]:
    """Names of the kernels that can run here."""
    return [name for name in KERNELS if name != "mkl" or _mkl_module() is not None]


def get_kernel(name: str = "auto") -> Kernel:
    """The kernel called ``name`` (``auto``: the fastest available)."""
    if name == "auto":
        name = "mkl" if _mkl_module() is not None else "scipy"
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; expected auto, {', '.join(KERNELS)}")
    if name not in available_kernels():
        raise ValueError(
            f"kernel {name!r} is not available here: pip install 'recommender[fast]' (x86-64 only)"
        )
    return KERNELS[name]
