"""The public model: :class:`Recommender`, fitted by its stages, handing out
lists (one, all, or as published JSON), updating itself and saved to one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.artifact import PendingArtifact
from recommender.errors import UnknownArticleError
from recommender.lists import RecommendationList, SerializedList
from recommender.mix import MixedLists
from recommender.model import cold_start, payloads, persistence
from recommender.model.stages import Stages
from recommender.model.update import update_model
from recommender.progress import StageTimer


class Recommender(Stages):
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

    # -- updating ------------------------------------------------------------
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
        still knows exactly (see :mod:`recommender.model.update`); only articles
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
        return update_model(self, articles, events, now, progress, incremental=incremental)

    # -- results -------------------------------------------------------------
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
        return payloads.recommendation_lists(
            self, run_id, generated_at, positions=positions, lists=lists
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
        return payloads.list_payloads(self, run_id, generated_at, rows=rows, chunk=chunk)

    def recommend(self, source_id: str, k: int | None = None) -> RecommendationList:
        """The list of one article id (or ``site:<key>``, ``network``)."""
        self._check_fitted()
        positions = np.flatnonzero(self.lists_.source_ids == source_id)
        if len(positions) == 0:
            raise UnknownArticleError(f"unknown article id {source_id!r}")
        result = next(self.recommendation_lists(self.version, positions=positions[:1]))
        return result.top(k) if k is not None else result

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
        return cold_start.recommend_unseen(self, article, k)

    def prepare_cold_start(self) -> None:
        """Build what :meth:`recommend_unseen` compares a new article with, for
        every site, now rather than on each site's first request (a transposed
        copy of the candidates' features per site: a fraction of a second at
        a million articles). Call it once after loading, e.g. when a web
        worker starts."""
        self._check_fitted()
        cold_start.prepare_cold_start(self)

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
        return persistence.save_pending(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; :class:`ArtifactError` if it is
        damaged, truncated, not a model or from another version. Only the
        fields a model has are read, each into its own class: the file names
        no type, and nothing in it is unpickled."""
        return persistence.load_model(cls, path)


__all__ = ["Recommender"]
