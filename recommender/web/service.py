"""The service's state, shared by its routers: the lookups, the cache of
rendered answers, the event spool and its flushing."""

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request, Response

from recommender.display import Placement, placement_list
from recommender.experiments import Experiment
from recommender.ids import is_valid_id
from recommender.lists import (
    FALLBACK_EMPTY,
    FALLBACK_NETWORK,
    FALLBACK_SITE,
    RecommendationList,
    fallback_kind,
)
from recommender.serving import Recommendations
from recommender.web.events import EventSpool, RateLimiter, SpoolError
from recommender.web.http import etag_of, matches
from recommender.web.settings import ServiceSettings

_log = logging.getLogger(__name__)

#: The events endpoint as the fragment names it without a public URL:
#: relative, resolved by widget.js against its own address.
_RELATIVE_EVENTS_URL = "v1/events"


class Service:
    """The app's state: the lookups, the response cache, the event spool."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.recs = Recommendations(
            settings.store_url,
            refresh_seconds=settings.refresh_seconds,
            cache_size=settings.cache_size,
        )
        self.spool = EventSpool(settings.events_dir, max_buffered=settings.events_max_buffered)
        self.limiter = RateLimiter(settings.events_rate_per_second, settings.events_burst)
        self._rendered: OrderedDict[tuple[object, ...], tuple[str, bytes]] = OrderedDict()
        self._rendered_run = ""
        self._flushes: set[asyncio.Task[None]] = set()
        # The experiment running on each placement (one at most).
        self.experiments = {
            str(e["placement"]): Experiment(
                name, str(e["placement"]), dict(e["variants"]), control=e.get("control")
            )
            for name, e in sorted(settings.experiments.items())
        }

    # -- lists -----------------------------------------------------------------
    def placement(self, name: str) -> Placement:
        """The placement ``name`` as configured (an unknown one: the defaults)."""
        return Placement.from_settings(name, self.settings.placements.get(name))

    def variant_for(self, placement: str, bucket: int | None) -> tuple[str, str] | None:
        """(experiment, variant) of a page view of ``placement`` in ``bucket``
        (the widget's 0-999 draw per page view); None without an experiment
        on the placement or without a bucket (e.g. a server-side include)."""
        experiment = self.experiments.get(placement)
        if experiment is None or bucket is None:
            return None
        return experiment.name, experiment.assign(str(bucket))

    def block(
        self,
        placement: Placement,
        *,
        article: str | None = None,
        section: str | None = None,
        site: str | None = None,
        k: int | None = None,
        variant: tuple[str, str] | None = None,
    ) -> RecommendationList:
        """The list ``placement`` shows on a page (see
        :func:`recommender.display.placement_list`): an article's page, a
        section page or a site's home page. ``k``: the request's, else the
        placement's (at most ``max_k``). An invalid article id is an unknown
        page, an invalid section none."""
        if k is None and placement.k is not None:
            k = min(placement.k, self.settings.max_k)
        if article is not None and not is_valid_id(article):
            return _in_place_of(self.trending(site, k), article)
        if section is not None and not is_valid_id(section):
            section = None
        return placement_list(
            self.recs, placement, article=article, section=section, site=site, k=k, variant=variant
        )

    def trending(self, site: str | None, k: int | None) -> RecommendationList:
        """``site``'s trending mix (the network's without ``site``)."""
        return self.recs.site_page(site, k) if site else self.recs.network_page(k)

    def respond(
        self,
        request: Request,
        block: RecommendationList,
        key: tuple[object, ...],
        media_type: str,
        render: Callable[[RecommendationList], str],
        headers: dict[str, str] | None = None,
    ) -> Response:
        """``block`` rendered, with ETag and Cache-Control, or 304."""
        headers = dict(headers or {})
        if not block.items:
            # Nothing to show (or the store is down): never let a cache keep that.
            headers["Cache-Control"] = "no-cache"
            return Response(render(block), media_type=media_type, headers=headers)
        if not is_valid_id(block.source_id):
            # An invalid id answered with a fallback: rendered each time, so
            # that any text (up to the server's URL limit) takes no cache room.
            etag, body = etag_of(block.run_id, block.source_id, *key), render(block).encode()
        else:
            if block.run_id != self._rendered_run:
                self._rendered.clear()
                self._rendered_run = block.run_id
            cache_key = (block.source_id, block.run_id, *key)
            cached = self._rendered.get(cache_key)
            if cached is None:
                cached = (etag_of(block.run_id, block.source_id, *key), render(block).encode())
                self._rendered[cache_key] = cached
                while len(self._rendered) > self.settings.response_cache_size:
                    self._rendered.popitem(last=False)
            etag, body = cached
        headers["ETag"] = etag
        headers["Cache-Control"] = f"public, max-age={self.settings.max_age_seconds}"
        if matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    def events_url(self) -> str:
        """The events endpoint as fragments name it: never from the request
        (its Host header is the client's to choose, and fragments are cached)."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/") + "/v1/events"
        return _RELATIVE_EVENTS_URL

    # -- events ----------------------------------------------------------------
    async def flush(self) -> None:
        try:
            await asyncio.to_thread(self.spool.flush)
        except SpoolError as error:
            _log.error("%s", error)

    def flush_soon(self) -> None:
        if self._flushes:
            return  # one is on its way and takes everything buffered
        task = asyncio.create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.events_flush_seconds)
            await self.flush()


def _in_place_of(mix: RecommendationList, source_id: str) -> RecommendationList:
    """A site's or the network's ``mix`` (from ``site_page`` / ``network_page``)
    served as the fallback of the page ``source_id``."""
    if not mix.items:
        kind = FALLBACK_EMPTY
    elif mix.fallback:
        kind = mix.fallback_source  # the site's page fell back to the network's
    else:
        kind = fallback_kind(mix.source_id)
    if kind not in (FALLBACK_SITE, FALLBACK_NETWORK):
        kind = FALLBACK_EMPTY
    return dataclasses.replace(mix, source_id=source_id, fallback=True, fallback_source=kind)
