"""What a web backend imports to show the block under an article.

::

    from recommender.serving import Recommendations

    recs = Recommendations("sqlite:////srv/recommender/lists.sqlite")  # once per process
    block = recs.get("st-0042", k=6, site="japantoday")
    for item in block.items:
        print(item.category, item.title, item.site_name, item.url)

``get`` never raises in a page render: an unknown article id falls back to
the site's trending mix (when ``site`` is given), then to the network's
trending mix, then to an empty list (``block.fallback_source`` says which);
an unreachable store gives the lists already in memory, or an empty list. A
newly published run is picked up within ``refresh_seconds`` without a
restart.

An id that is not a valid id (see :mod:`recommender.ids`: a NUL byte, a
control character, not text...) is an unknown page: it gets the fallbacks,
is never sent to the store (where PostgreSQL would raise on a NUL) and leaves
the store's health alone. The store is opened read-only: a web server whose
user may only read the store can serve it, and nothing is ever created or
migrated by a reader.

A store whose data is damaged (e.g. a SQLite file with broken pages) is
still read for every list it can give; the lists on damaged pages answer
with their fallbacks, and :meth:`Recommendations.health` reports the damage
until another run is served.

How a lookup stays in the microseconds: the lists of the run being served
are kept decoded in memory, together with every answer already given (the
list after fallbacks and the cut to ``k``), so a repeated lookup is one dict
hit that returns an already-built, immutable object. The store is asked
which run is current at most once per ``refresh_seconds``; a new run gets a
new, empty cache, so an answer never mixes lists of two runs. After a store
error, lookups that miss the cache answer at once (with the fallback) instead
of waiting on the store, until the next check finds it back.

Titles and URLs are untrusted: items whose ``url`` is not an absolute
``http``/``https`` URL are dropped, and such an ``image_url`` becomes None,
before a list enters the cache.

This module uses the standard library only: no scikit-learn, scipy or pandas
is imported to answer a lookup.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from recommender.editorial import Block, blocks_from_payload, drop_blocked
from recommender.errors import StoreError
from recommender.ids import is_valid_id
from recommender.lists import (
    FALLBACK_EMPTY,
    NETWORK_PAGE,
    RecommendationList,
    related_page_id,
    section_page_id,
    site_page_id,
)
from recommender.store import DamagedStoreError, Store, open_store

_log = logging.getLogger(__name__)

# An absolute http(s) URL: a host (a name without userinfo, or a bracketed
# IPv6 literal), an optional port, then anything but whitespace and control
# characters. Browsers strip tabs and newlines from URLs, so that
# "java\tscript:" would otherwise pass for a harmless string.
_HTTP_URL = re.compile(
    r"https?://(?:[^\s/?#@\[\]:\x00-\x1f\x7f]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?"
    r"(?:[/?#][^\s\x00-\x1f\x7f]*)?",
    re.IGNORECASE,
)

#: How many runs a lookup follows when runs are published while it reads.
_ATTEMPTS = 3

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")
#: (article_id, site, k): what a page asks for.
_AnswerKey = tuple[str, str | None, int | None]


def is_http_url(url: str | None) -> bool:
    """True when ``url`` is an absolute ``http``/``https`` URL with a host,
    a valid port if any, and no whitespace or control characters."""
    if not url:
        return False
    found = _HTTP_URL.fullmatch(url)
    return found is not None and (found.group(1) is None or int(found.group(1)) <= 65535)


def only_http_links(lst: RecommendationList) -> RecommendationList:
    """``lst`` without items whose ``url`` is not http(s), and with any
    ``image_url`` that is not http(s) set to None; ``lst`` itself when every
    link is safe."""
    safe = []
    for item in lst.items:
        if not is_http_url(item.url):
            continue
        if item.image_url is not None and not is_http_url(item.image_url):
            item = dataclasses.replace(item, image_url=None)
        safe.append(item)
    if len(safe) == len(lst.items) and all(a is b for a, b in zip(safe, lst.items, strict=True)):
        return lst
    _log.warning(
        "list %r of run %s: dropped %d item(s) whose url is not http(s)",
        lst.source_id,
        lst.run_id,
        len(lst.items) - len(safe),
    )
    return dataclasses.replace(lst, items=tuple(safe))


@dataclass(frozen=True, slots=True)
class ServingHealth:
    """What :meth:`Recommendations.health` reports.

    ``run_id``: the run being served (None before the first publish or while
    the store was never reachable). ``store_available``: whether the store
    answers in full: False when the last contact with it failed, and while
    ``damaged``; ``error`` says why. ``cached_lists``: lists of the current
    run held in memory. ``damaged``: a read hit damaged data in the store
    during the current run, pages the database reports damaged or a list
    that does not decode (the other lists are still read from it; the
    damaged ones answer with their fallbacks).
    """

    run_id: str | None
    store_available: bool
    error: str
    cached_lists: int
    damaged: bool = False


class _RunChanged(Exception):
    """A list read from the store belongs to another run than the cache."""


class _StoreDown(Exception):
    """The store is known to be unavailable: a miss is not even tried."""


class _Generation:
    """The cache of one run: its decoded lists and the answers given from them."""

    __slots__ = ("answers", "lists", "run_id")

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        self.lists: OrderedDict[str, RecommendationList | None] = OrderedDict()
        self.answers: OrderedDict[_AnswerKey, RecommendationList] = OrderedDict()


class Recommendations:
    """Read recommendation lists from a published store, with fallbacks.

    Parameters
    ----------
    store : a store URL (``sqlite:///path``, ``postgresql://...``), a path to
        a SQLite store, or an open :class:`~recommender.store.Store` (which
        :meth:`close` then leaves open).
    refresh_seconds : at most this many seconds pass between two checks of
        which run is current, so a new run is served within this delay; 0
        checks on every lookup.
    cache_size : lists of the current run kept decoded in memory (least
        recently used dropped first); as many answers are kept beside them. A
        12-item list takes about 10 KB, so the default of 20,000 holds about
        200 MB at most.
    """

    def __init__(
        self,
        store: str | Path | Store,
        *,
        refresh_seconds: float = 2.0,
        cache_size: int = 20_000,
    ) -> None:
        if refresh_seconds < 0:
            raise ValueError(f"refresh_seconds must be >= 0 seconds, got {refresh_seconds}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1 list, got {cache_size}")
        self.refresh_seconds = refresh_seconds
        self.cache_size = cache_size
        self._store_arg = store
        self._owns_store = not isinstance(store, Store)
        self._store: Store | None = None if self._owns_store else store  # type: ignore[assignment]
        self._generation = _Generation(None)
        self._next_check = float("-inf")
        self._check_lock = threading.Lock()
        self._available = True
        self._error = ""
        self._damage = ""
        self._blocks_payload: str | None = None
        self._blocks: tuple[Block, ...] = ()

    def __repr__(self) -> str:
        return f"Recommendations({self._store_arg!r}, run={self._generation.run_id!r})"

    def __enter__(self) -> Recommendations:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- public --------------------------------------------------------------
    def get(
        self, article_id: str, k: int | None = None, *, site: str | None = None
    ) -> RecommendationList:
        """The list for ``article_id`` (at most ``k`` items), with fallbacks.

        ``site``: the site of the page being rendered, used for the fallback
        when the article is unknown or its list is empty. The returned list
        has ``fallback=True`` when it is not the article's own, and then its
        ``source_id`` is still ``article_id`` and ``fallback_source`` says
        which list it is: ``"site"``, ``"network"`` or ``"empty"``. Never
        raises because of the store, its data or the ids asked for: an
        invalid ``article_id`` (see :mod:`recommender.ids`) is an unknown
        page, an invalid ``site`` is no site; neither is sent to the store.
        ``k < 0`` is a programming error (ValueError).
        """
        if k is not None and k < 0:
            raise ValueError(f"k must be >= 0 items, got {k}")
        if time.monotonic() >= self._next_check:
            self._check_run()
        generation = self._generation
        key = (article_id, site, k)
        try:
            answer = generation.answers[key]
        except (KeyError, TypeError):  # TypeError: an unhashable id (not a valid one)
            return self._resolve(generation, key, attempts=_ATTEMPTS)
        # try/except, not contextlib.suppress: this is the hot path (~0.3 µs less).
        try:  # noqa: SIM105
            generation.answers.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile: still a good answer
            pass
        return answer

    def site_page(self, site: str, k: int | None = None) -> RecommendationList:
        """The list for a site's page without an article (its trending mix),
        falling back to the network's trending mix (the only answer for an
        invalid ``site``)."""
        return self.get(site_page_id(site) if isinstance(site, str) else site, k, site=site)

    def section_page(self, site: str, category: str, k: int | None = None) -> RecommendationList:
        """The list for ``site``'s section page of its ``category`` label
        (published with ``[mix] section_pages``), falling back to the site's
        trending mix, then the network's."""
        if not (isinstance(site, str) and isinstance(category, str)):
            return self.get(NETWORK_PAGE, k)
        return self.get(section_page_id(site, category), k, site=site)

    def related(
        self, article_id: str, k: int | None = None, *, site: str | None = None
    ) -> RecommendationList:
        """``article_id``'s related-only list (published with ``[mix]
        related_lists``); without one (or when it is empty), the article's
        own list and its fallbacks, as :meth:`get` gives them."""
        if isinstance(article_id, str):
            found = self.get(related_page_id(article_id), k, site=site)
            if not found.fallback:
                return RecommendationList(
                    article_id, found.site, found.items, found.run_id, found.generated_at
                )
        return self.get(article_id, k, site=site)

    def network_page(self, k: int | None = None) -> RecommendationList:
        """The network-wide trending mix."""
        return self.get(NETWORK_PAGE, k)

    @property
    def run_id(self) -> str | None:
        """The run currently served (None before the first publish)."""
        if time.monotonic() >= self._next_check:
            self._check_run()
        return self._generation.run_id

    def health(self) -> ServingHealth:
        """Which run is served and whether the store answers (checked at most
        once per ``refresh_seconds``)."""
        if time.monotonic() >= self._next_check:
            self._check_run()
        generation = self._generation
        damage = self._damage
        return ServingHealth(
            generation.run_id,
            self._available and not damage,
            self._error or damage,
            len(generation.lists),
            damaged=bool(damage),
        )

    def close(self) -> None:
        """Close the store if this object opened it (idempotent)."""
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    # -- internals -----------------------------------------------------------
    def _check_run(self, *, force: bool = False) -> None:
        """Switch to a new cache when the store serves another run.

        ``force``: check now, after waiting for a check under way (which may
        have read the store before the run this thread has just seen)."""
        # Before the store is open, lookups need it: wait for the thread
        # opening it. Afterwards, one thread checks and the others go on.
        if not self._check_lock.acquire(blocking=force or self._store is None):
            return
        try:
            now = time.monotonic()
            if not force and now < self._next_check:
                return  # checked by another thread while this one waited
            self._next_check = now + self.refresh_seconds
            try:
                if self._store is None:
                    self._store = open_store(self._store_arg, read_only=True)  # type: ignore[arg-type]
                run_id = self._store.current_run_id()
                # A store of another kind may keep no blocks (a Store written before them).
                read_blocks = getattr(self._store, "editorial_blocks", None)
                blocks = read_blocks() if read_blocks is not None else None
            except Exception as error:  # any failure of the store: keep serving the cache
                self._store_failed(error)
                return
            if blocks != self._blocks_payload:
                try:
                    self._blocks = blocks_from_payload(blocks)
                except Exception as error:  # a bad copy: keep the blocks known so far
                    _log.error("the store's editorial blocks are unreadable: %s", error)
                else:
                    _log.info("serving %d editorial block(s)", len(self._blocks))
                    self._blocks_payload = blocks
                    self._generation = _Generation(run_id)  # answers cached before may be blocked
            if not self._available:
                _log.warning("recommendation store %s is available again", self._store_arg)
            self._available, self._error = True, ""
            if run_id != self._generation.run_id:
                _log.info("serving run %s (was %s)", run_id, self._generation.run_id)
                self._generation = _Generation(run_id)
                # Damage is a fact about what the old run's reads met; a new run
                # was published past the writer's check (or into a fresh file).
                self._damage = ""
        finally:
            self._check_lock.release()

    def _store_failed(self, error: BaseException) -> None:
        if self._available:
            _log.warning(
                "recommendation store %s unavailable, serving cached lists: %s",
                self._store_arg,
                error,
            )
        self._available, self._error = False, str(error) or type(error).__name__

    def _store_damaged(self, reason: str) -> None:
        """A read met damaged data: report it, keep reading what can be read."""
        if not self._damage:
            _log.error(
                "recommendation store %s is damaged; its damaged lists answer with their "
                "fallbacks: %s",
                self._store_arg,
                reason,
            )
        self._damage = reason

    def _resolve(
        self, generation: _Generation, key: _AnswerKey, *, attempts: int
    ) -> RecommendationList:
        raw_id, raw_site, k = key
        valid = is_valid_id(raw_id)
        site = raw_site if raw_site is None or is_valid_id(raw_site) else None
        # An invalid id is an unknown page (never sent to the store), shown
        # under its text; its answers are not cached (as many as asked).
        article_id = raw_id if isinstance(raw_id, str) else str(raw_id)
        cacheable = valid and site is raw_site
        chain = [article_id] if valid else []
        for fallback in (site_page_id(site) if site else None, NETWORK_PAGE):
            if fallback is not None and fallback not in chain:
                chain.append(fallback)
        try:
            answer = None
            for source_id in chain:
                found = self._list(generation, source_id)
                if found is not None and found.items:
                    own = valid and source_id == article_id
                    answer = found if own else found.as_fallback_for(article_id)
                    break
        except _RunChanged:
            # A new run was published since the last check: serve from it, with
            # a cache of its own. The check is forced: one under way in another
            # thread may have read the store before this run was published, and
            # its cache would then answer this thread from an older run than
            # the one it has seen. Runs published back to back, again and
            # again, are answered without caching rather than by looping.
            self._check_run(force=True)
            if attempts > 1 and self._generation is not generation:
                return self._resolve(self._generation, key, attempts=attempts - 1)
            answer = self._uncached(chain, article_id if valid else None, article_id)
            answer = answer or self._empty(article_id, site)
            return answer.top(k) if k is not None else answer
        except _StoreDown:
            return self._empty(article_id, site)
        except StoreError as error:
            self._store_failed(error)
            return self._empty(article_id, site)
        except Exception:  # a page render must never fail on recommendations
            _log.exception("recommendations for %r failed; serving an empty list", article_id)
            return self._empty(article_id, site)
        answer = answer if answer is not None else self._empty(article_id, site)
        if k is not None:
            answer = answer.top(k)
        if cacheable:
            _remember(generation.answers, key, answer, self.cache_size)
        return answer

    def _uncached(
        self, chain: list[str], own_id: str | None, article_id: str
    ) -> RecommendationList | None:
        """First non-empty list of ``chain`` read straight from the store
        (``own_id``: the chain's list that is the page's own, if any)."""
        if self._store is None or not self._available:
            return None
        for source_id in chain:
            try:
                found = self._store.get(source_id)
            except DamagedStoreError as error:
                self._store_damaged(str(error))
                continue
            except StoreError as error:
                self._store_failed(error)
                return None
            except (ValueError, KeyError, TypeError) as error:  # a damaged payload
                self._store_damaged(_unreadable(source_id, error))
                continue
            if found is not None and found.items:
                found = self._unblocked(only_http_links(found))
                return found if source_id == own_id else found.as_fallback_for(article_id)
        return None

    def _list(self, generation: _Generation, source_id: str) -> RecommendationList | None:
        """``source_id``'s list in ``generation``'s run, from the cache or the store."""
        lists = generation.lists
        try:
            found = lists[source_id]
        except KeyError:
            pass
        else:
            try:  # noqa: SIM105 (hot path, as in get)
                lists.move_to_end(source_id)
            except KeyError:
                pass
            return found
        if self._store is None or not self._available:
            raise _StoreDown
        try:
            found = self._store.get(source_id)
        except DamagedStoreError as error:  # damaged pages: this list is lost, not the store
            self._store_damaged(str(error))
            found = None
        except (ValueError, KeyError, TypeError) as error:  # a damaged payload, not the store
            # The store holds only lists it encoded itself: one that does not
            # decode is damage the database did not notice (SQLite keeps no
            # checksums of its pages) or a writer's bug; either way, report it.
            reason = _unreadable(source_id, error)
            _log.warning("%s; using the fallback", reason)
            self._store_damaged(reason)
            found = None
        if found is not None:
            if found.run_id != generation.run_id:
                raise _RunChanged
            found = self._unblocked(only_http_links(found))
        _remember(lists, source_id, found, self.cache_size)
        return found

    def _unblocked(self, lst: RecommendationList) -> RecommendationList:
        """``lst`` without the items an editor's block drops (see
        :mod:`recommender.editorial`): a takedown is served at once, before
        the next run publishes lists without the item."""
        if not self._blocks:
            return lst
        kept = drop_blocked(lst.items, self._blocks, lst.site, datetime.now(UTC))
        return lst if kept is None else dataclasses.replace(lst, items=kept)

    def _empty(self, article_id: str, site: str | None) -> RecommendationList:
        return RecommendationList(
            article_id,
            site,
            (),
            self._generation.run_id or "",
            "",
            fallback=True,
            fallback_source=FALLBACK_EMPTY,
        )


def _unreadable(source_id: str, error: BaseException) -> str:
    return f"list {source_id!r} in the store is unreadable ({type(error).__name__}: {error})"


def _remember(cache: OrderedDict[_Key, _Value], key: _Key, value: _Value, capacity: int) -> None:
    """Put ``key`` in the LRU ``cache``, dropping the least recently used
    entries beyond ``capacity``."""
    cache[key] = value
    while len(cache) > capacity:
        try:
            cache.popitem(last=False)
        except KeyError:  # emptied by another thread
            break
