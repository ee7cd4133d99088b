"""The fitted engine: features, neighbours, trend and the mixed lists.

:class:`Recommender` runs the stages in their one direction (features ->
similarity -> trending -> mix) over plain data and keeps what each produced,
so that analysts can look at every step and the batch can publish the lists.
It saves to and loads from one versioned artifact file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from json.encoder import encode_basestring as encode_string
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.artifact import load_artifact, save_artifact
from recommender.config import Config
from recommender.errors import ArtifactError, InputError
from recommender.features import vectorizer_from_config
from recommender.lists import Item, RecommendationList, SerializedList
from recommender.mix import (
    MixedLists,
    Mixer,
    MixParams,
    concat_lists,
    eligible_articles,
    freshness_scores,
)
from recommender.progress import StageTimer
from recommender.similarity import (
    Neighbors,
    cross_site_neighbors,
    near_duplicate_groups,
    top_k_per_row,
)
from recommender.trending import trend_scores

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
            self.neighbors_ = self._neighbors(candidates=self.eligible_, on_progress=advance)
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
        self.neighbors_ = neighbors
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
        this one's vocabulary (no refit), recomputing only what changed.

        Unchanged articles keep their feature rows; new and changed ones are
        transformed with the fitted vectorizer. Neighbour lists are recomputed
        in full only for new and changed articles and for articles that lost a
        neighbour (removed, changed, or out of the freshness window); every
        other list merges its previous neighbours with the newly eligible
        candidates, which gives exactly the lists of a full computation on the
        same vocabulary. ``incremental=False`` does that full computation (the
        reference). Trending, near-duplicates and the mix are recomputed:
        they move with time. ``update_stats_`` tells what was recomputed.
        """
        self._check_fitted()
        progress = progress or StageTimer()
        model = Recommender(self.config)
        articles = model._prepare(articles, now)
        model.vectorizer_ = self.vectorizer_
        model.vocabulary_fitted_at_ = self.vocabulary_fitted_at_
        n = len(articles)
        with progress.stage("features", total=n):
            hashes = _content_hashes(articles)
            previous = pd.Index(self.articles_["article_id"]).get_indexer(articles["article_id"])
            same = previous >= 0
            same[same] = self.content_hashes_[previous[same]] == hashes[same]
            model.X_ = _assemble_rows(
                self.X_,
                previous,
                same,
                lambda rows: model.vectorizer_.transform(articles.iloc[rows]),
            )
        model._eligibility()
        with progress.stage("similarity", total=n) as advance:
            # Ties rank by row: merging is exact when kept articles keep their order.
            ordered = bool(np.all(np.diff(previous[same]) > 0))
            if incremental and ordered and self.config == model.config:
                model.neighbors_, recomputed = model._merge_neighbors(self, previous, same, advance)
            else:
                model.neighbors_ = model._neighbors(candidates=model.eligible_, on_progress=advance)
                recomputed = n
        model.update_stats_ = {
            "incremental": bool(incremental and ordered),
            "articles": n,
            "new": int((previous < 0).sum()),
            "changed": int(((previous >= 0) & ~same).sum()),
            "removed": len(self.articles_) - int((previous >= 0).sum()),
            "rows_recomputed": int(recomputed),
        }
        return model._score(events, progress)

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
            self.vectorizer_ = vectorizer_from_config(
                self.config.features, n_articles=len(articles)
            )
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
        self.content_hashes_ = _content_hashes(articles)
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
        on_progress: Callable[[int], None] | None = None,
    ) -> Neighbors:
        similarity = self.config.similarity
        return cross_site_neighbors(
            self.X_,
            self.articles_["site"].to_numpy(),
            similarity.k,
            allowed=self.config.allowed_pairs(),
            candidates=candidates,
            rows=rows,
            min_similarity=similarity.min_similarity,
            max_block_mb=similarity.max_block_mb,
            kernel=similarity.kernel,
            n_jobs=similarity.n_jobs,
            on_progress=on_progress,
        )

    def _merge_neighbors(
        self,
        old: Recommender,
        previous: np.ndarray,
        same: np.ndarray,
        advance: Callable[[int], None],
    ) -> tuple[Neighbors, int]:
        """Neighbours equal to a full computation, recomputing only what changed."""
        n = len(self.articles_)
        k = self.config.similarity.k
        # Old row -> new row for articles kept unchanged; -1 otherwise.
        new_of_old = np.full(len(old.articles_), -1, dtype=np.int64)
        new_of_old[previous[same]] = np.flatnonzero(same)
        old_eligible = np.zeros(n, dtype=bool)
        old_eligible[same] = old.eligible_[previous[same]]
        arrivals = self.eligible_ & ~old_eligible

        kept = np.flatnonzero(same)
        old_indices = old.neighbors_.indices[previous[kept]]
        mapped = np.where(old_indices >= 0, new_of_old[np.maximum(old_indices, 0)], -1)
        # A neighbour gone (removed, changed) or no longer a candidate: recompute that list.
        lost = (old_indices >= 0) & ((mapped < 0) | ~self.eligible_[np.maximum(mapped, 0)])
        full_rows = np.concatenate([np.flatnonzero(~same), kept[lost.any(axis=1)]])
        merge_at = ~lost.any(axis=1)
        merge_rows = kept[merge_at]

        indices = np.full((n, k), -1, dtype=np.int32)
        scores = np.zeros((n, k), dtype=np.float32)
        if len(full_rows):
            full = self._neighbors(candidates=self.eligible_, rows=full_rows)
            indices[full_rows], scores[full_rows] = full.indices, full.scores
        if len(merge_rows):
            fresh = (
                self._neighbors(candidates=arrivals, rows=merge_rows)
                if arrivals.any()
                else Neighbors(
                    np.full((len(merge_rows), k), -1, dtype=np.int32),
                    np.zeros((len(merge_rows), k), dtype=np.float32),
                )
            )
            both_idx = np.hstack([mapped[merge_at], fresh.indices])
            both_val = np.hstack([old.neighbors_.scores[previous[merge_rows]], fresh.scores])
            both_val = np.where(both_idx >= 0, both_val, -np.inf)
            order = np.lexsort((np.where(both_idx >= 0, both_idx, n), -both_val), axis=1)[:, :k]
            indices[merge_rows] = np.take_along_axis(both_idx, order, axis=1)
            chosen = np.take_along_axis(both_val, order, axis=1)
            scores[merge_rows] = np.where(np.isfinite(chosen), chosen, 0)
        advance(n)
        return Neighbors(indices, scores), len(full_rows)

    def _score(self, events: pd.DataFrame, progress: StageTimer) -> Recommender:
        """Trending, near-duplicates and the mix, from features and neighbours."""
        self._trend_and_groups(events, progress)
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

    def _trend_and_groups(self, events: pd.DataFrame, progress: StageTimer) -> None:
        """Trend scores and near-duplicate groups (they need no neighbours)."""
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
            )
        with progress.stage("dedupe"):
            # Only articles that may be shown need comparing: a list never holds
            # two of one group, nor one of the page's own group.
            self.groups_ = near_duplicate_groups(
                articles["title"].astype(str).tolist(),
                config.mix.dedupe_threshold,
                rows=self.eligible_,
                kernel=config.similarity.kernel,
                n_jobs=config.similarity.n_jobs,
            )

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
                self.mix_params(),
                allowed=self.config.allowed_pairs(),
                sites=list(self.config.sites),
            )
            self.__dict__["_mixer_cache"] = mixer
        return mixer

    def mix_params(self) -> MixParams:
        m = self.config.mix
        return MixParams(
            k=m.k,
            w_relevance=m.weights.relevance,
            w_trend=m.weights.trend,
            w_freshness=m.weights.freshness,
            max_per_site=m.max_per_site,
            max_per_category=m.max_per_category,
            min_relevance=m.min_relevance,
            trending_pool=m.trending_pool,
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "lists_"):
            raise RuntimeError("this Recommender is not fitted yet: call fit() first")

    # -- results -------------------------------------------------------------
    @property
    def version(self) -> str:
        """Model version: config hash and reference time."""
        self._check_fitted()
        return f"{self.config.config_hash()}@{self.now_.strftime('%Y%m%dT%H%M%SZ')}"

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
        a = self.articles_.iloc[shown]
        names = {key: site.display_name for key, site in self.config.sites.items()}
        field = {
            name: dict(
                zip(
                    shown.tolist(), a[name].astype(object).where(a[name].notna(), None), strict=True
                )
            )
            for name in ("article_id", "site", "category", "title", "url", "image_url")
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
        self, run_id: str, generated_at: str | None = None, *, chunk: int = 100_000
    ) -> Iterator[SerializedList]:
        """The lists of :meth:`recommendation_lists`, already as JSON, built in
        bulk: the card (id, site, names, title, links) of each article that
        appears in a list is encoded once, and the items of ``chunk`` lists at a
        time are put together by Arrow's string kernels. This is what the batch
        publishes; it decodes to the same :class:`RecommendationList`."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._check_fitted()
        generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
        lists = self.lists_
        shown = np.unique(lists.items[lists.items >= 0])
        cards = pa.array(self._cards(shown), type=pa.string())
        card_at = np.full(len(self.articles_), -1, dtype=np.int64)
        card_at[shown] = np.arange(len(shown))
        dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
        tail = "]," + dumps({"run_id": run_id, "generated_at": generated_at, "fallback": False})[1:]
        min_relevance = self.config.mix.min_relevance
        for start in range(0, len(lists), chunk):
            stop = min(start + chunk, len(lists))
            rows = lists.items[start:stop]
            valid = rows >= 0
            offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
            numbers = [
                _json_numbers(_rounded(getattr(lists, part)[start:stop])[valid])
                for part in ("score", "relevance", "trend", "freshness")
            ]
            reasons = np.where(
                lists.relevance[start:stop][valid] >= min_relevance,
                ',"reason":"related"}',
                ',"reason":"trending"}',
            )
            items = pc.binary_join_element_wise(
                cards.take(pa.array(card_at[rows[valid]])),
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
            source_ids = [str(source_id) for source_id in lists.source_ids[start:stop]]
            heads = [
                f'{{"source_id":{encode_string(source_id)},"site":'
                f'{"null" if site is None else encode_string(site)},"items":['
                for source_id, site in zip(source_ids, lists.source_sites[start:stop], strict=True)
            ]
            payloads = pc.binary_join_element_wise(
                pa.array(heads, type=pa.string()), joined, tail, ""
            )
            for source_id, payload in zip(source_ids, payloads.to_pylist(), strict=True):
                yield SerializedList(source_id, payload)

    def _cards(self, rows: np.ndarray) -> list[str]:
        """Each article's item fields as JSON, left open for the item's numbers."""
        a = self.articles_.iloc[rows]
        names = {key: site.display_name for key, site in self.config.sites.items()}
        dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
        columns = [
            a[name].astype(object).where(a[name].notna(), None).tolist()
            for name in ("article_id", "site", "category", "title", "url", "image_url")
        ]
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
        """Write the fitted model to one versioned artifact file."""
        self._check_fitted()
        state = {k: v for k, v in self.__dict__.items() if k.endswith("_") or k == "config"}
        state["config"] = self.config.model_dump(mode="json")
        metadata = {
            "kind": ARTIFACT_KIND,
            "config_hash": self.config.config_hash(),
            "model_version": self.version,
            "now": self.now_.isoformat(),
            "n_articles": len(self.articles_),
        }
        return save_artifact(state, path, metadata)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; :class:`ArtifactError` if it is
        damaged, truncated, not a model or from another version."""
        state, header = load_artifact(path)
        if header.get("metadata", {}).get("kind") != ARTIFACT_KIND or not isinstance(state, dict):
            raise ArtifactError(f"{path}: not a Recommender model artifact")
        config = Config.model_validate(state.pop("config"))
        model = cls(config)
        model.__dict__.update(state)
        return model


def _content_hashes(articles: pd.DataFrame) -> np.ndarray:
    """Per article, a hash of what its feature row and lists depend on
    (site, title, body, category key)."""
    text = (
        articles["site"].astype(str)
        + "\x1f"
        + articles["title"].astype(str)
        + "\x1f"
        + articles["body"].fillna("").astype(str)
        + "\x1f"
        + articles["category_key"].fillna("").astype(str)
    )
    return np.array(
        [hashlib.blake2b(t.encode(), digest_size=16).hexdigest() for t in text], dtype=object
    )


def _assemble_rows(
    old: sp.csr_matrix,
    previous: np.ndarray,
    same: np.ndarray,
    transform: Callable[[np.ndarray], sp.csr_matrix],
) -> sp.csr_matrix:
    """Feature rows in the new order: old rows where ``same``, else transformed."""
    fresh_rows = np.flatnonzero(~same)
    parts = [old[previous[same]]]
    if len(fresh_rows):
        parts.append(sp.csr_matrix(transform(fresh_rows)))
    stacked = sp.vstack(parts, format="csr")
    position = np.concatenate([np.flatnonzero(same), fresh_rows])
    matrix = stacked[np.argsort(position)]
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    return matrix


def _json_numbers(values: np.ndarray) -> Any:
    """float64 values as Arrow strings that JSON reads back as the same floats
    (Arrow's shortest round-trip form; integral values get ``.0`` so that they
    stay floats)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values, type=pa.float64()), pa.string())
    return pc.replace_substring_regex(text, pattern=r"^(-?[0-9]+)$", replacement=r"\1.0")


def _rounded(values: np.ndarray) -> np.ndarray:
    """Score parts as published: float64, 6 decimals (one rule for both list forms)."""
    return np.round(values.astype(np.float64), 6)


__all__ = ["ArticleScorer", "Recommender", "category_keys", "reference_time"]
