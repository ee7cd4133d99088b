"""Trending: time-decayed, smoothed view rates.

An article's *decayed views* weigh each view by ``0.5 ** (age / half_life)``.
Its *exposure* is the same weight integrated over the time it has been
published: ``h / ln 2 * (1 - 0.5 ** (age_of_article / h))`` hours, so a new
article is judged on the short time it has had. The view rate is smoothed
toward the network's mean rate ``mu`` as if every article had
``prior_views`` extra views at that rate (a Gamma-Poisson posterior mean)::

    rate = (decayed_views + prior_views) / (exposure + prior_views / mu)

so 2 views in a minute do not outrank 2,000 in a day, yet a new article that
draws views faster than its peers rises within hours. ``trend`` maps rates to
[0, 1] on a log scale: ``log1p(rate / mu) / log1p(max_rate / mu)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LN2 = float(np.log(2.0))


def _hours(delta: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_timedelta(delta) / pd.Timedelta(hours=1), dtype=np.float64)


def trend_scores(
    events: pd.DataFrame,
    articles: pd.DataFrame,
    now: pd.Timestamp,
    *,
    half_life_hours: float = 24.0,
    prior_views: float = 20.0,
) -> pd.DataFrame:
    """Trend of every article at time ``now``.

    Parameters
    ----------
    events : Event frame with ``ts`` and ``article_id``; only ``kind ==
        "view"`` rows before or at ``now`` count (a missing ``kind`` column
        means all are views).
    articles : Article frame with ``article_id`` and ``published_at``.
    now : tz-aware reference time.

    Returns
    -------
    DataFrame indexed by article_id (in ``articles`` order) with columns
    views (count up to now), decayed_views, exposure_hours, rate (smoothed
    views per hour) and trend (in [0, 1]). Articles published after ``now``
    get rate and trend 0.
    """
    if half_life_hours <= 0 or prior_views <= 0:
        raise ValueError("half_life_hours and prior_views must be > 0")
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise ValueError("now must be tz-aware (UTC)")
    ids = pd.Index(articles["article_id"].astype(str), name="article_id")

    views = events
    if "kind" in views:
        views = views[views["kind"] == "view"]
    views = views[(views["ts"] <= now) & views["article_id"].notna()]
    age_hours = _hours(now - views["ts"])
    weights = np.exp2(-age_hours / half_life_hours)
    keys = views["article_id"].astype(str).to_numpy()
    grouped = pd.DataFrame({"article_id": keys, "w": weights}).groupby("article_id")["w"]
    decayed = grouped.sum().reindex(ids, fill_value=0.0).to_numpy()
    counts = grouped.size().reindex(ids, fill_value=0).to_numpy()

    published_age = _hours(now - articles["published_at"].to_numpy())
    live = published_age >= 0
    exposure = np.where(
        live,
        half_life_hours / LN2 * (1.0 - np.exp2(-np.clip(published_age, 0, None) / half_life_hours)),
        0.0,
    )
    decayed = np.where(live, decayed, 0.0)

    total_exposure = exposure.sum()
    mu = decayed.sum() / total_exposure if total_exposure > 0 else 0.0
    if mu > 0:
        rate = np.where(live, (decayed + prior_views) / (exposure + prior_views / mu), 0.0)
        top = rate.max()
        trend = np.log1p(rate / mu) / np.log1p(top / mu) if top > 0 else np.zeros_like(rate)
    else:
        rate = np.zeros_like(decayed)
        trend = np.zeros_like(decayed)
    return pd.DataFrame(
        {
            "views": counts.astype(np.int64),
            "decayed_views": decayed,
            "exposure_hours": exposure,
            "rate": rate,
            "trend": trend,
        },
        index=ids,
    )


def trending_articles(
    scores: pd.DataFrame,
    articles: pd.DataFrame,
    k: int,
    *,
    site: str | None = None,
    eligible: np.ndarray | None = None,
) -> pd.Index:
    """Ids of the ``k`` top-trending articles, network-wide or of one ``site``.

    ``scores`` as returned by :func:`trend_scores` (same order as
    ``articles``); ``eligible`` an optional boolean mask over ``articles``.
    Ties rank by article id.
    """
    mask = np.ones(len(articles), dtype=bool) if eligible is None else np.asarray(eligible)
    if site is not None:
        mask = mask & (articles["site"].to_numpy() == site)
    mask = mask & (scores["views"].to_numpy() > 0)
    chosen = scores[mask].reset_index()
    chosen = chosen.sort_values(["trend", "article_id"], ascending=[False, True], kind="stable")
    return pd.Index(chosen["article_id"].head(k), name="article_id")
