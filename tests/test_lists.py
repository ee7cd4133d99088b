"""recommender.lists: page ids, fallbacks, cutting lists and their exact JSON form."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.lists import (
    FALLBACK_EMPTY,
    FALLBACK_NETWORK,
    FALLBACK_SITE,
    HEADING,
    NETWORK_PAGE,
    Item,
    RecommendationList,
    RunInfo,
    SerializedList,
    fallback_kind,
    site_page_id,
)


def item(article_id: str = "a1", **changes: Any) -> Item:
    fields = {
        "article_id": article_id,
        "site": "beta",
        "site_name": "Beta Life",
        "category": "Food",
        "title": 'Ramen — 東京 <b>&</b> "quoted"',
        "url": f"https://b.example/{article_id}",
        "image_url": None,
        "score": 0.5,
        "relevance": 0.25,
        "trend": 1.0,
        "freshness": 0.0,
        "reason": "related",
    }
    return Item(**{**fields, **changes})


def rec_list(source_id: str = "s1", n: int = 3, **changes: Any) -> RecommendationList:
    fields = {
        "source_id": source_id,
        "site": "alpha",
        "items": tuple(item(f"a{j}") for j in range(n)),
        "run_id": "run-01",
        "generated_at": "2021-03-08T00:00:00+00:00",
    }
    return RecommendationList(**{**fields, **changes})


# -- page ids and fallback kinds --------------------------------------------------------------


def test_documented_names() -> None:
    """The heading and the ids and fallback names that pages, the store
    and the service share."""
    assert HEADING == "A mix of what's trending on our other sites"
    assert NETWORK_PAGE == "network"
    assert (FALLBACK_SITE, FALLBACK_NETWORK, FALLBACK_EMPTY) == ("site", "network", "empty")


@pytest.mark.parametrize(
    "site, expected", [("alpha", "site:alpha"), ("café", "site:café"), ("", "site:")]
)
def test_site_page_id(site: str, expected: str) -> None:
    """A site's article-less page list is published under ``site:<key>``."""
    assert site_page_id(site) == expected


@pytest.mark.parametrize(
    "source_id, expected",
    [
        ("network", "network"),
        ("site:alpha", "site"),
        ("site:", "site"),
        (site_page_id("東京"), "site"),
        ("a1", "article"),
        ("", "article"),
        ("networks", "article"),
        ("Network", "article"),
        ("Site:alpha", "article"),
        ("my-site:alpha", "article"),
    ],
)
def test_fallback_kind(source_id: str, expected: str) -> None:
    """``network`` exactly is the network's mix, a ``site:`` prefix a
    site's page; anything else is an article."""
    assert fallback_kind(source_id) == expected


# -- Item -------------------------------------------------------------------------------------


def test_item_dict_form() -> None:
    """An item's dict has every field, by name, in declaration order, and
    builds the same item back."""
    one = item("a9", image_url="https://b.example/a9.jpg", reason="trending")
    expected = {
        "article_id": "a9",
        "site": "beta",
        "site_name": "Beta Life",
        "category": "Food",
        "title": 'Ramen — 東京 <b>&</b> "quoted"',
        "url": "https://b.example/a9",
        "image_url": "https://b.example/a9.jpg",
        "score": 0.5,
        "relevance": 0.25,
        "trend": 1.0,
        "freshness": 0.0,
        "reason": "trending",
    }
    assert one.to_dict() == expected
    assert list(one.to_dict()) == list(expected)
    assert Item.from_dict(expected) == one


def test_item_from_dict_refuses_missing_and_unknown_fields() -> None:
    """A dict without a field, or with one Item does not have, is a TypeError
    (what the service treats as a damaged payload)."""
    data = item().to_dict()
    del data["reason"]
    with pytest.raises(TypeError):
        Item.from_dict(data)
    with pytest.raises(TypeError):
        Item.from_dict({**item().to_dict(), "extra": 1})


# -- RecommendationList: JSON -----------------------------------------------------------------


def test_to_json_is_compact_ordered_and_keeps_unicode() -> None:
    """The exact JSON form: no spaces, keys in a fixed order, non-ASCII
    text as UTF-8 (not \\u escapes), None as null."""
    one = rec_list("s1", n=0, items=(item("a1", title="Ramen — 東京 😀"),))
    expected = (
        '{"source_id":"s1","site":"alpha","run_id":"run-01",'
        '"generated_at":"2021-03-08T00:00:00+00:00","fallback":false,"fallback_source":"",'
        '"items":[{"article_id":"a1","site":"beta","site_name":"Beta Life","category":"Food",'
        '"title":"Ramen — 東京 😀","url":"https://b.example/a1","image_url":null,'
        '"score":0.5,"relevance":0.25,"trend":1.0,"freshness":0.0,"reason":"related"}]}'
    )
    assert one.to_json() == expected
    assert RecommendationList.from_json(expected) == one


def test_a_list_without_items_or_site() -> None:
    """An empty list of a page with no site: ``"site":null`` and ``"items":[]``."""
    empty = rec_list(NETWORK_PAGE, n=0, site=None, fallback=True, fallback_source="empty")
    assert json.loads(empty.to_json()) == {
        "source_id": "network",
        "site": None,
        "run_id": "run-01",
        "generated_at": "2021-03-08T00:00:00+00:00",
        "fallback": True,
        "fallback_source": "empty",
        "items": [],
    }
    assert RecommendationList.from_json(empty.to_json()) == empty


def test_from_json_reads_the_batch_form() -> None:
    """The batch's bulk JSON (keys in another order, no ``fallback_source``)
    and older payloads (no ``site`` or ``fallback``, a null
    ``fallback_source``) decode with the defaults."""
    one = item("a1").to_dict()
    batch = (
        '{"source_id":"s1","site":"alpha","items":['
        + json.dumps(one, ensure_ascii=False)
        + '],"run_id":"run-01","generated_at":"2021-03-08T00:00:00+00:00","fallback":false}'
    )
    assert RecommendationList.from_json(batch) == rec_list("s1", n=0, items=(item("a1"),))
    old = json.dumps(
        {
            "source_id": "s2",
            "items": [],
            "run_id": "r",
            "generated_at": "t",
            "fallback_source": None,
        }
    )
    assert RecommendationList.from_json(old) == RecommendationList("s2", None, (), "r", "t")


@pytest.mark.parametrize(
    "payload, error",
    [
        ("", ValueError),
        ('{"source_id":"s1"', ValueError),
        ('{"source_id":"s1","items":[],"generated_at":"t"}', KeyError),  # no run_id
        (
            '{"source_id":"s1","items":[{"article_id":"a"}],"run_id":"r","generated_at":"t"}',
            TypeError,
        ),
    ],
    ids=["empty", "truncated", "missing-key", "bad-item"],
)
def test_damaged_payloads_raise_what_the_service_catches(
    payload: str, error: type[Exception]
) -> None:
    """Damaged JSON raises ValueError, KeyError or TypeError: the errors
    the service reads as a damaged list (and answers with a fallback)."""
    with pytest.raises(error):
        RecommendationList.from_json(payload)


def test_serialized_list_hands_its_text_over_verbatim() -> None:
    """A SerializedList's JSON is passed on as it is, and decodes to the list."""
    text = rec_list("s1").to_json()
    serialized = SerializedList("s1", text)
    assert serialized.to_json() is text
    assert serialized.decode() == rec_list("s1")


text = st.text(st.characters(codec="utf-8"), max_size=12)
parts = st.floats(0, 1, allow_nan=False)
items = st.builds(
    Item,
    article_id=text,
    site=text,
    site_name=text,
    category=text,
    title=text,
    url=text,
    image_url=st.none() | text,
    score=st.floats(0, 3, allow_nan=False),
    relevance=parts,
    trend=parts,
    freshness=parts,
    reason=st.sampled_from(["related", "trending"]),
)
lists = st.builds(
    RecommendationList,
    source_id=text,
    site=st.none() | text,
    items=st.lists(items, max_size=5).map(tuple),
    run_id=text,
    generated_at=text,
    fallback=st.booleans(),
    fallback_source=st.sampled_from(["", FALLBACK_SITE, FALLBACK_NETWORK, FALLBACK_EMPTY]),
)


@settings(max_examples=60, deadline=None)
@given(lists)
def test_json_round_trip(rec: RecommendationList) -> None:
    """Any list (unicode, quotes, control characters, missing images)
    comes back equal from its JSON and dict forms and through a
    SerializedList; the JSON is valid and encodes as UTF-8."""
    text = rec.to_json()
    assert RecommendationList.from_json(text) == rec
    assert RecommendationList.from_dict(rec.to_dict()) == rec
    assert SerializedList(rec.source_id, text).decode() == rec
    assert json.loads(text.encode("utf-8")) == rec.to_dict()


# -- RecommendationList: top and fallbacks ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(rec=lists, k=st.integers(0, 8))
def test_top_keeps_the_first_k_in_order(rec: RecommendationList, k: int) -> None:
    """``top(k)`` keeps the first min(k, n) items in their order and every
    other field."""
    cut = rec.top(k)
    assert len(cut.items) == min(k, len(rec.items))
    assert cut.items == rec.items[:k]
    assert dataclasses.replace(cut, items=rec.items) == rec


def test_top_of_zero_and_more_than_there_are() -> None:
    """``top(0)`` is an empty list of the same page; ``top`` past the end is
    the whole list."""
    rec = rec_list("s1", n=3, fallback=True, fallback_source="site")
    assert rec.top(0) == dataclasses.replace(rec, items=())
    assert rec.top(3) == rec and rec.top(100) == rec


@pytest.mark.parametrize(
    "served, n, expected",
    [
        (site_page_id("alpha"), 3, "site"),
        (NETWORK_PAGE, 2, "network"),
        (site_page_id("alpha"), 0, "empty"),
        (NETWORK_PAGE, 0, "empty"),
    ],
)
def test_as_fallback_for(served: str, n: int, expected: str) -> None:
    """A site's or the network's list served for another page takes that
    page's id, is marked a fallback and says which one it is ("empty"
    when it has no items); items, site and run are kept."""
    mix = rec_list(served, n=n)
    answer = mix.as_fallback_for("unknown-article")
    assert answer == RecommendationList(
        "unknown-article",
        mix.site,
        mix.items,
        mix.run_id,
        mix.generated_at,
        fallback=True,
        fallback_source=expected,
    )
    assert mix.source_id == served and not mix.fallback  # the original is unchanged
    assert RecommendationList.from_json(answer.to_json()) == answer


# -- RunInfo and immutability -----------------------------------------------------------------


def test_run_info_defaults_and_delta() -> None:
    """A run's defaults are a full, published run with no figures; a run
    with a base run is a delta; each run has its own summary dict."""
    full = RunInfo("run-01", "2021-03-08T00:00:00+00:00")
    assert (full.status, full.n_lists, full.base_run_id, full.delta_rows) == ("published", 0, "", 0)
    assert full.summary == {} and not full.is_delta
    delta = RunInfo("run-02", "t", base_run_id="run-01", delta_rows=4)
    assert delta.is_delta
    assert full.summary is not RunInfo("run-03", "t").summary


@pytest.mark.parametrize(
    "value, field",
    [
        (item(), "score"),
        (rec_list(), "items"),
        (SerializedList("s1", "{}"), "json"),
        (RunInfo("run-01", "t"), "status"),
    ],
)
def test_published_values_are_frozen(value: object, field: str) -> None:
    """Lists, items, serialised lists and runs cannot be changed in place
    (caches and the store share them)."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)
