from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.evaluate.metrics import (
    auc_score,
    bootstrap_interval,
    catalogue_coverage,
    cross_site_share,
    hit_at_k,
    impression_metrics,
    intra_list_diversity,
    mean_metrics,
    median_age_hours,
    mrr_score,
    ndcg_score,
    novelty,
    precision_at_k,
)

LOG2_3 = math.log2(3)

# -- hand-computed cases --------------------------------------------------------


def test_a_perfect_ranking_scores_one() -> None:
    labels, scores = [1, 0, 0, 0], [0.9, 0.5, 0.3, 0.1]
    assert auc_score(labels, scores) == 1.0
    assert mrr_score(labels, scores) == 1.0
    assert ndcg_score(labels, scores, 5) == 1.0
    assert hit_at_k(labels, scores, 1) == 1.0
    assert precision_at_k(labels, scores, 2) == 0.5


def test_click_in_second_place() -> None:
    # ranking: c(0), a(1), b(0): the click is at rank 2
    labels, scores = [1, 0, 0], [0.5, 0.1, 0.9]
    assert auc_score(labels, scores) == 0.5  # above b, below c
    assert mrr_score(labels, scores) == 0.5
    assert ndcg_score(labels, scores, 10) == pytest.approx(1 / LOG2_3)
    assert hit_at_k(labels, scores, 1) == 0.0
    assert hit_at_k(labels, scores, 2) == 1.0
    assert precision_at_k(labels, scores, 2) == 0.5


def test_two_clicks_follow_mind_definitions() -> None:
    # ranks: 1 (clicked), 2, 3 (clicked), 4
    labels, scores = [1, 0, 1, 0], [4, 3, 2, 1]
    assert auc_score(labels, scores) == pytest.approx(3 / 4)  # pairs won: 2 + 1 of 4
    assert mrr_score(labels, scores) == pytest.approx((1 + 1 / 3) / 2)
    dcg = 1 + 1 / 2  # rank 1 and rank 3 (1/log2(4))
    idcg = 1 + 1 / LOG2_3
    assert ndcg_score(labels, scores, 10) == pytest.approx(dcg / idcg)
    assert ndcg_score(labels, scores, 2) == pytest.approx(1 / idcg)


def test_ties_count_as_random_order() -> None:
    # All tied: the expected metrics of a random ranking of 1 click among 4.
    labels, scores = [0, 1, 0, 0], [0.3, 0.3, 0.3, 0.3]
    assert auc_score(labels, scores) == 0.5
    assert mrr_score(labels, scores) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert hit_at_k(labels, scores, 2) == pytest.approx(0.5)
    assert precision_at_k(labels, scores, 2) == pytest.approx(0.25)
    # A tie between the click and one other at the top: half the time first.
    labels, scores = [1, 0, 0], [0.9, 0.9, 0.1]
    assert auc_score(labels, scores) == 0.75
    assert mrr_score(labels, scores) == pytest.approx(0.75)
    assert ndcg_score(labels, scores, 10) == pytest.approx(0.5 + 0.5 / LOG2_3)


def test_impressions_without_a_click_are_undefined() -> None:
    labels, scores = [0, 0, 0], [0.3, 0.2, 0.1]
    for metric in (auc_score, mrr_score, ndcg_score, hit_at_k, precision_at_k):
        assert math.isnan(metric(labels, scores))
    assert math.isnan(auc_score([1, 1], [0.2, 0.1]))  # every candidate clicked
    assert mrr_score([1, 1], [0.2, 0.1]) == pytest.approx(0.75)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        auc_score([1, 0], [0.1])
    with pytest.raises(ValueError, match="0 or 1"):
        mrr_score([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        ndcg_score([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match="k must"):
        ndcg_score([1, 0], [0.1, 0.2], 0)


def test_frame_version_averages_over_impressions_with_a_click() -> None:
    frame = pd.DataFrame(
        {
            "impression_id": ["a", "a", "a", "b", "b", "c", "c"],
            "label": [1, 0, 0, 0, 0, 0, 1],
            "score": [0.9, 0.5, 0.1, 0.4, 0.3, 0.8, 0.2],
        }
    )
    per = impression_metrics(frame, extra=True)
    assert list(per.index) == ["a", "b", "c"]
    assert per.loc["a", "auc"] == 1.0 and per.loc["c", "auc"] == 0.0
    assert per.loc["b"][["auc", "mrr", "ndcg@5", "hit@5", "precision@5"]].isna().all()
    assert per.loc["c", "mrr"] == 0.5
    means = mean_metrics(per)
    assert means["auc"] == 0.5 and means["n_impressions"] == 2
    assert means["mrr"] == pytest.approx(0.75)


# -- properties -----------------------------------------------------------------

impressions = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


def _ordered_metric(labels: np.ndarray, order: tuple[int, ...], metric) -> float:
    """The metric of one strict ordering (no ties)."""
    scores = np.empty(len(order))
    scores[list(order)] = np.arange(len(order), 0, -1)
    return metric(labels, scores)


@given(impressions)
@settings(max_examples=150, deadline=None)
def test_ties_give_the_mean_over_every_tie_order(case) -> None:
    labels, scores = np.array(case[0], float), np.array(case[1], float)
    orders = [
        p
        for p in itertools.permutations(range(len(labels)))
        if all(scores[p[i]] >= scores[p[i + 1]] for i in range(len(p) - 1))
    ]
    for metric in (
        auc_score,
        mrr_score,
        lambda y, s: ndcg_score(y, s, 3),
        lambda y, s: hit_at_k(y, s, 2),
        lambda y, s: precision_at_k(y, s, 2),
    ):
        value = metric(labels, scores)
        expected = np.mean([_ordered_metric(labels, o, metric) for o in orders])
        assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


@given(st.lists(impressions, min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_frame_version_equals_the_one_impression_functions(cases) -> None:
    frame = pd.concat(
        [
            pd.DataFrame({"impression_id": i, "label": y, "score": s})
            for i, (y, s) in enumerate(cases)
        ],
        ignore_index=True,
    ).sample(frac=1.0, random_state=0)  # row order must not matter
    per = impression_metrics(frame, ks=(2, 5), extra=True)
    for i, (y, s) in enumerate(cases):
        row = per.loc[i]
        for name, value in (
            ("auc", auc_score(y, s)),
            ("mrr", mrr_score(y, s)),
            ("ndcg@5", ndcg_score(y, s, 5)),
            ("ndcg@2", ndcg_score(y, s, 2)),
            ("hit@2", hit_at_k(y, s, 2)),
            ("precision@5", precision_at_k(y, s, 5)),
        ):
            assert (math.isnan(row[name]) and math.isnan(value)) or row[name] == pytest.approx(
                value
            ), name


@given(impressions)
@settings(max_examples=100, deadline=None)
def test_metrics_are_bounded_and_a_perfect_ranking_scores_one(case) -> None:
    labels, scores = np.array(case[0], float), np.array(case[1], float)
    for metric in (auc_score, mrr_score, ndcg_score, hit_at_k, precision_at_k):
        value = metric(labels, scores)
        assert math.isnan(value) or 0.0 <= value <= 1.0 + 1e-12
    if labels.sum() > 0:
        perfect = labels + np.linspace(0, 0.5, len(labels))  # clicks above all others
        assert mrr_score(labels, perfect) <= 1.0
        assert ndcg_score(labels, perfect, len(labels)) == pytest.approx(1.0)
        assert hit_at_k(labels, perfect, 1) == 1.0
        if labels.sum() < len(labels):
            assert auc_score(labels, perfect) == 1.0
            assert auc_score(labels, -perfect) == 0.0


# -- bootstrap and list metrics -------------------------------------------------


def test_bootstrap_interval_holds_the_mean_and_ignores_nan() -> None:
    values = np.r_[np.random.default_rng(3).random(500), [np.nan] * 10]
    mean, low, high = bootstrap_interval(values, n_boot=400, seed=1)
    assert low < mean < high
    assert mean == pytest.approx(np.nanmean(values))
    assert high - low < 0.1
    assert bootstrap_interval(values, n_boot=400, seed=1) == (mean, low, high)
    assert bootstrap_interval([0.5]) == (0.5, 0.5, 0.5)
    assert all(math.isnan(v) for v in bootstrap_interval([np.nan]))


LISTS = pd.DataFrame(
    {
        "list_id": ["p", "p", "p", "q", "q", "r"],
        "source_site": ["alpha", "alpha", "alpha", "beta", "beta", None],
        "rank": [1, 2, 3, 1, 2, 1],
        "article_id": ["b1", "c1", "b2", "a1", "a1", "c1"],
        "site": ["beta", "gamma", "beta", "alpha", "alpha", "gamma"],
        "category": ["food", "food", "travel", "news", "news", "food"],
        "published_at": pd.to_datetime(
            ["2021-03-07T00:00Z", "2021-03-06T00:00Z", "2021-03-05T00:00Z"] * 2, utc=True
        ),
    }
)


def test_list_metrics_by_hand() -> None:
    assert catalogue_coverage(LISTS, ["a1", "b1", "b2", "c1", "d1"]) == pytest.approx(4 / 5)
    # p: sites beta, gamma, beta -> 2 of 3 pairs differ; q: 0 of 1; r has 1 item (left out)
    assert intra_list_diversity(LISTS, "site") == pytest.approx((2 / 3 + 0) / 2)
    assert intra_list_diversity(LISTS, "category") == pytest.approx((2 / 3 + 0) / 2)
    assert cross_site_share(LISTS) == 1.0  # r has no source site
    now = pd.Timestamp("2021-03-08T00:00Z")
    assert median_age_hours(LISTS, now) == 48.0
    popularity = pd.Series({"a1": 7, "b1": 0, "b2": 0, "c1": 1})
    # p(a1) = 8/12, p(b*) = 1/12, p(c1) = 2/12
    expected = np.mean(-np.log2([1 / 12, 2 / 12, 1 / 12, 8 / 12, 8 / 12, 2 / 12]))
    assert novelty(LISTS, popularity) == pytest.approx(expected)
