"""Cold start: the list of an article the run has not seen, from its text
and the run's candidates, mixed like any page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.errors import UnknownSiteError
from recommender.lists import RecommendationList
from recommender.model.payloads import recommendation_lists
from recommender.model.stages import Stages, category_keys
from recommender.similarity import top_k_per_row


def recommend_unseen(
    model: Stages, article: Mapping[str, Any], k: int | None = None
) -> RecommendationList:
    """The work of :meth:`~recommender.model.Recommender.recommend_unseen`
    (see there), on a fitted ``model``."""
    site = str(article.get("site", ""))
    if site not in model.config.sites:
        raise UnknownSiteError(f"unknown site {site!r}; known: {sorted(model.config.sites)}")
    frame = pd.DataFrame(
        [
            {
                "article_id": str(article["article_id"]),
                "site": site,
                "title": str(article.get("title") or ""),
                "body": str(article.get("body") or ""),
                "category": str(article.get("category") or ""),
            }
        ]
    )
    frame["category_key"] = category_keys(frame, model.config)
    vector = model.vectorizer_.transform(frame)
    columns, candidates_t = cold_start_candidates(model, site)
    scores = np.asarray((vector @ candidates_t).toarray(), dtype=np.float32)
    found, values = top_k_per_row(
        scores, model.config.similarity.k, min_score=model.config.similarity.min_similarity
    )
    indices = np.where(found >= 0, columns[np.maximum(found, 0)], -1).astype(np.int32)
    lists = model._mixer().for_vector(
        vector, site, str(article["article_id"]), indices[0], values[0]
    )
    result = next(recommendation_lists(model, model.version, lists=lists))
    return result.top(k) if k is not None else result


def prepare_cold_start(model: Stages) -> None:
    """The work of :meth:`~recommender.model.Recommender.prepare_cold_start`
    (see there), on a fitted ``model``."""
    for site in model.config.sites:
        cold_start_candidates(model, site)


def cold_start_candidates(model: Stages, site: str) -> tuple[np.ndarray, sp.csr_matrix]:
    """Rows a page of ``site`` may show, and their transposed features (cached)."""
    cache = model.__dict__.setdefault("_cold_start_cache", {})
    if site not in cache:
        targets = model.config.allowed_pairs()[site]
        rows = np.flatnonzero(model.eligible_ & model.articles_["site"].isin(targets).to_numpy())
        cache[site] = (rows, model.X_[rows].T.tocsr())
    return cache[site]


__all__ = ["cold_start_candidates", "prepare_cold_start", "recommend_unseen"]
