"""Content, trend and their blend on impressions whose user has a history.

For an impression whose user's history (MIND's clicked news before the log)
names articles with text, the user's *profile* is the L2-normalised sum of
the history articles' feature rows (the engine's
:class:`~recommender.features.ArticleVectorizer`), and a candidate's
*relevance* is the cosine of its row with the profile. Three rankings are
compared, each with the engine's parts in [0, 1]:

``content``   relevance only;
``trending``  the engine's trend at the latest refresh (see
              :mod:`recommender.evaluate.replay`);
``blend``     the mix's scorer (:mod:`recommender.scoring`: the weighted
              blend of relevance, trend and freshness), freshness halving
              every ``freshness_half_life_days`` from the article's
              first-shown time.

The vectorizer is fitted on every article of the log that has text (text
statistics, not clicks; the production batch also fits on all articles it
knows). An article without text (a MIND candidate with no ``news.tsv`` row)
gets an all-zero row: it adds nothing to a profile and its relevance is 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender.config import FeaturesConfig, MixConfig
from recommender.features import vectorizer_from_config
from recommender.scoring import Scorer, scorer_from_config

BLEND_METHODS: dict[str, str] = {
    "content": "content only (history profile)",
    "trending": "trending only (engine)",
    "blend": "blend (mix weights)",
}


def article_features(
    articles: pd.DataFrame, features: FeaturesConfig | None = None
) -> sp.csr_matrix:
    """Feature rows of ``articles`` with the engine's vectorizer settings; the
    category column is the articles' own ``category`` (network-wide in MIND).

    The vectorizer is fitted on the articles with a title or body only, so
    that articles without text (any number of them) change neither the
    vocabulary nor the IDF weights; their rows are all zero. Without any
    article with text, every row is zero.
    """
    vectorizer = vectorizer_from_config(features or FeaturesConfig(), category_column="category")
    text = pd.Series(False, index=articles.index)
    for name in ("title", "body"):
        if name in articles:
            text |= articles[name].fillna("").astype(str).str.strip() != ""
    has_text = np.flatnonzero(text.to_numpy())
    if len(has_text) == 0:
        return sp.csr_matrix((len(articles), 1), dtype=np.float32)
    rows = sp.csr_matrix(vectorizer.fit_transform(articles.iloc[has_text]))
    if len(has_text) == len(articles):
        return rows
    # Put the fitted rows back in place; the others stay empty.
    place = sp.csr_matrix(
        (np.ones(len(has_text), dtype=rows.dtype), (has_text, np.arange(len(has_text)))),
        shape=(len(articles), len(has_text)),
    )
    return sp.csr_matrix(place @ rows)


def history_relevance(
    X: sp.csr_matrix,
    article_ids: pd.Index,
    candidates: pd.DataFrame,
    histories: pd.Series,
    *,
    chunk: int = 50_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each candidate with its user's history profile.

    ``candidates``: rows with ``impression_id`` and ``article_id``;
    ``histories``: impression_id -> space-separated article ids. Returns
    ``(relevance, has_history)`` per candidate row; candidates whose
    impression has no known history article get relevance 0 and False.
    """
    history = candidates["impression_id"].map(histories).fillna("").astype(str)
    profiles, profile_of = np.unique(history.to_numpy(), return_inverse=True)
    tokens = pd.Series(profiles).str.split().explode().dropna()
    rows = article_ids.get_indexer(pd.Index(tokens.astype(str)))
    known = rows >= 0
    H = sp.csr_matrix(
        (np.ones(int(known.sum())), (tokens.index.to_numpy()[known], rows[known])),
        shape=(len(profiles), len(article_ids)),
    )
    P = sp.csr_matrix(normalize(H @ X, norm="l2"), dtype=np.float32)
    has_profile = np.asarray(P.getnnz(axis=1) > 0)
    cand_rows = article_ids.get_indexer(pd.Index(candidates["article_id"].astype(str)))
    relevance = np.zeros(len(candidates), dtype=np.float64)
    for start in range(0, len(candidates), chunk):
        stop = min(len(candidates), start + chunk)
        p = P[profile_of[start:stop]]
        x = X[np.maximum(cand_rows[start:stop], 0)]
        relevance[start:stop] = np.asarray(p.multiply(x).sum(axis=1)).ravel()
    relevance[cand_rows < 0] = 0.0
    return np.clip(relevance, 0.0, 1.0), has_profile[profile_of]


def blend_scores(
    scored: pd.DataFrame,
    relevance: np.ndarray,
    published_at: pd.Series,
    mix: MixConfig | None = None,
    scorer: Scorer | None = None,
) -> pd.DataFrame:
    """Add ``content``, ``trending`` and ``blend`` columns to replayed candidates.

    ``scored``: a replay's candidates (with ``engine`` and ``refresh``);
    ``published_at``: article_id -> first-shown time; ``scorer``: what
    blends the parts (default: ``mix``'s, as the lists are scored).
    """
    m = mix or MixConfig()
    scorer = scorer if scorer is not None else scorer_from_config(m)
    published = pd.to_datetime(scored["article_id"].map(published_at), utc=True)
    published = published.where(published <= scored["refresh"], scored["refresh"])
    age_days = (scored["refresh"] - published) / pd.Timedelta(days=1)
    freshness = np.exp2(-np.asarray(age_days, dtype=np.float64) / m.freshness_half_life_days)
    trend = scored["engine"].to_numpy()
    parts = {"relevance": relevance, "trend": trend, "freshness": freshness}
    return scored.assign(
        content=relevance, trending=trend, freshness=freshness, blend=scorer.score(parts)
    )


__all__ = ["BLEND_METHODS", "article_features", "blend_scores", "history_relevance"]
