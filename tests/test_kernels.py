"""recommender.kernels: each score kernel is the dense product; auto picks as documented."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import kernels as kernels_module
from recommender.kernels import AUTO_ORDER, KERNELS, Kernel, available_kernels, get_kernel
from recommender.similarity import _row_thresholds, cross_site_neighbors, top_k_per_row

HAS_MKL = "mkl" in available_kernels()
HAS_NUMBA = "numba" in available_kernels()
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")


def scores_of(name: str, sources: Any, candidates: Any) -> np.ndarray:
    """One kernel's score block, as the similarity search gets it."""
    kernel = get_kernel(name)
    return kernel.scores(sources, kernel.prepare(candidates))


def dense_reference(sources: Any, candidates: Any) -> np.ndarray:
    """The independent answer: a dense float64 NumPy product."""
    return sources.toarray().astype(np.float64) @ candidates.toarray().astype(np.float64).T


def run_without_mkl(setup: str) -> dict:
    """available_kernels() and the auto pick in a fresh interpreter where
    MKL cannot load (``setup`` runs before the import), plus the error
    asking for ``mkl``."""
    code = (
        "import json, sys\n"
        + setup
        + "\n"
        + textwrap.dedent(
            """
        from recommender.kernels import available_kernels, get_kernel
        try:
            get_kernel("mkl")
            error = None
        except ValueError as exc:
            error = str(exc)
        print(json.dumps({"available": available_kernels(), "auto": get_kernel().name,
                          "error": error}))
        """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- which kernels, and auto ------------------------------------------------------------------


def test_scipy_is_always_available_and_first() -> None:
    """SciPy's kernel runs everywhere; the only others are the documented ones."""
    names = available_kernels()
    assert names[0] == "scipy"
    assert set(names) <= {"scipy", "mkl", "numba"}
    assert get_kernel("scipy").name == "scipy"


def test_auto_picks_the_first_available_in_the_documented_order() -> None:
    """``auto`` (also the default) is ``numba`` where Numba is installed (a
    core dependency), else ``mkl`` where MKL loads, else ``scipy``."""
    assert AUTO_ORDER == ("numba", "mkl", "scipy")
    expected = "numba" if HAS_NUMBA else "mkl" if HAS_MKL else "scipy"
    assert get_kernel("auto").name == expected
    assert get_kernel() == get_kernel("auto")


@needs_numba
def test_auto_picks_numba_when_it_is_present() -> None:
    """With Numba present, ``auto`` is the fused kernel, MKL or not."""
    assert get_kernel().name == "numba"
    assert get_kernel().top_k is not None


def test_without_numba_auto_picks_mkl_or_scipy_and_numba_is_refused() -> None:
    """Where Numba cannot be imported, ``auto`` falls back to MKL, else
    SciPy, and asking for ``numba`` names the package to install."""
    found = run_without_mkl("sys.modules['numba'] = None")
    assert "numba" not in found["available"]
    assert found["auto"] == ("mkl" if HAS_MKL else "scipy")
    both = run_without_mkl(
        "sys.modules['numba'] = None\nsys.modules['sparse_dot_mkl'] = None\n"
        "from recommender.kernels import get_kernel\n"
        "try:\n    get_kernel('numba')\nexcept ValueError as exc:\n"
        "    assert 'pip install numba' in str(exc), exc\nelse:\n    raise AssertionError"
    )
    assert both["available"] == ["scipy"] and both["auto"] == "scipy"


@pytest.mark.parametrize(
    "setup",
    [
        # sparse_dot_mkl not installed.
        "sys.modules['sparse_dot_mkl'] = None",
        # Installed, but its MKL library does not load (the import raises OSError;
        # pointing MKL_RT at a missing file is not enough where the loader finds
        # another libmkl_rt).
        "class NoMkl:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sparse_dot_mkl':\n"
        "            raise OSError('libmkl_rt.so: cannot open shared object file')\n"
        "sys.meta_path.insert(0, NoMkl())",
    ],
    ids=["not-installed", "library-missing"],
)
def test_without_mkl_auto_falls_back_and_mkl_is_refused(setup: str) -> None:
    """Where MKL cannot load, it is not available, ``auto`` picks Numba's
    kernel (SciPy's without Numba), and asking for ``mkl`` is a ValueError
    naming the extra to install."""
    found = run_without_mkl(setup)
    assert found["available"] == ["scipy", "numba"] if HAS_NUMBA else ["scipy"]
    assert found["auto"] == ("numba" if HAS_NUMBA else "scipy")
    assert found["error"] is not None
    assert "kernel 'mkl' is not available here" in found["error"]
    assert "recommender[fast]" in found["error"]


@pytest.mark.parametrize("name", ["gpu", "", "MKL", "Auto", "scipy "])
def test_unknown_kernel_names_are_refused(name: str) -> None:
    """A name that is not ``auto`` or a kernel (names are exact) is a
    ValueError that lists the valid ones."""
    with pytest.raises(ValueError, match=r"unknown kernel .*; expected auto, scipy, mkl, numba"):
        get_kernel(name)


def test_kernels_are_frozen_and_say_whether_they_release_the_gil() -> None:
    """SciPy's kernel holds the GIL (blocks run one at a time), MKL's and
    Numba's release it (blocks run in threads); only Numba's selects the top
    k itself; a kernel cannot be altered."""
    assert KERNELS["scipy"].releases_gil is False
    assert KERNELS["mkl"].releases_gil is True
    assert KERNELS["numba"].releases_gil is True
    assert [name for name, kernel in KERNELS.items() if kernel.top_k] == ["numba"]
    assert all(isinstance(kernel, Kernel) and kernel.name == key for key, kernel in KERNELS.items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_kernel("scipy").name = "other"  # type: ignore[misc]


# -- the product ------------------------------------------------------------------------------


kernel_names = pytest.mark.parametrize("name", available_kernels())


@kernel_names
def test_scores_of_a_small_example(name: str) -> None:
    """A hand-checked product: one row per source, one column per candidate."""
    sources = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    candidates = sp.csr_matrix(np.array([[1, 1, 1], [0, 0, 4], [2, 0, 0]], dtype=np.float32))
    got = scores_of(name, sources, candidates)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, [[3, 8, 2], [3, 0, 0]])


@kernel_names
@pytest.mark.parametrize(
    "source_shape, candidate_shape",
    [((0, 5), (3, 5)), ((3, 5), (0, 5)), ((0, 5), (0, 5)), ((3, 0), (2, 0)), ((2, 4), (3, 4))],
    ids=["no-sources", "no-candidates", "neither", "no-features", "all-zero"],
)
def test_empty_inputs_give_a_block_of_the_right_shape(
    name: str, source_shape: tuple[int, int], candidate_shape: tuple[int, int]
) -> None:
    """No sources, no candidates, no features or no stored entries: a
    zero-filled float32 block of shape (sources, candidates)."""
    sources = sp.csr_matrix(source_shape, dtype=np.float32)
    candidates = sp.csr_matrix(candidate_shape, dtype=np.float32)
    got = scores_of(name, sources, candidates)
    assert got.dtype == np.float32
    assert got.shape == (source_shape[0], candidate_shape[0])
    assert not got.any()


@kernel_names
def test_float64_and_int64_indexed_inputs(name: str) -> None:
    """float64 values and int64 index arrays (as SciPy makes for large
    matrices) give the same float32 scores as the dense product."""
    sources = sp.random(7, 11, density=0.4, format="csr", random_state=1)
    candidates = sp.random(5, 11, density=0.4, format="csr", random_state=2)
    for matrix in (sources, candidates):
        matrix.indices = matrix.indices.astype(np.int64)
        matrix.indptr = matrix.indptr.astype(np.int64)
    got = scores_of(name, sources, candidates)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, dense_reference(sources, candidates), rtol=1e-5, atol=1e-6)


@kernel_names
def test_non_canonical_inputs(name: str) -> None:
    """Unsorted column indices and duplicate entries (which sum) score as
    their dense matrices do."""
    sources = sp.csr_matrix(
        (np.array([1, 2, 3], dtype=np.float32), np.array([3, 0, 3]), np.array([0, 3])), shape=(1, 4)
    )
    candidates = sp.csr_matrix(
        (np.array([1, 1, 5], dtype=np.float32), np.array([3, 0, 0]), np.array([0, 2, 3])),
        shape=(2, 4),
    )
    assert not sources.has_canonical_format
    np.testing.assert_array_equal(scores_of(name, sources, candidates), [[6, 10]])


@kernel_names
def test_sparse_arrays_are_accepted(name: str) -> None:
    """SciPy's sparse arrays (csr_array) score as their matrix counterparts."""
    sources = sp.random(4, 6, density=0.5, format="csr", dtype=np.float32, random_state=3)
    candidates = sp.random(5, 6, density=0.5, format="csr", dtype=np.float32, random_state=4)
    got = scores_of(name, sp.csr_array(sources), sp.csr_array(candidates))
    np.testing.assert_allclose(got, dense_reference(sources, candidates), rtol=1e-5, atol=1e-6)


@kernel_names
def test_inputs_are_left_alone_and_prepared_candidates_reused(name: str) -> None:
    """Preparing and scoring change neither matrix; one prepared candidate
    set scores block after block (the similarity search's loop)."""
    X = sp.random(9, 8, density=0.4, format="csr", dtype=np.float32, random_state=5)
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    kernel = get_kernel(name)
    prepared = kernel.prepare(X[3:])
    blocks = [kernel.scores(X[rows], prepared) for rows in (slice(0, 4), slice(4, 9), slice(0, 4))]
    np.testing.assert_array_equal(blocks[0], blocks[2])
    np.testing.assert_allclose(
        np.vstack(blocks[:2]), dense_reference(X, X[3:]), rtol=1e-5, atol=1e-6
    )
    for array, copy in zip((X.data, X.indices, X.indptr), before, strict=True):
        np.testing.assert_array_equal(array, copy)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sources=st.integers(0, 12),
    n_candidates=st.integers(0, 12),
    n_features=st.integers(0, 20),
    density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    name=st.sampled_from(available_kernels()),
)
def test_every_kernel_equals_the_dense_product(
    seed: int, n_sources: int, n_candidates: int, n_features: int, density: float, name: str
) -> None:
    """For random sparse matrices, each kernel's block equals the dense
    product (float32 rounding aside) and SciPy's kernel's block."""
    rng = np.random.default_rng(seed)
    sources = sp.random(n_sources, n_features, density=density, format="csr", random_state=rng)
    candidates = sp.random(
        n_candidates, n_features, density=density, format="csr", random_state=rng
    )
    got = scores_of(name, sources, candidates)
    assert got.dtype == np.float32 and got.shape == (n_sources, n_candidates)
    np.testing.assert_allclose(got, dense_reference(sources, candidates), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, scores_of("scipy", sources, candidates), rtol=1e-6, atol=1e-6)
    if name == "numba":  # SciPy's order of summation: the same bits
        np.testing.assert_array_equal(got, scores_of("scipy", sources, candidates))


# -- the fused top k (numba) ------------------------------------------------------------------


def tied_matrix(rng: np.random.Generator, n: int, n_features: int, density: float) -> sp.csr_matrix:
    """Values from {0.5, 1, 2} (exact float sums: many equal scores), some empty rows."""
    dense = rng.choice(np.array([0.5, 1.0, 2.0], dtype=np.float32), size=(n, n_features))
    dense *= rng.random((n, n_features)) < density
    dense[rng.random(n) < 0.2] = 0
    return sp.csr_matrix(dense)


@needs_numba
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 30),
    n_features=st.integers(1, 12),
    density=st.sampled_from([0.1, 0.3, 0.7]),
    k=st.integers(1, 8),
    tile=st.sampled_from([1, 3, 7, 6144]),
    tied=st.booleans(),
    min_similarity=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    with_floors=st.booleans(),
    own_site=st.booleans(),
)
def test_numba_neighbours_equal_scipy_kernels(
    seed: int,
    n: int,
    n_features: int,
    density: float,
    k: int,
    tile: int,
    tied: bool,
    min_similarity: float,
    with_floors: bool,
    own_site: bool,
) -> None:
    """On random sparse matrices (tied scores or not, empty rows, one or
    many tiles of candidates), the fused kernel's neighbours are the SciPy
    kernel's, bit for bit: the same ties by lower row, ``min_similarity``
    (strictly above), ``floors`` (at least), candidates, and a row never its
    own neighbour when its site may recommend itself."""
    rng = np.random.default_rng(seed)
    if tied:
        X = tied_matrix(rng, n, n_features, density)
    else:
        X = sp.random(n, n_features, density=density, format="csr", random_state=rng)
        X = sp.csr_matrix(X, dtype=np.float32)
    sites = rng.choice(np.array(["a", "b", "c"]), size=n)
    allowed = {"a": ["a", "b"], "b": ["c"], "c": ["a", "b", "c"]} if own_site else None
    candidates = rng.random(n) < 0.8
    rows = rng.permutation(n)[: rng.integers(0, n + 1)] if n else np.arange(0)
    floors = None
    if with_floors:
        # Floors among the scores themselves (ties with a floor count), and NaN.
        levels = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, np.nan], dtype=np.float32)
        floors = rng.choice(levels, size=len(rows))
    options = dict(
        allowed=allowed,
        candidates=candidates,
        rows=rows,
        min_similarity=min_similarity,
        floors=floors,
        max_block_mb=0.001,  # many blocks
    )
    old_tile = kernels_module.TILE_CANDIDATES
    kernels_module.TILE_CANDIDATES = tile
    try:
        fused = cross_site_neighbors(X, sites, k, kernel="numba", n_jobs=2, **options)
    finally:
        kernels_module.TILE_CANDIDATES = old_tile
    reference = cross_site_neighbors(X, sites, k, kernel="scipy", **options)
    np.testing.assert_array_equal(fused.indices, reference.indices)
    np.testing.assert_array_equal(fused.scores.view(np.uint32), reference.scores.view(np.uint32))


@needs_numba
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sources=st.integers(0, 10),
    n_candidates=st.integers(0, 25),
    k=st.integers(0, 30),
    tile=st.sampled_from([1, 4, 6144]),
    min_score=st.sampled_from([0.0, 1.0]),
)
def test_numba_top_k_is_top_k_per_row_of_the_scores(
    seed: int, n_sources: int, n_candidates: int, k: int, tile: int, min_score: float
) -> None:
    """The kernel's ``top_k`` is :func:`top_k_per_row` on its own dense
    block with the excluded column at -inf (k beyond the candidates pads)."""
    rng = np.random.default_rng(seed)
    sources = tied_matrix(rng, n_sources, 6, 0.5)
    candidates = tied_matrix(rng, n_candidates, 6, 0.5)
    old_tile = kernels_module.TILE_CANDIDATES
    kernels_module.TILE_CANDIDATES = tile
    try:
        kernel = get_kernel("numba")
        prepared = kernel.prepare(candidates)
    finally:
        kernels_module.TILE_CANDIDATES = old_tile
    assert kernel.top_k is not None
    exclude = rng.integers(-1, max(1, n_candidates), size=n_sources)
    threshold = _row_thresholds(n_sources, min_score, None)
    got_idx, got_val = kernel.top_k(sources, prepared, k, threshold, exclude)
    dense = kernel.scores(sources, prepared)
    np.testing.assert_array_equal(dense, scores_of("scipy", sources, candidates))
    hit = np.flatnonzero((exclude >= 0) & (exclude < n_candidates))
    dense[hit, exclude[hit]] = -np.inf
    want_idx, want_val = top_k_per_row(dense, k, min_score=min_score)
    assert got_idx.dtype == np.int64 and got_val.dtype == np.float32
    assert got_idx.shape == got_val.shape == (n_sources, k)
    np.testing.assert_array_equal(got_idx, want_idx)
    np.testing.assert_array_equal(got_val, want_val)


@needs_numba
def test_numba_kernel_refuses_mismatched_features() -> None:
    """Sources and candidates must have the same number of features."""
    kernel = get_kernel("numba")
    prepared = kernel.prepare(sp.csr_matrix((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="features"):
        kernel.scores(sp.csr_matrix((2, 5), dtype=np.float32), prepared)
