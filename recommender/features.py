"""Article features: TF-IDF over title and body, plus category indicators.

:class:`ArticleVectorizer` is a scikit-learn transformer over an Article
frame, so it works in ``Pipeline``, ``clone`` and ``GridSearchCV``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted


class ArticleVectorizer(TransformerMixin, BaseEstimator):
    """Turn articles into L2-normalised sparse rows for cosine similarity.

    Title and body share one vocabulary, so a word in one article's title
    matches the same word in another's body. Term frequencies are
    ``title_weight * tf(title) + body_weight * tf(body)``, where ``tf`` is the
    count, or ``1 + log(count)`` with ``sublinear_tf``; then IDF weighted and
    L2-normalised. Category indicators (one column per distinct non-empty
    value of ``category_column``) are appended with weight
    ``category_weight`` relative to the unit-length text part, and the whole
    row is L2-normalised: when both rows have a category, their cosine is
    ``(text_cosine + category_weight**2 * same_category) / (1 + category_weight**2)``.

    Parameters
    ----------
    title_weight, body_weight : float
        Weights of title and body term counts.
    category_weight : float
        Weight of the category block (0 disables it).
    category_column : str
        Column holding the category key; the batch passes network-wide keys
        (see ``SiteConfig.category_map``) so categories match across sites.
    analyzer, ngram_range, min_df, max_df, max_features, stop_words, lowercase
        As in :class:`sklearn.feature_extraction.text.CountVectorizer`. Use
        ``analyzer="char_wb"`` with ``ngram_range=(2, 3)`` for languages
        written without spaces (Japanese).
    sublinear_tf : bool
        Use ``1 + log(count)`` per field instead of raw counts.
    dtype : numpy dtype
        Output dtype; float32 halves memory against float64.

    Attributes
    ----------
    vocabulary_ : dict
        Term to column index.
    idf_ : ndarray of shape (n_terms,)
    categories_ : ndarray of str
        Category values seen in ``fit``; unseen ones get no category feature.
    n_text_features_ : int
    """

    def __init__(
        self,
        *,
        title_weight: float = 2.0,
        body_weight: float = 1.0,
        category_weight: float = 0.5,
        category_column: str = "category",
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        stop_words: str | list[str] | None = "english",
        lowercase: bool = True,
        sublinear_tf: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        self.title_weight = title_weight
        self.body_weight = body_weight
        self.category_weight = category_weight
        self.category_column = category_column
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.stop_words = stop_words
        self.lowercase = lowercase
        self.sublinear_tf = sublinear_tf
        self.dtype = dtype

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _column(articles: pd.DataFrame, name: str) -> pd.Series:
        if name not in articles:
            return pd.Series("", index=articles.index, dtype=object)
        return articles[name].fillna("").astype(str)

    def _check_input(self, articles: Any) -> pd.DataFrame:
        if not isinstance(articles, pd.DataFrame):
            raise TypeError(
                f"{type(self).__name__} expects a DataFrame with 'title' and 'body' columns, "
                f"got {type(articles).__name__}"
            )
        if "title" not in articles:
            raise ValueError(f"{type(self).__name__}: the articles frame has no 'title' column")
        for name in ("title_weight", "body_weight", "category_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        return articles

    def _field_tf(self, texts: pd.Series) -> sp.csr_matrix:
        counts = sp.csr_matrix(self.counter_.transform(texts), dtype=np.float64)
        if self.sublinear_tf:  # per field, before weighting, so weights < 1 stay positive
            np.log(counts.data, out=counts.data)
            counts.data += 1.0
        return counts

    def _weighted_counts(self, articles: pd.DataFrame) -> sp.csr_matrix:
        tf = self._field_tf(self._column(articles, "title")) * self.title_weight
        if self.body_weight:
            tf = tf + self._field_tf(self._column(articles, "body")) * self.body_weight
        return sp.csr_matrix(tf)

    # -- estimator API -------------------------------------------------------
    def fit(self, articles: pd.DataFrame, y: Any = None) -> ArticleVectorizer:
        """Learn the vocabulary, IDF weights and category values."""
        articles = self._check_input(articles)
        self.counter_ = CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            stop_words=self.stop_words,
            lowercase=self.lowercase,
            dtype=np.float64,
        )
        titles = self._column(articles, "title")
        bodies = self._column(articles, "body")
        self.counter_.fit(titles + " \n " + bodies)
        self.vocabulary_ = self.counter_.vocabulary_
        self.tfidf_ = TfidfTransformer(sublinear_tf=False, norm=None)
        self.tfidf_.fit(self._weighted_counts(articles))
        self.idf_ = self.tfidf_.idf_
        categories = self._column(articles, self.category_column)
        self.categories_ = np.array(sorted(set(categories) - {""}), dtype=object)
        self.n_text_features_ = len(self.vocabulary_)
        self.n_features_out_ = self.n_text_features_ + len(self.categories_)
        return self

    def transform(self, articles: pd.DataFrame) -> sp.csr_matrix:
        """Rows of shape (n_articles, n_text_features_ + n_categories), L2-normalised.

        An article with no known term and no known category is an all-zero row.
        """
        check_is_fitted(self, "vocabulary_")
        articles = self._check_input(articles)
        text = normalize(self.tfidf_.transform(self._weighted_counts(articles)), norm="l2")
        blocks = [text]
        if self.category_weight and len(self.categories_):
            categories = self._column(articles, self.category_column).to_numpy()
            codes = np.searchsorted(self.categories_, categories)
            codes = np.minimum(codes, len(self.categories_) - 1)
            known = self.categories_[codes] == categories
            rows = np.flatnonzero(known)
            indicator = sp.csr_matrix(
                (np.full(len(rows), self.category_weight), (rows, codes[known])),
                shape=(len(articles), len(self.categories_)),
            )
            blocks.append(indicator)
        else:
            blocks.append(sp.csr_matrix((len(articles), len(self.categories_))))
        matrix = normalize(sp.hstack(blocks, format="csr"), norm="l2")
        matrix = matrix.astype(self.dtype)
        matrix.indices = matrix.indices.astype(np.int32, copy=False)
        matrix.indptr = (
            matrix.indptr.astype(np.int32, copy=False)
            if matrix.nnz < np.iinfo(np.int32).max
            else matrix.indptr
        )
        return matrix

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Terms, then ``category=<value>`` for each category column."""
        check_is_fitted(self, "vocabulary_")
        terms = self.counter_.get_feature_names_out()
        categories = np.array([f"category={c}" for c in self.categories_], dtype=object)
        return np.concatenate([terms.astype(object), categories])
