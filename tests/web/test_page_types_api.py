"""The HTTP service's page types and placements: section and home pages,
trending-only and related-only placements, and the layout and resolved
images in the JSON answers (what a backend rendering its own HTML reads)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recommender.lists import RunInfo, related_page_id, section_page_id, site_page_id
from recommender.store import open_store
from recommender.web import ServiceSettings, create_app
from tests.web.conftest import SEED_BLOCK, make_client, network_lists, page
from tests.web.test_widget import Block

SECTION = [("Food", "Ramen in Osaka", "savvytokyo"), ("Food", "Sake tours", "gaijinpot-travel")]
RELATED = [("Families", "Baby slings on trains", "gaijinpot-blog")]
OWN_IMAGE = "https://img.example/own.png"
SAVVY_DEFAULT = "https://img.example/savvy-default.png"


@pytest.fixture
def app_settings(tmp_path: Path) -> ServiceSettings:
    url = f"sqlite:///{tmp_path / 'lists.sqlite'}"
    jt1 = page("jt-1", "run-01", SEED_BLOCK, "japantoday")
    # The first item has its own image; the others none (savvytokyo has a default).
    first = dataclasses.replace(jt1.items[0], image_url=OWN_IMAGE)
    lists = [
        dataclasses.replace(jt1, items=(first, *jt1.items[1:])),
        *network_lists("run-01")[1:],
        page(section_page_id("japantoday", "Food"), "run-01", SECTION, "japantoday"),
        page(related_page_id("jt-1"), "run-01", RELATED, "japantoday"),
    ]
    store = open_store(url)
    store.publish(lists, RunInfo("run-01", "2021-03-08T00:00:00+00:00"))
    store.close()
    return ServiceSettings(
        store_url=url,
        events_dir=tmp_path / "events",
        refresh_seconds=0,
        site_images={"savvytokyo": SAVVY_DEFAULT},
        placements={
            "below": {"layout": "grid", "k": 4, "columns": 4, "source": "mix"},
            "side": {"layout": "sidebar", "k": None, "columns": 3, "source": "related"},
            "hot": {"layout": "text", "k": 2, "columns": 3, "source": "trending"},
        },
    )


@pytest.fixture
def api(app_settings: ServiceSettings):
    with make_client(create_app(app_settings)) as client:
        yield client


def titles(data: dict) -> list[str]:
    return [item["title"] for item in data["items"]]


def test_the_json_names_the_layout_and_resolves_each_image(api) -> None:
    data = api.get("/v1/recommendations/jt-1", params={"placement": "below"}).json()
    assert (data["placement"], data["layout"], data["columns"]) == ("below", "grid", 4)
    assert titles(data) == [t for _, t, _ in SEED_BLOCK[:4]]  # the placement's k
    first, second = data["items"][:2]
    assert (first["image"], first["image_source"], first["image_fallback"]) == (
        OWN_IMAGE,
        "article",
        SAVVY_DEFAULT,
    )
    assert (second["image"], second["image_source"]) == (None, None)  # gaijinpot-blog: none
    default = api.get("/v1/recommendations/jt-1").json()
    assert (default["placement"], default["layout"]) == ("widget", "text")
    assert len(default["items"]) == len(SEED_BLOCK)


def test_each_placement_shows_its_list(api) -> None:
    related = api.get("/v1/recommendations/jt-1", params={"placement": "side"}).json()
    assert titles(related) == [t for _, t, _ in RELATED] and not related["fallback"]
    assert related["source_id"] == "jt-1" and related["layout"] == "sidebar"
    trending = api.get(
        "/v1/recommendations/jt-1", params={"placement": "hot", "site": "japantoday"}
    )
    assert titles(trending.json()) == [t for _, t, _ in SEED_BLOCK[2:4]]
    # No related list published for this page: the page's own list.
    fallback = api.get("/v1/recommendations/evil", params={"placement": "side"}).json()
    assert fallback["source_id"] == "evil" and fallback["items"]


def test_section_and_home_pages_have_their_lists(api) -> None:
    section = api.get("/v1/section", params={"site": "japantoday", "category": "Food"}).json()
    assert titles(section) == [t for _, t, _ in SECTION] and not section["fallback"]
    other = api.get("/v1/section", params={"site": "japantoday", "category": "Sport"}).json()
    assert other["fallback"] and other["fallback_source"] == "site"
    assert other["source_id"] == section_page_id("japantoday", "Sport")
    assert api.get("/v1/section", params={"category": "Food"}).status_code == 422  # needs site
    home = api.get("/v1/trending", params={"site": "japantoday"}).json()
    assert home["source_id"] == site_page_id("japantoday")


def test_the_widget_renders_section_and_home_pages_in_the_placements_layout(api) -> None:
    section = api.get(
        "/widget", params={"section": "Food", "site": "japantoday", "placement": "below"}
    )
    assert [row["title"] for row in Block(section.text).rows] == [t for _, t, _ in SECTION]
    assert 'data-rec-layout="grid"' in section.text
    assert 'data-rec-source="section:japantoday:Food"' in section.text
    home = api.get("/widget", params={"site": "japantoday"})
    assert [row["title"] for row in Block(home.text).rows] == [t for _, t, _ in SEED_BLOCK[2:]]
    grid = api.get("/widget", params={"article": "jt-1", "placement": "below"}).text
    assert f'src="{OWN_IMAGE}"' in grid and f'data-rec-fallback="{SAVVY_DEFAULT}"' in grid
