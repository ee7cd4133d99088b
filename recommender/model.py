"""The fitted engine: features, neighbours, trend and the mixed lists.

:class:`Recommender` runs the stages in their one direction (features ->
similarity -> trending -> mix) over plain data and keeps what each produced,
so that analysts can look at every step and the batch can publish the lists.
It saves to and loads from one versioned artifact file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from json.encoder import encode_basestring as encode_string
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.artifact import load_artifact, save_artifact
from recommender.config import Config
from recommender.errors import ArtifactError, InputError
from recommender.features import ArticleVectorizer
from recommender.lists import Item, RecommendationList, SerializedList
from recommender.mix import (
    MixParams,
    eligible_articles,
    freshness_scores,
    mix_lists,
)
from recommender.progress import StageTimer
from recommender.similarity import cross_site_neighbors, near_duplicate_groups
from recommender.trending import trend_scores

ARTIFACT_KIND = "recommender.model.Recommender"


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
        config = self.config
        progress = progress or StageTimer()
        if len(articles) == 0:
            raise InputError("no valid articles to recommend from")
        self.now_ = reference_time(config, now)
        articles = articles.reset_index(drop=True)
        articles = articles.assign(category_key=category_keys(articles, config))
        self.articles_ = articles
        n = len(articles)

        with progress.stage("features", total=n):
            f = config.features
            self.vectorizer_ = ArticleVectorizer(
                title_weight=f.title_weight,
                body_weight=f.body_weight,
                category_weight=f.category_weight,
                category_column="category_key",
                analyzer=f.analyzer,
                ngram_range=(f.ngram_range[0], f.ngram_range[1]),
                min_df=f.min_df,
                max_df=f.max_df if n > 1 else 1.0,
                max_features=f.max_features,
                stop_words=f.stop_words,
                sublinear_tf=f.sublinear_tf,
            )
            try:
                self.X_ = self.vectorizer_.fit_transform(articles)
            except ValueError as error:  # e.g. every word is a stop word
                raise InputError(f"cannot build text features: {error}") from None

        mix = config.mix
        self.eligible_ = eligible_articles(articles, self.now_, mix.max_age_days)
        self.freshness_ = freshness_scores(
            articles["published_at"], self.now_, mix.freshness_half_life_days
        )
        allowed = config.allowed_pairs()

        with progress.stage("similarity", total=n) as advance:
            self.neighbors_ = cross_site_neighbors(
                self.X_,
                articles["site"].to_numpy(),
                config.similarity.k,
                allowed=allowed,
                candidates=self.eligible_,
                min_similarity=config.similarity.min_similarity,
                max_block_mb=config.similarity.max_block_mb,
                kernel=config.similarity.kernel,
                n_jobs=config.similarity.n_jobs,
                on_progress=advance,
            )

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
                mix.dedupe_threshold,
                rows=self.eligible_,
                kernel=config.similarity.kernel,
                n_jobs=config.similarity.n_jobs,
            )

        with progress.stage("mix", total=n) as advance:
            self.lists_ = mix_lists(
                self.X_,
                articles,
                self.neighbors_,
                self.trend_["trend"].to_numpy(),
                self.freshness_,
                self.eligible_,
                self.groups_,
                self.mix_params(),
                allowed=allowed,
                sites=list(config.sites),
                on_progress=advance,
            )
        self.timings_ = dict(progress.timings)
        return self

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
    ) -> Iterator[RecommendationList]:
        """Every list (articles, site pages, network) as :class:`RecommendationList`,
        or only those at ``positions`` of :attr:`lists_`."""
        self._check_fitted()
        generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
        a = self.articles_
        names = {key: site.display_name for key, site in self.config.sites.items()}
        columns = {
            name: a[name].astype(object).where(a[name].notna(), None).to_numpy()
            for name in ("article_id", "site", "category", "title", "url", "image_url")
        }
        site_names = np.array([names.get(s, s) for s in columns["site"]], dtype=object)
        lists = self.lists_
        min_relevance = self.config.mix.min_relevance
        for i in range(len(lists)) if positions is None else positions:
            rows = lists.items[i]
            n_items = int((rows >= 0).sum())
            score, relevance, trend, freshness = (
                _rounded(getattr(lists, part)[i])
                for part in ("score", "relevance", "trend", "freshness")
            )
            items = tuple(
                Item(
                    article_id=columns["article_id"][r],
                    site=columns["site"][r],
                    site_name=site_names[r],
                    category=columns["category"][r] or "",
                    title=columns["title"][r],
                    url=columns["url"][r],
                    image_url=columns["image_url"][r],
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
        self, run_id: str, generated_at: str | None = None, *, chunk: int = 20_000
    ) -> Iterator[SerializedList]:
        """The lists of :meth:`recommendation_lists`, already as JSON, built in
        bulk: each article's card (id, site, names, title, links) is encoded
        once and the numbers of ``chunk`` lists at a time. This is what the
        batch publishes; it decodes to the same :class:`RecommendationList`."""
        self._check_fitted()
        generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
        a = self.articles_
        names = {key: site.display_name for key, site in self.config.sites.items()}
        dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
        columns = [
            a[name].astype(object).where(a[name].notna(), None).tolist()
            for name in ("article_id", "site", "category", "title", "url", "image_url")
        ]
        cards = [
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
            )[:-1]  # left open for the item's numbers
            for article_id, site, category, title, url, image_url in zip(*columns, strict=True)
        ]
        lists = self.lists_
        min_relevance = self.config.mix.min_relevance
        tail = dumps({"run_id": run_id, "generated_at": generated_at, "fallback": False})[1:]
        for start in range(0, len(lists), chunk):
            stop = min(start + chunk, len(lists))
            rows = lists.items[start:stop].tolist()
            score, relevance, trend, freshness = (
                _rounded(getattr(lists, part)[start:stop]).tolist()
                for part in ("score", "relevance", "trend", "freshness")
            )
            related = (lists.relevance[start:stop] >= min_relevance).tolist()
            for i in range(stop - start):
                items = ",".join(
                    f'{cards[r]},"score":{score[i][j]},"relevance":{relevance[i][j]},'
                    f'"trend":{trend[i][j]},"freshness":{freshness[i][j]},'
                    f'"reason":"{"related" if related[i][j] else "trending"}"}}'
                    for j, r in enumerate(rows[i])
                    if r >= 0
                )
                source_id = str(lists.source_ids[start + i])
                site = lists.source_sites[start + i]
                site_json = "null" if site is None else encode_string(site)
                yield SerializedList(
                    source_id,
                    f'{{"source_id":{encode_string(source_id)},"site":{site_json},'
                    f'"items":[{items}],{tail}',
                )

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
        article_lists = np.isin(self.lists_.source_ids, self.articles_["article_id"].to_numpy())
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


def _rounded(values: np.ndarray) -> np.ndarray:
    """Score parts as published: float64, 6 decimals (one rule for both list forms)."""
    return np.round(values.astype(np.float64), 6)


__all__ = ["Recommender", "category_keys", "reference_time"]
