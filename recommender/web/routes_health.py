"""Health and docs: ``/healthz``, Swagger UI at ``/docs`` (served from the
package) and the OpenAPI document it shows."""

from collections.abc import Callable
from functools import cache, partial
from importlib.resources import files
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from recommender.web.events import EventBatch
from recommender.web.http import static
from recommender.web.service import Service

#: Swagger UI's files (see static/swagger-ui/README.md), as /docs asks for them.
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


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


@cache
def _docs_asset(name: str) -> bytes:
    return files("recommender.web").joinpath("static", "swagger-ui", name).read_bytes()


async def docs(request: Request) -> Response:
    """Swagger UI on the app's document, its files served from the package."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - API",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        # No calls to swagger.io's online validator either.
        swagger_ui_parameters={"validatorUrl": None},
    )


def health_router(service: Service) -> APIRouter:
    """``/healthz`` of ``service``, and ``/docs`` with its assets."""
    router = APIRouter()

    @router.get(
        "/healthz",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "No run to serve."}},
        summary="Liveness and the run served",
    )
    async def healthz() -> Response:
        health = service.recs.health()
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

    # /docs: Swagger UI from the package, so that it shows without internet.
    for name, media_type in _DOCS_ASSETS.items():
        router.add_route(
            f"/docs/assets/{name}",
            static(partial(_docs_asset, name), media_type),
            include_in_schema=False,
        )
    router.add_route("/docs", docs, include_in_schema=False)
    return router


def openapi_of(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's document, built once, with the schema of
    the events' body (read raw by the route, so not derived from it)."""

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

    return openapi
