"""Events in (``POST /v1/events``): impressions and clicks, rate-limited,
validated and spooled for the next batch run."""

import math
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import ClientDisconnect

from recommender.web.events import EventBatch, spool_rows
from recommender.web.http import Problem, describe_errors, problem
from recommender.web.service import Service


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events stored for the next batch run.")


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


def events_router(service: Service) -> APIRouter:
    """The events endpoint of ``service``."""
    router = APIRouter()
    settings = service.settings

    @router.post(
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
                    # The schema is added to the document by routes_health.openapi_of.
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
            return problem(
                429,
                f"too many event requests from {client}; "
                f"limit {settings.events_rate_per_second:g}/s, burst {settings.events_burst}",
                {"Retry-After": str(math.ceil(wait))},
            )
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("application/json", "text/plain"):
            return problem(415, f"content type {media or '(none)'!r}: send application/json")
        limit = settings.events_max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return problem(400, f"invalid Content-Length {declared!r}")
            if int(declared) > limit:
                return problem(413, f"body of {declared} bytes; at most {limit} accepted")
        try:
            body = await _read_body(request, limit)
        except ClientDisconnect:
            # Gone before the end of its body (or cut off by the body time
            # limit): nothing to store, and nobody to answer.
            return Response(status_code=400)
        if body is None:
            return problem(413, f"body larger than {limit} bytes")
        try:
            batch = EventBatch.model_validate_json(body)
        except ValidationError as error:
            return problem(422, f"events refused, none stored: {describe_errors(error.errors())}")
        if not service.spool.add(spool_rows(batch, datetime.now(UTC))):
            return problem(503, "event spool full; retry later", {"Retry-After": "5"})
        if len(service.spool) >= settings.events_flush_size:
            service.flush_soon()
        return JSONResponse({"accepted": len(batch.events)}, status_code=202)

    return router
