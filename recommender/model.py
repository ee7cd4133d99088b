"""The fitted engine: features, neighbours, trend and the mixed lists.

:class:`Recommender` runs the stages in their one direction (features ->
similarity -> trending -> mix) over plain data and keeps what each produced,
so that analysts can look at every step and the batch can publish the lists.
It saves to and loads from one versioned artifact file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from json.encoder import encode_basestring as encode_string
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recommender.artifact import (
    PendingArtifact,
    open_artifact,
    write_pending,
)
from recommender.columns import as_arrow, rows_of, take_rows
from recommender.config import Config
from recommender.errors import ArtifactError, InputError, NotFittedError
from recommender.features import vectorizer_from_config
from recommender.lists import Item, RecommendationList, SerializedList
from recommender.mix import (
    MixedLists,
    Mixer,
    concat_lists,
    eligible_articles,
    freshness_scores,
)
from recommender.model_file import decode_model, encode_model
from recommender.progress import StageTimer
from recommender.similarity import (
    Neighbors,
    TitleLinks,
    best_first,
    cross_site_neighbors,
    merge_title_links,
    title_links,
    top_k_per_row,
)
from recommender.trending import TrendBaseline, trend_scores

ARTIFACT_KIND = "recommender.model.Recommender"

#: What :meth:`Recommender.fit_partitioned` calls to compute every article's
#: neighbours and list: ``(model, mixer, progress) -> (neighbors, lists)``.
ArticleScorer = Callable[["Recommender", Mixer, StageTimer], tuple[Neighbors, MixedLists]]


def category_keys(articles: pd.DataFrame, config: Config) -> pd.Series:
    """Network-wide category key of each article.

    A site's label maps through its ``category_map``; an unmapped label
    becomes ``<site>/<label>`` (it only matches the same label on the same
    site); an empty label stays empty.
    """
    labels = articles["category"].fillna("").astype(str)
    sites = articles["site"].astype(str)
    keys = sites + "/" + labels
    for site, site_config in config.sites.items():
        if site_config.category_map:
            on_site = sites == site
            mapped = labels[on_site].map(site_config.category_map)
            keys[on_site] = mapped.fillna(keys[on_site])
    return keys.mask(labels == "", "").astype("string")


def reference_time(config: Config, now: datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """The run's "now": the argument, else the config's ``run.now``, else the clock."""
    chosen = now if now is not None else config.run.now
    stamp = pd.Timestamp(chosen if chosen is not None else datetime.now(UTC))
    if stamp.tzinfo is None:
        raise ValueError("the reference time must be tz-aware")
    return stamp.tz_convert("UTC")


class Recommender:
    """Fit on articles and events; hand out recommendation lists.

    Parameters
    ----------
    config : Config
        Sites, feature, similarity, trending and mix settings.

    Attributes (after ``fit``)
    --------------------------
    articles_ : the Article frame used, with ``category_key``; row i of every
        array below is article i.
    vectorizer_ : fitted :class:`ArticleVectorizer`.
    X_ : sparse feature rows (n_articles, n_features), L2-normalised.
    eligible_ : mask of articles that may be recommended.
    neighbors_ : :class:`Neighbors`, cross-site top-k of every article.
    trend_ : frame of :func:`trend_scores` (indexed by article id).
    freshness_ : array in [0, 1].
    groups_ : near-duplicate group ids.
    lists_ : :class:`MixedLists`, one per article, per site page and network.
    now_ : the reference time used.
    timings_ : seconds per stage.
    """

    #: The store run this model's lists were published as (set by the batch
    #: before saving): an update builds on it only while it is still served.
    published_run_id_: str | None = None

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- fitting -------------------------------------------------------------
    def fit(
        self,
        articles: pd.DataFrame,
        events: pd.DataFrame,
        now: datetime | pd.Timestamp | None = None,
        progress: StageTimer | None = None,
    ) -> Recommender:
        """Run every stage. ``articles`` and ``events`` are validated frames
        (events already tied to article ids); ``now`` defaults as in
        :func:`reference_time`."""
        progress = progress or StageTimer()
        self._fit_features(articles, now, progress)
        with progress.stage("similarity", total=len(self.articles_)) as advance:
            self._set_neighbors(
                self._neighbors(candidates=self.eligible_, deep=True, on_progress=advance)
            )
        self.update_stats_ = {"incremental": False, "rows_recomputed": len(self.articles_)}
        return self._score(events, progress)

    def fit_partitioned(
        self,
        articles: pd.DataFrame,
        events: pd.DataFrame,
        score_articles: ArticleScorer,
        now: datetime | pd.Timestamp | None = None,
        progress: StageTimer | None = None,
    ) -> Recommender:
        """:meth:`fit`, with every article's neighbours and list computed by
        ``score_articles`` (e.g. partition by partition on a cluster).

        Features, eligibility, trending and near-duplicates are computed here
        first; then ``score_articles(self, mixer, progress)`` returns the
        neighbours of every article and their lists (both in row order), as
        :meth:`fit` computes them with ``mixer`` (this run's :class:`Mixer`).
        The site and network pages are mixed here.
        """
        progress = progress or StageTimer()
        self._fit_features(articles, now, progress)
        self._trend_and_groups(events, progress)
        mixer = self._mixer()
        neighbors, article_lists = score_articles(self, mixer, progress)
        n = len(self.articles_)
        if len(neighbors.indices) != n or len(article_lists) != n:
            raise ValueError(
                f"score_articles returned {len(neighbors.indices)} neighbour rows and "
                f"{len(article_lists)} lists for {n} articles"
            )
        self._set_neighbors(neighbors)  # no reserve: an update recomputes what it loses
        self.update_stats_ = {"incremental": False, "rows_recomputed": n}
        with progress.stage("pages"):
            self.lists_ = concat_lists([article_lists, mixer.for_pages()])
        self.timings_ = dict(progress.timings)
        return self

    def update(
        self,
        articles: pd.DataFrame,
        events: pd.DataFrame,
        now: datetime | pd.Timestamp | None = None,
        progress: StageTimer | None = None,
        *,
        incremental: bool = True,
    ) -> Recommender:
        """A new model for the current ``articles`` and ``events`` that keeps
        this one's fitted state (no refit): the vocabulary, the title
        vectorizer of the near-duplicate check and the trend baseline (see
        :class:`~recommender.trending.TrendBaseline`); only what changed is
        recomputed.

        Unchanged articles keep their feature rows; new and changed ones are
        transformed. An unchanged article's neighbours are its previous ones
        (``neighbors_`` and the ``similarity.reserve`` behind them) less the
        candidates it lost (removed, changed, out of the freshness window),
        merged with the arriving candidates that rank above the last one it
        still knows exactly (see :meth:`_merge_neighbors`); only articles
        left with fewer than k known neighbours, and new and changed ones,
        are computed in full. Near-duplicate pairs are computed only for the
        titles that arrived. A list whose inputs (neighbours, its site's
        trending pool, its candidates' trend, freshness, eligibility and
        group) are all as before is copied, not mixed. The result equals the
        full computation on the same fitted state, ``incremental=False``.

        ``changed_lists_`` marks the lists whose published form differs from
        this model's and ``removed_sources_`` names the lists gone: what
        :meth:`~recommender.store.Store.publish_changes` writes.
        ``update_stats_`` tells what was recomputed.
        """
        self._check_fitted()
        progress = progress or StageTimer()
        model = Recommender(self.config)
        with progress.stage("features", total=len(articles)):
            articles = model._prepare(articles, now)
            previous = rows_of(articles["article_id"], self.articles_["article_id"])
            same = _same_content(self.articles_, previous, articles)
            model.vectorizer_ = self.vectorizer_
            model.vocabulary_fitted_at_ = self.vocabulary_fitted_at_
            model.X_ = _assemble_rows(
                self.X_,
                previous,
                same,
                lambda rows: model.vectorizer_.transform(take_rows(articles, rows)),
            )
        n = len(articles)
        # Old row -> new row of each article kept unchanged; -1 otherwise.
        new_of_old = np.full(len(self.articles_), -1, dtype=np.int64)
        new_of_old[previous[same]] = np.flatnonzero(same)
        model._eligibility()
        # Ties rank by row: reusing old results is exact when kept articles keep their order.
        ordered = bool(np.all(np.diff(previous[same]) > 0))
        reuse = incremental and ordered
        with progress.stage("similarity", total=n) as advance:
            if reuse:
                recomputed = model._merge_neighbors(self, previous, same, new_of_old, advance)
            else:
                model._set_neighbors(
                    model._neighbors(candidates=model.eligible_, deep=True, on_progress=advance)
                )
                recomputed = n
        # The trend baseline is fitted with the vocabulary, and reused with it.
        baseline = getattr(self, "trend_baseline_", None)
        if reuse:
            mixed = model._score_reusing(
                self, previous, same, new_of_old, events, progress, baseline
            )
        else:
            model._score(events, progress, baseline, getattr(self, "title_links_", None))
            mixed = n
        model._find_list_changes(self, previous, same, new_of_old)
        model.update_stats_ = {
            "incremental": reuse,
            "articles": n,
            "new": int((previous < 0).sum()),
            "changed": int(((previous >= 0) & ~same).sum()),
            "removed": len(self.articles_) - int((previous >= 0).sum()),
            "rows_recomputed": int(recomputed),
            "lists_mixed": int(mixed),
            "lists_changed": int(model.changed_lists_.sum()),
            "lists_removed": len(model.removed_sources_),
        }
        return model

    # -- stages ----------------------------------------------------------------
    def _fit_features(
        self,
        articles: pd.DataFrame,
        now: datetime | pd.Timestamp | None,
        progress: StageTimer,
    ) -> None:
        """Prepare the articles, fit the vectorizer and transform them, and
        mark which may be recommended."""
        articles = self._prepare(articles, now)
        with progress.stage("features", total=len(articles)):
            self.vectorizer_ = vectorizer_from_config(self.config.features)
            try:
                self.X_ = self.vectorizer_.fit_transform(articles)
            except ValueError as error:  # e.g. every word is a stop word
                raise InputError(f"cannot build text features: {error}") from None
            self.vocabulary_fitted_at_ = self.now_
        self._eligibility()

    def _prepare(self, articles: pd.DataFrame, now: datetime | pd.Timestamp | None) -> pd.DataFrame:
        if len(articles) == 0:
            raise InputError("no valid articles to recommend from")
        self.now_ = reference_time(self.config, now)
        articles = articles.reset_index(drop=True)
        articles = articles.assign(category_key=category_keys(articles, self.config))
        self.articles_ = articles
        return articles

    def _eligibility(self) -> None:
        mix = self.config.mix
        self.eligible_ = eligible_articles(self.articles_, self.now_, mix.max_age_days)
        self.freshness_ = freshness_scores(
            self.articles_["published_at"], self.now_, mix.freshness_half_life_days
        )

    def _neighbors(
        self,
        *,
        candidates: np.ndarray,
        rows: np.ndarray | None = None,
        deep: bool = False,
        floors: np.ndarray | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Neighbors:
        """Top-k neighbours (``deep``: top k + ``similarity.reserve``);
        ``floors``: see :func:`~recommender.similarity.cross_site_neighbors`."""
        similarity = self.config.similarity
        return cross_site_neighbors(
            self.X_,
            self.articles_["site"].to_numpy(),
            similarity.k + (similarity.reserve if deep else 0),
            allowed=self.config.allowed_pairs(),
            candidates=candidates,
            rows=rows,
            min_similarity=similarity.min_similarity,
            floors=floors,
            max_block_mb=similarity.max_block_mb,
            kernel=similarity.kernel,
            n_jobs=similarity.n_jobs,
            on_progress=on_progress,
        )

    def _set_neighbors(self, deep: Neighbors, depth: np.ndarray | None = None) -> None:
        """``neighbors_`` (the first k of ``deep``'s columns: what lists
        use), ``reserve_`` (the rest) and ``depth_``: per article, how many
        leading entries of ``neighbors_`` + ``reserve_`` are known to be
        exactly its top candidates, by (score, row) — every candidate not
        among them ranks after them, and a -1 within the depth means there
        is no further candidate (default: all of ``deep``'s columns)."""
        k = self.config.similarity.k
        self.neighbors_ = Neighbors(
            np.ascontiguousarray(deep.indices[:, :k]), np.ascontiguousarray(deep.scores[:, :k])
        )
        self.reserve_ = Neighbors(
            np.ascontiguousarray(deep.indices[:, k:]), np.ascontiguousarray(deep.scores[:, k:])
        )
        width = deep.indices.shape[1]
        self.depth_ = np.full(len(deep.indices), width, dtype=np.int32) if depth is None else depth

    def _merge_neighbors(
        self,
        old: Recommender,
        previous: np.ndarray,
        same: np.ndarray,
        new_of_old: np.ndarray,
        advance: Callable[[int], None],
        *,
        block: int = 4096,
    ) -> int:
        """Neighbours equal to a full computation, recomputing only what
        changed; returns how many lists were computed in full.

        A kept article's previous list, less the candidates it lost
        (removed, changed, no longer eligible), is still the exact top of the
        unchanged candidates down to its depth (its *part*). Merged with the
        arriving candidates (new, changed, newly eligible) that rank ahead of
        the part's last entry — a product over those columns only, keeping
        only scores that reach that entry's — it is exact down to where the
        part ends. Articles whose part is shorter than k, and new and changed
        ones, are computed in full. Row arrays are worked a ``block`` of rows
        at a time (in cache).
        """
        n = len(self.articles_)
        similarity = self.config.similarity
        k, width = similarity.k, similarity.k + similarity.reserve
        old_eligible = np.zeros(n, dtype=bool)
        old_eligible[same] = old.eligible_[previous[same]]
        arrivals = self.eligible_ & ~old_eligible

        kept = np.flatnonzero(same)
        old_reserve = getattr(old, "reserve_", None)
        old_parts = [old.neighbors_] + ([old_reserve] if old_reserve is not None else [])
        old_width = sum(part.k for part in old_parts)
        old_depth = getattr(old, "depth_", None)
        if old_depth is None:
            old_depth = np.full(len(old.articles_), old_width, dtype=np.int32)
        # Old row -> new row (-1: not kept; and for a -1 pad, the last entry).
        new_row = np.append(new_of_old, -1).astype(np.int32)
        candidate = np.append(self.eligible_, False)
        part_idx = np.empty((len(kept), old_width), dtype=np.int32)
        part_val = np.empty((len(kept), old_width), dtype=np.float32)
        exhausted = np.empty(len(kept), dtype=bool)
        n_part = np.empty(len(kept), dtype=np.int64)
        b_val = np.empty(len(kept), dtype=np.float32)
        b_idx = np.empty(len(kept), dtype=np.int64)
        columns = np.arange(old_width)
        for start in range(0, len(kept), block):
            at = slice(start, start + block)
            before = previous[kept[at]]
            idx = np.hstack([part.indices[before] for part in old_parts])
            val = np.hstack([part.scores[before] for part in old_parts])
            within = columns[None, :] < old_depth[before][:, None]
            # No further candidate: a -1 inside the depth.
            exhausted[at] = (within & (idx < 0)).any(axis=1)
            idx = np.where(within, new_row[idx], -1)
            still = candidate[idx]
            idx[~still], val[~still] = -1, 0.0
            n_part[at] = still.sum(axis=1)
            # b: the part's last entry (lost ones leave holes: best_first closes them).
            last = old_width - 1 - np.argmax(still[:, ::-1], axis=1)
            b_val[at] = val[np.arange(len(idx)), last]
            b_idx[at] = idx[np.arange(len(idx)), last]
            part_idx[at], part_val[at] = idx, val

        # Exact down to b: add the arrivals ranking before b (all, when exhausted).
        merge = np.flatnonzero(exhausted | (n_part >= k))
        b_val[exhausted], b_idx[exhausted] = 0.0, n
        if arrivals.any() and len(merge):
            fresh = self._neighbors(
                candidates=arrivals, rows=kept[merge], deep=True, floors=b_val[merge]
            )
        else:
            fresh = Neighbors(
                np.full((len(merge), width), -1, dtype=np.int32),
                np.zeros((len(merge), width), dtype=np.float32),
            )
        # Written straight into neighbors_ (the first k) and reserve_ (the rest).
        near = Neighbors(np.full((n, k), -1, dtype=np.int32), np.zeros((n, k), dtype=np.float32))
        far = Neighbors(
            np.full((n, width - k), -1, dtype=np.int32),
            np.zeros((n, width - k), dtype=np.float32),
        )
        depths = np.full(n, width, dtype=np.int32)

        def put(rows: np.ndarray, found: Neighbors) -> None:
            near.indices[rows], near.scores[rows] = found.indices[:, :k], found.scores[:, :k]
            far.indices[rows], far.scores[rows] = found.indices[:, k:], found.scores[:, k:]

        for start in range(0, len(merge), block):
            chosen = merge[start : start + block]
            f_idx, f_val = fresh.indices[start : start + block], fresh.scores[start : start + block]
            # Ties with b rank by row: those after b are not ahead of it.
            behind = (f_val == b_val[chosen][:, None]) & (f_idx > b_idx[chosen][:, None])
            f_idx[behind], f_val[behind] = -1, 0.0
            gained = (f_idx >= 0).sum(axis=1)
            merged = best_first(
                [Neighbors(part_idx[chosen], part_val[chosen]), Neighbors(f_idx, f_val)], width
            )
            rows = kept[chosen]
            put(rows, merged)
            depths[rows] = np.where(
                exhausted[chosen], width, np.minimum(width, n_part[chosen] + gained)
            )
        full_rows = np.concatenate([np.flatnonzero(~same), np.delete(kept, merge)])
        if len(full_rows):
            put(full_rows, self._neighbors(candidates=self.eligible_, rows=full_rows, deep=True))
        self.neighbors_, self.reserve_, self.depth_ = near, far, depths
        advance(n)
        return len(full_rows)

    def _score(
        self,
        events: pd.DataFrame,
        progress: StageTimer,
        baseline: TrendBaseline | None = None,
        old_titles: TitleLinks | None = None,
    ) -> Recommender:
        """Trending, near-duplicates and the mix, from features and neighbours."""
        self._trend_and_groups(events, progress, baseline, old_titles)
        articles = self.articles_
        with progress.stage("mix", total=len(articles)) as advance:
            mixer = self._mixer()
            self.lists_ = concat_lists(
                [
                    mixer.for_articles(
                        np.arange(len(articles)), self.neighbors_, on_progress=advance
                    ),
                    mixer.for_pages(),
                ]
            )
        self.timings_ = dict(progress.timings)
        return self

    def _score_reusing(
        self,
        old: Recommender,
        previous: np.ndarray,
        same: np.ndarray,
        new_of_old: np.ndarray,
        events: pd.DataFrame,
        progress: StageTimer,
        baseline: TrendBaseline | None,
    ) -> int:
        """:meth:`_score`, reusing ``old``'s list of every kept article whose
        list cannot have changed; returns how many article lists were mixed.

        See :meth:`_unchanged_lists` for when a list is copied.
        """
        n = len(self.articles_)
        # Titles compared before and unchanged keep their pairs.
        titles_kept = same & self.eligible_
        titles_kept[same] &= old.eligible_[previous[same]]
        self._trend_and_groups(
            events,
            progress,
            baseline,
            getattr(old, "title_links_", None),
            (new_of_old, previous, titles_kept),
        )
        with progress.stage("mix", total=n) as advance:
            mixer = self._mixer()
            reusable = self._unchanged_lists(old, previous, same, new_of_old, mixer)
            mix_rows = np.flatnonzero(~reusable)
            fresh = mixer.for_articles(
                mix_rows,
                Neighbors(self.neighbors_.indices[mix_rows], self.neighbors_.scores[mix_rows]),
                on_progress=advance,
            )
            copied = np.flatnonzero(reusable)
            source = previous[copied]  # the old article lists come first, in row order
            items = np.full((n, mixer.mix.k), -1, dtype=np.int32)
            items[mix_rows] = fresh.items
            items[copied] = _to_new(old.lists_.items[source], new_of_old)
            parts = []
            for name in ("score", "relevance", "trend", "freshness"):
                values = np.zeros((n, mixer.mix.k), dtype=np.float32)
                values[mix_rows] = getattr(fresh, name)
                values[copied] = getattr(old.lists_, name)[source]
                parts.append(values)
            advance(len(copied))
            article_lists = MixedLists(
                mixer.article_ids.copy(), mixer.site_values.copy(), items, *parts
            )
            self.lists_ = concat_lists([article_lists, mixer.for_pages()])
        self.timings_ = dict(progress.timings)
        return len(mix_rows)

    def _unchanged_lists(
        self,
        old: Recommender,
        previous: np.ndarray,
        same: np.ndarray,
        new_of_old: np.ndarray,
        mixer: Mixer,
        *,
        block: int = 4096,
        margin: float = 1e-5,
    ) -> np.ndarray:
        """Articles whose list is ``old``'s (mask over this model's rows).

        A list is filled greedily from its candidates (neighbours and its
        site's trending pool) in score order, and never looks past the
        candidate that filled its last slot (the *cut*). So a kept article
        (same text, so the same feature row) whose own near-duplicate group
        is unchanged keeps its list when every candidate that differs —
        a neighbour gained or lost or rescored, a pool member gained or
        lost, or a candidate whose trend, freshness, eligibility or group
        changed — scores below the cut (by ``margin``, against rounding)
        both before and after; a list that was not full keeps it only when
        no valid candidate differs.
        """
        n = len(self.articles_)
        kept = np.flatnonzero(same)
        before = previous[kept]
        new_ctx, old_ctx = mixer.ctx, old._mixer().ctx
        # Same group: its smallest kept member is the same before and after (a
        # changed pair relation changes it for one of the two; see _group_floor).
        same_group = np.zeros(n, dtype=bool)
        same_group[kept] = (
            _group_floor(self.groups_, same, np.arange(n))[kept]
            == _group_floor(old.groups_, new_of_old >= 0, new_of_old)[before]
        )
        clean = self._clean_rows(old, previous, same, same_group)
        own_ok = same_group[kept]
        last = old.lists_.items[before, -1]
        cut = np.where(last >= 0, old.lists_.score[before, -1], -np.inf)
        worst = np.full(len(kept), -np.inf)  # the best score among differing candidates

        def note(
            ctx: Any, at: np.ndarray, pages: np.ndarray, candidates: np.ndarray, score: np.ndarray
        ) -> None:
            """Raise ``worst`` by differing candidates (with their neighbour
            scores) of the lists at ``at`` (pages ``pages``)."""
            np.maximum.at(worst, at, ctx.scores(candidates, score, pages)[0])

        # Neighbours gained, lost or rescored, or whose candidate changed: one
        # sort per list of both lists' entries, keyed (candidate as a new row,
        # score, side); an entry equal on both sides sits next to its twin.
        # Old candidates not kept are numbered from n, and never match.
        k_now = self.neighbors_.k
        all_ones = np.uint64(2**64 - 1)
        for start in range(0, len(kept), block):
            at = np.arange(start, min(start + block, len(kept)))
            rows, old_rows = kept[at], before[at]
            was = old.neighbors_.indices[old_rows]
            was_new = _to_new(was, new_of_old)
            field = np.hstack(
                [self.neighbors_.indices[rows], np.where(was_new >= 0, was_new, was + n)]
            )
            value = np.hstack([self.neighbors_.scores[rows], old.neighbors_.scores[old_rows]])
            key = field.astype(np.uint64) << np.uint64(33)
            key |= value.astype(np.float32).view(np.uint32).astype(np.uint64) << np.uint64(1)
            key[:, k_now:] |= np.uint64(1)
            np.putmask(key, np.hstack([field[:, :k_now] < 0, was < 0]), all_ones)
            key.sort(axis=1)
            twin = (key[:, 1:] >> np.uint64(1)) == (key[:, :-1] >> np.uint64(1))
            matched = np.zeros(key.shape, dtype=bool)
            matched[:, 1:] = twin
            matched[:, :-1] |= twin
            field = (key >> np.uint64(33)).astype(np.int64)
            clean_field = np.zeros(key.shape, dtype=bool)
            inside = field < n
            clean_field[inside] = clean[field[inside]]
            differs = (key != all_ones) & ~(matched & clean_field)
            row, column = np.nonzero(differs)
            found = key[row, column]
            candidate = field[row, column]
            score = ((found >> np.uint64(1)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            score = score.view(np.float32)
            now, was_side = (found & np.uint64(1)) == 0, (found & np.uint64(1)) == 1
            note(new_ctx, at[row[now]], rows[row[now]], candidate[now], score[now])
            # As old rows: kept ones through previous, the others numbered from n.
            lost = candidate[was_side]
            lost = np.where(lost < n, previous[np.minimum(lost, n - 1)], lost - n)
            note(old_ctx, at[row[was_side]], old_rows[row[was_side]], lost, score[was_side])

        # Pool members gained, lost, or changed.
        old_pools = old._mixer().pools
        sites = mixer.site_values[kept]
        for site, pool in mixer.pools.items():
            old_pool = old_pools.get(site, np.zeros(0, dtype=np.int64))
            old_pool_new = new_of_old[old_pool]
            gained = pool[~(np.isin(pool, old_pool_new) & clean[pool])]
            stays = (old_pool_new >= 0) & np.isin(old_pool_new, pool)
            stays[stays] &= clean[old_pool_new[stays]]
            lost = old_pool[~stays]
            if not len(gained) and not len(lost):
                continue
            at_site = np.flatnonzero(sites == site)
            for start in range(0, len(at_site), block):
                at = at_site[start : start + block]
                rows, old_rows = kept[at], before[at]
                for X, ctx, members, page_rows in (
                    (self.X_, new_ctx, gained, rows),
                    (old.X_, old_ctx, lost, old_rows),
                ):
                    if len(members):
                        relevance = (X[page_rows] @ X[members].T).toarray()
                        candidates = np.broadcast_to(members, relevance.shape)
                        pages = np.broadcast_to(page_rows[:, None], relevance.shape)
                        values = ctx.scores(candidates, relevance, pages)[0]
                        np.maximum.at(worst, at, values.max(axis=1))

        ok = np.isneginf(worst) | (worst < cut - margin)
        reusable = np.zeros(n, dtype=bool)
        reusable[kept] = own_ok & ok
        return reusable

    def _clean_rows(
        self, old: Recommender, previous: np.ndarray, same: np.ndarray, same_group: np.ndarray
    ) -> np.ndarray:
        """Kept articles whose trend, freshness and eligibility are as in
        ``old``, and whose near-duplicate group is (``same_group``); site and
        category are part of the content compared."""
        kept = np.flatnonzero(same)
        before = previous[kept]
        clean = np.zeros(len(self.articles_), dtype=bool)
        clean[kept] = (
            (self.trend_["trend"].to_numpy()[kept] == old.trend_["trend"].to_numpy()[before])
            & (self.freshness_[kept] == old.freshness_[before])
            & (self.eligible_[kept] == old.eligible_[before])
            & same_group[kept]
        )
        return clean

    def _find_list_changes(
        self, old: Recommender, previous: np.ndarray, same: np.ndarray, new_of_old: np.ndarray
    ) -> None:
        """``changed_lists_`` (per list of ``lists_``: would its payload differ
        from ``old``'s, run id and time aside?) and ``removed_sources_``
        (``old``'s lists with no list now): what a publish of only the
        changes (:meth:`Store.publish_changes`) needs."""
        lists, before = self.lists_, old.lists_
        # Article lists come first, in row order (so an article's old list is at
        # its old row); the page lists follow.
        n, n_old = len(self.articles_), len(old.articles_)
        at = np.full(len(lists), -1, dtype=np.int64)
        at[:n] = previous
        pages = pd.Index(before.source_ids[n_old:]).get_indexer(lists.source_ids[n:])
        at[n:] = np.where(pages >= 0, pages + n_old, -1)
        matched = np.flatnonzero(at >= 0)
        changed = np.ones(len(lists), dtype=bool)
        old_items = before.items[at[matched]]
        # Kept articles map to their new row; others to -2, equal to nothing.
        mapped = _to_new(old_items, new_of_old)
        mapped = np.where((old_items >= 0) & (mapped < 0), -2, mapped)
        equal = (lists.items[matched] == mapped).all(axis=1)
        equal &= lists.source_sites[matched] == before.source_sites[at[matched]]
        for name in ("score", "relevance", "trend", "freshness"):
            equal &= (getattr(lists, name)[matched] == getattr(before, name)[at[matched]]).all(
                axis=1
            )
        # A kept article whose card (title, link, ...) changed changes every list showing it.
        shown = np.unique(lists.items[lists.items >= 0])
        shown = shown[same[shown]]
        card_changed = np.zeros(len(self.articles_), dtype=bool)
        card_changed[shown] = np.array(self._cards(shown), dtype=object) != np.array(
            old._cards(previous[shown]), dtype=object
        )
        items = lists.items[matched]
        equal &= ~((items >= 0) & card_changed[np.maximum(items, 0)]).any(axis=1)
        changed[matched] = ~equal
        self.changed_lists_ = changed
        gone = np.ones(len(before), dtype=bool)
        gone[at[matched]] = False
        self.removed_sources_ = [str(source_id) for source_id in before.source_ids[gone]]

    def _trend_and_groups(
        self,
        events: pd.DataFrame,
        progress: StageTimer,
        baseline: TrendBaseline | None = None,
        old_titles: TitleLinks | None = None,
        title_reuse: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Trend scores and near-duplicate groups (they need no neighbours);
        trends judged against ``baseline`` when given, else against the
        network figures measured now (kept in ``trend_baseline_``). Titles
        are compared with ``old_titles``'s vectorizer when given (else one
        fitted now); with ``title_reuse`` = (old row -> new row, new row ->
        old row, rows whose old pairs still hold), only pairs touching the
        other compared rows are computed and the rest are taken from
        ``old_titles``."""
        config = self.config
        articles = self.articles_
        with progress.stage("trending"):
            self.trend_ = trend_scores(
                events,
                articles,
                self.now_,
                half_life_hours=config.trending.half_life_hours,
                prior_views=config.trending.prior_views,
                prior_impressions=config.trending.prior_impressions,
                freshness=config.trending.freshness,
                baseline=baseline,
            )
            self.trend_baseline_ = self.trend_.attrs.pop("baseline")
        with progress.stage("dedupe"):
            # Only articles that may be shown need comparing: a list never holds
            # two of one group, nor one of the page's own group.
            compare = partial(
                title_links,
                articles["title"].astype(str).tolist(),
                config.mix.dedupe_threshold,
                rows=self.eligible_,
                kernel=config.similarity.kernel,
                n_jobs=config.similarity.n_jobs,
            )
            if old_titles is None or old_titles.vectorizer is None:
                links = compare()
            elif title_reuse is None:
                links = compare(vectorizer=old_titles.vectorizer)
            else:
                new_of_old, old_of_new, keep = title_reuse
                # The kept titles' vectors, in this run's numbering.
                compared = np.flatnonzero(self.eligible_)
                known = None
                if old_titles.rows is not None:
                    reused = keep[compared]
                    found = old_titles.vectors_of(old_of_new[compared[reused]])
                    if found is not None and found[0].all():
                        known = (reused, found[1])
                fresh = compare(
                    vectorizer=old_titles.vectorizer, fresh=self.eligible_ & ~keep, known=known
                )
                links = merge_title_links(old_titles, new_of_old, keep, fresh)
            self.title_links_ = links
            self.groups_ = links.groups(len(articles))

    def _mixer(self) -> Mixer:
        """The run's :class:`Mixer` (built on first use, not saved)."""
        mixer = self.__dict__.get("_mixer_cache")
        if mixer is None:
            mixer = Mixer(
                self.X_,
                self.articles_,
                self.trend_["trend"].to_numpy(),
                self.freshness_,
                self.eligible_,
                self.groups_,
                self.config.mix,
                allowed=self.config.allowed_pairs(),
                sites=list(self.config.sites),
            )
            self.__dict__["_mixer_cache"] = mixer
        return mixer

    def _check_fitted(self) -> None:
        if not hasattr(self, "lists_"):
            raise NotFittedError(
                "this Recommender is not fitted yet: call fit() or Recommender.load() first"
            )

    # -- results -------------------------------------------------------------
    @property
    def version(self) -> str:
        """Model version: the hash of the settings that change lists
        (:meth:`~recommender.config.Config.model_hash`) and the reference time."""
        self._check_fitted()
        return f"{self.config.model_hash()}@{self.now_.strftime('%Y%m%dT%H%M%SZ')}"

    def recommendation_lists(
        self,
        run_id: str,
        generated_at: str | None = None,
        *,
        positions: Iterable[int] | None = None,
        lists: MixedLists | None = None,
    ) -> Iterator[RecommendationList]:
        """Every list (articles, site pages, network) as :class:`RecommendationList`,
        or only those at ``positions`` of :attr:`lists_` (or of ``lists``)."""
        self._check_fitted()
        generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
        lists = self.lists_ if lists is None else lists
        chosen = np.arange(len(lists)) if positions is None else np.fromiter(positions, int)
        # The item fields of just the articles these lists show.
        shown = np.unique(lists.items[chosen][lists.items[chosen] >= 0])
        names = {key: site.display_name for key, site in self.config.sites.items()}
        field = {
            name: dict(zip(shown.tolist(), values, strict=True))
            for name, values in self._item_fields(shown).items()
        }
        site_names = {r: names.get(str(site), str(site)) for r, site in field["site"].items()}
        min_relevance = self.config.mix.min_relevance
        for i in chosen.tolist():
            rows = lists.items[i].tolist()
            n_items = sum(r >= 0 for r in rows)
            score, relevance, trend, freshness = (
                _rounded(getattr(lists, part)[i])
                for part in ("score", "relevance", "trend", "freshness")
            )
            items = tuple(
                Item(
                    article_id=field["article_id"][r],
                    site=field["site"][r],
                    site_name=site_names[r],
                    category=field["category"][r] or "",
                    title=field["title"][r],
                    url=field["url"][r],
                    image_url=field["image_url"][r],
                    score=float(score[j]),
                    relevance=float(relevance[j]),
                    trend=float(trend[j]),
                    freshness=float(freshness[j]),
                    reason="related" if lists.relevance[i, j] >= min_relevance else "trending",
                )
                for j, r in enumerate(rows[:n_items])
            )
            yield RecommendationList(
                str(lists.source_ids[i]), lists.source_sites[i], items, run_id, generated_at
            )

    def list_payloads(
        self,
        run_id: str,
        generated_at: str | None = None,
        *,
        rows: np.ndarray | None = None,
        chunk: int = 100_000,
    ) -> Iterator[SerializedList]:
        """The lists of :meth:`recommendation_lists`, already as JSON, built in
        bulk: the card (id, site, names, title, links) of each article that
        appears in a list is encoded once, and the items of ``chunk`` lists at a
        time are put together by Arrow's string kernels. This is what the batch
        publishes; it decodes to the same :class:`RecommendationList`.
        ``rows``: only these lists (indices or a mask over ``lists_``, e.g.
        ``changed_lists_`` after :meth:`update`), in that order."""

        self._check_fitted()
        generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
        lists = self.lists_
        order = np.arange(len(lists)) if rows is None else np.asarray(rows)
        if order.dtype == bool:
            order = np.flatnonzero(order)
        chosen = lists.items[order]
        shown = np.unique(chosen[chosen >= 0])
        cards = pa.array(self._cards(shown), type=pa.string())
        card_at = np.full(len(self.articles_), -1, dtype=np.int64)
        card_at[shown] = np.arange(len(shown))
        dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
        tail = "]," + dumps({"run_id": run_id, "generated_at": generated_at, "fallback": False})[1:]
        min_relevance = self.config.mix.min_relevance
        for start in range(0, len(order), chunk):
            at = order[start : start + chunk]
            items_at = lists.items[at]
            valid = items_at >= 0
            offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
            numbers = [
                _json_numbers(_rounded(getattr(lists, part)[at])[valid])
                for part in ("score", "relevance", "trend", "freshness")
            ]
            reasons = np.where(
                lists.relevance[at][valid] >= min_relevance,
                ',"reason":"related"}',
                ',"reason":"trending"}',
            )
            items = pc.binary_join_element_wise(
                cards.take(pa.array(card_at[items_at[valid]])),
                ',"score":',
                numbers[0],
                ',"relevance":',
                numbers[1],
                ',"trend":',
                numbers[2],
                ',"freshness":',
                numbers[3],
                pa.array(reasons, type=pa.string()),
                "",
            )
            if isinstance(items, pa.ChunkedArray):
                items = items.combine_chunks()
            joined = pc.binary_join(
                pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), items), ","
            )
            source_ids = [str(source_id) for source_id in lists.source_ids[at]]
            heads = [
                f'{{"source_id":{encode_string(source_id)},"site":'
                f'{"null" if site is None else encode_string(site)},"items":['
                for source_id, site in zip(source_ids, lists.source_sites[at], strict=True)
            ]
            payloads = pc.binary_join_element_wise(
                pa.array(heads, type=pa.string()), joined, tail, ""
            )
            for source_id, payload in zip(source_ids, payloads.to_pylist(), strict=True):
                yield SerializedList(source_id, payload)

    def _item_fields(self, rows: np.ndarray) -> dict[str, list[Any]]:
        """The fields an item shows (id, site, category, title, url, image)
        of the articles at ``rows``, as Python values (None when missing).

        Read from contiguous Arrow arrays of those columns, built once per
        model: taking a few rows from a frame's chunked string columns costs
        time in proportion to the whole column (~5 ms per column at a
        million articles), which a request for one list cannot afford."""

        columns = self.__dict__.get("_item_columns")
        if columns is None:
            columns = {}
            for name in ("article_id", "site", "category", "title", "url", "image_url"):
                columns[name] = as_arrow(self.articles_[name]).combine_chunks()  # NA -> null
            self.__dict__["_item_columns"] = columns
        at = pa.array(np.asarray(rows, dtype=np.int64))
        return {name: column.take(at).to_pylist() for name, column in columns.items()}

    def _cards(self, rows: np.ndarray) -> list[str]:
        """Each article's item fields as JSON, left open for the item's numbers."""
        names = {key: site.display_name for key, site in self.config.sites.items()}
        dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
        columns = list(self._item_fields(rows).values())
        return [
            dumps(
                {
                    "article_id": article_id,
                    "site": site,
                    "site_name": names.get(site, site),
                    "category": category or "",
                    "title": title,
                    "url": url,
                    "image_url": image_url,
                }
            )[:-1]
            for article_id, site, category, title, url, image_url in zip(*columns, strict=True)
        ]

    def recommend_unseen(
        self, article: Mapping[str, Any], k: int | None = None
    ) -> RecommendationList:
        """The list for an article this run has not seen (published after it).

        Its text is transformed with the fitted vectorizer (no refit), compared
        with the run's candidates from the sites its site may recommend, and
        mixed like any page (with this run's trending). ``article`` needs
        ``article_id``, ``site`` (a registry key), ``title``; ``body`` and
        ``category`` are optional. Its near-duplicates are not known, so the
        list may hold a copy of it; nothing else differs from a batch list.
        """
        self._check_fitted()
        site = str(article.get("site", ""))
        if site not in self.config.sites:
            raise ValueError(f"unknown site {site!r}; known: {sorted(self.config.sites)}")
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
        frame["category_key"] = category_keys(frame, self.config)
        vector = self.vectorizer_.transform(frame)
        columns, candidates_t = self._cold_start_candidates(site)
        scores = np.asarray((vector @ candidates_t).toarray(), dtype=np.float32)
        found, values = top_k_per_row(
            scores, self.config.similarity.k, min_score=self.config.similarity.min_similarity
        )
        indices = np.where(found >= 0, columns[np.maximum(found, 0)], -1).astype(np.int32)
        lists = self._mixer().for_vector(
            vector, site, str(article["article_id"]), indices[0], values[0]
        )
        result = next(self.recommendation_lists(self.version, lists=lists))
        return result.top(k) if k is not None else result

    def prepare_cold_start(self) -> None:
        """Build what :meth:`recommend_unseen` compares a new article with, for
        every site, now rather than on each site's first request (a transposed
        copy of the candidates' features per site: a fraction of a second at
        a million articles). Call it once after loading, e.g. when a web
        worker starts."""
        self._check_fitted()
        for site in self.config.sites:
            self._cold_start_candidates(site)

    def _cold_start_candidates(self, site: str) -> tuple[np.ndarray, sp.csr_matrix]:
        """Rows a page of ``site`` may show, and their transposed features (cached)."""
        cache = self.__dict__.setdefault("_cold_start_cache", {})
        if site not in cache:
            targets = self.config.allowed_pairs()[site]
            rows = np.flatnonzero(self.eligible_ & self.articles_["site"].isin(targets).to_numpy())
            cache[site] = (rows, self.X_[rows].T.tocsr())
        return cache[site]

    def recommend(self, source_id: str, k: int | None = None) -> RecommendationList:
        """The list of one article id (or ``site:<key>``, ``network``)."""
        self._check_fitted()
        positions = np.flatnonzero(self.lists_.source_ids == source_id)
        if len(positions) == 0:
            raise KeyError(f"unknown article id {source_id!r}")
        result = next(self.recommendation_lists(self.version, positions=positions[:1]))
        return result.top(k) if k is not None else result

    def coverage(self) -> dict[str, float]:
        """Share of articles with a full list, and of eligible articles shown anywhere."""
        self._check_fitted()
        article_lists = (
            pd.Index(self.articles_["article_id"]).get_indexer(self.lists_.source_ids) >= 0
        )
        lengths = self.lists_.lengths()[article_lists]
        shown = np.unique(self.lists_.items[self.lists_.items >= 0])
        n_eligible = int(self.eligible_.sum())
        return {
            "full_lists": float((lengths >= self.config.mix.k).mean()) if len(lengths) else 0.0,
            "empty_lists": float((lengths == 0).mean()) if len(lengths) else 0.0,
            "catalogue": len(shown) / n_eligible if n_eligible else 0.0,
            "related_items": float(
                (
                    self.lists_.relevance[article_lists][self.lists_.items[article_lists] >= 0]
                    >= self.config.mix.min_relevance
                ).mean()
            )
            if len(lengths)
            else 0.0,
        }

    # -- persistence ---------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one versioned artifact file, atomically
        (see :mod:`recommender.artifact`: arrays and JSON, no pickle)."""
        pending = self.save_pending(path)
        try:
            return pending.commit()
        except BaseException:
            pending.discard()
            raise

    def save_pending(self, path: str | Path) -> PendingArtifact:
        """:meth:`save`, up to the rename: the file is written beside
        ``path`` under a temporary name and fsynced, and
        :meth:`~recommender.artifact.PendingArtifact.commit` puts it in
        place. The batch writes it before it publishes and renames it
        after, so that a full disk fails the run before anything is served."""
        self._check_fitted()
        state, arrays = encode_model(self)
        metadata = {
            "kind": ARTIFACT_KIND,
            "config_hash": self.config.config_hash(),
            "model_hash": self.config.model_hash(),
            "model_version": self.version,
            "now": self.now_.isoformat(),
            "n_articles": len(self.articles_),
            "published_run_id": self.published_run_id_,
        }
        return write_pending(state, path, metadata, arrays)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; :class:`ArtifactError` if it is
        damaged, truncated, not a model or from another version. Only the
        fields a model has are read, each into its own class: the file names
        no type, and nothing in it is unpickled."""
        with open_artifact(path) as reader:
            if reader.metadata.get("kind") != ARTIFACT_KIND:
                raise ArtifactError(f"{path}: not a Recommender model artifact")
            try:
                return decode_model(cls, reader)
            except ArtifactError:
                raise
            except Exception as error:  # whatever else a crafted file may provoke
                raise reader.error(f"{type(error).__name__}: {error}") from None


#: What an article's feature row and lists depend on, besides its id.
CONTENT_COLUMNS = ("site", "title", "body", "category_key")


def _same_content(before: pd.DataFrame, previous: np.ndarray, after: pd.DataFrame) -> np.ndarray:
    """Per article of ``after``: was it in ``before`` (at row ``previous``,
    -1 if not) with the same site, title, body and category key?

    Compared as Arrow arrays (no Python object per value). Where rows kept
    their place (the leading rows with ``previous[i] == i``: articles are
    usually appended) the two columns are compared in place, without a copy.
    """

    same = previous >= 0
    moved = previous != np.arange(len(previous))
    in_place = int(np.argmax(moved)) if moved.any() else len(previous)
    in_place = min(in_place, len(before))
    rest = np.flatnonzero(same[in_place:]) + in_place
    for column in CONTENT_COLUMNS:
        old, new = as_arrow(before[column]), as_arrow(after[column])
        pairs = [(old.slice(0, in_place), new.slice(0, in_place))]
        if len(rest):
            pairs.append((old.take(pa.array(previous[rest])), new.take(pa.array(rest))))
        equal = []
        for a, b in pairs:
            if a.type != b.type:
                b = b.cast(a.type)
            both_missing = pc.and_(pc.is_null(a), pc.is_null(b))
            equal.append(pc.or_(pc.fill_null(pc.equal(a, b), False), both_missing))
        equal_values = np.concatenate(
            [e.to_numpy(zero_copy_only=False).astype(bool) for e in equal]
        )
        same[:in_place] &= equal_values[:in_place]
        same[rest] &= equal_values[in_place:]
    return same


def _to_new(old_rows: np.ndarray, new_of_old: np.ndarray) -> np.ndarray:
    """Old row indices (-1 pads) as new ones: -1 for pads and for articles
    not kept unchanged."""
    return np.where(old_rows >= 0, new_of_old[np.maximum(old_rows, 0)], -1)


def _group_floor(groups: np.ndarray, members: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the smallest ``labels`` value among the ``members`` rows of
    its group (a large sentinel when it has none).

    With ``labels`` the rows' positions in one common order, two rows share
    a group exactly when they share a floor; so if two kept rows were
    grouped before and not now (or the reverse), the floor of at least one
    of them changed: comparing floors finds every changed relation."""
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    floor = np.full(int(codes.max()) + 1 if len(codes) else 0, np.iinfo(np.int64).max)
    np.minimum.at(floor, codes[members], np.asarray(labels, dtype=np.int64)[members])
    return floor[codes]


def _assemble_rows(
    old: sp.csr_matrix,
    previous: np.ndarray,
    same: np.ndarray,
    transform: Callable[[np.ndarray], sp.csr_matrix],
) -> sp.csr_matrix:
    """Feature rows in the new order: old rows where ``same``, else transformed.

    Built in one pass: each run of rows taken from consecutive old rows (or
    from consecutive transformed rows) is one slice copied.
    """
    n = len(same)
    fresh_rows = np.flatnonzero(~same)
    fresh = sp.csr_matrix(transform(fresh_rows)) if len(fresh_rows) else None
    lengths = np.zeros(n, dtype=np.int64)
    lengths[same] = np.diff(old.indptr)[previous[same]]
    if fresh is not None:
        lengths[fresh_rows] = np.diff(fresh.indptr)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    data = np.empty(indptr[-1], dtype=old.dtype)
    indices = np.empty(indptr[-1], dtype=dtype)
    # Source row of each new row: an old row, or (past them) a transformed one.
    source = np.where(same, previous, -1).astype(np.int64)
    source[fresh_rows] = np.arange(len(fresh_rows)) + old.shape[0]
    cut = np.flatnonzero((np.diff(source) != 1) | (same[1:] != same[:-1])) + 1
    starts, ends = np.concatenate([[0], cut]), np.concatenate([cut, [n]])
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True) if n else ():
        if same[start]:
            matrix, first = old, source[start]
        else:
            assert fresh is not None
            matrix, first = fresh, source[start] - old.shape[0]
        begin, stop = matrix.indptr[first], matrix.indptr[first + end - start]
        data[indptr[start] : indptr[end]] = matrix.data[begin:stop]
        indices[indptr[start] : indptr[end]] = matrix.indices[begin:stop]
    shape = (n, old.shape[1])
    return sp.csr_matrix((data, indices, indptr.astype(dtype)), shape=shape, copy=False)


def _json_numbers(values: np.ndarray) -> Any:
    """float64 values as Arrow strings that JSON reads back as the same floats
    (Arrow's shortest round-trip form; integral values get ``.0`` so that they
    stay floats)."""

    text = pc.cast(pa.array(values, type=pa.float64()), pa.string())
    return pc.replace_substring_regex(text, pattern=r"^(-?[0-9]+)$", replacement=r"\1.0")


def _rounded(values: np.ndarray) -> np.ndarray:
    """Score parts as published: float64, 6 decimals (one rule for both list forms)."""
    return np.round(values.astype(np.float64), 6)


__all__ = ["ArticleScorer", "Recommender", "category_keys", "reference_time"]
