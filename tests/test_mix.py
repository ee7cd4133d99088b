from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from tests.conftest import NOW, tiny_articles, tiny_config, tiny_events

WORDS = ["sake", "fuji", "baby", "ramen", "temple", "snow", "jobs", "visa", "kyoto", "onsen"]


def fit(articles: pd.DataFrame, events: pd.DataFrame, **mix) -> Recommender:
    config = tiny_config(mix=mix) if mix else tiny_config()
    return Recommender(config).fit(validate_articles(articles).valid, validate_events(events).valid)


def lists_by_source(model: Recommender) -> dict:
    return {lst.source_id: lst for lst in model.recommendation_lists("test")}


@st.composite
def networks(draw):
    n = draw(st.integers(3, 30))
    rows = []
    for i in range(n):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4))
        rows.append(
            {
                "article_id": f"x{i}",
                "site": draw(st.sampled_from(["alpha", "beta", "gamma"])),
                "url": f"https://example.org/{i}",
                # Repeated word lists give identical titles: near-duplicates to remove.
                "title": " ".join(words).title(),
                "body": " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=6))),
                "category": draw(st.sampled_from(["", "Food", "Travel", "News"])),
                "published_at": (NOW - pd.Timedelta(hours=draw(st.integers(-5, 24 * 120)))),
                "status": draw(st.sampled_from(["published"] * 5 + ["unpublished"])),
            }
        )
    articles = pd.DataFrame(rows)
    views = draw(
        st.dictionaries(st.sampled_from([r["article_id"] for r in rows]), st.integers(1, 50))
    )
    mix = {
        "k": draw(st.integers(1, 8)),
        "max_per_site": draw(st.integers(1, 4)),
        "max_per_category": draw(st.integers(1, 4)),
        "max_age_days": 90,
    }
    return articles, tiny_events(views) if views else tiny_events({"x0": 1}), mix


@given(networks())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_list_keeps_the_rules(network) -> None:
    articles, events, mix = network
    model = fit(articles, events, **mix)
    a = model.articles_.set_index("article_id")
    eligible = set(model.articles_["article_id"][model.eligible_])
    group = dict(zip(model.articles_["article_id"], model.groups_, strict=True))
    buckets = a["category_key"].mask(a["category_key"] == "", a["site"] + ":")
    w = model.config.mix.weights
    for lst in model.recommendation_lists("test"):
        ids = [item.article_id for item in lst.items]
        assert len(ids) <= mix["k"]
        assert len(set(ids)) == len(ids), "duplicate article"
        assert len({group[i] for i in ids}) == len(ids), "near-duplicate titles"
        assert set(ids) <= eligible, "old, future or unpublished article shown"
        assert lst.source_id not in ids
        if lst.site is not None:
            assert lst.site not in {item.site for item in lst.items}, "same-site item"
        if lst.source_id in group:
            assert group[lst.source_id] not in {group[i] for i in ids}
        assert (
            max(Counter(item.site for item in lst.items).values(), default=0) <= mix["max_per_site"]
        )
        assert max(Counter(buckets[i] for i in ids).values(), default=0) <= mix["max_per_category"]
        scores = [item.score for item in lst.items]
        assert scores == sorted(scores, reverse=True)
        for item in lst.items:
            expected = (
                w.relevance * item.relevance + w.trend * item.trend + w.freshness * item.freshness
            )
            assert item.score == pytest.approx(expected, abs=1e-5)
            assert 0 <= item.relevance <= 1 and 0 <= item.trend <= 1 and 0 <= item.freshness <= 1


def test_related_items_come_first_for_a_page_with_clear_neighbours() -> None:
    model = fit(tiny_articles(), tiny_events({"a-fuji": 5}), k=4)
    block = lists_by_source(model)["b-sake"]
    assert [i.article_id for i in block.items[:2]] == ["a-sake", "c-sake"] or [
        i.article_id for i in block.items[:2]
    ] == ["c-sake", "a-sake"]
    assert all(i.reason == "related" for i in block.items[:2])
    assert {i.reason for i in block.items[2:]} == {"trending"}


def test_a_page_without_good_neighbours_gets_its_sites_trending_mix() -> None:
    articles = pd.concat(
        [
            tiny_articles(),
            pd.DataFrame(
                [
                    {
                        "article_id": "a-odd",
                        "site": "alpha",
                        "url": "https://alpha.example/odd",
                        "title": "Quarterly zinc futures",
                        "body": "Metals desk notes.",
                        "category": "",
                        "published_at": (NOW - pd.Timedelta(days=1)).isoformat(),
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    model = fit(articles, tiny_events(), k=4)
    lists = lists_by_source(model)
    odd = [i.article_id for i in lists["a-odd"].items]
    assert odd == [i.article_id for i in lists[site_page_id("alpha")].items]
    assert all(i.reason == "trending" and i.relevance == 0 for i in lists["a-odd"].items)
    assert NETWORK_PAGE in lists and lists[NETWORK_PAGE].items[0].article_id == "b-baby"


def test_near_duplicates_old_and_unpublished_articles_are_left_out() -> None:
    extra = pd.DataFrame(
        [
            {
                "article_id": "b-sake-copy",
                "site": "beta",
                "url": "https://beta.example/copy",
                "title": "A tasting tour of Nada sake breweries!",
                "body": "Kobe sake again.",
                "category": "Drinks",
                "published_at": (NOW - pd.Timedelta(days=1)).isoformat(),
            },
            {
                "article_id": "c-sake-old",
                "site": "gamma",
                "url": "https://gamma.example/old",
                "title": "Kobe sake brewers of long ago",
                "body": "Nada sake rice brewers Kobe.",
                "category": "Food",
                "published_at": (NOW - pd.Timedelta(days=400)).isoformat(),
            },
            {
                "article_id": "c-sake-gone",
                "site": "gamma",
                "url": "https://gamma.example/gone",
                "title": "Nada sake brewery weekend",
                "body": "Kobe sake rice brewers.",
                "category": "Food",
                "published_at": (NOW - pd.Timedelta(days=2)).isoformat(),
                "status": "unpublished",
            },
        ]
    )
    articles = pd.concat([tiny_articles(), extra], ignore_index=True)
    model = fit(
        articles,
        tiny_events({"b-sake-copy": 50, "b-sake": 50, "c-sake-old": 99, "c-sake-gone": 99}),
        k=6,
    )
    shown = {i.article_id for lst in model.recommendation_lists("t") for i in lst.items}
    assert not shown & {"c-sake-old", "c-sake-gone"}
    a_sake = [i.article_id for i in lists_by_source(model)["a-sake"].items]
    assert len({"b-sake", "b-sake-copy"} & set(a_sake)) == 1


def test_caps_bind_when_one_site_dominates() -> None:
    rows = [
        {
            "article_id": f"b{i}",
            "site": "beta",
            "url": f"https://beta.example/{i}",
            "title": f"Story number {i} about {WORDS[i % len(WORDS)]}",
            "body": "",
            "category": ["Food", "News"][i % 2],
            "published_at": (NOW - pd.Timedelta(hours=i + 1)).isoformat(),
        }
        for i in range(12)
    ]
    articles = pd.concat([tiny_articles(), pd.DataFrame(rows)], ignore_index=True)
    model = fit(
        articles,
        tiny_events({f"b{i}": 100 - i for i in range(12)}),
        k=6,
        max_per_site=3,
        max_per_category=2,
    )
    network = lists_by_source(model)[NETWORK_PAGE]
    assert len(network.items) == 6
    assert Counter(i.site for i in network.items)["beta"] == 3
    assert np.all(
        np.array(list(Counter((i.site, i.category) for i in network.items).values())) <= 2
    )
