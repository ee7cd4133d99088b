from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.sparse.csgraph import connected_components
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


# -- near-duplicate titles: copies of one title are compared once ------------------------------


def every_similar_pair(titles, rows, vectorizer, threshold, kernel) -> np.ndarray:
    """Reference: every compared pair (r, c), r < c, scored from r's side
    (one dense product of all the compared titles, as before classes)."""
    from recommender.kernels import get_kernel

    compared = np.flatnonzero(rows)
    if len(compared) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    T = sp.csr_matrix(vectorizer.transform([titles[i] for i in compared]))
    score = get_kernel(kernel)
    S = score.scores(T, score.prepare(T))
    i, j = np.nonzero(np.triu(threshold <= S, k=1))
    return np.column_stack([compared[i], compared[j]]).astype(np.int64).reshape(-1, 2)


def same_groups(pairs: np.ndarray, n: int) -> np.ndarray:
    """Each row's group (connected components), numbered by first appearance:
    two results mean the same near-duplicates exactly when these are equal."""
    graph = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return pd.factorize(connected_components(graph, directed=False)[1])[0]


def spelled(title: str, how: str) -> str:
    """Another spelling of ``title`` with the identical vector (case, spacing)."""
    return {"same": title, "upper": title.upper(), "spaces": title.replace(" ", "   ")}[how]


@st.composite
def titles_with_copies(draw, max_size: int = 40) -> list[str]:
    """A few distinct titles (sometimes empty or one word), each repeated,
    some spelled differently but with the identical vector."""
    pool = draw(
        st.lists(st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join), min_size=1, max_size=6)
    )
    picks = draw(
        st.lists(
            st.tuples(st.integers(0, len(pool) - 1), st.sampled_from(["same", "upper", "spaces"])),
            min_size=2,
            max_size=max_size,
        )
    )
    return [spelled(pool[i], how) for i, how in picks]


@settings(max_examples=150, deadline=None)
@given(
    titles=titles_with_copies(),
    data=st.data(),
    threshold=st.sampled_from([0.3, 0.6, 0.7, 1.0]),
    block_mb=st.sampled_from([1e-4, 64.0]),
    kernel=st.sampled_from(available_kernels()),
)
def test_title_groups_equal_every_pair_compared(titles, data, threshold, block_mb, kernel) -> None:
    """Repeated titles: the groups the mix sees are the connected components of
    every similar pair (brute force); each stored pair is one of them, and
    with no two identical titles the stored pairs are exactly them."""
    n = len(titles)
    rows = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    links = title_links(titles, threshold, rows=rows, kernel=kernel, max_block_mb=block_mb)
    assume(links.vectorizer is not None)
    reference = every_similar_pair(titles, rows, links.vectorizer, threshold, kernel)
    np.testing.assert_array_equal(same_groups(links.pairs, n), same_groups(reference, n))
    np.testing.assert_array_equal(
        near_duplicate_groups(titles, threshold, rows=rows, kernel=kernel), links.groups(n)
    )
    stored = {tuple(pair) for pair in links.pairs.tolist()}
    assert stored <= {tuple(pair) for pair in reference.tolist()}
    assert (links.pairs[:, 0] < links.pairs[:, 1]).all()
    compared = np.flatnonzero(rows)
    vectors = links.vectorizer.transform([titles[i] for i in compared]).toarray()
    if len(np.unique(vectors, axis=0)) == len(compared):  # no copies: as before
        np.testing.assert_array_equal(links.pairs, reference)


@settings(max_examples=80, deadline=None)
@given(
    titles=titles_with_copies(max_size=30),
    data=st.data(),
    threshold=st.sampled_from([0.6, 1.0]),
    saved_before_classes=st.booleans(),
    kernel=st.sampled_from(available_kernels()),
)
def test_updates_with_copies_and_removals_equal_the_full_comparison(
    titles, data, threshold, saved_before_classes, kernel
) -> None:
    """Successive updates as :meth:`Recommender.update` makes them (titles
    removed, edited, newly shown, copies of existing titles added, kept
    vectors reused): the merged pairs are a full comparison's, even when the
    row that stood for a class of copies is gone, and their groups are those
    of every similar pair. An old run saved before classes (every pair, no
    ``rep``) merges the same."""
    shown = st.sampled_from([True, True, True, False])  # mostly: classes keep members
    rows_before = np.array(
        data.draw(st.lists(shown, min_size=len(titles), max_size=len(titles))), bool
    )
    old = title_links(titles, threshold, rows=rows_before, kernel=kernel)
    assume(old.vectorizer is not None)
    if saved_before_classes:
        every = every_similar_pair(titles, rows_before, old.vectorizer, threshold, kernel)
        old = type(old)(old.vectorizer, every, threshold, old.rows, old.matrix)
    for _ in range(data.draw(st.integers(1, 2))):
        n_old = len(titles)
        fate = data.draw(
            st.lists(
                st.sampled_from(["keep", "keep", "keep", "drop", "edit"]),
                min_size=n_old,
                max_size=n_old,
            )
        )
        added = data.draw(st.lists(st.integers(0, n_old - 1), max_size=5))
        later, old_of_new, same = [], [], []
        for i, what in enumerate(fate):
            if what != "drop":
                later.append(
                    titles[i] if what == "keep" else f"{titles[i]} {WORDS[i % len(WORDS)]}"
                )
                old_of_new.append(i)
                same.append(what == "keep")
        later += [titles[i] for i in added]  # copies of existing titles, as new articles
        old_of_new += [-1] * len(added)
        same += [False] * len(added)
        n = len(later)
        old_of_new, same = np.array(old_of_new, dtype=np.int64), np.array(same, dtype=bool)
        new_of_old = np.full(n_old, -1, dtype=np.int64)
        new_of_old[old_of_new[same]] = np.flatnonzero(same)
        rows_now = np.array(data.draw(st.lists(shown, min_size=n, max_size=n)), bool)
        keep = same & rows_now
        keep[same] &= rows_before[old_of_new[same]]
        compared = np.flatnonzero(rows_now)
        known = None
        if old.rows is not None:
            reused = keep[compared]
            found = old.vectors_of(old_of_new[compared[reused]])
            if found is not None and found[0].all():
                known = (reused, found[1])
        vectorizer = old.vectorizer
        full = title_links(later, threshold, rows=rows_now, vectorizer=vectorizer, kernel=kernel)
        fresh = title_links(
            later,
            threshold,
            rows=rows_now,
            vectorizer=vectorizer,
            fresh=rows_now & ~keep,
            known=known,
            kernel=kernel,
        )
        merged = merge_title_links(old, new_of_old, keep, fresh)
        np.testing.assert_array_equal(merged.pairs, full.pairs)
        reference = every_similar_pair(later, rows_now, vectorizer, threshold, kernel)
        np.testing.assert_array_equal(same_groups(merged.pairs, n), same_groups(reference, n))
        titles, rows_before, old = later, rows_now, merged
        if not titles:
            break


@pytest.mark.parametrize("n", [2_000, 20_000])
def test_identical_titles_store_one_pair_per_copy(n: int) -> None:
    """n copies of one title (the review's 21,754) are one group held by n - 1
    pairs, not n(n-1)/2; so after an update that drops the copy standing for
    them and adds more, as a full comparison gives."""
    title = "Breaking: markets rally as rates fall"
    others = [
        "BREAKING:  Markets rally as rates FALL",  # the identical vector
        "Breaking: markets rally as rates fall (updated)",  # a near-duplicate
        "Kyoto temples in autumn",
        "Sakura mochi recipe",
    ]
    titles = [title] * n + others
    # Fitted on the distinct titles: fitted on the copies, their 3-grams
    # would weigh so little that the "(updated)" one is no longer similar.
    vectorizer = title_links([title, *others]).vectorizer
    links = title_links(titles, 0.7, vectorizer=vectorizer, kernel="scipy", n_jobs=1)
    assert len(links.pairs) <= len(titles)  # every pair: n(n + 1)/2 + ...
    groups = links.groups(len(titles))
    assert len(set(groups[: n + 2])) == 1
    assert len(set(groups)) == 3

    # Update: the first copy (the class's representative) and 10 more are gone,
    # 100 copies arrive; the others are kept.
    new_of_old = np.full(len(titles), -1, dtype=np.int64)
    new_of_old[11:] = np.arange(len(titles) - 11)
    later = titles[11:] + [title] * 100
    keep = np.zeros(len(later), dtype=bool)
    keep[: len(titles) - 11] = True
    fresh = title_links(later, 0.7, vectorizer=vectorizer, fresh=~keep, kernel="scipy", n_jobs=1)
    merged = merge_title_links(links, new_of_old, keep, fresh)
    full = title_links(later, 0.7, vectorizer=vectorizer, kernel="scipy", n_jobs=1)
    assert len(merged.pairs) <= len(later)
    np.testing.assert_array_equal(merged.pairs, full.pairs)
    groups = merged.groups(len(later))
    copies = np.array([t in (title, others[0], others[1]) for t in later])
    assert len(set(groups[copies])) == 1 and len(set(groups)) == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_rows_are_exact_even_when_hashes_collide(monkeypatch, dtype) -> None:
    """Rows are grouped only when identical (columns and every bit of the
    values, -0.0 and 0.0 apart), each with the first such row; with a hash
    that makes every row collide the answer is the same."""
    from recommender import similarity

    rng = np.random.default_rng(5)
    base = rng.choice([0.0, 0.5, 1.0, 2.0], size=(6, 5)).astype(dtype)
    dense = base[rng.integers(0, 6, 60)]
    dense[7, :] = 0.0  # an empty row, like an untitled article
    X = sp.csr_matrix(dense)
    X.data[X.data == 2.0] = np.nextafter(dtype(2.0), dtype(3.0))  # differs in the last bit only
    X = sp.csr_matrix(X)
    dense = X.toarray()
    expected = [
        next(j for j in range(i + 1) if dense[j].tobytes() == dense[i].tobytes()) for i in range(60)
    ]
    assert similarity._identical_rows(X).tolist() == expected
    monkeypatch.setattr(similarity, "_mix64", lambda x: np.zeros_like(x))
    assert similarity._identical_rows(X).tolist() == expected
