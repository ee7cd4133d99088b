"""The HTTP service: lists as JSON, the widget as HTML, events in.

Endpoints (OpenAPI at ``/openapi.json``, docs at ``/docs``):

- ``GET /v1/recommendations/{article_id}?k=&site=``: a page's list, with the
  same fallbacks as :class:`recommender.serving.Recommendations`.
- ``GET /v1/trending?site=&k=``: a site's trending mix (the network's
  without ``site``).
- ``GET /widget?article=&k=&site=&placement=`` (what ``widget.js`` asks
  for: no id can change the path) and ``GET /widget/{article_id}?...``
  (for server-side includes): the block as an HTML fragment (empty when
  there is nothing to show).
- ``GET /widget.js``, ``GET /widget.css``: the embed script and its styles.
- ``POST /v1/events``: impressions and clicks (see :mod:`recommender.web.events`).
- ``GET /healthz``: which run is served; 503 while there is none.
- ``GET /docs``: Swagger UI, served from the package (no CDN needed).

An article id is untrusted text: one that is not a valid id
(:mod:`recommender.ids`: control characters, separators, surrounding
whitespace, over 256 characters) is an unknown page, answered with the
fallback like any other, and never looked up in the store. No answer is
derived from the request's ``Host`` header: the fragment's events URL is the
configured public URL, else relative (``widget.js`` resolves it against its
own address), so a shared cache cannot be poisoned through it.

List and widget responses carry an ``ETag`` (from the run, the page and the
request's parameters) and ``Cache-Control: public, max-age=N``; a matching
``If-None-Match`` gets ``304``. Every response of one request comes from one
run: a run switch replaces the whole in-memory cache at once. The service
reads only the published store; it never loads a model file (no pickle).

A web backend that cannot import the library (PHP, Node) calls these
endpoints; one that can uses :mod:`recommender.serving` directly.
"""

import asyncio
import dataclasses
import hashlib
import logging
import math
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from functools import cache, partial
from importlib.resources import files
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect

from recommender import __version__
from recommender.errors import ConfigError
from recommender.ids import is_valid_id
from recommender.lists import (
    FALLBACK_EMPTY,
    FALLBACK_NETWORK,
    FALLBACK_SITE,
    RecommendationList,
    fallback_kind,
)
from recommender.serving import Recommendations
from recommender.web.assets import FRAGMENT_HEADER, WIDGET_CSS, WIDGET_JS
from recommender.web.events import (
    EventBatch,
    EventSpool,
    RateLimiter,
    SpoolError,
    spool_rows,
)
from recommender.web.server import limits_state
from recommender.web.settings import SITE_KEY_PATTERN, TOKEN_PATTERN, ServiceSettings
from recommender.web.widget import render_widget

_log = logging.getLogger(__name__)

#: Environment variable holding :meth:`ServiceSettings.to_json` for worker processes.
SETTINGS_ENV = "RECOMMENDER_SERVICE_SETTINGS"

_STATIC_MAX_AGE = 3600
#: The events endpoint as the fragment names it without a public URL:
#: relative, resolved by widget.js against its own address.
_RELATIVE_EVENTS_URL = "v1/events"
#: Swagger UI's files (see static/swagger-ui/README.md), as /docs asks for them.
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


class _AnyText(Convertor[str]):
    """A path parameter of any text, line breaks included (Starlette's
    ``path`` stops at one, which would make such an id a 404 instead of an
    unknown page)."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("recommender_text", _AnyText())


@cache
def _docs_asset(name: str) -> bytes:
    return files("recommender.web").joinpath("static", "swagger-ui", name).read_bytes()


# -- response models (the OpenAPI contract) -----------------------------------
class ItemOut(BaseModel):
    """One recommended article; ``score`` blends its parts, each in [0, 1]."""

    article_id: str
    site: str = Field(description="Registry key of the item's site.")
    site_name: str = Field(description="The site's display name, as the block shows it.")
    category: str = Field(description="The site's own category label (may be empty).")
    title: str
    url: str = Field(description="Absolute http(s) URL of the article.")
    image_url: str | None
    score: float
    relevance: float
    trend: float
    freshness: float
    reason: str = Field(description="`related` or `trending`.")


class ListOut(BaseModel):
    """A page's list, as published by one run."""

    source_id: str = Field(description="The page asked for (article id, `site:KEY` or `network`).")
    site: str | None
    run_id: str = Field(description="The run that published the list.")
    generated_at: str = Field(description="When the run computed it (ISO 8601, UTC).")
    fallback: bool = Field(description="True when this is not the page's own list.")
    fallback_source: Literal["site", "network", "empty", ""] = Field(
        description="Which fallback was served: `site` (the page's site's trending mix), "
        "`network` (the network's), `empty` (none could be had); empty for the page's own list."
    )
    items: list[ItemOut]


class HealthOut(BaseModel):
    """``ok``: serving a run from a reachable store; ``degraded``: serving a
    run from memory, the store is unreachable; ``unavailable``: no run to
    serve."""

    status: Literal["ok", "degraded", "unavailable"]
    run_id: str | None
    store_available: bool
    error: str
    cached_lists: int
    events_buffered: int


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events stored for the next batch run.")


class Problem(BaseModel):
    detail: str = Field(description="What is wrong with the request.")


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _etag(*parts: object) -> str:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=12)
    return f'"{digest.hexdigest()}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


class _Service:
    """The app's state beside the lookups: the response cache, the event spool."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.spool = EventSpool(settings.events_dir, max_buffered=settings.events_max_buffered)
        self.limiter = RateLimiter(settings.events_rate_per_second, settings.events_burst)
        self._rendered: OrderedDict[tuple[object, ...], tuple[str, bytes]] = OrderedDict()
        self._rendered_run = ""
        self._flushes: set[asyncio.Task[None]] = set()

    # -- lists -----------------------------------------------------------------
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
            etag, body = _etag(block.run_id, block.source_id, *key), render(block).encode()
        else:
            if block.run_id != self._rendered_run:
                self._rendered.clear()
                self._rendered_run = block.run_id
            cache_key = (block.source_id, block.run_id, *key)
            cached = self._rendered.get(cache_key)
            if cached is None:
                cached = (_etag(block.run_id, block.source_id, *key), render(block).encode())
                self._rendered[cache_key] = cached
                while len(self._rendered) > self.settings.response_cache_size:
                    self._rendered.popitem(last=False)
            etag, body = cached
        headers["ETag"] = etag
        headers["Cache-Control"] = f"public, max-age={self.settings.max_age_seconds}"
        if _matches(request.headers.get("if-none-match"), etag):
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


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` bytes.
    Raises ClientDisconnect when the client goes (or is cut off by the body
    time limit) before the end."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


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


def _describe_errors(errors: Sequence[Any], limit: int = 5) -> str:
    """Pydantic's errors as one line: ``where: what`` for the first ``limit``."""
    problems = []
    for problem in errors[:limit]:
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        problems.append(f"{where}: {problem['msg']}")
    more = len(errors) - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service as an ASGI app (serve it with uvicorn)."""
    recs = Recommendations(
        settings.store_url,
        refresh_seconds=settings.refresh_seconds,
        cache_size=settings.cache_size,
    )
    service = _Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        service.spool.prepare()
        health = recs.health()
        _log.info(
            "serving run %s from %s; events to %s",
            health.run_id,
            settings.store_url,
            settings.events_dir,
        )
        flusher = asyncio.create_task(service.flush_periodically())
        try:
            # The state reaches uvicorn's protocols: the connections' time limits.
            yield limits_state(settings)
        finally:
            flusher.cancel()
            with suppress(asyncio.CancelledError):
                await flusher
            try:
                service.spool.flush()
            except SpoolError as error:
                _log.error("events lost at shutdown: %s", error)
            recs.close()

    app = FastAPI(
        title="recommender",
        version=__version__,
        description="Cross-site recommendations: \"A mix of what's trending on our other "
        'sites". Lists as JSON, the block as an HTML fragment, impressions and clicks in.',
        lifespan=lifespan,
        # Both pages load their scripts from a CDN: /docs is served below from
        # the package instead, and ReDoc is left out.
        docs_url=None,
        redoc_url=None,
    )

    # One error shape for the whole API: {"detail": "<what is wrong>"}.
    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return _problem(422, _describe_errors(error.errors()))

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "If-None-Match"],
        expose_headers=["ETag", FRAGMENT_HEADER],
        max_age=86_400,
    )

    id_help = (
        "An article id. One that is not a valid id (control characters, line or "
        "paragraph separators, surrounding whitespace, over 256 characters) is an "
        "unknown page: it gets the fallback."
    )
    ArticleId = Annotated[str, Path(description=id_help)]
    K = Annotated[
        int | None, Query(ge=1, le=settings.max_k, description="At most this many items.")
    ]
    # With a registry, the spec lists the network's sites and others are refused.
    site_help = "Site of the page (registry key): its trending mix is the fallback."
    Site: Any = (
        Annotated[
            Literal[tuple(sorted(settings.sites))] | None,
            Query(description=site_help),
        ]
        if settings.sites
        else Annotated[str | None, Query(pattern=SITE_KEY_PATTERN, description=site_help)]
    )
    list_responses: dict[int | str, dict[str, Any]] = {
        304: {"description": "Not modified: the `If-None-Match` ETag is current."},
        422: {"model": Problem, "description": "A parameter is invalid."},
    }

    def as_json(block: RecommendationList) -> str:
        return block.to_json()

    def page_list(article_id: str, k: int | None, site: str | None) -> RecommendationList:
        """``recs.get``, except that an invalid id is an unknown page: the
        fallback, without asking the store about it."""
        if is_valid_id(article_id):
            return recs.get(article_id, k, site=site)
        return _in_place_of(recs.site_page(site, k) if site else recs.network_page(k), article_id)

    @app.get(
        "/v1/recommendations/{article_id:recommender_text}",
        response_model=ListOut,
        responses=list_responses,
        summary="A page's list",
    )
    async def recommendations_of_page(
        request: Request, article_id: ArticleId, k: K = None, site: Site = None
    ) -> Response:
        """The list published for ``article_id``; for an unknown article or an
        empty list, the site's trending mix (with ``site``), else the
        network's, else an empty list (``fallback`` is then true, and
        ``fallback_source`` says which)."""
        block = page_list(article_id, k, site)
        return service.respond(request, block, ("json", site, k), "application/json", as_json)

    @app.get(
        "/v1/trending",
        response_model=ListOut,
        responses=list_responses,
        summary="A site's trending mix",
    )
    async def trending(request: Request, site: Site = None, k: K = None) -> Response:
        """The trending mix shown on ``site``'s pages without an article (the
        network's without ``site``)."""
        block = recs.site_page(site, k) if site else recs.network_page(k)
        return service.respond(request, block, ("json", site, k), "application/json", as_json)

    Placement = Annotated[
        str, Query(pattern=TOKEN_PATTERN, description="Where the block sits (tracking).")
    ]
    fragment_responses: dict[int | str, dict[str, Any]] = {
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "headers": {
                FRAGMENT_HEADER: {
                    "description": "`1`: the answer is the block's fragment (widget.js "
                    "inserts nothing else).",
                    "schema": {"type": "string"},
                }
            },
        },
        **list_responses,
    }
    events_url = service.events_url()

    def fragment(
        request: Request, article_id: str, k: int | None, site: str | None, placement: str
    ) -> Response:
        block = page_list(article_id, k, site)

        def as_html(block: RecommendationList) -> str:
            return render_widget(block, events_url=events_url, placement=placement)

        return service.respond(
            request,
            block,
            ("html", site, k, placement),
            "text/html; charset=utf-8",
            as_html,
            headers={FRAGMENT_HEADER: "1"},
        )

    @app.get(
        "/widget",
        response_class=Response,
        responses=fragment_responses,
        summary="The block as an HTML fragment (the id as a parameter)",
    )
    async def widget_of(
        request: Request,
        article: Annotated[str, Query(description=id_help)],
        k: K = None,
        site: Site = None,
        placement: Placement = "widget",
    ) -> Response:
        """The block under ``article`` (same list and fallbacks as
        ``/v1/recommendations``): heading, then category label, linked title
        and site name per item. Empty when there is nothing to show. What
        ``widget.js`` asks for: as a query parameter, no id can change the
        path asked for (a path keeps ``../``, which a browser resolves)."""
        return fragment(request, article, k, site, placement)

    @app.get(
        "/widget/{article_id:recommender_text}",
        response_class=Response,
        responses=fragment_responses,
        summary="The block as an HTML fragment",
    )
    async def widget(
        request: Request,
        article_id: ArticleId,
        k: K = None,
        site: Site = None,
        placement: Placement = "widget",
    ) -> Response:
        """The same fragment as ``GET /widget?article=``, for a backend that
        includes it server-side (the id percent-encoded into the path)."""
        return fragment(request, article_id, k, site, placement)

    def static(
        content: str | Callable[[], bytes], media_type: str
    ) -> Callable[[Request], Response]:
        """A route serving ``content`` (or what it returns, read once when
        first asked for) with a long cache and an ETag."""
        loaded: list[tuple[bytes, str]] = []

        def serve(request: Request) -> Response:
            if not loaded:
                body = content() if callable(content) else content.encode()
                loaded.append((body, _etag(hashlib.blake2b(body).hexdigest())))
            body, etag = loaded[0]
            headers = {"ETag": etag, "Cache-Control": f"public, max-age={_STATIC_MAX_AGE}"}
            if _matches(request.headers.get("if-none-match"), etag):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type=media_type, headers=headers)

        return serve

    # /docs: Swagger UI from the package, so that it shows without internet.
    for name, media_type in _DOCS_ASSETS.items():
        app.add_route(
            f"/docs/assets/{name}",
            static(partial(_docs_asset, name), media_type),
            include_in_schema=False,
        )

    async def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
            # No calls to swagger.io's online validator either.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_route("/docs", docs, include_in_schema=False)

    app.add_api_route(
        "/widget.js",
        static(WIDGET_JS, "text/javascript; charset=utf-8"),
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/javascript": {"schema": {"type": "string"}}}}},
        summary="The embed script",
    )
    app.add_api_route(
        "/widget.css",
        static(WIDGET_CSS, "text/css; charset=utf-8"),
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/css": {"schema": {"type": "string"}}}}},
        summary="The block's default styles",
    )

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=EventsAccepted,
        responses={
            400: {"model": Problem},
            413: {"model": Problem, "description": "Body larger than the limit."},
            415: {"model": Problem},
            422: {"model": Problem, "description": "Malformed events; none stored."},
            429: {"model": Problem, "description": "Too many requests from this client."},
            503: {"model": Problem, "description": "The event spool is full."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "JSON; sent as `text/plain` by the widget (`sendBeacon`).",
                "content": {
                    media: {"schema": {"$ref": "#/components/schemas/EventBatch"}}
                    for media in ("application/json", "text/plain")
                },
            }
        },
        summary="Report impressions and clicks",
    )
    async def events(request: Request) -> Response:
        """Store a batch of impressions and clicks for the next batch run.
        The whole batch is refused when any event is malformed."""
        client = request.client.host if request.client else "unknown"
        if wait := service.limiter.acquire(client):
            return _problem(
                429,
                f"too many event requests from {client}; "
                f"limit {settings.events_rate_per_second:g}/s, burst {settings.events_burst}",
                {"Retry-After": str(math.ceil(wait))},
            )
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("application/json", "text/plain"):
            return _problem(415, f"content type {media or '(none)'!r}: send application/json")
        limit = settings.events_max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return _problem(400, f"invalid Content-Length {declared!r}")
            if int(declared) > limit:
                return _problem(413, f"body of {declared} bytes; at most {limit} accepted")
        try:
            body = await _read_body(request, limit)
        except ClientDisconnect:
            # Gone before the end of its body (or cut off by the body time
            # limit): nothing to store, and nobody to answer.
            return Response(status_code=400)
        if body is None:
            return _problem(413, f"body larger than {limit} bytes")
        try:
            batch = EventBatch.model_validate_json(body)
        except ValidationError as error:
            return _problem(422, f"events refused, none stored: {_describe_errors(error.errors())}")
        if not service.spool.add(spool_rows(batch, datetime.now(UTC))):
            return _problem(503, "event spool full; retry later", {"Retry-After": "5"})
        if len(service.spool) >= settings.events_flush_size:
            service.flush_soon()
        return JSONResponse({"accepted": len(batch.events)}, status_code=202)

    @app.get(
        "/healthz",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "No run to serve."}},
        summary="Liveness and the run served",
    )
    async def healthz() -> Response:
        health = recs.health()
        status: Literal["ok", "degraded", "unavailable"] = (
            "unavailable"
            if health.run_id is None
            else "ok"
            if health.store_available
            else "degraded"
        )
        body = HealthOut(
            status=status,
            run_id=health.run_id,
            store_available=health.store_available,
            error=health.error,
            cached_lists=health.cached_lists,
            events_buffered=len(service.spool),
        )
        return JSONResponse(
            body.model_dump(),
            status_code=503 if status == "unavailable" else 200,
            headers={"Cache-Control": "no-store"},
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            batch = EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(batch.pop("$defs", {}))
            components["EventBatch"] = batch
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """The app built from the settings in ``$RECOMMENDER_SERVICE_SETTINGS``
    (what ``recommender serve --workers N`` starts in each worker)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ConfigError(f"${SETTINGS_ENV} is not set; start the service with `recommender serve`")
    return create_app(ServiceSettings.from_json(text))
