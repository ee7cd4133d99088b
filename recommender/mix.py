"""The mix: blend relevance, trend and freshness, then diversify.

Every page's candidates are its cross-site neighbours plus the top trending
articles of the sites it may recommend (the *trending pool*). Each candidate
scores::

    score = w_relevance * relevance + w_trend * trend + w_freshness * freshness

(each part in [0, 1]) and the list is filled greedily by score under the
rules: only eligible articles (published, not older than the window, not
from the future), never the source article nor a near-duplicate of it or of
an item already chosen, at most ``max_per_site`` items per site and
``max_per_category`` per category (an empty category counts as the site's
own "uncategorised" bucket).

An article with no good neighbours thus gets its site's trending mix, the
same list as the site's page without an article. Lists are built for blocks
of pages at once: the greedy fill loops over the (few dozen) candidate
positions, vectorised across pages, never over pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.similarity import Neighbors, allowed_site_pairs

NO_GROUP = -1


@dataclass(frozen=True)
class MixParams:
    """Knobs of the mix; see :class:`recommender.config.MixConfig`."""

    k: int = 12
    w_relevance: float = 0.45
    w_trend: float = 0.4
    w_freshness: float = 0.15
    max_per_site: int = 5
    max_per_category: int = 3
    min_relevance: float = 0.1
    trending_pool: int = 60


@dataclass(frozen=True)
class MixedLists:
    """Lists as arrays, one row per page.

    ``source_ids[i]`` is an article id, ``site:<key>`` or ``network``;
    ``items[i]`` row indices into the articles frame (-1 pads short lists);
    ``score``, ``relevance``, ``trend``, ``freshness`` the matching parts.
    """

    source_ids: np.ndarray
    source_sites: np.ndarray
    items: np.ndarray
    score: np.ndarray
    relevance: np.ndarray
    trend: np.ndarray
    freshness: np.ndarray

    def __len__(self) -> int:
        return len(self.source_ids)

    def lengths(self) -> np.ndarray:
        return (self.items >= 0).sum(axis=1)


def _age_days(published_at: pd.Series, now: pd.Timestamp) -> np.ndarray:
    return np.asarray((now - published_at).dt.total_seconds(), dtype=np.float64) / 86400.0


def freshness_scores(
    published_at: pd.Series, now: pd.Timestamp, half_life_days: float
) -> np.ndarray:
    """``0.5 ** (age_days / half_life_days)``; 0 for articles not yet published."""
    age_days = _age_days(published_at, now)
    return np.where(age_days >= 0, np.exp2(-np.clip(age_days, 0, None) / half_life_days), 0.0)


def eligible_articles(articles: pd.DataFrame, now: pd.Timestamp, max_age_days: float) -> np.ndarray:
    """Mask of articles that may be shown: published, 0 <= age <= max_age_days."""
    age_days = _age_days(articles["published_at"], now)
    published = articles["status"].fillna("published").to_numpy() == "published"
    return published & (age_days >= 0) & (age_days <= max_age_days)


def category_buckets(articles: pd.DataFrame, column: str = "category_key") -> np.ndarray:
    """Integer code per article of the bucket the category cap counts in."""
    keys = articles[column].fillna("").astype(str)
    buckets = keys.mask(keys == "", articles["site"].astype(str) + ":")
    return pd.factorize(buckets)[0].astype(np.int64)


class _Context:
    """Per-article arrays the selection reads, shared by every block."""

    def __init__(
        self,
        trend: np.ndarray,
        freshness: np.ndarray,
        eligible: np.ndarray,
        site_codes: np.ndarray,
        bucket_codes: np.ndarray,
        groups: np.ndarray,
        params: MixParams,
    ) -> None:
        self.trend = np.asarray(trend, dtype=np.float32)
        self.freshness = np.asarray(freshness, dtype=np.float32)
        self.eligible = np.asarray(eligible, dtype=bool)
        self.site_codes = site_codes
        self.bucket_codes = bucket_codes
        self.groups = groups
        self.n_sites = int(site_codes.max()) + 1 if len(site_codes) else 1
        self.n_buckets = int(bucket_codes.max()) + 1 if len(bucket_codes) else 1
        self.params = params


def _select(
    ctx: _Context, candidates: np.ndarray, relevance: np.ndarray, source_rows: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Greedy capped fill of one block of pages.

    ``candidates`` (b, m) article rows (-1 = none), ``relevance`` (b, m),
    ``source_rows`` (b,) the page's article row or -1. Returns items, score,
    relevance, trend, freshness, each (b, k).
    """
    p = ctx.params
    b, m = candidates.shape
    safe = np.maximum(candidates, 0)
    source_groups = np.where(source_rows >= 0, ctx.groups[np.maximum(source_rows, 0)], NO_GROUP)
    valid = (candidates >= 0) & ctx.eligible[safe] & (candidates != source_rows[:, None])
    valid &= ctx.groups[safe] != source_groups[:, None]
    relevance = np.clip(relevance, 0.0, 1.0).astype(np.float32)
    trend = ctx.trend[safe]
    fresh = ctx.freshness[safe]
    score = p.w_relevance * relevance + p.w_trend * trend + p.w_freshness * fresh
    score = np.where(valid, score, -np.inf).astype(np.float32)
    order = np.lexsort((safe, -score), axis=1)  # best first; ties by lower row
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    candidates, score, relevance, trend, fresh = map(take, (safe, score, relevance, trend, fresh))

    out = np.full((b, p.k), -1, dtype=np.int32)
    parts = [np.zeros((b, p.k), dtype=np.float32) for _ in range(4)]
    chosen_groups = np.full((b, p.k), NO_GROUP - 1, dtype=np.int64)
    n_chosen = np.zeros(b, dtype=np.int64)
    site_counts = np.zeros((b, ctx.n_sites), dtype=np.int32)
    bucket_counts = np.zeros((b, ctx.n_buckets), dtype=np.int32)
    rows = np.arange(b)
    for j in range(m):
        column = candidates[:, j]
        open_rows = (n_chosen < p.k) & np.isfinite(score[:, j])
        if not open_rows.any():
            break  # rows are sorted: no later position can be accepted either
        s = ctx.site_codes[column]
        c = ctx.bucket_codes[column]
        g = ctx.groups[column]
        accept = open_rows & (site_counts[rows, s] < p.max_per_site)
        accept &= bucket_counts[rows, c] < p.max_per_category
        accept &= ~(chosen_groups == g[:, None]).any(axis=1)
        r = rows[accept]
        slot = n_chosen[r]
        out[r, slot] = column[r]
        for part, values in zip(parts, (score, relevance, trend, fresh), strict=True):
            part[r, slot] = values[r, j]
        chosen_groups[r, slot] = g[r]
        site_counts[r, s[r]] += 1
        bucket_counts[r, c[r]] += 1
        n_chosen[r] += 1
    return (out, *parts)


def mix_lists(
    X: sp.csr_matrix,
    articles: pd.DataFrame,
    neighbors: Neighbors,
    trend: np.ndarray,
    freshness: np.ndarray,
    eligible: np.ndarray,
    groups: np.ndarray,
    params: MixParams,
    *,
    allowed: Mapping[str, Sequence[str]] | None = None,
    sites: Sequence[str] = (),
    block_size: int = 2048,
    on_progress: Callable[[int], None] | None = None,
) -> MixedLists:
    """Final lists for every article, every site's page and the network.

    Parameters
    ----------
    X : L2-normalised feature rows, aligned with ``articles``.
    articles : Article frame with ``site`` and ``category_key``.
    neighbors : cross-site neighbours of every article (row indices).
    trend, freshness : per-article parts in [0, 1].
    eligible : mask of articles that may be shown.
    groups : near-duplicate group of each article.
    allowed : which sites each site may recommend (default: every other).
    sites : registry site keys; each gets a page list even without articles.
    """
    n = len(articles)
    site_values = articles["site"].astype(str).to_numpy()
    site_keys = sorted(set(site_values.tolist()) | set(sites))
    site_codes = (
        np.searchsorted(np.array(site_keys), site_values) if n else np.zeros(0, dtype=np.int64)
    )
    ctx = _Context(
        trend,
        freshness,
        eligible,
        site_codes,
        category_buckets(articles),
        np.asarray(groups, dtype=np.int64),
        params,
    )
    pairs = allowed_site_pairs(site_keys, allowed)

    # Ranked pool (by trend, then row) of each set of allowed sites.
    ranked = np.lexsort((np.arange(n), -ctx.trend))
    ranked = ranked[ctx.eligible[ranked]]

    def pool_of(targets: Sequence[str]) -> np.ndarray:
        in_targets = np.isin(site_values[ranked], list(targets))
        # A generous pool: caps and dedupe drop items, the list must still fill.
        return ranked[in_targets][: max(params.trending_pool, 4 * params.k)]

    results: list[tuple[np.ndarray, ...]] = []
    ids: list[np.ndarray] = []
    sites_out: list[np.ndarray] = []
    X = sp.csr_matrix(X)
    for site in site_keys:
        rows_of_site = np.flatnonzero(site_values == site)
        pool = pool_of(pairs[site])
        pool_t = X[pool].T.tocsr()
        for start in range(0, len(rows_of_site), block_size):
            rows = rows_of_site[start : start + block_size]
            nb = neighbors.indices[rows]
            nb_rel = neighbors.scores[rows]
            pool_rel = (
                (X[rows] @ pool_t).toarray()
                if len(pool)
                else np.zeros((len(rows), 0), dtype=np.float32)
            )
            candidates = np.hstack([nb, np.broadcast_to(pool, (len(rows), len(pool)))])
            relevance = np.hstack([nb_rel, pool_rel]).astype(np.float32)
            results.append(_select(ctx, candidates, relevance, rows))
            ids.append(articles["article_id"].astype(str).to_numpy()[rows])
            sites_out.append(site_values[rows])
            if on_progress:
                on_progress(len(rows))
        # The site's page without an article: its trending mix.
        results.append(
            _select(ctx, pool[None, :], np.zeros((1, len(pool)), np.float32), np.array([-1]))
        )
        ids.append(np.array([site_page_id(site)], dtype=object))
        sites_out.append(np.array([site], dtype=object))
    # Network-wide trending mix, every site allowed.
    pool = pool_of(site_keys)
    results.append(
        _select(ctx, pool[None, :], np.zeros((1, len(pool)), np.float32), np.array([-1]))
    )
    ids.append(np.array([NETWORK_PAGE], dtype=object))
    sites_out.append(np.array([None], dtype=object))

    stacked = [np.vstack([r[i] for r in results]) for i in range(5)]
    return MixedLists(np.concatenate(ids).astype(object), np.concatenate(sites_out), *stacked)
