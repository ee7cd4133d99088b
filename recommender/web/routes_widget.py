"""The widget: the block as an HTML fragment (``/widget``, ``/widget/{id}``),
and its embed script and styles (``/widget.js``, ``/widget.css``)."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from recommender.lists import RecommendationList
from recommender.web.assets import EXPERIMENT_PLACEMENTS, FRAGMENT_HEADER, WIDGET_CSS, WIDGET_JS
from recommender.web.http import (
    ID_HELP,
    SECTION_HELP,
    ArticleId,
    PlacementParam,
    k_param,
    list_responses,
    site_param,
    static,
)
from recommender.web.service import Service
from recommender.web.widget import render_widget


def _fragment_responses() -> dict[int | str, dict[str, Any]]:
    return {
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
        **list_responses(),
    }


AbParam = Annotated[
    int | None,
    Query(
        ge=0,
        le=999,
        description="The page view's bucket (widget.js draws it for placements under an A/B "
        "test): the service assigns the variant from it.",
    ),
]


def widget_router(service: Service) -> APIRouter:
    """The fragment and asset endpoints of ``service``."""
    router = APIRouter()
    K: Any = k_param(service.settings)
    Site: Any = site_param(service.settings)
    events_url = service.events_url()

    def fragment(
        request: Request,
        article_id: str | None,
        k: int | None,
        site: str | None,
        placement: str,
        section: str | None = None,
        bucket: int | None = None,
    ) -> Response:
        # The placement's layout, length and list from the config; unknown:
        # the seed page's text list of the page's own list.
        chosen = service.placement(placement)
        variant = service.variant_for(placement, bucket)
        block = service.block(
            chosen, article=article_id, section=section, site=site, k=k, variant=variant
        )

        def as_html(block: RecommendationList) -> str:
            return render_widget(
                block,
                events_url=events_url,
                placement=placement,
                layout=chosen.layout,
                columns=chosen.columns,
                site_images=service.settings.site_images,
                variant=variant[1] if variant else None,
            )

        return service.respond(
            request,
            block,
            ("html", site, k, placement, variant),
            "text/html; charset=utf-8",
            as_html,
            headers={FRAGMENT_HEADER: "1"},
        )

    @router.get(
        "/widget",
        response_class=Response,
        responses=_fragment_responses(),
        summary="The block as an HTML fragment (the id as a parameter)",
    )
    async def widget_of(
        request: Request,
        article: Annotated[str | None, Query(description=ID_HELP)] = None,
        section: Annotated[str | None, Query(description=SECTION_HELP, max_length=200)] = None,
        k: K = None,
        site: Site = None,
        placement: PlacementParam = "widget",
        ab: AbParam = None,
    ) -> Response:
        """The block of a page (same lists and fallbacks as the JSON
        endpoints): under ``article`` on an article page, of ``section`` on
        a section page, else of ``site``'s home page. Heading, then category
        label, linked title and site name per item (and thumbnails, in the
        placement's layout). Empty when there is nothing to show. What
        ``widget.js`` asks for: as a query parameter, no id can change the
        path asked for (a path keeps ``../``, which a browser resolves)."""
        return fragment(request, article, k, site, placement, section, ab)

    @router.get(
        "/widget/{article_id:recommender_text}",
        response_class=Response,
        responses=_fragment_responses(),
        summary="The block as an HTML fragment",
    )
    async def widget(
        request: Request,
        article_id: ArticleId,
        k: K = None,
        site: Site = None,
        placement: PlacementParam = "widget",
    ) -> Response:
        """The same fragment as ``GET /widget?article=``, for a backend that
        includes it server-side (the id percent-encoded into the path)."""
        return fragment(request, article_id, k, site, placement)

    router.add_api_route(
        "/widget.js",
        static(
            WIDGET_JS.replace(EXPERIMENT_PLACEMENTS, json.dumps(sorted(service.experiments))),
            "text/javascript; charset=utf-8",
        ),
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/javascript": {"schema": {"type": "string"}}}}},
        summary="The embed script",
    )
    router.add_api_route(
        "/widget.css",
        static(WIDGET_CSS, "text/css; charset=utf-8"),
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/css": {"schema": {"type": "string"}}}}},
        summary="The block's default styles",
    )
    return router
