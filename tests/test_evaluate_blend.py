"""Features of articles without text (MIND candidates with no news.tsv row).

:class:`~recommender.features.ArticleVectorizer` on empty strings: an empty
row transforms to all zeros, but a fit on nothing but empty rows has no
vocabulary. :func:`~recommender.evaluate.blend.article_features` therefore
fits on the articles with text only: any number of empty rows leaves the
other rows exactly as without them, and a log without any text still works.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.evaluate.blend import article_features, history_relevance
from recommender.features import ArticleVectorizer

TEXT = [
    ("N1", "Senate passes the budget bill", "Lawmakers vote on spending.", "news"),
    ("N2", "Quarterback injured in Sunday loss", "The team lost its quarterback.", "sports"),
    ("N3", "Budget talks stall in the Senate", "Senators argue over spending cuts.", "news"),
]


def frame(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["article_id", "title", "body", "category"]).astype("string")


def with_empty(n_empty: int) -> pd.DataFrame:
    """The three text articles among ``n_empty`` articles without text."""
    empty = [(f"X{i}", "", "", "") for i in range(n_empty)]
    return frame(empty[: n_empty // 2] + TEXT + empty[n_empty // 2 :])


def test_the_vectorizer_fits_when_most_rows_are_empty() -> None:
    articles = with_empty(97)
    X = ArticleVectorizer().fit_transform(articles)
    has_text = articles["title"] != ""
    assert X.shape[0] == len(articles)
    assert X[np.flatnonzero(~has_text.to_numpy())].nnz == 0
    text_rows = X[np.flatnonzero(has_text.to_numpy())]
    norms = np.sqrt(np.asarray(text_rows.multiply(text_rows).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0, atol=1e-5)  # every text article keeps a unit row


def test_the_vectorizer_cannot_fit_on_empty_rows_only() -> None:
    with pytest.raises(ValueError):
        ArticleVectorizer().fit(frame([("X0", "", "", ""), ("X1", " ", "", "")]))


def test_article_features_ignore_rows_without_text() -> None:
    alone = article_features(frame(TEXT)).toarray()
    many = with_empty(200)
    X = article_features(many)
    assert X.shape == (203, alone.shape[1])
    rows = np.flatnonzero((many["title"] != "").to_numpy())
    assert np.allclose(X[rows].toarray(), alone)  # same vocabulary, same IDF
    assert X.nnz == np.count_nonzero(alone)  # every other row is zero


def test_a_log_without_any_text_gives_zero_features_and_relevance() -> None:
    articles = frame([(f"X{i}", "", "", "") for i in range(6)])
    X = article_features(articles)
    assert X.shape[0] == len(articles) and X.nnz == 0
    ids = pd.Index(articles["article_id"].astype(str))
    candidates = pd.DataFrame({"impression_id": ["1", "1", "2"], "article_id": ["X0", "X1", "X2"]})
    histories = pd.Series({"1": "X3 X4", "2": ""})
    relevance, has_history = history_relevance(X, ids, candidates, histories)
    assert (relevance == 0).all() and not has_history.any()
