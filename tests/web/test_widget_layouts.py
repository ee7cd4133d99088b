"""Layouts and thumbnails: image fallbacks, safety, labels, config keys."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recommender.config import Config, PlacementConfig, SiteConfig
from recommender.lists import Item
from recommender.web.widget import IMAGE_HEIGHT, IMAGE_WIDTH, render_widget, resolve_image
from tests.web.conftest import SEED_BLOCK, item, page

IMAGE = "https://cdn.example/a.jpg"
DEFAULT = "https://savvy.example/default.png"


def _block(image_urls: list[str | None], label: str | None = None):
    block = page("jt-1", "r1", SEED_BLOCK[: len(image_urls)], "japantoday")
    items = tuple(
        dataclasses.replace(it, image_url=url, label=label)
        for it, url in zip(block.items, image_urls, strict=True)
    )
    return dataclasses.replace(block, items=items)


def _images(html: str) -> list[str]:
    return re.findall(r"<img [^>]*>", html)


def test_resolve_image_follows_the_documented_order() -> None:
    assert resolve_image(IMAGE, DEFAULT) == (IMAGE, "article")
    assert resolve_image(None, DEFAULT) == (DEFAULT, "site")
    assert resolve_image("javascript:alert(1)", DEFAULT) == (DEFAULT, "site")
    assert resolve_image("", "") == (None, None)
    assert resolve_image("/relative.jpg", None) == (None, None)


@given(st.text(max_size=40))
def test_resolve_image_only_ever_returns_http_urls(url: str) -> None:
    image, origin = resolve_image(url, None)
    assert (image is None) == (origin is None)
    if image is not None:
        assert image.lower().startswith(("http://", "https://"))


def test_text_layout_shows_no_image_and_no_layout_attributes() -> None:
    html = render_widget(_block([IMAGE, None]))
    assert "<img" not in html and "rec-thumb" not in html
    assert "data-rec-layout" not in html


@pytest.mark.parametrize("layout", ["grid", "sidebar"])
def test_image_layouts_show_safe_lazy_sized_images_and_a_box_per_item(layout: str) -> None:
    site = SEED_BLOCK[1][2]
    html = render_widget(
        _block([IMAGE, None, "javascript:alert(1)"]),
        layout=layout,
        columns=4,
        site_images={site: DEFAULT},
    )
    assert f'data-rec-layout="{layout}"' in html and "--rec-columns: 4" in html
    # On a tablet, two columns, or fewer when the placement asks for fewer.
    assert "--rec-columns-narrow: 2" in html
    one = render_widget(_block([IMAGE]), layout=layout, columns=1)
    assert "--rec-columns: 1; --rec-columns-narrow: 1" in one
    # One fixed-size box per item, whether it holds an image or not.
    assert html.count('<span class="rec-thumb">') == 3
    images = _images(html)
    for tag in images:
        assert 'loading="lazy"' in tag and 'decoding="async"' in tag and 'alt=""' in tag
        assert f'width="{IMAGE_WIDTH}"' in tag and f'height="{IMAGE_HEIGHT}"' in tag
    assert "javascript:" not in html
    assert f'src="{IMAGE}"' in images[0]
    sources = [re.search(r'src="([^"]*)"', tag).group(1) for tag in images]  # type: ignore[union-attr]
    assert sources.count(DEFAULT) == (SEED_BLOCK[1][2] == site) + (SEED_BLOCK[2][2] == site)


def test_an_article_image_names_its_site_default_as_the_fallback() -> None:
    site = SEED_BLOCK[0][2]
    html = render_widget(_block([IMAGE]), layout="grid", site_images={site: DEFAULT})
    assert f'data-rec-fallback="{DEFAULT}"' in html


def test_image_urls_are_escaped() -> None:
    hostile = 'https://cdn.example/a.jpg"onerror="alert(1)'
    html = render_widget(_block([hostile]), layout="grid")
    assert 'onerror="alert(1)' not in html
    assert "&#34;onerror=&#34;alert(1)" in html


def test_label_is_an_escaped_badge() -> None:
    html = render_widget(_block([None], label="<b>Sponsored</b>"))
    assert '<span class="rec-label">&lt;b&gt;Sponsored&lt;/b&gt;</span>' in html
    assert "rec-label" not in render_widget(_block([None]))


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        render_widget(_block([None]), layout="carousel")


def test_item_json_omits_unset_label_and_pinned_and_reads_both_forms() -> None:
    plain = item("r1", 0, "Food", "Title", SEED_BLOCK[0][2])
    assert "label" not in plain.to_dict() and "pinned" not in plain.to_dict()
    assert Item.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain
    marked = dataclasses.replace(plain, label="Sponsored", pinned=True)
    data = marked.to_dict()
    assert data["label"] == "Sponsored" and data["pinned"] is True
    assert Item.from_dict(data) == marked


def test_site_default_image_must_be_an_absolute_http_url() -> None:
    assert SiteConfig(display_name="A", default_image_url=DEFAULT).default_image_url == DEFAULT
    with pytest.raises(ValidationError, match="absolute http"):
        SiteConfig(display_name="A", default_image_url="/img.png")
    with pytest.raises(ValidationError, match=r"sites\.b\.default_image_url"):
        Config.model_validate(
            {
                "sites": {
                    "a": {"display_name": "A"},
                    "b": {"display_name": "B", "default_image_url": "ftp://x/y.png"},
                }
            }
        )


def test_placements_default_to_the_text_layout() -> None:
    assert PlacementConfig().layout == "text" and PlacementConfig().k is None
    with pytest.raises(ValidationError):
        PlacementConfig(layout="carousel")  # type: ignore[arg-type]


def test_the_service_looks_the_placement_up_in_its_settings(settings) -> None:  # type: ignore[no-untyped-def]
    from recommender.web import create_app
    from tests.web.conftest import make_client

    configured = dataclasses.replace(
        settings,
        placements={"side": {"layout": "sidebar", "k": 2, "columns": 1}},
        site_images={"savvytokyo": DEFAULT},
    )
    with make_client(create_app(configured)) as client:
        side = client.get("/widget", params={"article": "jt-1", "placement": "side"}).text
        other = client.get("/widget", params={"article": "jt-1", "placement": "footer"}).text
    assert 'data-rec-layout="sidebar"' in side
    assert side.count('<li class="rec-item">') == 2
    # The first item (savvytokyo, no image of its own) shows its site's default image.
    assert f'src="{DEFAULT}"' in side
    assert "data-rec-layout" not in other and "<img" not in other
