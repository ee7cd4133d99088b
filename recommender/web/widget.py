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
impressions and clicks to the service's ``POST /v1/events``: the block
names its run (``data-rec-run``), placement and, in an experiment, its
variant (``data-rec-variant``); each link its article, its slot
(``data-rec-position``, 1 = the first item shown) and, where the list was
randomised, the probability it was shown with (``data-rec-propensity``).

Needs only Jinja2 (the ``web`` extra), so a Flask or Django backend can
render the block without the HTTP service.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

from jinja2 import Environment, StrictUndefined

from recommender.display import IMAGE_HEIGHT, IMAGE_WIDTH, LAYOUTS, display_items, resolve_image
from recommender.ids import is_valid_id
from recommender.lists import HEADING, NETWORK_PAGE, RecommendationList
from recommender.serving import is_http_url
from recommender.spool import TOKEN_PATTERN

# A relative events URL: path segments of plain characters (no scheme, no host).
_RELATIVE_URL = re.compile(r"^/?[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?$")

#: The block's heading, as on the seed page.

#: Query parameters added to every recommended link (values: see :func:`tracked_url`).
TRACKING_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")

_TEMPLATE = """\
<section class="rec-block{% if layout != "text" %} rec-layout-{{ layout }}{% endif %}"\
{% if source_id %} data-rec-source="{{ source_id }}"{% endif %} \
data-rec-run="{{ run_id }}" data-rec-placement="{{ placement }}"\
{% if variant %} data-rec-variant="{{ variant }}"{% endif %}\
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
{% if item.category %}<span class="rec-category">{{ item.category }}</span>\
{% elif layout != "text" %}<span class="rec-category" aria-hidden="true"></span>{% endif %}\
<a class="rec-title" href="{{ item.href }}" data-rec-article="{{ item.article_id }}" \
data-rec-position="{{ loop.index }}"\
{% if item.propensity is not none %} data-rec-propensity="{{ item.propensity }}"{% endif %}>\
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
    variant: str | None = None,
    propensities: Sequence[float] | None = None,
) -> str:
    """The HTML fragment of ``block`` ("" when it has no item to show).

    ``events_url``: URL of the service's ``POST /v1/events``, absolute
    (http or https) or relative to the address ``widget.js`` was loaded from;
    when given, ``widget.js`` reports the block's impressions and clicks
    there. ``placement``: where on the page the block sits (tracking only).
    ``layout``: ``text`` (the seed page's list, no images), ``grid`` or
    ``sidebar`` (thumbnails, see :func:`resolve_image`; ``site_images`` maps
    a site key to its default image); ``columns``: the grid's columns.

    ``variant``: the experiment variant that chose ``block`` (a token, see
    :data:`recommender.spool.TOKEN_PATTERN`), written on the block so that
    its events carry it; None outside an experiment. ``propensities``: per
    item of ``block.items`` (in its order), the probability in (0, 1] with
    which the policy showed it, where the list was randomised; written on
    each shown item's link. Each link also carries its slot among the items
    shown (1 = the first).

    A ``block`` served for an invalid page id (see :mod:`recommender.ids`;
    the service answers those with a fallback) names no source page: the
    events endpoint would refuse it, and a link should not carry it.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if variant is not None and not re.fullmatch(TOKEN_PATTERN, variant):
        raise ValueError(
            f"variant must be 1 to 64 letters, digits or _ . : - (events carry it), got {variant!r}"
        )
    chances = _propensities(block, propensities)
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
            "propensity": chance,
        }
        for item, chance in zip(display_items(block, site_images), chances, strict=True)
    ]
    if not items:
        return ""
    return _template.render(
        source_id=source_id,
        run_id=block.run_id,
        placement=placement,
        variant=variant,
        events_url=events_url if _is_events_url(events_url) else None,
        heading=heading,
        items=items,
        layout=layout,
        columns=max(1, int(columns)),
        narrow=min(max(1, int(columns)), 2),
        width=IMAGE_WIDTH,
        height=IMAGE_HEIGHT,
    )


def _propensities(
    block: RecommendationList, propensities: Sequence[float] | None
) -> list[str | None]:
    """Per item :func:`display_items` shows, its propensity as the attribute's
    text (None: none given)."""
    shown = [is_http_url(item.url) for item in block.items]
    if propensities is None:
        return [None] * sum(shown)
    if len(propensities) != len(block.items):
        raise ValueError(
            f"propensities: {len(propensities)} given for the block's {len(block.items)} items"
        )
    for n, value in enumerate(propensities, start=1):
        if isinstance(value, bool) or not (math.isfinite(value) and 0 < value <= 1):
            raise ValueError(f"propensities: item {n}'s {value!r} is not a probability in (0, 1]")
    return [repr(float(p)) for p, keep in zip(propensities, shown, strict=True) if keep]


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
