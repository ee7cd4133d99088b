"""Article features: TF-IDF over title and body, plus category indicators.

:class:`ArticleVectorizer` is a scikit-learn transformer over an Article
frame, so it works in ``Pipeline``, ``clone`` and ``GridSearchCV``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from recommender.tokenize_ja import BACKENDS, JapaneseWordAnalyzer

if TYPE_CHECKING:
    from recommender.config import FeaturesConfig, SiteConfig

#: Values of ``ja_analyzer``: character 2-3-grams, or a word tokeniser.
JA_ANALYZERS = ("char", *BACKENDS)


_NO_TERMS = "After pruning, no terms remain. Try a lower min_df or a higher max_df."


class ArticleVectorizer(TransformerMixin, BaseEstimator):
    """Turn articles into L2-normalised sparse rows for cosine similarity.

    Title and body share one vocabulary, so a word in one article's title
    matches the same word in another's body. A term's weighted count is
    ``c = title_weight * count(title) + body_weight * count(body)``; its term
    frequency is ``c``, or with ``sublinear_tf`` ``1 + log(c)`` (and ``c``
    itself where ``0 < c < 1``, which only weights below 1 give: the two agree
    at 1, so tf stays positive and increasing); then IDF weighted and
    L2-normalised. The log applies to the weighted sum, as a plain
    ``TfidfVectorizer(sublinear_tf=True)`` on "title. body" does with both
    weights 1 (before 2026-12 it applied per field, then weighted).

    Category indicators (one column per distinct non-empty value of
    ``category_column``) are appended with weight
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
        As in :class:`sklearn.feature_extraction.text.CountVectorizer`
        (defaults as in the config's ``[features]``, so that the estimator and
        the batch agree), except that a fractional ``max_df`` is relaxed when
        fitting on a single article (any fraction of one document would drop
        every term). Use ``analyzer="char_wb"`` with ``ngram_range=(2, 3)``
        for languages written without spaces (Japanese).
    sublinear_tf : bool
        Use ``1 + log(c)`` of the field-weighted count ``c`` instead of ``c``.
    ja_analyzer : {"char", "fugashi", "sudachi", None}
        Japanese articles get their own analyzer and their own block of
        columns: ``"char"`` (the default, as in the config) character
        2-3-grams within word boundaries (``char_wb``), ``"fugashi"`` or
        ``"sudachi"`` words (see :mod:`recommender.tokenize_ja`, the ``ja``
        extra); the others are read by ``analyzer``. ``None``: every article
        is read by ``analyzer``. Each block has its own vocabulary, pruning
        (``min_df``, ``max_df``, ``max_features`` over the block's articles)
        and IDF, exactly as a vectorizer fitted on that language's articles
        alone; a row's text part is its block's, L2-normalised, so articles in
        different blocks share no text term. A network with no Japanese
        article gets exactly the features it gets with ``None``.
    ja_sites : tuple of str
        Sites whose articles are Japanese when their ``language`` is empty.
        An article is Japanese when its ``language`` column is ``ja`` (or
        ``ja-...``, any case), or empty and its site is in ``ja_sites``.
    dtype : numpy dtype
        Output dtype; float32 halves memory against float64.

    Attributes
    ----------
    vocabulary_ : dict
        Term to column index (of the articles read by ``analyzer``).
    idf_ : ndarray of shape (n_terms,)
    ja_vocabulary_ : dict
        The Japanese block's terms to their column index in the block (its
        columns follow ``vocabulary_``'s); empty with ``ja_analyzer=None``
        or when no Japanese article was fitted.
    ja_idf_ : ndarray of shape (n_ja_terms,)
    categories_ : ndarray of str
        Category values seen in ``fit``; unseen ones get no category feature.
    n_text_features_ : int
    """

    def __init__(
        self,
        *,
        title_weight: float = 1.0,
        body_weight: float = 1.0,
        category_weight: float = 0.5,
        category_column: str = "category",
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 1,
        max_df: int | float = 0.5,
        max_features: int | None = None,
        stop_words: str | list[str] | None = "english",
        lowercase: bool = True,
        sublinear_tf: bool = True,
        ja_analyzer: str | None = "char",
        ja_sites: tuple[str, ...] = (),
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
        self.ja_analyzer = ja_analyzer
        self.ja_sites = ja_sites
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
        if self.ja_analyzer is not None and self.ja_analyzer not in JA_ANALYZERS:
            raise ValueError(
                f"ja_analyzer must be None or one of {JA_ANALYZERS}, got {self.ja_analyzer!r}"
            )
        return articles

    def _counter(self, vocabulary: dict[str, int] | None = None) -> CountVectorizer:
        return CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=tuple(self.ngram_range),
            stop_words=self.stop_words,
            lowercase=self.lowercase,
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    def _ja_counter(self, vocabulary: dict[str, int] | None = None) -> CountVectorizer:
        """The Japanese block's counter (``ja_analyzer``; no stop words)."""
        analyzer: Any = "char_wb"
        ngram_range = (2, 3)
        if self.ja_analyzer != "char":
            analyzer, ngram_range = JapaneseWordAnalyzer(str(self.ja_analyzer)), (1, 1)
        return CountVectorizer(
            analyzer=analyzer,
            ngram_range=ngram_range,
            stop_words=None,
            lowercase=self.lowercase,
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    def _counters(self) -> tuple[CountVectorizer | None, CountVectorizer | None]:
        """The fitted counters of the two blocks (None: the block has no term)."""
        ja_vocabulary = getattr(self, "ja_vocabulary_", {})
        return (
            self._counter(self.vocabulary_) if self.vocabulary_ else None,
            self._ja_counter(ja_vocabulary) if ja_vocabulary else None,
        )

    def _japanese(self, articles: pd.DataFrame) -> np.ndarray:
        """Per article: is it read by the Japanese block? (see ``ja_sites``)."""
        if self.ja_analyzer is None:
            return np.zeros(len(articles), dtype=bool)
        codes, languages = pd.factorize(
            self._column(articles, "language").str.strip().str.lower(), use_na_sentinel=False
        )
        primary = np.array([str(x).replace("_", "-").split("-")[0] for x in languages])
        japanese = (primary == "ja")[codes] if len(codes) else np.zeros(0, dtype=bool)
        if self.ja_sites:
            unnamed = (np.array([x == "" for x in languages], dtype=bool)[codes]) & (
                self._column(articles, "site").isin(list(self.ja_sites)).to_numpy()
            )
            japanese = japanese | unnamed
        return np.asarray(japanese, dtype=bool)

    @staticmethod
    def _place(n: int, blocks: list[tuple[np.ndarray, sp.csr_matrix | None, int]]) -> sp.csr_matrix:
        """Side by side, each block's counts (rows ``rows``, ascending, of
        ``width`` columns) in the rows of ``n`` articles, zero elsewhere."""
        placed = []
        for rows, counts, width in blocks:
            if width == 0:
                continue
            if counts is not None and len(rows) == n:
                placed.append(counts)
                continue
            if counts is None:
                placed.append(sp.csr_matrix((n, width), dtype=np.float32))
                continue
            counts = sp.csr_matrix(counts)
            lengths = np.zeros(n, dtype=np.int64)
            lengths[rows] = np.diff(counts.indptr)
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            placed.append(sp.csr_matrix((counts.data, counts.indices, indptr), shape=(n, width)))
        if not placed:
            return sp.csr_matrix((n, 0), dtype=np.float32)
        return placed[0] if len(placed) == 1 else sp.hstack(placed, format="csr")

    def _field_counts(self, articles: pd.DataFrame) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Title and body term counts over the fitted vocabulary."""
        titles, bodies = self._column(articles, "title"), self._column(articles, "body")
        japanese = self._japanese(articles)
        counter = self.counter_
        if counter is not None and not japanese.any() and not getattr(self, "ja_vocabulary_", None):
            return counter.transform(titles), counter.transform(bodies)
        n = len(articles)
        title_blocks, body_blocks = [], []
        for rows, counter in zip(
            (np.flatnonzero(~japanese), np.flatnonzero(japanese)), self._counters(), strict=True
        ):
            if counter is None:
                continue
            width = len(counter.vocabulary)
            if len(rows) == 0:
                title_blocks.append((rows, None, width))
                body_blocks.append((rows, None, width))
                continue
            t, b = (titles, bodies) if len(rows) == n else (titles.iloc[rows], bodies.iloc[rows])
            title_blocks.append((rows, counter.transform(t), width))
            body_blocks.append((rows, counter.transform(b), width))
        return self._place(n, title_blocks), self._place(n, body_blocks)

    def _kept_terms(
        self, document_frequency: np.ndarray, term_frequency: np.ndarray, n_documents: int
    ) -> np.ndarray:
        """Column indices surviving min_df, max_df and max_features (as
        CountVectorizer prunes; ties for max_features go to the earlier term)."""

        def as_count(value: int | float) -> float:
            return value if isinstance(value, int | np.integer) else value * n_documents

        max_df = 1.0 if n_documents == 1 and not isinstance(self.max_df, int) else self.max_df
        keep = (document_frequency >= as_count(self.min_df)) & (
            document_frequency <= as_count(max_df)
        )
        kept = np.flatnonzero(keep)
        if self.max_features is not None and len(kept) > self.max_features:
            order = np.argsort(-term_frequency[kept], kind="stable")[: self.max_features]
            kept = np.sort(kept[order])
        if len(kept) == 0:
            raise ValueError(_NO_TERMS)
        return kept

    def _fit_block(
        self, counter: CountVectorizer, titles: pd.Series, bodies: pd.Series
    ) -> tuple[dict[str, int], np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        """One block's vocabulary and IDF, and the (pruned) title and body
        counts of its articles (tokenised once)."""
        n = len(titles)
        # One tokenisation pass over every title and body, with a shared vocabulary.
        counts = sp.csr_matrix(
            counter.fit_transform(pd.concat([titles, bodies], ignore_index=True))
        )
        title_counts, body_counts = counts[:n], counts[n:]
        both = title_counts + body_counts
        document_frequency = np.bincount(both.indices, minlength=both.shape[1])
        term_frequency = np.asarray(both.sum(axis=0)).ravel()
        kept = self._kept_terms(document_frequency, term_frequency, n)
        terms = counter.get_feature_names_out()[kept]  # already in alphabetical order
        vocabulary = {str(term): i for i, term in enumerate(terms)}
        # Smoothed IDF, as TfidfTransformer's default: ln((1 + n) / (1 + df)) + 1.
        idf = (np.log((1 + n) / (1 + document_frequency[kept])) + 1).astype(np.float32)
        return vocabulary, idf, title_counts[:, kept], body_counts[:, kept]

    def _fit(self, articles: pd.DataFrame) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Learn vocabulary, IDF and categories; return the title and body
        counts of ``articles`` (tokenised once)."""
        articles = self._check_input(articles)
        n = len(articles)
        titles, bodies = self._column(articles, "title"), self._column(articles, "body")
        japanese = self._japanese(articles)
        empty: tuple[dict[str, int], np.ndarray, Any, Any] = (
            {},
            np.zeros(0, dtype=np.float32),
            None,
            None,
        )
        fitted = []
        groups = (np.flatnonzero(~japanese), np.flatnonzero(japanese))
        for rows, make in zip(groups, (self._counter, self._ja_counter), strict=True):
            if len(rows) == 0:
                fitted.append(empty)
            elif len(rows) == n:  # one language: exactly the single vectorizer
                fitted.append(self._fit_block(make(), titles, bodies))
            else:
                try:
                    fitted.append(self._fit_block(make(), titles.iloc[rows], bodies.iloc[rows]))
                except ValueError:  # no term in this block (e.g. only stop words)
                    fitted.append(empty)
        (
            (vocabulary, idf, title_counts, body_counts),
            (ja_vocabulary, ja_idf, ja_titles, ja_bodies),
        ) = fitted
        if not vocabulary and not ja_vocabulary:
            raise ValueError(_NO_TERMS)
        self.vocabulary_ = vocabulary
        self.idf_ = idf
        self.ja_vocabulary_ = ja_vocabulary
        self.ja_idf_ = ja_idf
        self.counter_, self.ja_counter_ = self._counters()
        categories = self._column(articles, self.category_column)
        self.categories_ = np.array(sorted(set(categories) - {""}), dtype=object)
        self.n_text_features_ = len(vocabulary) + len(ja_vocabulary)
        self.n_features_out_ = self.n_text_features_ + len(self.categories_)
        blocks = [(groups[0], len(vocabulary)), (groups[1], len(ja_vocabulary))]
        return (
            self._place(
                n, [(r, c, w) for (r, w), c in zip(blocks, (title_counts, ja_titles), strict=True)]
            ),
            self._place(
                n, [(r, c, w) for (r, w), c in zip(blocks, (body_counts, ja_bodies), strict=True)]
            ),
        )

    def _features(
        self, articles: pd.DataFrame, titles: sp.csr_matrix, bodies: sp.csr_matrix
    ) -> sp.csr_matrix:
        idf = self.idf_
        if len(getattr(self, "ja_idf_", ())):
            idf = np.concatenate([self.idf_, self.ja_idf_])
        text = normalize(self._tf(titles, bodies) @ sp.diags(idf), norm="l2")
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
        if matrix.nnz < np.iinfo(np.int32).max:
            matrix.indptr = matrix.indptr.astype(np.int32, copy=False)
        return matrix

    def _tf(self, titles: sp.csr_matrix, bodies: sp.csr_matrix) -> sp.csr_matrix:
        """Term frequencies of the field-weighted counts (see the class docstring)."""
        tf = sp.csr_matrix(titles, dtype=np.float32) * np.float32(self.title_weight)
        if self.body_weight:
            tf = tf + sp.csr_matrix(bodies, dtype=np.float32) * np.float32(self.body_weight)
        tf = sp.csr_matrix(tf, dtype=np.float32)
        tf.eliminate_zeros()  # a zero weight leaves explicit zeros
        if self.sublinear_tf:
            data = tf.data
            above = data > 1.0
            data[above] = 1.0 + np.log(data[above])
        return tf

    # -- estimator API -------------------------------------------------------
    def fit(self, articles: pd.DataFrame, y: Any = None) -> ArticleVectorizer:
        """Learn the vocabulary, IDF weights and category values."""
        self._fit(articles)
        return self

    def fit_transform(
        self, articles: pd.DataFrame, y: Any = None, **fit_params: Any
    ) -> sp.csr_matrix:
        """``fit(articles).transform(articles)``, tokenising the text only once."""
        titles, bodies = self._fit(articles)
        return self._features(articles, titles, bodies)

    def transform(self, articles: pd.DataFrame) -> sp.csr_matrix:
        """Rows of shape (n_articles, n_text_features_ + n_categories), L2-normalised.

        An article with no known term and no known category is an all-zero row.
        """
        check_is_fitted(self, "vocabulary_")
        articles = self._check_input(articles)
        return self._features(articles, *self._field_counts(articles))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Terms, then ``ja:<term>`` for the Japanese block's, then
        ``category=<value>`` for each category column."""
        check_is_fitted(self, "vocabulary_")
        terms = np.array(sorted(self.vocabulary_, key=self.vocabulary_.__getitem__), dtype=object)
        ja_vocabulary = getattr(self, "ja_vocabulary_", {})
        ja_terms = [f"ja:{t}" for t in sorted(ja_vocabulary, key=ja_vocabulary.__getitem__)]
        categories = [f"category={c}" for c in self.categories_]
        return np.concatenate([terms, np.array(ja_terms + categories, dtype=object)])


def japanese_sites(sites: Mapping[str, SiteConfig]) -> tuple[str, ...]:
    """The sites whose ``language`` is Japanese (``ja`` or ``ja-...``), sorted."""
    return tuple(
        sorted(
            key
            for key, site in sites.items()
            if site.language.strip().lower().replace("_", "-").split("-")[0] == "ja"
        )
    )


def vectorizer_from_config(
    features: FeaturesConfig,
    *,
    category_column: str = "category_key",
    sites: Mapping[str, SiteConfig] | None = None,
) -> ArticleVectorizer:
    """An unfitted :class:`ArticleVectorizer` with the settings of a config's
    ``[features]`` section; Japanese articles (by their ``language``, else
    their site's in ``sites``) read by ``features.ja_analyzer``."""
    return ArticleVectorizer(
        title_weight=features.title_weight,
        body_weight=features.body_weight,
        category_weight=features.category_weight,
        category_column=category_column,
        analyzer=features.analyzer,
        ngram_range=(features.ngram_range[0], features.ngram_range[1]),
        min_df=features.min_df,
        max_df=features.max_df,
        max_features=features.max_features,
        stop_words=features.stop_words,
        sublinear_tf=features.sublinear_tf,
        ja_analyzer=features.ja_analyzer,
        ja_sites=japanese_sites(sites or {}),
    )
