"""List-level metrics of the engine's published lists.

:func:`recommendation_frame` turns a fitted
:class:`~recommender.model.Recommender`'s lists into the long frame the list
metrics of :mod:`recommender.evaluate.metrics` read: one row per item with
``list_id``, ``source_site``, ``rank`` (1 = top), ``article_id``, ``site``,
``category``, ``published_at``. :func:`list_metrics` computes them all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recommender.evaluate.metrics import (
    catalogue_coverage,
    cross_site_share,
    intra_list_diversity,
    median_age_hours,
    novelty,
)
from recommender.mix import MixedLists, mix_lists
from recommender.model import Recommender

LIST_METRICS: dict[str, str] = {
    "coverage": "catalogue coverage",
    "diversity_sites": "intra-list diversity (sites)",
    "diversity_categories": "intra-list diversity (categories)",
    "cross_site": "cross-site share",
    "median_age_hours": "median age of items (hours)",
    "novelty_bits": "novelty (bits)",
}


def recommendation_frame(
    model: Recommender, lists: MixedLists | None = None, *, articles_only: bool = True
) -> pd.DataFrame:
    """Long frame of ``lists`` (default: the model's own), one row per item.

    ``articles_only`` keeps the lists of article pages (not site pages or the
    network list).
    """
    lists = lists if lists is not None else model.lists_
    a = model.articles_
    n_rows = lists.items.shape[0]
    keep = np.ones(n_rows, dtype=bool)
    if articles_only:
        keep = np.isin(lists.source_ids, a["article_id"].astype(str).to_numpy())
    items = lists.items[keep]
    filled = items >= 0
    list_pos, rank = np.nonzero(filled)
    rows = items[filled]
    return pd.DataFrame(
        {
            "list_id": lists.source_ids[keep][list_pos],
            "source_site": lists.source_sites[keep][list_pos],
            "rank": rank + 1,
            "article_id": a["article_id"].astype(str).to_numpy()[rows],
            "site": a["site"].astype(str).to_numpy()[rows],
            "category": a["category_key"].astype(str).to_numpy()[rows],
            "published_at": a["published_at"].to_numpy()[rows],
        }
    )


def remix(model: Recommender, **changes: Any) -> MixedLists:
    """The model's lists again with other ``[mix]`` settings: a setting by
    name (``max_per_site=2``) or a weight as ``w_<part>`` (``w_trend=0.0``)."""
    mix = model.config.mix
    weights = {
        name.removeprefix("w_"): value for name, value in changes.items() if name.startswith("w_")
    }
    others = {name: value for name, value in changes.items() if not name.startswith("w_")}
    unknown = sorted(set(weights) - set(type(mix.weights).model_fields))
    unknown += sorted(set(others) - set(type(mix).model_fields))
    if unknown:
        raise ValueError(f"unknown mix setting(s) {unknown}")
    settings = mix.model_dump()
    mix = type(mix).model_validate(
        {**settings, **others, "weights": {**settings["weights"], **weights}}
    )
    return mix_lists(
        model.X_,
        model.articles_,
        model.neighbors_,
        model.trend_["trend"].to_numpy(),
        model.freshness_,
        model.eligible_,
        model.groups_,
        mix,
        allowed=model.config.allowed_pairs(),
        sites=list(model.config.sites),
    )


def list_metrics(
    recommendations: pd.DataFrame,
    catalogue: pd.Index,
    popularity: pd.Series,
    now: pd.Timestamp,
) -> dict[str, float]:
    """Every list metric of :data:`LIST_METRICS` for one set of lists."""
    return {
        "coverage": catalogue_coverage(recommendations, catalogue),
        "diversity_sites": intra_list_diversity(recommendations, "site"),
        "diversity_categories": intra_list_diversity(recommendations, "category"),
        "cross_site": cross_site_share(recommendations),
        "median_age_hours": median_age_hours(recommendations, now),
        "novelty_bits": novelty(recommendations, popularity),
    }


def engine_list_metrics(
    model: Recommender, popularity: pd.Series, variants: dict[str, dict[str, float]] | None = None
) -> pd.DataFrame:
    """List metrics of the model's lists and of ``variants`` (name -> mix
    parameters such as ``{"w_relevance": 0.0}``); one row per variant."""
    catalogue = pd.Index(model.articles_["article_id"].astype(str)[model.eligible_])
    rows = {
        "as configured": list_metrics(
            recommendation_frame(model), catalogue, popularity, model.now_
        )
    }
    for name, params in (variants or {}).items():
        frame = recommendation_frame(model, remix(model, **params))
        rows[name] = list_metrics(frame, catalogue, popularity, model.now_)
    return pd.DataFrame(rows).T


__all__ = [
    "LIST_METRICS",
    "engine_list_metrics",
    "list_metrics",
    "recommendation_frame",
    "remix",
]
