"""What a web backend imports to show the block under an article.

::

    from recommender.serving import Recommendations

    recs = Recommendations("sqlite:////srv/recommender/lists.sqlite")
    block = recs.get("st-0042", k=6, site="japantoday")
    for item in block.items:
        print(item.category, item.title, item.site_name, item.url)

``get`` never raises in a page render: an unknown article id falls back to
the site's trending mix (when ``site`` is given), then to the network's
trending mix, then to an empty list; an unreachable store gives the last
lists it served, or an empty list. A newly published run is picked up
within ``refresh_seconds`` without a restart.

This module uses the standard library only: no scikit-learn, scipy or pandas
is imported to answer a lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

from recommender.errors import StoreError
from recommender.lists import NETWORK_PAGE, RecommendationList, site_page_id
from recommender.store import Store, open_store

_log = logging.getLogger(__name__)


class Recommendations:
    """Read recommendation lists from a published store, with fallbacks.

    Parameters
    ----------
    store : a store URL (``sqlite:///path``), a path, or an open :class:`Store`.
    refresh_seconds : how often to check whether a new run was published.
    cache_size : lists kept decoded in memory (per current run).
    """

    def __init__(
        self, store: str | Path | Store, *, refresh_seconds: float = 2.0, cache_size: int = 100_000
    ) -> None:
        self._store_arg = store
        self._store: Store | None = store if isinstance(store, Store) else None
        self.refresh_seconds = refresh_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[str, RecommendationList | None] = OrderedDict()
        self._run_id: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    # -- internals -----------------------------------------------------------
    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self._store_arg)  # type: ignore[arg-type]
        return self._store

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self.refresh_seconds:
            return
        self._checked_at = now
        run_id = self._open().current_run_id()
        if run_id != self._run_id:
            with self._lock:
                self._cache.clear()
                self._run_id = run_id

    def _lookup(self, source_id: str) -> RecommendationList | None:
        try:
            return self._cache[source_id]
        except KeyError:
            pass
        found = self._open().get(source_id)
        with self._lock:
            self._cache[source_id] = found
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return found

    # -- public --------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        """The run currently served (None before the first publish)."""
        try:
            self._refresh()
        except (StoreError, OSError) as error:
            _log.warning("recommendation store unavailable: %s", error)
        return self._run_id

    def get(
        self, article_id: str, k: int | None = None, *, site: str | None = None
    ) -> RecommendationList:
        """The list for ``article_id`` (at most ``k`` items), with fallbacks.

        ``site``: the site of the page being rendered, used for the fallback
        when the article is unknown or its list is empty. The returned list
        has ``fallback=True`` when it is not the article's own.
        """
        try:
            self._refresh()
        except Exception as error:  # keep serving what is cached
            _log.warning("recommendation store unavailable: %s", error)
        try:
            chain = [article_id]
            if site:
                chain.append(site_page_id(site))
            chain.append(NETWORK_PAGE)
            for source_id in chain:
                found = self._lookup(source_id)
                if found is not None and found.items:
                    result = found if source_id == article_id else found.as_fallback_for(article_id)
                    return result.top(k) if k is not None else result
        except Exception as error:  # a page render must never fail on recommendations
            _log.warning("recommendations for %r unavailable: %s", article_id, error)
        return RecommendationList(article_id, site, (), self._run_id or "", "", fallback=True)

    def site_page(self, site: str, k: int | None = None) -> RecommendationList:
        """The list for a site's page without an article (its trending mix)."""
        return self.get(site_page_id(site), k, site=site)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
