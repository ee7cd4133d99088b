"""Page types and what a placement shows: article, section and home pages
each get their own list; a placement asks for the mix, trending only or
related only; a backend gets the layout and each item's resolved image."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.display import Placement, display_dict, display_items, placement_list
from recommender.errors import ConfigError
from recommender.lists import (
    NETWORK_PAGE,
    Item,
    RecommendationList,
    RunInfo,
    related_page_id,
    section_page_id,
    site_page_id,
)
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from recommender.serving import Recommendations, is_http_url
from recommender.store import open_store
from tests.conftest import TINY_ARTICLES, tiny_articles, tiny_config, tiny_events

RELEVANCE_ONLY = {"relevance": 1.0, "trend": 0.0, "freshness": 0.0}
TOPIC = {"sake": ("a-sake", "b-sake", "c-sake"), "fuji": ("a-fuji", "b-fuji", "c-fuji")}


def fitted(tmp_path: Path, **mix) -> Recommender:
    config = tiny_config(tmp_path, mix=mix)
    articles = validate_articles(tiny_articles()).valid
    return Recommender(config).fit(articles, validate_events(tiny_events()).valid)


def by_id(model: Recommender) -> dict[str, RecommendationList]:
    return {
        lst.source_id: lst for lst in model.recommendation_lists("run", "2021-03-08T00:00:00+00:00")
    }


def ids(lst: RecommendationList) -> list[str]:
    return [item.article_id for item in lst.items]


# -- section pages ----------------------------------------------------------------
def test_every_site_gets_a_list_per_category_label(tmp_path: Path) -> None:
    lists = by_id(fitted(tmp_path))
    expected = {section_page_id(site, label) for _, site, _, _, label, _ in TINY_ARTICLES}
    assert {s for s in lists if s.startswith("section:")} == expected
    for source_id in expected:
        site = source_id.split(":")[1]
        assert lists[source_id].site == site
        assert all(item.site != site for item in lists[source_id].items)  # other sites only


def test_a_section_page_ranks_by_relevance_to_its_articles(tmp_path: Path) -> None:
    # With relevance alone, alpha's "Food" section (its sake article) shows
    # the other sites' sake articles first, and its "Travel" section their Fuji ones.
    lists = by_id(fitted(tmp_path, weights=RELEVANCE_ONLY))
    food = ids(lists[section_page_id("alpha", "Food")])
    travel = ids(lists[section_page_id("alpha", "Travel")])
    assert set(food[:2]) == set(TOPIC["sake"][1:])
    assert set(travel[:2]) == set(TOPIC["fuji"][1:])


def test_section_pages_can_be_turned_off(tmp_path: Path) -> None:
    lists = by_id(fitted(tmp_path, section_pages=False))
    assert not [s for s in lists if s.startswith("section:")]
    assert site_page_id("alpha") in lists and NETWORK_PAGE in lists


# -- related-only lists -----------------------------------------------------------
def test_related_lists_rank_by_relevance_alone(tmp_path: Path) -> None:
    model = fitted(tmp_path, related_lists=True, min_relevance=0.05)
    lists = by_id(model)
    for aid, *_ in TINY_ARTICLES:
        related = lists[related_page_id(aid)]
        scores = [item.relevance for item in related.items]
        assert scores == sorted(scores, reverse=True)
        assert all(score >= 0.05 for score in scores)
        assert all(item.reason == "related" and item.article_id != aid for item in related.items)
    # A sake article's related list starts with the other sites' sake articles.
    assert set(ids(lists[related_page_id("a-sake")])[:2]) == set(TOPIC["sake"][1:])
    assert not any(s.startswith("related:") for s in by_id(fitted(tmp_path)))  # off by default


def test_an_update_with_related_and_section_lists_equals_the_full_computation(
    tmp_path: Path,
) -> None:
    config = tiny_config(tmp_path, mix={"related_lists": True})
    articles = validate_articles(tiny_articles()).valid
    old = Recommender(config).fit(articles, validate_events(tiny_events()).valid)
    # Other traffic, one article withdrawn, one edited: trend, eligibility,
    # features and the pools change.
    later = tiny_articles()
    later.loc[later["article_id"] == "b-sake", "status"] = "draft"
    later.loc[later["article_id"] == "a-fuji", "body"] += " Huts on the trail sell sake."
    later = validate_articles(later).valid
    busier = validate_events(tiny_events({"c-fuji": 500, "a-baby": 90})).valid
    incremental = old.update(later, busier)
    full = old.update(later, busier, incremental=False)
    assert incremental.update_stats_["incremental"]
    assert by_id(incremental) == by_id(full)
    assert by_id(incremental) != by_id(old)
    assert all("b-sake" not in ids(lst) for lst in by_id(incremental).values())
    # What an update says it changed is what changed.
    before = {p.source_id: p.json for p in old.list_payloads("run", "t")}
    after = {p.source_id: p.json for p in incremental.list_payloads("run", "t")}
    differs = [before.get(source) != after[source] for source in after]
    assert incremental.changed_lists_.tolist() == differs


def test_a_related_placement_needs_related_lists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"placements\.side\.source.*related_lists"):
        tiny_config(tmp_path, placements={"side": {"source": "related"}})
    config = tiny_config(
        tmp_path, placements={"side": {"source": "related"}}, mix={"related_lists": True}
    )
    assert config.placements["side"].source == "related"


# -- serving: what each placement shows on each page ------------------------------
@pytest.fixture
def served(tmp_path: Path) -> Recommendations:
    model = fitted(tmp_path, related_lists=True)
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    store.publish(list(model.list_payloads("run-1")), RunInfo("run-1", "2021-03-08T00:00:00Z"))
    store.close()
    recs = Recommendations(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield recs
    recs.close()


def test_each_page_type_and_source_gets_its_own_list(served: Recommendations) -> None:
    mix, trending, related = (Placement(source=s) for s in ("mix", "trending", "related"))
    article = placement_list(served, mix, article="a-sake", site="alpha")
    assert article == served.get("a-sake", site="alpha") and not article.fallback
    section = placement_list(served, mix, section="Food", site="alpha")
    assert section.source_id == section_page_id("alpha", "Food") and not section.fallback
    home = placement_list(served, mix, site="alpha")
    assert home.source_id == site_page_id("alpha") and not home.fallback
    assert placement_list(served, mix).source_id == NETWORK_PAGE
    # Trending only: the site's mix whatever the page, shown under the article's id.
    only_trending = placement_list(served, trending, article="a-sake", site="alpha")
    assert only_trending.source_id == "a-sake"
    assert only_trending.items == served.site_page("alpha").items
    only_related = placement_list(served, related, article="a-sake", site="alpha")
    assert only_related.source_id == "a-sake" and not only_related.fallback
    assert only_related.items == served.get(related_page_id("a-sake")).items
    assert only_related.items != article.items
    assert len(placement_list(served, Placement(k=2), article="a-sake").items) == 2


def test_unknown_pages_fall_back(served: Recommendations) -> None:
    unknown_section = served.section_page("alpha", "No such section")
    assert unknown_section.fallback and unknown_section.fallback_source == "site"
    assert unknown_section.items == served.site_page("alpha").items
    # No related list of an unknown article: the article's own fallbacks.
    unknown = served.related("nope", site="beta")
    assert unknown.fallback and unknown.items == served.site_page("beta").items


# -- the display: layout and images -----------------------------------------------
def item(image_url: str | None, site: str = "beta", url: str = "https://b.example/x") -> Item:
    return Item("x", site, "Beta", "Food", "A title", url, image_url, 0.5, 0.5, 0.0, 0.0, "related")


def block(*items: Item) -> RecommendationList:
    return RecommendationList("page", "alpha", items, "run", "2021-03-08T00:00:00Z")


def test_images_follow_the_documented_fallback_order() -> None:
    default = {"beta": "https://b.example/default.png"}
    shown = display_items(
        block(
            item("https://b.example/own.png"),
            item(None),
            item("javascript:alert(1)"),
            item(None, site="gamma"),
            item("https://b.example/own.png", url="javascript:x"),  # no safe link: not shown
        ),
        default,
    )
    assert [(i["image"], i["image_source"], i["image_fallback"]) for i in shown] == [
        ("https://b.example/own.png", "article", "https://b.example/default.png"),
        ("https://b.example/default.png", "site", None),
        ("https://b.example/default.png", "site", None),
        (None, None, None),
    ]
    assert shown[2]["image_url"] is None  # an unsafe image URL is never passed on


def test_the_display_names_the_placement_and_its_layout() -> None:
    grid = Placement(name="below", layout="grid", columns=4, k=6)
    data = display_dict(block(item(None)), grid)
    assert (data["placement"], data["layout"], data["columns"]) == ("below", "grid", 4)
    assert data["source_id"] == "page" and len(data["items"]) == 1
    with pytest.raises(ValueError, match="layout"):
        Placement(layout="carousel")
    with pytest.raises(ValueError, match="source"):
        Placement(source="random")


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=40), st.just("https://ok.example/i.png"))),
    st.one_of(st.none(), st.text(max_size=40), st.just("https://ok.example/d.png")),
)
def test_only_http_images_are_ever_shown(images: list[str | None], default: str | None) -> None:
    shown = display_items(block(*(item(i) for i in images)), {"beta": default or ""})
    assert len(shown) == len(images)
    for entry in shown:
        for field in ("image", "image_url", "image_fallback"):
            assert entry[field] is None or is_http_url(entry[field])
        assert (entry["image"] is None) == (entry["image_source"] is None)
