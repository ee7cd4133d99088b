from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.evaluate.relatedness import agreement_baselines, knn_vote, neighbor_agreement

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HUFFPOST = SHARED / "huffpost" / "news_category_v3_newest10k.jsonl"


def test_neighbors_sharing_a_label_by_hand() -> None:
    # Two topics on two sites; each article's cross-site twin is its nearest.
    X = sp.csr_matrix(
        np.array(
            [
                [1.0, 0.0, 0.0],  # s1, food
                [0.0, 1.0, 0.0],  # s1, sport
                [0.9, 0.0, 0.436],  # s2, food
                [0.0, 0.9, 0.436],  # s2, sport
                [0.6, 0.8, 0.0],  # s2, sport (between both topics)
            ]
        )
    )
    labels = ["food", "sport", "food", "sport", "sport"]
    sites = ["s1", "s1", "s2", "s2", "s2"]
    summary, per = neighbor_agreement(X, labels, sites, k=2)
    # row 0's neighbours (s2): rows 2 (food) and 4 (sport) -> share 1/2
    assert per.loc[0, "share"] == 0.5
    # row 2 (s2) can only see s1: row 0 food (0.9) and row 1 sport (0) — the zero
    # similarity does not count as a neighbour.
    assert per.loc[2, "n_neighbors"] == 1 and per.loc[2, "share"] == 1.0
    assert per.loc[4, "predicted"] == "sport"  # 0.8 to sport beats 0.6 to food: tie by weight
    assert summary.n_articles == 5 and 0 <= summary.share <= 1
    within, _ = neighbor_agreement(X, labels, sites, k=1, cross_site=False)
    assert within.knn_accuracy == 1.0


def test_knn_vote_breaks_ties_by_summed_similarity() -> None:
    codes = np.array([[0, 1, -1], [1, 1, 0], [-1, -1, -1]])
    scores = np.array([[0.2, 0.9, 0.0], [0.1, 0.1, 0.9], [0, 0, 0]])
    assert list(knn_vote(codes, scores, 2)) == [1, 1, -1]


def test_baselines_are_what_chance_gives() -> None:
    labels = ["a"] * 6 + ["b"] * 2
    sites = ["x", "y"] * 4
    base = agreement_baselines(labels, sites, k=5, cross_site=True, seed=1)
    # Each site holds 3 "a" and 1 "b": a random cross-site neighbour of an "a" is an "a"
    # with probability 3/4, of a "b" with probability 1/4.
    assert base["random"].share == pytest.approx((6 * 0.75 + 2 * 0.25) / 8)
    assert base["most_frequent"].share == base["most_frequent"].knn_accuracy == 0.75
    assert 0 <= base["random"].knn_accuracy <= 1


@pytest.mark.skipif(not HUFFPOST.exists(), reason="real data in ../shared/data is absent")
def test_text_finds_categories_on_real_huffpost() -> None:
    from recommender.datasets import read_huffpost
    from recommender.features import ArticleVectorizer

    a = read_huffpost(HUFFPOST).valid
    X = ArticleVectorizer(category_weight=0.0, max_df=0.5).fit_transform(a)
    summary, _ = neighbor_agreement(X, a["category"], a["site"], k=10)
    base = agreement_baselines(a["category"], a["site"], k=10)
    assert summary.share > base["random"].share + 0.2
    assert summary.knn_accuracy > base["most_frequent"].knn_accuracy + 0.2
