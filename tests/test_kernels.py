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

from recommender.kernels import KERNELS, Kernel, available_kernels, get_kernel

HAS_MKL = "mkl" in available_kernels()


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
    assert set(names) <= {"scipy", "mkl"}
    assert get_kernel("scipy").name == "scipy"


def test_auto_picks_mkl_when_it_loads_else_scipy() -> None:
    """``auto`` (also the default) is ``mkl`` where MKL loads, else ``scipy``."""
    expected = "mkl" if HAS_MKL else "scipy"
    assert get_kernel("auto").name == expected
    assert get_kernel() == get_kernel("auto")


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
    """Where MKL cannot load, only ``scipy`` is available, ``auto`` picks it,
    and asking for ``mkl`` is a ValueError naming the extra to install."""
    found = run_without_mkl(setup)
    assert found["available"] == ["scipy"]
    assert found["auto"] == "scipy"
    assert found["error"] is not None
    assert "kernel 'mkl' is not available here" in found["error"]
    assert "recommender[fast]" in found["error"]


@pytest.mark.parametrize("name", ["gpu", "", "MKL", "Auto", "scipy "])
def test_unknown_kernel_names_are_refused(name: str) -> None:
    """A name that is not ``auto`` or a kernel (names are exact) is a
    ValueError that lists the valid ones."""
    with pytest.raises(ValueError, match=r"unknown kernel .*; expected auto, scipy, mkl"):
        get_kernel(name)


def test_kernels_are_frozen_and_say_whether_they_release_the_gil() -> None:
    """SciPy's kernel holds the GIL (blocks run one at a time), MKL's
    releases it (blocks run in threads); a kernel cannot be altered."""
    assert KERNELS["scipy"].releases_gil is False
    assert KERNELS["mkl"].releases_gil is True
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
