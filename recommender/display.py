"""How a placement shows its block, for a backend that renders its own HTML.

The HTTP service's widget and its JSON answers are built from these, so a
Flask or Django backend that imports the library gets the same choices::

    from recommender.display import Placement, display_dict, placement_list
    from recommender.serving import Recommendations

    recs = Recommendations("sqlite:///recommendations.sqlite")
    grid = Placement(layout="grid", k=6, columns=3)
    block = placement_list(recs, grid, article="jt-070", site="japantoday")
    payload = display_dict(block, grid, site_images={"savvytokyo": "https://..."})

- **Page types.** An article page asks with ``article``; a section page with
  ``section`` (the site's own category label) and ``site``; a site's home
  page with ``site`` alone. Each has its own list (see
  :data:`recommender.lists.SECTION_PAGE_PREFIX`), with the usual fallbacks.
- **Sources.** A placement's ``source`` picks the list: ``mix`` (the page's
  own), ``trending`` (the site's trending mix on any page) or ``related``
  (the article's related-only list, when the batch publishes them).
- **Images.** Each item's image follows the fallback order of
  :func:`resolve_image`: the article's own image, else its site's default
  image, else none; ``image_source`` says which.

Standard library only, like :mod:`recommender.serving`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recommender.lists import RecommendationList, variant_page_id
from recommender.serving import Recommendations, is_http_url

#: Layouts a placement may choose (see ``[placements]`` in the configuration).
LAYOUTS = ("text", "grid", "sidebar")
#: Lists a placement may show.
SOURCES = ("mix", "trending", "related")
#: Intrinsic size given to thumbnails (16:9), so that the box never jumps.
IMAGE_WIDTH, IMAGE_HEIGHT = 320, 180


@dataclass(frozen=True)
class Placement:
    """One placement's display settings (the config's ``[placements.<key>]``).

    ``layout``: ``text``, ``grid`` or ``sidebar``; ``k``: items shown (None:
    the caller's or the list's); ``columns``: the grid's columns on a wide
    screen; ``source``: ``mix``, ``trending`` or ``related``.
    """

    name: str = "widget"
    layout: str = "text"
    k: int | None = None
    columns: int = 3
    source: str = "mix"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.k is not None and self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.columns < 1:
            raise ValueError(f"columns must be >= 1, got {self.columns}")

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any] | None) -> Placement:
        """The placement ``name`` from the service's settings (a dumped
        ``[placements.<name>]``); an unknown one gets the defaults."""
        chosen = dict(settings or {})
        return cls(
            name=name,
            layout=str(chosen.get("layout", "text")),
            k=None if chosen.get("k") is None else int(chosen["k"]),
            columns=int(chosen.get("columns", 3)),
            source=str(chosen.get("source", "mix")),
        )


def resolve_image(image_url: str | None, site_default: str | None) -> tuple[str | None, str | None]:
    """An item's image and where it came from, in the fallback order: the
    article's own image (``"article"``), else its site's
    ``default_image_url`` (``"site"``), else none (``(None, None)``). Only
    absolute http(s) URLs count, as for links."""
    if image_url and is_http_url(image_url):
        return image_url, "article"
    if site_default and is_http_url(site_default):
        return site_default, "site"
    return None, None


def placement_list(
    recs: Recommendations,
    placement: Placement,
    *,
    article: str | None = None,
    section: str | None = None,
    site: str | None = None,
    k: int | None = None,
    variant: tuple[str, str] | None = None,
) -> RecommendationList:
    """The list ``placement`` shows on a page: an article's (``article``), a
    section's (``section`` of ``site``) or a site's home page (``site``
    alone; the network's without it). ``k``: the request's length, else the
    placement's, else the list's. ``variant``: (experiment, variant) of the
    page view (see :mod:`recommender.experiments`): on an article page, the
    variant's own list when the batch published one."""
    k = k if k is not None else placement.k
    if variant is not None and article is not None and placement.source == "mix":
        # An experiment variant's own list of the article, else the article's.
        found = recs.get(variant_page_id(*variant, article), k, site=site)
        if not found.fallback:
            return RecommendationList(
                article, found.site, found.items, found.run_id, found.generated_at
            )
    if placement.source == "trending" or (article is None and section is None):
        block = recs.site_page(site, k) if site else recs.network_page(k)
        if article is not None and placement.source == "trending":
            return RecommendationList(
                article, block.site, block.items, block.run_id, block.generated_at
            )
        return block
    if article is not None:
        if placement.source == "related":
            return recs.related(article, k, site=site)
        return recs.get(article, k, site=site)
    if site is None:
        return recs.network_page(k)
    return recs.section_page(site, str(section), k)


def display_items(
    block: RecommendationList, site_images: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The items a block can show (http(s) links only), each with its
    resolved ``image`` and ``image_source`` and, when its site has a default
    image and the article has its own, the ``image_fallback`` to use when
    the article's image fails to load."""
    site_images = site_images or {}
    shown = []
    for item in block.items:
        if not is_http_url(item.url):
            continue
        default = site_images.get(item.site)
        image, origin = resolve_image(item.image_url, default)
        data = item.to_dict()
        data["image_url"] = item.image_url if is_http_url(item.image_url) else None
        data["image"] = image
        data["image_source"] = origin
        data["image_fallback"] = (
            default if origin == "article" and default and is_http_url(default) else None
        )
        shown.append(data)
    return shown


def display_dict(
    block: RecommendationList,
    placement: Placement | None = None,
    site_images: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``block`` as a backend renders it: the list's fields, the
    placement's ``placement``, ``layout`` and ``columns``, and its items as
    :func:`display_items` gives them."""
    placement = placement or Placement()
    data = block.to_dict()
    data["placement"] = placement.name
    data["layout"] = placement.layout
    data["columns"] = placement.columns
    data["items"] = display_items(block, site_images)
    return data


__all__ = [
    "IMAGE_HEIGHT",
    "IMAGE_WIDTH",
    "LAYOUTS",
    "SOURCES",
    "Placement",
    "display_dict",
    "display_items",
    "placement_list",
    "resolve_image",
]
