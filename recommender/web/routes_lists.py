"""Lists as JSON: a page's recommendations (``/v1/recommendations/{id}``) and
a site's trending mix (``/v1/trending``)."""

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from recommender.display import Placement, display_dict
from recommender.lists import RecommendationList
from recommender.web.http import (
    SECTION_HELP,
    ArticleId,
    PlacementParam,
    k_param,
    list_responses,
    site_param,
)
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
    reason: str = Field(description="`related`, `trending` or `pinned`.")
    label: str | None = Field(
        default=None, description="A pinned item's label (e.g. `Sponsored`), when it has one."
    )
    pinned: bool = Field(default=False, description="True when an editor pinned the item.")
    image: str | None = Field(
        description="The image to show: the article's own, else its site's default, else null."
    )
    image_source: Literal["article", "site"] | None = Field(
        description="Where `image` comes from (null: no image)."
    )
    image_fallback: str | None = Field(
        description="The site's default image, to show if the article's own fails to load."
    )


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
    placement: str = Field(description="The placement asked for.")
    layout: Literal["text", "grid", "sidebar"] = Field(description="The placement's layout.")
    columns: int = Field(description="The grid's columns on a wide screen.")
    items: list[ItemOut] = Field(description="Items with http(s) links only.")


def _as_json(service: Service, placement: Placement) -> Callable[[RecommendationList], str]:
    def render(block: RecommendationList) -> str:
        data = display_dict(block, placement, service.settings.site_images)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    return render


def lists_router(service: Service) -> APIRouter:
    """The list endpoints of ``service`` (their parameters follow its settings)."""
    router = APIRouter()
    K: Any = k_param(service.settings)
    Site: Any = site_param(service.settings)
    SiteOfSection: Any = site_param(service.settings, required=True)

    def answer(
        request: Request,
        placement: str,
        site: str | None,
        k: int | None,
        article: str | None = None,
        section: str | None = None,
    ) -> Response:
        """The JSON of the list ``placement`` shows on the page named."""
        chosen = service.placement(placement)
        block = service.block(chosen, site=site, k=k, article=article, section=section)
        key = ("json", site, k, placement)
        return service.respond(request, block, key, "application/json", _as_json(service, chosen))

    @router.get(
        "/v1/recommendations/{article_id:recommender_text}",
        response_model=ListOut,
        responses=list_responses(),
        summary="A page's list",
    )
    async def recommendations_of_page(
        request: Request,
        article_id: ArticleId,
        k: K = None,
        site: Site = None,
        placement: PlacementParam = "widget",
    ) -> Response:
        """The list published for ``article_id`` (or the one its placement
        asks for: the site's trending mix, or the article's related-only
        list); for an unknown article or an empty list, the site's trending
        mix (with ``site``), else the network's, else an empty list
        (``fallback`` is then true, and ``fallback_source`` says which)."""
        return answer(request, placement, site, k, article=article_id)

    @router.get(
        "/v1/section",
        response_model=ListOut,
        responses=list_responses(),
        summary="A section page's list",
    )
    async def section_page(
        request: Request,
        site: SiteOfSection,
        category: Annotated[str, Query(description=SECTION_HELP, max_length=200)],
        k: K = None,
        placement: PlacementParam = "widget",
    ) -> Response:
        """The list of ``site``'s section page ``category`` (its trending
        pool ranked by relevance to the section's articles and trend), else
        the site's trending mix, else the network's."""
        return answer(request, placement, site, k, section=category)

    @router.get(
        "/v1/trending",
        response_model=ListOut,
        responses=list_responses(),
        summary="A site's trending mix",
    )
    async def trending(
        request: Request, site: Site = None, k: K = None, placement: PlacementParam = "widget"
    ) -> Response:
        """The trending mix shown on ``site``'s home page (the network's
        without ``site``)."""
        return answer(request, placement, site, k)

    return router
