"""The block as HTML: "A mix of what's trending on our other sites".

The fragment reproduces the seed page's block: the heading, then for each
item the partner site's category label (omitted when empty), the linked
title and the site's display name::

    <section class="rec-block" data-rec-source="jt-070" ...>
      <h2 class="rec-heading">A mix of what's trending on our other sites</h2>
      <ol class="rec-items">
        <li class="rec-item">
          <span class="rec-category">Families</span>
          <a class="rec-title" href="https://savvytokyo.com/...?utm_source=japantoday&...">...</a>
          <span class="rec-site">Savvy Tokyo</span>
        </li>
        ...

Every value is untrusted text: the template escapes all of it (Jinja2
autoescape), and only items with an absolute http(s) URL are linked (see
:func:`recommender.serving.only_http_links`; the check is repeated here so
that a list built by hand is safe too). Links carry tracking parameters
(:func:`tracked_url`); the ``data-rec-*`` attributes let ``widget.js`` report
impressions and clicks to the service's ``POST /v1/events``.

Needs only Jinja2 (the ``web`` extra), so a Flask or Django backend can
render the block without the HTTP service.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from jinja2 import Environment, StrictUndefined

from recommender.display import IMAGE_HEIGHT, IMAGE_WIDTH, LAYOUTS, display_items, resolve_image
from recommender.ids import is_valid_id
from recommender.lists import HEADING, NETWORK_PAGE, RecommendationList
from recommender.serving import is_http_url

# A relative events URL: path segments of plain characters (no scheme, no host).
_RELATIVE_URL = re.compile(r"^/?[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?$")

#: The block's heading, as on the seed page.

#: Query parameters added to every recommended link (values: see :func:`tracked_url`).
TRACKING_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")

_TEMPLATE = """\
<section class="rec-block{% if layout != "text" %} rec-layout-{{ layout }}{% endif %}"\
{% if source_id %} data-rec-source="{{ source_id }}"{% endif %} \
data-rec-run="{{ run_id }}" data-rec-placement="{{ placement }}"\
{% if events_url %} data-rec-events="{{ events_url }}"{% endif %}\
{% if layout != "text" %} data-rec-layout="{{ layout }}" style="--rec-columns: {{ columns }}; \
--rec-columns-narrow: {{ narrow }}"\
{% endif %}>
<h2 class="rec-heading">{{ heading }}</h2>
<ol class="rec-items">
{% for item in items %}
<li class="rec-item">\
{% if layout != "text" %}<span class="rec-thumb">\
{% if item.image %}<img class="rec-image" src="{{ item.image }}" alt="" loading="lazy" \
decoding="async" width="{{ width }}" height="{{ height }}"\
{% if item.fallback %} data-rec-fallback="{{ item.fallback }}"{% endif %}>{% endif %}\
</span>{% endif %}\
{% if item.label %}<span class="rec-label">{{ item.label }}</span>{% endif %}\
{% if item.category %}<span class="rec-category">{{ item.category }}</span>{% endif %}\
<a class="rec-title" href="{{ item.href }}" data-rec-article="{{ item.article_id }}">\
{{ item.title }}</a>\
<span class="rec-site">{{ item.site_name }}</span></li>
{% endfor %}
</ol>
</section>
"""

_environment = Environment(
    autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_template = _environment.from_string(_TEMPLATE)


def tracked_url(url: str, *, source_site: str | None, source_id: str, placement: str) -> str:
    """``url`` with the tracking parameters of a click from the block.

    ``utm_source``: the site of the page showing the block (``network`` when
    unknown); ``utm_medium``: ``recommendations``; ``utm_campaign``: the
    placement; ``utm_content``: the page's article id (left out when
    ``source_id`` is empty). The URL's own query and fragment are kept as they
    were, except earlier values of these four parameters, which are replaced.
    """
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and pair.split("=", 1)[0] not in TRACKING_PARAMETERS
    ]
    tracking = {
        "utm_source": source_site or NETWORK_PAGE,
        "utm_medium": "recommendations",
        "utm_campaign": placement,
    }
    if source_id:
        tracking["utm_content"] = source_id
    ours = urlencode(tracking)
    return urlunsplit(parts._replace(query="&".join([*kept, ours])))


def render_widget(
    block: RecommendationList,
    *,
    events_url: str | None = None,
    placement: str = "widget",
    heading: str = HEADING,
    layout: str = "text",
    columns: int = 3,
    site_images: dict[str, str] | None = None,
) -> str:
    """The HTML fragment of ``block`` ("" when it has no item to show).

    ``events_url``: URL of the service's ``POST /v1/events``, absolute
    (http or https) or relative to the address ``widget.js`` was loaded from;
    when given, ``widget.js`` reports the block's impressions and clicks
    there. ``placement``: where on the page the block sits (tracking only).
    ``layout``: ``text`` (the seed page's list, no images), ``grid`` or
    ``sidebar`` (thumbnails, see :func:`resolve_image`; ``site_images`` maps
    a site key to its default image); ``columns``: the grid's columns.

    A ``block`` served for an invalid page id (see :mod:`recommender.ids`;
    the service answers those with a fallback) names no source page: the
    events endpoint would refuse it, and a link should not carry it.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    source_id = block.source_id if is_valid_id(block.source_id) else ""
    items = [
        {
            "article_id": item["article_id"],
            "category": item["category"],
            "title": item["title"],
            "site_name": item["site_name"],
            "label": item.get("label"),
            "image": item["image"],
            "fallback": item["image_fallback"],
            "href": tracked_url(
                item["url"], source_site=block.site, source_id=source_id, placement=placement
            ),
        }
        for item in display_items(block, site_images)
    ]
    if not items:
        return ""
    return _template.render(
        source_id=source_id,
        run_id=block.run_id,
        placement=placement,
        events_url=events_url if _is_events_url(events_url) else None,
        heading=heading,
        items=items,
        layout=layout,
        columns=max(1, int(columns)),
        narrow=min(max(1, int(columns)), 2),
        width=IMAGE_WIDTH,
        height=IMAGE_HEIGHT,
    )


def _is_events_url(url: str | None) -> bool:
    return bool(url) and (is_http_url(url) or bool(_RELATIVE_URL.match(url or "")))


__all__ = [
    "IMAGE_HEIGHT",
    "IMAGE_WIDTH",
    "LAYOUTS",
    "TRACKING_PARAMETERS",
    "render_widget",
    "resolve_image",
    "tracked_url",
]
