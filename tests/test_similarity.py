from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.preprocessing import normalize

from recommender.features import ArticleVectorizer
from recommender.kernels import available_kernels
from recommender.similarity import (
    Neighbors,
    best_first,
    cross_site_neighbors,
    merge_title_links,
    near_duplicate_groups,
    pair_similarity,
    shared_features,
    title_links,
    top_k_per_row,
)
from tests.conftest import tiny_articles


def brute_force(X, sites, k, allowed=None, candidates=None, min_similarity=0.0):
    """Reference answer: full dense product, masked, stable sort per row."""
    S = (X @ X.T).toarray().astype(np.float32)
    n = len(sites)
    allowed_mask = np.zeros((n, n), dtype=bool)
    for i in range(n):
        targets = (
            allowed.get(sites[i])
            if allowed and sites[i] in allowed
            else [s for s in set(sites) if s != sites[i]]
        )
        allowed_mask[i] = np.isin(sites, targets)
    np.fill_diagonal(allowed_mask, False)
    if candidates is not None:
        allowed_mask &= candidates[None, :]
    indices = np.full((n, k), -1)
    scores = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        cols = [
            j
            for j in np.argsort(-S[i], kind="stable")
            if allowed_mask[i, j] and S[i, j] > min_similarity
        ][:k]
        indices[i, : len(cols)] = cols
        scores[i, : len(cols)] = S[i, cols]
    return indices, scores


def test_nearest_cross_site_neighbour_is_the_topic_twin() -> None:
    articles = tiny_articles()
    X = ArticleVectorizer(category_weight=0).fit_transform(articles)
    neighbors = cross_site_neighbors(X, articles["site"].to_numpy(), k=2)
    ids = articles["article_id"].to_numpy()
    topic = np.array([i.split("-")[1] for i in ids])
    site = articles["site"].to_numpy()
    for row in range(len(ids)):
        found = neighbors.indices[row][neighbors.indices[row] >= 0]
        assert set(topic[found]) == {topic[row]}, ids[row]
        assert site[row] not in set(site[found])
    assert (np.diff(neighbors.scores, axis=1) <= 0).all()


def test_allowed_pairs_and_candidates_are_respected() -> None:
    articles = tiny_articles()
    X = ArticleVectorizer().fit_transform(articles)
    sites = articles["site"].to_numpy()
    candidates = ~articles["article_id"].str.endswith("sake").to_numpy()
    neighbors = cross_site_neighbors(
        X, sites, k=8, allowed={"alpha": ["beta"]}, candidates=candidates
    )
    for row in range(len(sites)):
        found = neighbors.indices[row][neighbors.indices[row] >= 0]
        assert candidates[found].all()
        if sites[row] == "alpha":
            assert set(sites[found]) <= {"beta"}
        else:
            assert sites[row] not in set(sites[found])


def test_own_site_when_allowed_but_never_the_row_itself() -> None:
    X = normalize(sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0.1]], dtype=np.float32)))
    neighbors = cross_site_neighbors(X, np.array(["a", "a", "a"]), k=3, allowed={"a": ["a"]})
    for row in range(3):
        found = set(neighbors.indices[row][neighbors.indices[row] >= 0])
        assert found == {0, 1, 2} - {row}


def test_ties_rank_by_lower_index() -> None:
    scores = np.array(
        [[0.5, 0.9, 0.5, 0.5, 0.1], [0.0, 0.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.3, 0.3, 0.3]],
        dtype=np.float32,
    )
    idx, val = top_k_per_row(scores, 3)
    assert idx.tolist() == [[1, 0, 2], [-1, -1, -1], [0, 1, 2]]
    assert val[0].tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_more_k_than_candidates_pads_with_minus_one() -> None:
    X = normalize(sp.csr_matrix(np.eye(3, dtype=np.float32) + 0.1))
    neighbors = cross_site_neighbors(X, np.array(["a", "b", "b"]), k=4)
    assert neighbors.indices[0].tolist() == [1, 2, -1, -1]
    assert neighbors.counts().tolist() == [2, 1, 1]


@st.composite
def networks(draw):
    n = draw(st.integers(2, 30))
    d = draw(st.integers(1, 8))
    # Small integer values produce many exact ties, duplicated rows and zero rows.
    dense = draw(arrays(np.float32, (n, d), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0])))
    sites = np.array(draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n)))
    k = draw(st.integers(1, 6))
    block_mb = draw(st.sampled_from([1e-6, 1e-4, 64.0]))
    candidates = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    allow_own = draw(st.booleans())
    return normalize(sp.csr_matrix(dense)), sites, k, block_mb, candidates, allow_own


def assert_valid_top_k(neighbors, X, sites, k, allowed, candidates, eps=1e-5) -> None:
    """A kernel that sums in another order may swap scores equal to within
    float rounding; anything else must match brute force."""
    indices, scores = brute_force(X, sites, k, allowed, candidates)
    np.testing.assert_allclose(neighbors.scores, scores, atol=eps)
    S = (X @ X.T).toarray()
    for row in range(len(sites)):
        found = neighbors.indices[row][neighbors.indices[row] >= 0]
        assert len(found) == (indices[row] >= 0).sum()
        assert len(set(found.tolist())) == len(found)
        np.testing.assert_allclose(S[row, found], neighbors.scores[row][: len(found)], atol=eps)
        expected = indices[row][indices[row] >= 0]
        differ = set(found.tolist()) ^ set(expected.tolist())
        # Only candidates tied (to rounding) with the last place may differ.
        if differ:
            assert np.all(np.abs(S[row, list(differ)] - scores[row][len(found) - 1]) <= eps)


@given(networks(), st.sampled_from(available_kernels()))
@settings(max_examples=150, deadline=None)
def test_blocked_top_k_equals_brute_force(network, kernel: str) -> None:
    X, sites, k, block_mb, candidates, allow_own = network
    allowed = {"a": ["a", "b"]} if allow_own else None
    neighbors = cross_site_neighbors(
        X, sites, k, allowed=allowed, candidates=candidates, max_block_mb=block_mb, kernel=kernel
    )
    if kernel == "scipy":  # the reference's own arithmetic: identical, ties included
        indices, scores = brute_force(X, sites, k, allowed, candidates)
        np.testing.assert_array_equal(neighbors.scores, scores)
        assert neighbors.indices.tolist() == indices.tolist()
    else:
        assert_valid_top_k(neighbors, X, sites, k, allowed, candidates)


def test_pair_similarity_matches_the_product() -> None:
    X = ArticleVectorizer().fit_transform(tiny_articles())
    S = (X @ X.T).toarray()
    a, b = np.array([0, 1, 2, 8]), np.array([3, 3, 8, 0])
    np.testing.assert_allclose(pair_similarity(X, a, b), S[a, b], rtol=1e-5)


def test_near_duplicate_titles_share_a_group() -> None:
    titles = [
        "Recipe: Sakura Mochi",
        "Recipe: Sakura Mochi (Updated)",
        "Kyoto",
        "2021 Top Jobs in Japan Week 8",
        "2021 Top Jobs in Japan Week 9",
        "Mie",
        "",
    ]
    groups = near_duplicate_groups(titles, 0.7)
    assert groups[0] == groups[1] and groups[3] == groups[4]
    assert len({groups[0], groups[2], groups[3], groups[5], groups[6]}) == 5
    assert len(set(near_duplicate_groups(titles, 1.0))) == len(titles)


def test_a_subset_of_source_rows_gives_those_rows_of_the_full_result() -> None:
    articles = tiny_articles()
    X = ArticleVectorizer().fit_transform(articles)
    sites = articles["site"].to_numpy()
    full = cross_site_neighbors(X, sites, k=3, kernel="scipy")
    rows = np.array([7, 0, 4])
    part = cross_site_neighbors(X, sites, k=3, rows=rows, kernel="scipy")
    assert part.indices.tolist() == full.indices[rows].tolist()
    np.testing.assert_array_equal(part.scores, full.scores[rows])


@pytest.mark.parametrize("kernel", available_kernels())
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_kernels_and_threads_agree(kernel: str, n_jobs: int) -> None:
    rng = np.random.default_rng(3)
    X = normalize(sp.random(300, 200, density=0.05, random_state=4, format="csr", dtype=np.float32))
    sites = rng.choice(["a", "b", "c"], 300)
    reference = cross_site_neighbors(X, sites, 10, kernel="scipy", n_jobs=1)
    got = cross_site_neighbors(X, sites, 10, kernel=kernel, n_jobs=n_jobs, max_block_mb=0.05)
    np.testing.assert_allclose(got.scores, reference.scores, atol=1e-6)
    assert (got.indices == reference.indices).mean() > 0.99  # only rounding-level ties differ


def test_unknown_kernel() -> None:
    from recommender.kernels import get_kernel

    with pytest.raises(ValueError, match="unknown kernel 'gpu'"):
        get_kernel("gpu")


def test_shared_features_split_the_cosine() -> None:
    X = normalize(
        sp.csr_matrix(np.array([[2, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float32))
    )
    columns, values = shared_features(X, 0, [1, 2], top=3)
    assert columns.tolist() == [[0, 1, -1], [-1, -1, -1]]
    cosine = float((X[0] @ X[1].T).toarray()[0, 0])
    assert values[0].sum() == pytest.approx(cosine)
    assert values[0, 0] > values[0, 1] > 0


WORDS = ["sakura", "mochi", "recipe", "kyoto", "jobs", "week", "tokyo", "ramen", "guide", "best"]


@settings(max_examples=40, deadline=None)
@given(
    titles=st.lists(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
        min_size=2,
        max_size=30,
    ),
    changes=st.lists(st.tuples(st.integers(0, 29), st.sampled_from(WORDS)), max_size=6),
    shown_before=st.lists(st.booleans(), min_size=30, max_size=30),
    shown_now=st.lists(st.booleans(), min_size=30, max_size=30),
    kernel=st.sampled_from(available_kernels()),
)
def test_merged_title_links_equal_the_full_comparison(
    titles, changes, shown_before, shown_now, kernel
) -> None:
    """An update's near-duplicate pairs (the old pairs that still hold plus
    the pairs touching changed or newly shown titles) are the pairs of a
    full comparison with the same vectorizer."""
    n = len(titles)
    before_rows = np.asarray(shown_before[:n])
    old = title_links(titles, 0.6, rows=before_rows, kernel=kernel)
    assume(old.vectorizer is not None)
    later = list(titles)
    changed = np.zeros(n, dtype=bool)
    for i, word in changes:
        if i < n:
            later[i] = f"{later[i]} {word}"
            changed[i] = True
    now_rows = np.asarray(shown_now[:n])
    keep = now_rows & before_rows & ~changed
    full = title_links(later, 0.6, rows=now_rows, vectorizer=old.vectorizer, kernel=kernel)
    fresh = title_links(
        later, 0.6, rows=now_rows, vectorizer=old.vectorizer, fresh=now_rows & ~keep, kernel=kernel
    )
    merged = merge_title_links(old, np.arange(n), keep, fresh)
    np.testing.assert_array_equal(merged.pairs, full.pairs)
    np.testing.assert_array_equal(merged.groups(n), full.groups(n))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 12)),
    width=st.integers(1, 12),
)
def test_best_first_ranks_like_a_lexsort_by_score_then_index(data, shape, width) -> None:
    rows, columns = shape
    indices = data.draw(arrays(np.int32, shape, elements=st.integers(-1, 50)))
    # Few distinct scores, so that ties (broken by the lower index) are common.
    scores = data.draw(
        arrays(
            np.float32,
            shape,
            elements=st.sampled_from([-2.0, -0.5, -0.0, 0.0, 0.02, 0.5, 0.75, 1.0, 3.5]),
        )
    )
    # Each index at most once per row, as in a neighbour list.
    for row in indices:
        seen: set[int] = set()
        for j, index in enumerate(row):
            if index in seen:
                row[j] = -1
            seen.add(int(index))

    # Side by side in two parts, rows in blocks of 2: the same as one whole.
    cut = data.draw(st.integers(0, columns))
    parts = [
        Neighbors(indices[:, :cut], scores[:, :cut]),
        Neighbors(indices[:, cut:], scores[:, cut:]),
    ]
    best = best_first(parts, width, block=2)

    key_index = np.where(indices >= 0, indices, 10**9)
    # -0.0 and 0.0 are one score.
    key_score = np.where(indices >= 0, -(scores.astype(np.float64) + 0.0), np.inf)
    order = np.lexsort((key_index, key_score), axis=1)[:, :width]
    expected = np.full((rows, width), -1)
    expected[:, : order.shape[1]] = np.take_along_axis(indices, order, axis=1)
    expected_scores = np.zeros((rows, width), dtype=np.float32)
    expected_scores[:, : order.shape[1]] = np.take_along_axis(scores, order, axis=1)
    expected_scores[expected < 0] = 0
    np.testing.assert_array_equal(best.indices, expected)
    np.testing.assert_array_equal(best.scores, expected_scores)
