"""Fuzzing every parser: random bytes never crash one, and generated documents read back.

Two kinds of property per format:

- *garbage in*: arbitrary bytes (and bytes that start like the format) give
  a frame of the declared columns plus problems that name the source, a
  position and a reason; never an exception;
- *structured*: documents generated from random fields (unicode titles,
  dates across the accepted range, categories with entities, URLs with
  tracking parameters) read back to exactly those fields.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recommender.ingest.accesslog import read_access_log
from recommender.ingest.analytics import read_analytics
from recommender.ingest.documents import Document, IngestLimits
from recommender.ingest.feeds import read_feed
from recommender.ingest.pages import read_page
from recommender.ingest.records import INGEST_ARTICLE_DTYPES
from recommender.ingest.sitemaps import read_sitemap
from recommender.ingest.textpage import read_text_page
from recommender.ingest.wordpress import read_wordpress
from recommender.schema import EVENT_DTYPES, PROBLEM_COLUMNS, LoadResult
from tests.test_ingest_sources import site_context
from tests.test_ingest_textpage import site_names

NOW = pd.Timestamp("2021-03-08T00:00:00Z")
# 15 examples per property keep this file near 15 s (each document costs ~0.1 s
# of pandas validation); run with --hypothesis-seed or raise it to fuzz longer.
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = IngestLimits()

PREFIXES = [
    b"",
    b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><item>",
    b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>",
    b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><url><loc>",
    b"<!doctype html><html><head><script type='application/ld+json'>",
    b'[{"link": "https://blog.gaijinpot.com/a/", "title": {"rendered": ',
    b'127.0.0.1 - - [07/Mar/2021:09:12:44 +0900] "GET /',
    b"ts,url,kind\n2021-03-01T00:00:00Z,",
    b"A mix of what's trending on our other sites\n",
]
garbage = st.builds(
    lambda prefix, tail: prefix + tail, st.sampled_from(PREFIXES), st.binary(max_size=600)
)


def check_problems(problems: pd.DataFrame, source: str) -> None:
    assert list(problems.columns) == PROBLEM_COLUMNS
    assert (problems["file"] == source).all()
    assert (problems["row"] >= 0).all()
    assert problems["reason"].str.len().gt(0).all()


def check_articles(result: LoadResult, source: str = "fuzz") -> None:
    assert {c: str(t) for c, t in result.valid.dtypes.items()} == INGEST_ARTICLE_DTYPES
    check_problems(result.problems, source)
    assert result.valid["url"].str.match(r"^https?://").all()
    assert result.valid["title"].str.len().gt(0).all()


def document(content: bytes, url: str | None = None) -> Document:
    return Document(source="fuzz", content=content, url=url)


@FUZZ
@given(garbage)
def test_feed_parser_survives_garbage(content: bytes) -> None:
    check_articles(read_feed(document(content), site_context("savvytokyo"), now=NOW))


@FUZZ
@given(garbage)
def test_wordpress_parser_survives_garbage(content: bytes) -> None:
    check_articles(read_wordpress(document(content), site_context("gaijinpot-blog"), now=NOW))


@FUZZ
@given(garbage)
def test_sitemap_parser_survives_garbage(content: bytes) -> None:
    result = read_sitemap(document(content), site_context("japantoday"), now=NOW)
    check_articles(result.articles)
    assert all(link.url.startswith(("http://", "https://")) for link in result.pages)


@FUZZ
@given(garbage)
def test_page_parser_survives_garbage(content: bytes) -> None:
    result = read_page(
        document(content, "https://savvytokyo.com/x/"), site_context("savvytokyo"), now=NOW
    )
    check_articles(result)
    assert len(result.valid) <= 1


@FUZZ
@given(garbage)
def test_text_page_parser_survives_garbage(content: bytes) -> None:
    page = read_text_page(
        document(content), site_context("japantoday"), site_names=site_names(), now=NOW
    )
    check_problems(page.article.problems, "fuzz")
    assert page.block["site_name"].isin(site_names()).all()


@FUZZ
@given(garbage)
def test_traffic_parsers_survive_garbage(content: bytes) -> None:
    for reader in (read_access_log, read_analytics):
        traffic = reader(document(content), site_context("japantoday"), now=NOW)
        assert {c: str(t) for c, t in traffic.events.valid.dtypes.items()} == EVENT_DTYPES
        check_problems(traffic.events.problems, "fuzz")


# -- structured fuzzing -------------------------------------------------------

text = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Zs"), blacklist_characters="|<>&"
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
slugs = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=30)
instants = st.datetimes(
    min_value=datetime(1995, 1, 1), max_value=datetime(2021, 3, 7), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))
labels = st.sampled_from(["Families", "Food & Drink", "Culture", "Career", "new label", ""])


@st.composite
def articles(draw: st.DrawFn, n: int = 4) -> list[dict[str, object]]:
    slugs_ = draw(st.lists(slugs, min_size=1, max_size=n, unique=True))
    return [
        {
            "url": f"https://savvytokyo.com/{slug}/",
            "title": draw(text),
            "body": draw(text),
            "category": draw(labels),
            "published_at": draw(instants),
        }
        for slug in slugs_
    ]


def expected_category(label: object) -> str:
    return str(label)


def assert_read_back(result: LoadResult, items: list[dict[str, object]]) -> None:
    check_articles(result)
    assert len(result.problems) == 0, result.problems.to_dict("records")
    valid = result.valid.set_index("url")
    assert set(valid.index) == {i["url"] for i in items}
    for item in items:
        row = valid.loc[item["url"]]
        assert row["title"] == " ".join(str(item["title"]).split())
        assert row["category"] == expected_category(item["category"])
        assert row["published_at"] == pd.Timestamp(item["published_at"])


def looks_double_encoded(value: str) -> bool:
    """feedparser repairs text that reads as UTF-8 taken for Latin-1 ("Â¡" → "¡")."""
    try:
        return value.encode("iso-8859-1").decode("utf-8") != value
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False


@FUZZ
@given(articles())
def test_generated_rss_reads_back(items: list[dict[str, object]]) -> None:
    assume(not any(looks_double_encoded(str(i["title"])) for i in items))
    entries = "".join(
        f"<item><title>{escape(str(i['title']))}</title>"
        f"<link>{i['url']}?utm_source=rss&amp;utm_medium=feed</link>"
        f"<pubDate>{i['published_at']:%a, %d %b %Y %H:%M:%S} +0000</pubDate>"  # type: ignore[str-format]
        + (f"<category><![CDATA[{i['category']}]]></category>" if i["category"] else "")
        + f"<description>&lt;p&gt;{escape(html.escape(str(i['body'])))}&lt;/p&gt;</description>"
        "</item>"
        for i in items
    )
    rss = f"<?xml version='1.0'?><rss version='2.0'><channel>{entries}</channel></rss>"
    assert_read_back(read_feed(document(rss.encode()), site_context("savvytokyo"), now=NOW), items)


@FUZZ
@given(articles())
def test_generated_wordpress_json_reads_back(items: list[dict[str, object]]) -> None:
    posts = [
        {
            "id": n,
            "link": i["url"],
            "status": "publish",
            "date_gmt": f"{i['published_at']:%Y-%m-%dT%H:%M:%S}",  # type: ignore[str-format]
            "title": {"rendered": html.escape(str(i["title"]))},
            "content": {"rendered": f"<p>{html.escape(str(i['body']))}</p>"},
            "_embedded": {
                "wp:term": [
                    [{"name": html.escape(str(i["category"])), "taxonomy": "category"}]
                    if i["category"]
                    else []
                ]
            },
        }
        for n, i in enumerate(items)
    ]
    result = read_wordpress(
        document(json.dumps(posts).encode()), site_context("savvytokyo"), now=NOW
    )
    assert_read_back(result, items)


@FUZZ
@given(articles())
def test_generated_news_sitemap_reads_back(items: list[dict[str, object]]) -> None:
    entries = "".join(
        f"<url><loc>{i['url']}</loc><news:news><news:publication><news:name>S</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{i['published_at']:%Y-%m-%dT%H:%M:%S}Z</news:publication_date>"  # type: ignore[str-format]
        f"<news:title>{escape(str(i['title']))}</news:title></news:news></url>"
        for i in items
    )
    xml = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
        f"xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>{entries}</urlset>"
    )
    for item in items:
        item["category"] = ""  # news sitemaps carry no category
    result = read_sitemap(document(xml.encode()), site_context("savvytokyo"), now=NOW)
    assert_read_back(result.articles, items)


@FUZZ
@given(articles(n=1))
def test_generated_article_page_reads_back(items: list[dict[str, object]]) -> None:
    item = items[0]
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": item["title"],
        "datePublished": f"{item['published_at']:%Y-%m-%dT%H:%M:%S}+00:00",  # type: ignore[str-format]
        "articleSection": item["category"] or None,
        "articleBody": item["body"],
    }
    script = json.dumps(ld).replace("</", "<\\/")  # as CMSs escape it inside <script>
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<link rel='canonical' href='{item['url']}'>"
        f"<script type='application/ld+json'>{script}</script>"
        "</head><body><p>x</p></body></html>"
    )
    result = read_page(
        document(page.encode(), str(item["url"])), site_context("savvytokyo"), now=NOW
    )
    assert_read_back(result, items)


@FUZZ
@given(
    st.lists(
        st.tuples(
            slugs,
            st.datetimes(
                min_value=datetime(2020, 1, 1),
                max_value=datetime(2021, 3, 7),
                timezones=st.just(UTC),
            ),
            st.sampled_from(
                [
                    "Mozilla/5.0 (X11; Linux x86_64; rv:86.0) Gecko/20100101 Firefox/86.0",
                    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                ]
            ),
            st.sampled_from([200, 304, 404]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_generated_access_log_counts_every_human_page_view(
    hits: list[tuple[str, datetime, str, int]],
) -> None:
    offset = timedelta(hours=9)  # the log is in Japan time
    lines = [
        f"192.0.2.{n % 250} - - [{(ts + offset).strftime('%d/%b/%Y:%H:%M:%S')} +0900] "
        f'"GET /{slug}/?utm_source=x HTTP/1.1" {status} 100 "-" "{agent}"'
        for n, (slug, ts, agent, status) in enumerate(hits)
    ]
    traffic = read_access_log(
        document("\n".join(lines).encode()), site_context("savvytokyo"), now=NOW
    )
    human = [
        (slug, ts) for slug, ts, agent, status in hits if "Googlebot" not in agent and status != 404
    ]
    assert len(traffic.events.problems) == 0
    valid = traffic.events.valid
    assert sorted(zip(valid["url"], valid["ts"], strict=True)) == sorted(
        (f"https://savvytokyo.com/{slug}/?utm_source=x", pd.Timestamp(ts.replace(microsecond=0)))
        for slug, ts in human
    )
    assert traffic.bots == sum("Googlebot" in a and s != 404 for _, _, a, s in hits)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(sorted(site_names())), labels, text), max_size=12))
def test_generated_text_page_block_reads_back(items: list[tuple[str, str, str]]) -> None:
    names = {name.casefold() for name in site_names()}
    heading = "a mix of what's trending on our other sites"
    items = [
        (site, label, title)
        for site, label, title in items
        if title.casefold() not in names | {heading} and label.casefold() not in names
    ]
    lines = [
        "politics",
        "A title",
        "0 Comments",
        "Body.",
        "A mix of what's trending on our other sites",
    ]
    for site, label, title in items:
        lines += [label, title, site] if label else [title, site]
    page = read_text_page(
        document("\n\n".join(lines).encode()), site_context("japantoday"), site_names=site_names()
    )
    block = page.block
    assert list(zip(block["site_name"], block["category"], block["title"], strict=True)) == items
