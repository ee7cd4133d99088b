"""The mix: score each page's candidates, then fill its list under the caps.

Every page's candidates are its cross-site neighbours plus the top trending
articles of the sites it may recommend (the *trending pool*). Each candidate
is scored from its parts (relevance, trend, freshness, each in [0, 1]) by
the run's :class:`~recommender.scoring.Scorer` (the weighted blend of
``[mix.weights]`` unless another is given), and the list is filled greedily
by score (:func:`capped_fill`) under the rules: only eligible articles
(published, not older than the window, not from the future), never the
source article nor a near-duplicate of it or of an item already chosen, at
most ``max_per_site`` items per site and
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
from sklearn.preprocessing import normalize

from recommender.config import MixConfig, SiteConfig, allowed_site_pairs
from recommender.editorial import EditorialRules
from recommender.ids import is_valid_id
from recommender.lists import NETWORK_PAGE, related_page_id, section_page_id, site_page_id
from recommender.page_rules import PageRules, PinTable
from recommender.scoring import RelevanceOnly, Scorer, check_parts, scorer_from_config
from recommender.similarity import Neighbors

NO_GROUP = -1


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
        mix: MixConfig,
        scorer: Scorer,
        page_rules: PageRules | None = None,
    ) -> None:
        self.page_rules = page_rules if page_rules else None
        self.trend = np.asarray(trend, dtype=np.float32)
        self.freshness = np.asarray(freshness, dtype=np.float32)
        self.eligible = np.asarray(eligible, dtype=bool)
        self.site_codes = site_codes
        self.bucket_codes = bucket_codes
        self.groups = groups
        self.n_sites = int(site_codes.max()) + 1 if len(site_codes) else 1
        self.n_buckets = int(bucket_codes.max()) + 1 if len(bucket_codes) else 1
        self.mix = mix
        self.scorer = scorer

    def scores(
        self,
        candidates: np.ndarray,
        relevance: np.ndarray,
        source_rows: np.ndarray,
        page_sites: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The score of each candidate for its page, and its parts.

        ``candidates`` article rows (-1 = none), ``relevance`` their cosine
        with the page (same shape), ``source_rows`` the page's article row
        (-1 for a page without one) and ``page_sites`` its site code (-1 for
        the network's page; default: the site of ``source_rows``), both
        broadcastable to ``candidates``. A candidate that may not be shown
        on the page (none, not eligible, the page's own article or of its
        near-duplicate group, or one the page's rules exclude: see
        :class:`~recommender.page_rules.PageRules`) scores -inf. Parts and
        scores are float32: what the lists publish.
        """
        safe = np.maximum(candidates, 0)
        own = np.where(source_rows >= 0, self.groups[np.maximum(source_rows, 0)], NO_GROUP)
        valid = (candidates >= 0) & self.eligible[safe] & (candidates != source_rows)
        valid &= self.groups[safe] != own
        if self.page_rules is not None:
            if page_sites is None:
                page_sites = np.where(
                    source_rows >= 0, self.site_codes[np.maximum(source_rows, 0)], -1
                )
            valid &= self.page_rules.allowed(safe, source_rows, page_sites)
        parts = {
            "relevance": np.clip(relevance, 0.0, 1.0).astype(np.float32),
            "trend": self.trend[safe],
            "freshness": self.freshness[safe],
        }
        score = np.where(valid, self.scorer.score(parts), -np.inf).astype(np.float32)
        return score, parts


def capped_fill(
    sites: np.ndarray,
    buckets: np.ndarray,
    open_: np.ndarray,
    *,
    k: int,
    max_per_site: int,
    max_per_category: int,
    groups: np.ndarray | None = None,
    taken: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The greedy capped fill: which candidate fills each of ``k`` slots.

    Each row's candidates come in rank order; ``sites``, ``buckets`` (and
    ``groups``) are their codes (>= 0; any value where not ``open_``), and
    ``open_`` marks the candidates that may be taken at all, a leading run
    of each row. A candidate is taken while its row has fewer than ``k``,
    its site fewer than ``max_per_site`` and its category bucket fewer than
    ``max_per_category`` taken ones (and, with ``groups``, none of its
    near-duplicate group). ``taken``: (sites, buckets, groups) of items each
    row holds already (pins; -1 pads), which count towards ``k`` and the
    caps. Returns (rows, k) column positions of the taken candidates in
    order, -1 pads. One vectorised step per candidate position, across
    rows; never a loop over rows.
    """
    b, m = open_.shape
    slots = np.full((b, k), -1, dtype=np.int64)
    n_taken = np.zeros(b, dtype=np.int64)
    n_sites, n_buckets = int(sites.max(initial=0)) + 1, int(buckets.max(initial=0)) + 1
    if taken is not None:
        n_sites = max(n_sites, int(taken[0].max(initial=0)) + 1)
        n_buckets = max(n_buckets, int(taken[1].max(initial=0)) + 1)
    site_counts = np.zeros((b, n_sites), dtype=np.int32)
    bucket_counts = np.zeros((b, n_buckets), dtype=np.int32)
    taken_groups = np.full((b, k), NO_GROUP - 1, dtype=np.int64)
    rows = np.arange(b)
    limit = np.full(b, k, dtype=np.int64)
    if taken is not None:
        r, c = np.nonzero(taken[0] >= 0)
        np.add.at(site_counts, (r, taken[0][r, c]), 1)
        np.add.at(bucket_counts, (r, taken[1][r, c]), 1)
        limit -= (taken[0] >= 0).sum(axis=1)
        if groups is not None:
            pinned_groups = np.where(taken[0] >= 0, taken[2], NO_GROUP - 1)
            taken_groups = np.hstack([taken_groups, pinned_groups])
    for j in range(m):
        open_rows = (n_taken < limit) & open_[:, j]
        if not open_rows.any():
            break  # open candidates lead each row: no later position is open either
        s, c = sites[:, j], buckets[:, j]
        take = open_rows & (site_counts[rows, s] < max_per_site)
        take &= bucket_counts[rows, c] < max_per_category
        if groups is not None:
            take &= ~(taken_groups == groups[:, j][:, None]).any(axis=1)
        r = rows[take]
        slot = n_taken[r]
        slots[r, slot] = j
        if groups is not None:
            taken_groups[r, slot] = groups[r, j]
        site_counts[r, s[r]] += 1
        bucket_counts[r, c[r]] += 1
        n_taken[r] += 1
    return slots


def _pin_places(slots: np.ndarray, n_fill: np.ndarray, k: int) -> np.ndarray:
    """Final positions of each row's pins (valid ones: ``slots >= 0``, in
    the order they take their places): each at its slot or after the pin
    before it, and never past the end of a list of ``n_fill`` items and
    the row's pins."""
    places = np.full(slots.shape, -1, dtype=np.int64)
    valid = slots >= 0
    length = np.minimum(n_fill + valid.sum(axis=1), k)
    previous = np.full(len(slots), -1, dtype=np.int64)
    for p in range(slots.shape[1]):
        at = valid[:, p]
        places[at, p] = np.maximum(slots[at, p], previous[at] + 1)
        previous[at] = places[at, p]
    # Pull pins back from beyond the list's end, the last one first.
    after = np.zeros(len(slots), dtype=np.int64)
    for p in range(slots.shape[1] - 1, -1, -1):
        at = valid[:, p]
        places[at, p] = np.minimum(places[at, p], length[at] - 1 - after[at])
        after[at] += 1
    return places


def _select(
    ctx: _Context,
    candidates: np.ndarray,
    relevance: np.ndarray,
    source_rows: np.ndarray,
    page_sites: np.ndarray | None = None,
    pins: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, ...]:
    """Score and fill one block of pages.

    ``candidates`` (b, m) article rows (-1 = none), ``relevance`` (b, m),
    ``source_rows`` (b,) the page's article row or -1, ``page_sites`` its
    site code (see :meth:`_Context.scores`). ``pins``: (rows, slots,
    relevance), each (b, P), of the pages' pins (-1 pads), in the order
    they take their slots. Returns items, score, relevance, trend,
    freshness, each (b, k).
    """
    mix = ctx.mix
    b = len(candidates)
    sites_col = None if page_sites is None else np.asarray(page_sites)[:, None]
    score, parts = ctx.scores(candidates, relevance, source_rows[:, None], sites_col)
    taken = pin_values = None
    if pins is not None:
        pin_rows, pin_slots, pin_relevance = pins
        pin_score, pin_parts = ctx.scores(pin_rows, pin_relevance, source_rows[:, None], sites_col)
        # A pin shows when its page may show it and no earlier pin of its group does.
        pin_groups = ctx.groups[np.maximum(pin_rows, 0)]
        shows = np.isfinite(pin_score)
        for p in range(1, pin_rows.shape[1]):
            earlier = shows[:, :p] & (pin_groups[:, :p] == pin_groups[:, p : p + 1])
            shows[:, p] &= ~earlier.any(axis=1)
        shows &= np.cumsum(shows, axis=1) <= mix.k  # at most k pins show
        pin_rows = np.where(shows, pin_rows, -1)
        # A pinned article is not also a candidate, nor is anything of its group.
        safe = np.maximum(candidates, 0)
        for p in range(pin_rows.shape[1]):
            same = shows[:, p : p + 1] & (ctx.groups[safe] == pin_groups[:, p : p + 1])
            score = np.where(same, -np.inf, score).astype(np.float32)
        safe_pins = np.maximum(pin_rows, 0)
        taken = (
            np.where(shows, ctx.site_codes[safe_pins], -1),
            np.where(shows, ctx.bucket_codes[safe_pins], -1),
            np.where(shows, pin_groups, NO_GROUP - 1),
        )
        pin_values = [
            pin_score,
            pin_parts["relevance"],
            pin_parts["trend"],
            pin_parts["freshness"],
        ]
        pin_slots = np.where(shows, pin_slots, -1)
    safe = np.maximum(candidates, 0)
    order = np.lexsort((safe, -score), axis=1)  # best first; ties by lower row
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    ranked = take(safe)
    values = [take(a) for a in (score, parts["relevance"], parts["trend"], parts["freshness"])]
    slots = capped_fill(
        ctx.site_codes[ranked],
        ctx.bucket_codes[ranked],
        np.isfinite(values[0]),
        k=mix.k,
        max_per_site=mix.max_per_site,
        max_per_category=mix.max_per_category,
        groups=ctx.groups[ranked],
        taken=taken,
    )
    out = np.full((b, mix.k), -1, dtype=np.int32)
    out_parts = [np.zeros((b, mix.k), dtype=np.float32) for _ in values]
    position = np.broadcast_to(np.arange(mix.k), (b, mix.k))
    if pins is not None:
        assert pin_values is not None
        n_fill = (slots >= 0).sum(axis=1)
        places = _pin_places(pin_slots, n_fill, mix.k)
        is_pin = np.zeros((b, mix.k), dtype=bool)
        r, q = np.nonzero(places >= 0)
        is_pin[r, places[r, q]] = True
        out[r, places[r, q]] = pin_rows[r, q]
        for part, v in zip(out_parts, pin_values, strict=True):
            part[r, places[r, q]] = v[r, q]
        # The filled items take the other positions, in order.
        position = np.cumsum(~is_pin, axis=1) - 1
        position = np.where(is_pin, mix.k, position)
    r, slot = np.nonzero(slots >= 0)
    j = slots[r, slot]
    if pins is not None:
        # Where the slot-th filled item goes: the slot-th position not pinned.
        free = np.argsort(position, axis=1, kind="stable")
        dest = free[r, slot]
    else:
        dest = slot
    out[r, dest] = ranked[r, j]
    for part, v in zip(out_parts, values, strict=True):
        part[r, dest] = v[r, j]
    return (out, *out_parts)


def concat_lists(parts: Sequence[MixedLists]) -> MixedLists:
    """The lists of ``parts``, one after the other."""
    fields = ("source_ids", "source_sites", "items", "score", "relevance", "trend", "freshness")
    return MixedLists(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


class Mixer:
    """Builds lists for any pages of one run: articles of the corpus, a new
    article's vector, the sites' pages and the network's.

    Built once per run from the per-article arrays (see :func:`mix_lists` for
    the parameters); each site's trending pool and its transposed feature
    rows are prepared here, once.
    """

    def __init__(
        self,
        X: sp.csr_matrix,
        articles: pd.DataFrame,
        trend: np.ndarray,
        freshness: np.ndarray,
        eligible: np.ndarray,
        groups: np.ndarray,
        mix: MixConfig,
        *,
        scorer: Scorer | None = None,
        allowed: Mapping[str, Sequence[str]] | None = None,
        sites: Sequence[str] | Mapping[str, SiteConfig] = (),
        rules: EditorialRules | None = None,
    ) -> None:
        n = len(articles)
        self.X = sp.csr_matrix(X)
        self.mix = mix
        self.scorer = scorer if scorer is not None else scorer_from_config(mix)
        check_parts(self.scorer)
        self.article_ids = articles["article_id"].astype(str).to_numpy().astype(object)
        self.site_values = articles["site"].astype(str).to_numpy().astype(object)
        self.categories = articles["category"].fillna("").astype(str).to_numpy().astype(object)
        self.site_keys = sorted(set(self.site_values.tolist()) | set(sites))
        site_codes = (
            np.searchsorted(np.array(self.site_keys), self.site_values.astype(str))
            if n
            else np.zeros(0, dtype=np.int64)
        )
        self.ctx = _Context(
            trend,
            freshness,
            eligible,
            site_codes,
            category_buckets(articles),
            np.asarray(groups, dtype=np.int64),
            mix,
            self.scorer,
        )
        rules = rules or EditorialRules()
        site_configs = sites if isinstance(sites, Mapping) else {}
        self.site_code = {key: i for i, key in enumerate(self.site_keys)}
        self.ctx.page_rules = (
            PageRules(articles, self.site_keys, site_codes, site_configs, rules) or None
        )
        self.pins = PinTable(rules, self.article_ids)
        self.pairs = allowed_site_pairs(self.site_keys, allowed)
        # Ranked pool (by trend, then row) of each set of allowed sites.
        ranked = np.lexsort((np.arange(n), -self.ctx.trend))
        self._ranked = ranked[self.ctx.eligible[ranked]]
        self.pools = {site: self._pool_of(self.pairs[site]) for site in self.site_keys}
        self._pools_t = {site: self.X[pool].T.tocsr() for site, pool in self.pools.items()}
        self.network_pool = self._pool_of(self.site_keys)

    def _pool_of(self, targets: Sequence[str]) -> np.ndarray:
        in_targets = np.isin(self.site_values[self._ranked], list(targets))
        # A generous pool: caps and dedupe drop items, the list must still fill.
        return self._ranked[in_targets][: max(self.mix.trending_pool, 4 * self.mix.k)]

    def _block(
        self,
        site: str,
        vectors: sp.csr_matrix,
        nb_indices: np.ndarray,
        nb_scores: np.ndarray,
        source_rows: np.ndarray,
        source_ids: Sequence[str] = (),
    ) -> tuple[np.ndarray, ...]:
        pool = self.pools[site]
        if len(pool):
            pool_relevance = (vectors @ self._pools_t[site]).toarray()
        else:
            pool_relevance = np.zeros((vectors.shape[0], 0), dtype=np.float32)
        candidates = np.hstack([nb_indices, np.broadcast_to(pool, (vectors.shape[0], len(pool)))])
        relevance = np.hstack([nb_scores, pool_relevance]).astype(np.float32)
        page_sites = np.full(len(source_rows), self.site_code[site], dtype=np.int64)
        return _select(
            self.ctx,
            candidates,
            relevance,
            source_rows,
            page_sites,
            self._pins(site, source_ids, vectors),
        )

    def _allowed_pins(
        self, site: str | None, rows: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The pins of a ``site``'s pages of articles its pages may recommend
        (the network's page: any); the others become pads."""
        if site is not None:
            allowed = np.isin(self.site_values[np.maximum(rows, 0)], list(self.pairs[site]))
            keep = (rows >= 0) & allowed
            rows, slots = np.where(keep, rows, -1), np.where(keep, slots, -1)
        return rows, slots

    def _pins(
        self, site: str | None, source_ids: Sequence[str], vectors: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The pins of these pages (see :func:`_select`), with each pinned
        article's relevance to its page; None when they have none."""
        if not self.pins:
            return None
        found = self.pins.arrays(source_ids, site)
        if found is None:
            return None
        rows, slots = self._allowed_pins(site, *found)
        distinct, inverse = np.unique(np.maximum(rows, 0), return_inverse=True)
        cosine = (vectors @ self.X[distinct].T).toarray()
        relevance = np.take_along_axis(cosine, inverse.reshape(rows.shape), axis=1)
        return rows, slots, relevance.astype(np.float32)

    def for_articles(
        self,
        rows: np.ndarray,
        neighbors: Neighbors,
        *,
        block_size: int = 2048,
        on_progress: Callable[[int], None] | None = None,
        page_ids: np.ndarray | None = None,
    ) -> MixedLists:
        """Lists of the articles at ``rows``; ``neighbors`` row ``i`` holds the
        neighbours of ``rows[i]``. Lists come out in the order of ``rows``,
        under the articles' ids (or ``page_ids``, aligned with ``rows``)."""
        rows = np.asarray(rows, dtype=np.int64)
        ids = self.article_ids[rows] if page_ids is None else np.asarray(page_ids, dtype=object)
        k = self.mix.k
        items = np.full((len(rows), k), -1, dtype=np.int32)
        parts = [np.zeros((len(rows), k), dtype=np.float32) for _ in range(4)]
        row_sites = self.site_values[rows]
        for site in sorted(set(row_sites.tolist())):
            positions = np.flatnonzero(row_sites == site)
            for start in range(0, len(positions), block_size):
                at = positions[start : start + block_size]
                block = self._block(
                    site,
                    self.X[rows[at]],
                    neighbors.indices[at],
                    neighbors.scores[at],
                    rows[at],
                    ids[at].tolist(),
                )
                items[at] = block[0]
                for part, values in zip(parts, block[1:], strict=True):
                    part[at] = values
                if on_progress:
                    on_progress(len(at))
        return MixedLists(ids, row_sites, items, *parts)

    def for_related(
        self,
        rows: np.ndarray,
        neighbors: Neighbors,
        *,
        block_size: int = 2048,
        on_progress: Callable[[int], None] | None = None,
    ) -> MixedLists:
        """Related-only lists (``related:<id>``) of the articles at ``rows``:
        the same candidates, rules and caps as :meth:`for_articles`, ranked
        by relevance alone, none below ``min_relevance`` (so a list may be
        short, or empty: serving then falls back to the article's mix)."""
        rows = np.asarray(rows, dtype=np.int64)
        blended = self.ctx.scorer
        self.ctx.scorer = RelevanceOnly(self.mix.min_relevance)
        try:
            return self.for_articles(
                rows,
                neighbors,
                block_size=block_size,
                on_progress=on_progress,
                page_ids=np.array(
                    [related_page_id(str(i)) for i in self.article_ids[rows]], dtype=object
                ),
            )
        finally:
            self.ctx.scorer = blended

    def for_vector(
        self,
        vector: sp.csr_matrix,
        site: str,
        source_id: str,
        nb_indices: np.ndarray,
        nb_scores: np.ndarray,
    ) -> MixedLists:
        """The list of a page that is not in the corpus (e.g. an article
        published after the run), from its feature row and its neighbours."""
        block = self._block(
            site,
            sp.csr_matrix(vector),
            nb_indices[None, :],
            nb_scores[None, :],
            np.array([-1]),
            [source_id],
        )
        return MixedLists(
            np.array([source_id], dtype=object), np.array([site], dtype=object), *block
        )

    def sections(self) -> list[tuple[str, str, np.ndarray]]:
        """Each site's section pages: (site, source id, rows of the section's
        articles), by site and label; a section is a category label the
        site's articles carry (its eligible articles, or all when none is)."""
        found: list[tuple[str, str, np.ndarray]] = []
        labelled = np.flatnonzero(self.categories != "")
        if not len(labelled):
            return found
        # One pass: the labelled rows grouped by (site, label), in that order.
        keys = pd.MultiIndex.from_arrays(
            [self.site_values[labelled].astype(str), self.categories[labelled].astype(str)]
        )
        codes, uniques = pd.factorize(keys, sort=True)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
        for g, (site, label) in enumerate(uniques):
            source_id = section_page_id(site, label)
            if not is_valid_id(source_id):
                continue  # too long for an id: no page of its own
            members = labelled[order[bounds[g] : bounds[g + 1]]]
            shown = members[self.ctx.eligible[members]]
            found.append((site, source_id, shown if len(shown) else members))
        return found

    def for_sections(self) -> MixedLists | None:
        """The lists of the section pages (see :meth:`sections`): each site's
        trending pool ranked by relevance to the section (the normalised
        mean of its articles' rows) and trend, as an article's list is."""
        sections = self.sections()
        if not sections:
            return None
        parts = []
        for site in self.site_keys:
            mine = [(source_id, rows) for s, source_id, rows in sections if s == site]
            if not mine:
                continue
            members = sp.csr_matrix(
                (
                    np.ones(sum(len(r) for _, r in mine)),
                    np.concatenate([r for _, r in mine]),
                    np.cumsum([0, *(len(r) for _, r in mine)]),
                ),
                shape=(len(mine), self.X.shape[0]),
            )
            centroids = normalize(members @ self.X).astype(np.float32)
            none = np.zeros((len(mine), 0), dtype=np.int64)
            block = self._block(
                site,
                sp.csr_matrix(centroids),
                none,
                none.astype(np.float32),
                np.full(len(mine), -1),
                [source_id for source_id, _ in mine],
            )
            ids = np.array([source_id for source_id, _ in mine], dtype=object)
            parts.append(MixedLists(ids, np.full(len(mine), site, dtype=object), *block))
        return concat_lists(parts)

    def for_pages(self) -> MixedLists:
        """Each site's page without an article (its trending mix), then the
        network's trending mix, then (with ``section_pages``) the sites'
        section pages."""
        parts = []
        pages = [(site, site_page_id(site), self.pools[site]) for site in self.site_keys]
        pages.append((None, NETWORK_PAGE, self.network_pool))
        for site, source_id, pool in pages:
            code = -1 if site is None else self.site_code[site]
            pins = None
            if self.pins:
                found = self.pins.arrays([source_id], site)
                if found is not None:
                    rows, slots = self._allowed_pins(site, *found)
                    # A page without an article: a pin has no relevance to it.
                    pins = (rows, slots, np.zeros(rows.shape, dtype=np.float32))
            block = _select(
                self.ctx,
                pool[None, :],
                np.zeros((1, len(pool)), np.float32),
                np.array([-1]),
                np.array([code]),
                pins,
            )
            parts.append(
                MixedLists(
                    np.array([source_id], dtype=object), np.array([site], dtype=object), *block
                )
            )
        sections = self.for_sections() if self.mix.section_pages else None
        if sections is not None:
            parts.append(sections)
        return concat_lists(parts)


def mix_lists(
    X: sp.csr_matrix,
    articles: pd.DataFrame,
    neighbors: Neighbors,
    trend: np.ndarray,
    freshness: np.ndarray,
    eligible: np.ndarray,
    groups: np.ndarray,
    mix: MixConfig,
    *,
    scorer: Scorer | None = None,
    allowed: Mapping[str, Sequence[str]] | None = None,
    sites: Sequence[str] | Mapping[str, SiteConfig] = (),
    rules: EditorialRules | None = None,
    block_size: int = 2048,
    on_progress: Callable[[int], None] | None = None,
) -> MixedLists:
    """Final lists for every article (in row order), every site's page and
    the network.

    Parameters
    ----------
    X : L2-normalised feature rows, aligned with ``articles``.
    articles : Article frame with ``site`` and ``category_key``.
    neighbors : cross-site neighbours of every article (row indices).
    trend, freshness : per-article parts in [0, 1].
    eligible : mask of articles that may be shown.
    groups : near-duplicate group of each article.
    mix : the ``[mix]`` settings (list length, caps, pool size, weights).
    scorer : scores candidates from their parts (default: ``mix``'s weighted blend).
    allowed : which sites each site may recommend (default: every other).
    sites : registry site keys, or the registry (then its languages and
        brand-safety rules apply); each gets a page list even without articles.
    rules : the editors' pins and blocks active in this run.
    """
    mixer = Mixer(
        X,
        articles,
        trend,
        freshness,
        eligible,
        groups,
        mix,
        scorer=scorer,
        allowed=allowed,
        sites=sites,
        rules=rules,
    )
    articles_lists = mixer.for_articles(
        np.arange(len(articles)), neighbors, block_size=block_size, on_progress=on_progress
    )
    return concat_lists([articles_lists, mixer.for_pages()])
