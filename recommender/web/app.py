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
- ``GET /dashboard``: the operator's page, only when a dashboard token is
  set, and only for requests that present it (see
  :mod:`recommender.web.routes_dashboard`); not in the OpenAPI document.

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

This module is the app factory: it wires one router per concern
(:mod:`~recommender.web.routes_lists`, :mod:`~recommender.web.routes_widget`,
:mod:`~recommender.web.routes_events`, :mod:`~recommender.web.routes_health`)
to the state they share (:mod:`recommender.web.service`); the plumbing they
share is :mod:`recommender.web.http`.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware

from recommender import __version__
from recommender.errors import ConfigError
from recommender.web.assets import FRAGMENT_HEADER
from recommender.web.events import SpoolError
from recommender.web.http import describe_errors, problem
from recommender.web.routes_dashboard import dashboard_router
from recommender.web.routes_events import events_router
from recommender.web.routes_health import health_router, openapi_of
from recommender.web.routes_lists import lists_router
from recommender.web.routes_widget import widget_router
from recommender.web.server import limits_state
from recommender.web.service import Service
from recommender.web.settings import ServiceSettings

_log = logging.getLogger(__name__)

#: Environment variable holding :meth:`ServiceSettings.to_json` for worker processes.
SETTINGS_ENV = "RECOMMENDER_SERVICE_SETTINGS"


@asynccontextmanager
async def _lifespan(service: Service, app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Events spooled and flushed while the app runs; the lookups closed after."""
    settings = service.settings
    service.spool.prepare()
    health = service.recs.health()
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
        service.recs.close()


# One error shape for the whole API: {"detail": "<what is wrong>"}.
async def _invalid_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return problem(422, describe_errors(error.errors()))


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service as an ASGI app (serve it with uvicorn)."""
    service = Service(settings)
    app = FastAPI(
        title="recommender",
        version=__version__,
        description="Cross-site recommendations: \"A mix of what's trending on our other "
        'sites". Lists as JSON, the block as an HTML fragment, impressions and clicks in.',
        lifespan=partial(_lifespan, service),
        # Both pages load their scripts from a CDN: /docs is served from the
        # package instead (routes_health), and ReDoc is left out.
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "If-None-Match"],
        expose_headers=["ETag", FRAGMENT_HEADER],
        max_age=86_400,
    )
    # In this order, the order of the OpenAPI document's paths.
    app.include_router(lists_router(service))
    app.include_router(widget_router(service))
    app.include_router(events_router(service))
    app.include_router(health_router(service))
    if settings.dashboard_token:
        app.include_router(dashboard_router(service))
    app.openapi = openapi_of(app)  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """The app built from the settings in ``$RECOMMENDER_SERVICE_SETTINGS``
    (what ``recommender serve --workers N`` starts in each worker)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ConfigError(f"${SETTINGS_ENV} is not set; start the service with `recommender serve`")
    return create_app(ServiceSettings.from_json(text))
