"""HTTP plumbing shared by the service's routers: problem+json errors, ETags,
static responses, and the parameters and answers of the list endpoints."""

import hashlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.convertors import Convertor, register_url_convertor

from recommender.web.settings import SITE_KEY_PATTERN, TOKEN_PATTERN, ServiceSettings

STATIC_MAX_AGE = 3600


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

ID_HELP = (
    "An article id. One that is not a valid id (control characters, line or "
    "paragraph separators, surrounding whitespace, over 256 characters) is an "
    "unknown page: it gets the fallback."
)
#: A page's id in the path (``{article_id:recommender_text}``).
ArticleId = Annotated[str, Path(description=ID_HELP)]
#: Where the block sits: its configured layout, length and list, and the clicks' campaign.
PlacementParam = Annotated[
    str,
    Query(
        pattern=TOKEN_PATTERN,
        description="Where the block sits: the configured placement's layout, number of "
        "items and list (`mix`, `trending` or `related`); an unknown one gets the defaults.",
    ),
]
SECTION_HELP = (
    "A section page: the site's own category label (e.g. `Politics`); needs `site`. "
    "An unknown section gets the site's trending mix."
)


def k_param(settings: ServiceSettings) -> Any:
    """The annotation of the ``k`` query parameter (1 to ``settings.max_k``)."""
    return Annotated[
        int | None, Query(ge=1, le=settings.max_k, description="At most this many items.")
    ]


def site_param(settings: ServiceSettings, *, required: bool = False) -> Any:
    """The annotation of the ``site`` query parameter (optional unless
    ``required``). With a registry, the spec lists the network's sites and
    others are refused."""
    site_help = "Site of the page (registry key): its trending mix is the fallback."
    kind: Any = Literal[tuple(sorted(settings.sites))] if settings.sites else str
    pattern = None if settings.sites else SITE_KEY_PATTERN
    return Annotated[
        kind if required else kind | None, Query(pattern=pattern, description=site_help)
    ]


class Problem(BaseModel):
    detail: str = Field(description="What is wrong with the request.")


def list_responses() -> dict[int | str, dict[str, Any]]:
    """The answers of a list or fragment endpoint besides its 200."""
    return {
        304: {"description": "Not modified: the `If-None-Match` ETag is current."},
        422: {"model": Problem, "description": "A parameter is invalid."},
    }


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def describe_errors(errors: Sequence[Any], limit: int = 5) -> str:
    """Pydantic's errors as one line: ``where: what`` for the first ``limit``."""
    problems = []
    for error in errors[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    more = len(errors) - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def etag_of(*parts: object) -> str:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=12)
    return f'"{digest.hexdigest()}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def static(content: str | Callable[[], bytes], media_type: str) -> Callable[[Request], Response]:
    """A route serving ``content`` (or what it returns, read once when
    first asked for) with a long cache and an ETag."""
    loaded: list[tuple[bytes, str]] = []

    def serve(request: Request) -> Response:
        if not loaded:
            body = content() if callable(content) else content.encode()
            loaded.append((body, etag_of(hashlib.blake2b(body).hexdigest())))
        body, etag = loaded[0]
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={STATIC_MAX_AGE}"}
        if matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    return serve
