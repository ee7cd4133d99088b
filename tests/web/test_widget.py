"""The block's HTML: the seed's structure, escaping, safe links, tracking."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.lists import RecommendationList
from recommender.web.widget import HEADING, render_widget, tracked_url
from tests.web.conftest import HOSTILE_BLOCK, SEED_BLOCK, SITES, item, page


class Block(HTMLParser):
    """What a reader sees in a fragment: heading, and per item the texts of
    its category, title and site, plus the link and every tag used."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.heading = ""
        self.rows: list[dict[str, str]] = []
        self._field: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        classes = dict(attrs).get("class") or ""
        if tag == "li":
            self.rows.append({"category": "", "title": "", "site": "", "href": ""})
        if tag == "a":
            self.rows[-1]["href"] = dict(attrs)["href"] or ""
        self._field = {
            "rec-heading": "heading",
            "rec-category": "category",
            "rec-title": "title",
            "rec-site": "site",
        }.get(classes)

    def handle_endtag(self, tag: str) -> None:
        self._field = None

    def handle_data(self, data: str) -> None:
        if self._field == "heading":
            self.heading += data
        elif self._field:
            self.rows[-1][self._field] += data


def test_the_fragment_shows_the_seed_block() -> None:
    html = render_widget(page("jt-1", "run-01", SEED_BLOCK, "japantoday"))
    block = Block(html)
    assert block.heading == HEADING == "A mix of what's trending on our other sites"
    assert [(r["category"], r["title"], r["site"]) for r in block.rows] == [
        (category, title, SITES[site]) for category, title, site in SEED_BLOCK
    ]
    assert block.tags.count("span") == 2 * len(SEED_BLOCK) - 1  # one item has no label


def test_links_carry_tracking_parameters_and_keep_their_own_query() -> None:
    html = render_widget(page("jt-1", "run-01", SEED_BLOCK, "japantoday"), placement="below")
    href = Block(html).rows[0]["href"]
    parts = urlsplit(href)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "savvytokyo.example",
        "/articles/0",
    )
    assert parse_qs(parts.query) == {
        "ref": ["feed"],
        "utm_source": ["japantoday"],
        "utm_medium": ["recommendations"],
        "utm_campaign": ["below"],
        "utm_content": ["jt-1"],
    }


def test_tracked_url_replaces_earlier_tracking_values_and_keeps_the_rest() -> None:
    url = "https://b.example/p?utm_source=old&a=1%202&b=&utm_medium=x#frag"
    tracked = tracked_url(url, source_site=None, source_id="site:x", placement="widget")
    assert tracked == (
        "https://b.example/p?a=1%202&b=&utm_source=network&utm_medium=recommendations"
        "&utm_campaign=widget&utm_content=site%3Ax#frag"
    )


def test_hostile_titles_labels_and_links_are_inert() -> None:
    html = render_widget(
        page("evil", "run-01", HOSTILE_BLOCK, "japantoday"),
        events_url="https://recs.example/v1/events",
    )
    block = Block(html)
    assert set(block.tags) == {"section", "h2", "ol", "li", "span", "a"}
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "data:text" not in html
    # The markup is shown as text, exactly as written.
    assert [(r["category"], r["title"]) for r in block.rows] == [
        ('<img src=x onerror="window.pwned=1">', "<script>window.pwned=1</script>"),
        ('"><b>', "Fish & Chips \"quoted\" 'single'"),
    ]
    assert all(r["href"].startswith("https://") for r in block.rows)
    assert ("data-rec-events", "https://recs.example/v1/events") in block.attributes


def test_nothing_to_show_gives_an_empty_fragment() -> None:
    empty = RecommendationList("jt-9", "japantoday", (), "run-01", "", fallback=True)
    assert render_widget(empty) == ""
    only_bad = page("x", "run-01", [HOSTILE_BLOCK[1]], "japantoday")
    assert render_widget(only_bad) == ""


@pytest.mark.parametrize(
    "events_url", ["javascript:alert(1)", "//evil.example/v1/events", "data:,x", "v1/ev ents"]
)
def test_an_events_url_that_is_not_http_is_left_out(events_url: str) -> None:
    html = render_widget(page("jt-1", "run-01", SEED_BLOCK), events_url=events_url)
    assert "data-rec-events" not in html and "evil" not in html and "javascript" not in html


@pytest.mark.parametrize("events_url", ["v1/events", "/recs/v1/events", "../v1/events"])
def test_a_relative_events_url_is_kept_for_widget_js_to_resolve(events_url: str) -> None:
    html = render_widget(page("jt-1", "run-01", SEED_BLOCK), events_url=events_url)
    assert ("data-rec-events", events_url) in Block(html).attributes


@pytest.mark.parametrize("source_id", ["a\x00b", "a\u2028b", " jt-1", "x" * 257])
def test_a_block_for_an_invalid_page_id_names_no_source(source_id: str) -> None:
    block = page("site:japantoday", "run-01", SEED_BLOCK, "japantoday").as_fallback_for(source_id)
    html = render_widget(block, events_url="v1/events")
    parsed = Block(html)
    assert len(parsed.rows) == len(SEED_BLOCK)
    assert "data-rec-source" not in dict(parsed.attributes)
    for row in parsed.rows:
        query = parse_qs(urlsplit(row["href"]).query)
        assert "utm_content" not in query and query["utm_source"] == ["japantoday"]


_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.lists(st.tuples(_text, _text, _text), min_size=1, max_size=5),
    source_id=_text.filter(bool),
)
def test_any_text_renders_as_that_text_and_never_as_markup(
    fields: list[tuple[str, str, str]], source_id: str
) -> None:
    items = tuple(
        item("run-01", n, category, title, "savvytokyo", url=f"https://s.example/{n}")
        for n, (category, title, _) in enumerate(fields)
    )
    items = tuple(
        type(i)(**{**i.to_dict(), "site_name": site_name})
        for i, (_, _, site_name) in zip(items, fields, strict=True)
    )
    html = render_widget(RecommendationList(source_id, "japantoday", items, "run-01", ""))
    block = Block(html)
    assert set(block.tags) <= {"section", "h2", "ol", "li", "span", "a"}
    assert [(r["category"], r["title"], r["site"]) for r in block.rows] == fields
    assert all(urlsplit(r["href"]).scheme == "https" for r in block.rows)
