from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize

from recommender.second_order import prune_rows, smooth_rows
from recommender.similarity import Neighbors


def dense_smooth(
    X: np.ndarray, idx: np.ndarray, scores: np.ndarray, beta: float, weighted: bool
) -> np.ndarray:
    """The definition, one row at a time, in dense numpy."""
    out = np.zeros_like(X, dtype=np.float64)
    for i in range(len(X)):
        found = idx[i] >= 0
        w = np.where(found, scores[i] if weighted else 1.0, 0.0)
        row = X[i].astype(np.float64)
        if w.sum() > 0:
            mean = (w[found, None] * X[idx[i][found]]).sum(axis=0) / w.sum()
            row = row + beta * mean
        norm = np.linalg.norm(row)
        out[i] = row / norm if norm > 0 else row
    return out


@st.composite
def problems(draw):
    """Random non-negative sparse rows, each with up to k distinct other rows
    as neighbours (-1 pads) and positive scores, and a row permutation."""
    n = draw(st.integers(2, 12))
    d = draw(st.integers(1, 8))
    k = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dense = rng.random((n, d)) * (rng.random((n, d)) < 0.4)
    X = sp.csr_matrix(normalize(dense), dtype=np.float32)
    idx = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        others = np.array([j for j in range(n) if j != i])
        m = int(rng.integers(0, min(k, len(others)) + 1))
        idx[i, :m] = rng.choice(others, size=m, replace=False)
        scores[i, :m] = np.sort(rng.random(m).astype(np.float32))[::-1] + np.float32(0.01)
    beta = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]))
    weighted = draw(st.booleans())
    return X, Neighbors(idx, scores), beta, weighted, rng.permutation(n)


@settings(max_examples=80, deadline=None)
@given(problems())
def test_smooth_rows_matches_the_dense_definition(problem):
    X, nb, beta, weighted, _ = problem
    got = smooth_rows(X, nb, beta, weighted)
    assert got.dtype == np.float32 and got.shape == X.shape
    expected = dense_smooth(X.toarray(), nb.indices, nb.scores, beta, weighted)
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-6, atol=1e-7)


@settings(max_examples=80, deadline=None)
@given(problems())
def test_smooth_rows_is_invariant_to_the_row_order(problem):
    X, nb, beta, weighted, perm = problem
    inverse = np.argsort(perm)  # old row -> new row
    idx = nb.indices[perm]
    permuted = Neighbors(np.where(idx >= 0, inverse[np.maximum(idx, 0)], -1), nb.scores[perm])
    got = smooth_rows(X[perm], permuted, beta, weighted)
    # Exactly: the same sums in the same order, only the rows moved.
    assert np.array_equal(got.toarray(), smooth_rows(X, nb, beta, weighted).toarray()[perm])


def test_a_row_moves_towards_its_neighbours():
    X = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    # Row 0 has rows 1 (score 0.6) and 2 (score 0.2); rows 1 and 2 have none.
    nb = Neighbors(np.array([[1, 2], [-1, -1], [-1, -1]]), np.array([[0.6, 0.2], [0, 0], [0, 0]]))
    plain = smooth_rows(X, nb, beta=2.0, weighted=False).toarray()
    np.testing.assert_allclose(plain[0], np.array([1.0, 1.0, 1.0]) / np.sqrt(3), rtol=1e-6)
    weighted = smooth_rows(X, nb, beta=2.0, weighted=True).toarray()
    np.testing.assert_allclose(weighted[0], np.array([1.0, 1.5, 0.5]) / np.sqrt(3.5), rtol=1e-6)
    # Without neighbours a row is unchanged.
    np.testing.assert_array_equal(plain[1:], X.toarray()[1:])


def test_smooth_rows_rejects_a_mismatched_neighbour_table():
    X = sp.identity(3, format="csr")
    with pytest.raises(ValueError, match="3 rows of X"):
        smooth_rows(X, Neighbors(np.zeros((2, 1), np.int32), np.zeros((2, 1))), 1.0)
    with pytest.raises(ValueError, match="indices must be in"):
        smooth_rows(X, Neighbors(np.full((3, 1), 3, np.int32), np.ones((3, 1))), 1.0)
    with pytest.raises(ValueError, match="beta"):
        smooth_rows(X, Neighbors(np.full((3, 1), -1, np.int32), np.zeros((3, 1))), -1.0)


def test_prune_rows_keeps_the_largest_entries_ties_by_lower_column():
    smoothed = sp.csr_matrix(np.array([[0.1, 0.5, 0.2, 0.5, 0.0], [0.3, 0.0, 0.3, 0.0, 0.3]]))
    original = sp.csr_matrix(np.array([[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 1.0]]))
    got = prune_rows(smoothed, original, 2.0).toarray()
    # Row 0: two entries (2 x 1): the two 0.5s. Row 1: up to 4, all three kept.
    np.testing.assert_allclose(got[0], np.array([0, 1, 0, 1, 0]) / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(got[1], np.array([1, 0, 1, 0, 1]) / np.sqrt(3), rtol=1e-6)
    got = prune_rows(smoothed, original, 0.5).toarray()  # ceil(0.5) = 1, ceil(1) = 1
    np.testing.assert_array_equal(got, np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]))


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from([0.5, 1.0, 2.0, 3.0]))
def test_prune_rows_keeps_a_top_set_and_only_reorders_with_the_rows(problem, factor):
    X, nb, beta, weighted, perm = problem
    S = smooth_rows(X, nb, beta, weighted)
    got = prune_rows(S, X, factor)
    limit = np.ceil(factor * np.diff(X.indptr))
    assert (np.diff(got.indptr) <= limit).all()
    dense, kept = S.toarray(), got.toarray() > 0
    for i in range(X.shape[0]):
        if kept[i].any() and (~kept[i] & (dense[i] > 0)).any():
            # Every entry dropped is no larger than every entry kept.
            assert dense[i][~kept[i]].max() <= dense[i][kept[i]].min()
    assert np.array_equal(prune_rows(S[perm], X[perm], factor).toarray(), got.toarray()[perm])


def test_prune_rows_rejects_a_bad_factor():
    X = sp.identity(2, format="csr")
    with pytest.raises(ValueError, match="factor"):
        prune_rows(X, X, 0.0)
