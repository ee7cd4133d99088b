"""The stages of a fitted model, in their one direction: features ->
similarity -> trending -> mix, each keeping what it produced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Self

import numpy as np
import pandas as pd

from recommender.autotune import tune_trending
from recommender.config import Config, MixConfig
from recommender.editorial import EditorialRules, load_rules
from recommender.errors import InputError, NotFittedError
from recommender.features import vectorizer_from_config
from recommender.lists import variant_page_id
from recommender.mix import MixedLists, Mixer, concat_lists, eligible_articles, freshness_scores
from recommender.page_rules import PinTable, blocked_everywhere
from recommender.progress import StageTimer
from recommender.similarity import (
    Neighbors,
    TitleLinks,
    cross_site_neighbors,
    merge_title_links,
    title_links,
)
from recommender.trending import TrendBaseline, trend_scores

#: What :meth:`Recommender.fit_partitioned` calls to compute every article's
#: neighbours and list: ``(model, mixer, progress) -> (neighbors, lists)``.
ArticleScorer = Callable[["Stages", Mixer, StageTimer], tuple[Neighbors, MixedLists]]


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


class Stages:
    """The stages of a fitted model and what each produced.

    :class:`~recommender.model.Recommender` is a :class:`Stages` with the
    ways to hand out lists and to save and load itself; the incremental
    update, the list payloads and cold start are functions over one.
    """

    #: The store run this model's lists were published as (set by the batch
    #: before saving): an update builds on it only while it is still served.
    published_run_id_: str | None = None

    #: The editors' pins and blocks this model's lists obey (set with the
    #: articles, from ``[editorial] rules``; none in a model saved before them).
    editorial_: EditorialRules = EditorialRules()

    #: After an update (see :func:`recommender.model.update.update_model`):
    #: per list, whether its published form changed, and the lists gone.
    changed_lists_: np.ndarray
    removed_sources_: list[str]

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- fitting -------------------------------------------------------------
    def fit(
        self,
        articles: pd.DataFrame,
        events: pd.DataFrame,
        now: datetime | pd.Timestamp | None = None,
        progress: StageTimer | None = None,
    ) -> Self:
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
    ) -> Self:
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
            self.lists_ = concat_lists([article_lists, *self._page_lists(mixer)])
        self.timings_ = dict(progress.timings)
        return self

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
            self.vectorizer_ = vectorizer_from_config(self.config.features, sites=self.config.sites)
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
        rules = load_rules(self.config.editorial.rules)
        rules.check_sites(self.config.sites)
        #: The editors' rules active at this run's time (kept with the model).
        self.editorial_ = replace(rules.active_at(self.now_.to_pydatetime()), path=None)
        articles = articles.reset_index(drop=True)
        articles = articles.assign(category_key=category_keys(articles, self.config))
        self.articles_ = articles
        return articles

    def _eligibility(self) -> None:
        mix = self.config.mix
        self.eligible_ = eligible_articles(self.articles_, self.now_, mix.max_age_days)
        # A block for every site removes the article from every list.
        self.eligible_ &= ~blocked_everywhere(self.editorial_, self.articles_)
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

    def _score(
        self,
        events: pd.DataFrame,
        progress: StageTimer,
        baseline: TrendBaseline | None = None,
        old_titles: TitleLinks | None = None,
    ) -> Self:
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
                    *self._page_lists(mixer),
                ]
            )
        self.timings_ = dict(progress.timings)
        return self

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
            if "trending_" not in self.__dict__:
                # A refit tunes the trending settings on the network's log (an
                # update has its refit's, see update_model).
                self.trending_, self.tuning_ = tune_trending(
                    config.trending, events, articles, self.now_
                )
            trending = self.trending_
            self.trend_ = trend_scores(
                events,
                articles,
                self.now_,
                half_life_hours=trending.half_life_hours,
                prior_views=trending.prior_views,
                prior_impressions=trending.prior_impressions,
                freshness=trending.freshness,
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
            mixer = self._new_mixer(self.config.mix)
            self.__dict__["_mixer_cache"] = mixer
        return mixer

    def _new_mixer(self, mix: MixConfig) -> Mixer:
        """A :class:`Mixer` of this run's arrays with the ``[mix]`` settings ``mix``."""
        return Mixer(
            self.X_,
            self.articles_,
            self.trend_["trend"].to_numpy(),
            self.freshness_,
            self.eligible_,
            self.groups_,
            mix,
            allowed=self.config.allowed_pairs(),
            sites=self.config.sites,
            rules=self.editorial_,
        )

    def _page_lists(self, mixer: Mixer) -> list[MixedLists]:
        """The lists after the articles' own: the site, network and section
        pages, then (with ``[mix] related_lists``) every article's
        related-only list, then every article's list in each experiment
        variant with settings of its own (``[experiments.<name>.mix.<variant>]``),
        always mixed in full."""
        pages = [mixer.for_pages()]
        rows = np.arange(len(self.articles_))
        if self.config.mix.related_lists:
            pages.append(mixer.for_related(rows, self.neighbors_))
        for name, experiment in sorted(self.config.experiments.items()):
            for variant in experiment.mix:
                other = self._new_mixer(experiment.variant_mix(self.config.mix, variant))
                ids = [variant_page_id(name, variant, str(a)) for a in mixer.article_ids]
                pages.append(
                    other.for_articles(rows, self.neighbors_, page_ids=np.array(ids, dtype=object))
                )
        return pages

    def editorial_report(self) -> list[str]:
        """What editors should know of this run's pins (see
        :meth:`~recommender.page_rules.PinTable.report`): pins never shown,
        pins that alone exceed a cap."""
        self._check_fitted()
        mixer = self._mixer()
        mix = self.config.mix
        return mixer.pins.report(
            mixer.site_values, mixer.ctx.bucket_codes, mix.max_per_site, mix.max_per_category
        )

    def _pin_table(self) -> PinTable:
        """The run's pins by page (the mixer's when built; cached, not saved)."""
        mixer = self.__dict__.get("_mixer_cache")
        if mixer is not None:
            return mixer.pins
        table = self.__dict__.get("_pin_table_cache")
        if table is None:
            ids = self.articles_["article_id"].astype(str).to_numpy().astype(object)
            table = self.__dict__["_pin_table_cache"] = PinTable(self.editorial_, ids)
        return table

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


__all__ = ["ArticleScorer", "Stages", "category_keys", "reference_time"]
