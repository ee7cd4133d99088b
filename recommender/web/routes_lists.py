"""Lists as JSON: a page's recommendations (``/v1/recommendations/{id}``) and
a site's trending mix (``/v1/trending``)."""

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from recommender.lists import RecommendationList
from recommender.web.http import ArticleId, k_param, list_responses, site_param
from recommender.web.service import Service


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


def _as_json(block: RecommendationList) -> str:
    return block.to_json()


def lists_router(service: Service) -> APIRouter:
    """The list endpoints of ``service`` (their parameters follow its settings)."""
    router = APIRouter()
    K: Any = k_param(service.settings)
    Site: Any = site_param(service.settings)

    @router.get(
        "/v1/recommendations/{article_id:recommender_text}",
        response_model=ListOut,
        responses=list_responses(),
        summary="A page's list",
    )
    async def recommendations_of_page(
        request: Request, article_id: ArticleId, k: K = None, site: Site = None
    ) -> Response:
        """The list published for ``article_id``; for an unknown article or an
        empty list, the site's trending mix (with ``site``), else the
        network's, else an empty list (``fallback`` is then true, and
        ``fallback_source`` says which)."""
        block = service.page_list(article_id, k, site)
        return service.respond(request, block, ("json", site, k), "application/json", _as_json)

    @router.get(
        "/v1/trending",
        response_model=ListOut,
        responses=list_responses(),
        summary="A site's trending mix",
    )
    async def trending(request: Request, site: Site = None, k: K = None) -> Response:
        """The trending mix shown on ``site``'s pages without an article (the
        network's without ``site``)."""
        block = service.trending(site, k)
        return service.respond(request, block, ("json", site, k), "application/json", _as_json)

    return router
