from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.decomposition import TruncatedSVD
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from recommender.config import FeaturesConfig
from recommender.features import ArticleVectorizer, vectorizer_from_config
from tests.conftest import tiny_articles


def cosine(X, i: int, j: int) -> float:
    return float(X[i].multiply(X[j]).sum())


def test_rows_are_l2_normalised_float32() -> None:
    X = ArticleVectorizer().fit_transform(tiny_articles())
    assert X.shape[0] == 9 and X.dtype == np.float32
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_topic_twins_are_the_most_similar_pairs() -> None:
    articles = tiny_articles()
    X = ArticleVectorizer(category_weight=0).fit_transform(articles)
    S = (X @ X.T).toarray()
    np.fill_diagonal(S, -1)
    topic = articles["article_id"].str.split("-").str[1].to_numpy()
    assert (topic[S.argmax(axis=1)] == topic).all()


def test_vocabulary_is_fitted_once_and_reused() -> None:
    vec = ArticleVectorizer().fit(tiny_articles())
    vocabulary = dict(vec.vocabulary_)
    unseen = pd.DataFrame(
        {"title": ["Quantum zebra sake"], "body": ["zebra zebra"], "category": ["Unseen"]}
    )
    X = vec.transform(unseen)
    assert vec.vocabulary_ == vocabulary
    assert X.shape[1] == vec.n_features_out_
    names = vec.get_feature_names_out()[X.indices]
    assert list(names) == ["sake"]  # unseen words and categories add nothing


@pytest.mark.parametrize("sublinear", [True, False])
def test_title_weight_decides_between_title_and_body_matches(sublinear: bool) -> None:
    articles = pd.DataFrame(
        {
            "title": ["sake", "sake", "ramen", "tea"],
            "body": ["rain", "snow", "rain", "coffee"],
            "category": ["", "", "", ""],
        }
    )

    def nearest_of_first(title_weight: float) -> int:
        X = ArticleVectorizer(
            title_weight=title_weight, stop_words=None, sublinear_tf=sublinear
        ).fit_transform(articles)
        return int(np.argmax([cosine(X, 0, j) for j in (1, 2)])) + 1

    assert nearest_of_first(5.0) == 1  # shares the title word
    assert nearest_of_first(0.2) == 2  # shares the body word


def test_sublinear_tf_is_the_log_of_the_field_weighted_count() -> None:
    """tf = 1 + log(title_weight * count_title + body_weight * count_body),
    computed by hand, and not the per-field rule it replaced
    (title_weight * (1 + log count_title) + body_weight * (1 + log count_body))."""
    articles = pd.DataFrame(
        {
            "title": ["sake", "tea"],
            "body": ["sake sake rain", "coffee"],
            "category": ["", ""],
        }
    )
    vec = ArticleVectorizer(
        title_weight=2.0, body_weight=1.0, category_weight=0.0, max_df=1.0, stop_words=None
    )
    X = vec.fit_transform(articles).toarray()
    idf = np.log(3 / 2) + 1  # every term is in one of the two articles
    sake = 1 + np.log(2 * 1 + 1 * 2)  # 1 + log 4 = 2.386; per field: 2 * 1 + (1 + log 2) = 3.693
    rain = 1.0  # 1 + log(1 * 1)
    expected = np.array([sake, rain]) * idf / np.hypot(sake * idf, rain * idf)
    row = X[0, [vec.vocabulary_["sake"], vec.vocabulary_["rain"]]]
    np.testing.assert_allclose(row, expected, rtol=1e-6)
    per_field = np.array([2 + 1 + np.log(2), 1.0])
    assert not np.allclose(row, per_field / np.linalg.norm(per_field), rtol=1e-3)
    # The raw weighted count without the log: 4 and 1.
    X_raw = ArticleVectorizer(
        title_weight=2.0, category_weight=0.0, max_df=1.0, stop_words=None, sublinear_tf=False
    ).fit_transform(articles)
    np.testing.assert_allclose(
        X_raw.toarray()[0, [vec.vocabulary_["sake"], vec.vocabulary_["rain"]]],
        np.array([4.0, 1.0]) / np.hypot(4.0, 1.0),
        rtol=1e-6,
    )


def test_sublinear_tf_stays_positive_and_increasing_below_a_weighted_count_of_one() -> None:
    """With weights below 1 a weighted count c < 1 keeps tf = c (1 + log c
    would be negative below 1/e); at c = 1 both rules give 1."""
    articles = pd.DataFrame(
        {"title": ["sake", "tea"], "body": ["rain", "rain rain"], "category": ["", ""]}
    )
    vec = ArticleVectorizer(
        title_weight=1.0, body_weight=0.2, category_weight=0.0, max_df=1.0, stop_words=None
    )
    X = vec.fit_transform(articles).toarray()
    assert (X >= 0).all()
    sake, rain = vec.vocabulary_["sake"], vec.vocabulary_["rain"]
    idf_sake, idf_rain = np.log(3 / 2) + 1, np.log(3 / 3) + 1
    tf = np.array([1.0, 0.2])  # sake: 1 + log 1 = 1; rain: c = 0.2 kept as is
    expected = tf * [idf_sake, idf_rain] / np.linalg.norm(tf * [idf_sake, idf_rain])
    np.testing.assert_allclose(X[0, [sake, rain]], expected, rtol=1e-6)
    assert X[1, rain] > 0  # c = 0.4 in the second article


def test_category_block_has_the_documented_weight() -> None:
    articles = pd.DataFrame(
        {"title": ["alpha", "beta"], "body": ["", ""], "category": ["food", "food"]}
    )
    X = ArticleVectorizer(category_weight=0.5, stop_words=None).fit_transform(articles)
    # Disjoint text, same category: cosine = w^2 / (1 + w^2).
    assert cosine(X, 0, 1) == pytest.approx(0.25 / 1.25, rel=1e-5)
    assert list(ArticleVectorizer().fit(articles).get_feature_names_out()[-1:]) == ["category=food"]


def test_is_a_scikit_learn_estimator() -> None:
    vec = ArticleVectorizer(title_weight=3.0)
    assert clone(vec).get_params()["title_weight"] == 3.0
    vec.set_params(min_df=2)
    assert vec.get_params()["min_df"] == 2
    with pytest.raises(Exception, match="not fitted"):
        ArticleVectorizer().transform(tiny_articles())


def test_works_in_pipeline_and_grid_search() -> None:
    articles = pd.concat([tiny_articles()] * 4, ignore_index=True)
    topic = articles["article_id"].str.split("-").str[1]
    svd = Pipeline(
        [("vec", ArticleVectorizer()), ("svd", TruncatedSVD(n_components=2, random_state=0))]
    )
    assert svd.fit_transform(articles).shape == (36, 2)
    search = GridSearchCV(
        Pipeline([("vec", ArticleVectorizer()), ("clf", LogisticRegression(max_iter=200))]),
        {"vec__title_weight": [1.0, 3.0], "vec__category_weight": [0.0, 0.5]},
        cv=3,
    )
    search.fit(articles, topic)
    assert search.best_score_ == pytest.approx(1.0)
    assert set(search.best_params_) == {"vec__title_weight", "vec__category_weight"}


def test_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="expects a DataFrame"):
        ArticleVectorizer().fit(["a list"])
    with pytest.raises(ValueError, match="no 'title' column"):
        ArticleVectorizer().fit(pd.DataFrame({"body": ["x"]}))
    with pytest.raises(ValueError, match="title_weight must be >= 0"):
        ArticleVectorizer(title_weight=-1).fit(tiny_articles())


def test_estimator_defaults_are_the_config_defaults() -> None:
    """The estimator built by hand and the one the batch builds from an empty
    ``[features]`` section have the same parameters (``max_df`` was 1.0 in one
    and 0.5 in the other)."""
    by_hand = ArticleVectorizer().get_params()
    from_config = vectorizer_from_config(FeaturesConfig(), category_column="category").get_params()
    assert by_hand == from_config


def test_a_fractional_max_df_is_relaxed_for_a_single_article() -> None:
    """One article: any fraction of one document would drop every term, so
    the fit keeps them; two articles with the same words drop those over
    ``max_df``."""
    one = pd.DataFrame({"title": ["Tokyo ramen"], "body": ["ramen shops"], "category": [""]})
    vec = ArticleVectorizer(max_df=0.5).fit(one)
    assert set(vec.vocabulary_) == {"tokyo", "ramen", "shops"}
    two = pd.concat([one, one.assign(title="Osaka ramen")], ignore_index=True)
    assert set(ArticleVectorizer(max_df=0.5).fit(two).vocabulary_) == {"tokyo", "osaka"}
