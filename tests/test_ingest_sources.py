"""Every article source returns the same validated frame: one contract, a subclass per format.

Fixtures in ``tests/fixtures/ingest/`` are shaped like what the sample
network's sites serve (WordPress RSS, an Atom feed, ``/wp-json/wp/v2/posts``
with ``_embed``, a news sitemap, Yoast-style pages); each test knows the
right answer. Fuzzing with hypothesis is in ``test_ingest_fuzz.py``.
"""

from __future__ import annotations

import codecs
import gzip
import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from recommender.config import Config, load_config
from recommender.ingest.documents import (
    Document,
    DocumentError,
    IngestLimits,
    decode_text,
    read_file,
)
from recommender.ingest.feeds import read_feed
from recommender.ingest.pages import read_page
from recommender.ingest.pipeline import sniff_format
from recommender.ingest.records import INGEST_ARTICLE_DTYPES, SiteContext, article_id_for
from recommender.ingest.sitemaps import read_sitemap
from recommender.ingest.wordpress import read_wordpress
from recommender.schema import LoadResult

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
NOW = pd.Timestamp("2021-03-08T00:00:00Z")
JT = "https://japantoday.com/category"


def sample_config() -> Config:
    return load_config(REPO / "data" / "sample.toml")


def site_context(key: str) -> SiteContext:
    return SiteContext.from_config(sample_config(), key)


def fixture(name: str, url: str | None = None, **kwargs: Any) -> Document:
    document = read_file(FIXTURES / name, IngestLimits())
    return Document(source=name, content=document.content, url=url, **kwargs)


class ArticleSourceContract:
    """What every article source must do. A subclass names its reader, a
    good fixture with its expected articles, and a broken document."""

    site: ClassVar[str]
    fixture_name: ClassVar[str]
    expected_format: ClassVar[str]
    expected: ClassVar[dict[str, dict[str, Any]]]  # url -> fields
    broken: ClassVar[bytes]
    broken_reason: ClassVar[str]

    def read(self, document: Document, limits: IngestLimits | None = None) -> LoadResult:
        raise NotImplementedError

    def result(self) -> LoadResult:
        return self.read(fixture(self.fixture_name))

    def test_returns_the_validated_article_frame(self) -> None:
        valid = self.result().valid
        assert list(valid.columns) == list(INGEST_ARTICLE_DTYPES)
        assert {c: str(t) for c, t in valid.dtypes.items()} == INGEST_ARTICLE_DTYPES
        assert valid["article_id"].is_unique

    def test_reads_the_expected_articles(self) -> None:
        valid = self.result().valid.set_index("url")
        assert set(valid.index) == set(self.expected)
        for url, fields in self.expected.items():
            for name, value in fields.items():
                got = valid.at[url, name]
                if isinstance(value, str) and name == "body":
                    assert value in str(got), (url, name)
                else:
                    assert got == value, (url, name, got)

    def test_site_key_ids_and_urls_are_the_shared_ones(self) -> None:
        valid = self.result().valid
        assert (valid["site"] == self.site).all()
        assert (valid["status"].isin(["published", "unpublished"])).all()
        assert [article_id_for(self.site, u) for u in valid["url"]] == list(valid["article_id"])
        assert not valid["url"].str.contains("utm_").any()

    def test_format_is_told_from_the_content(self) -> None:
        assert sniff_format(fixture(self.fixture_name)) == self.expected_format

    def test_a_broken_document_is_rejected_with_source_and_reason(self) -> None:
        result = self.read(Document(source="broken-source", content=self.broken))
        assert len(result.valid) == 0
        rejected = result.rejected
        assert len(rejected) >= 1
        assert (rejected["file"] == "broken-source").all()
        assert self.broken_reason in " ".join(rejected["reason"])

    def test_an_oversized_field_rejects_its_record_and_keeps_the_others(self) -> None:
        """50 MB in a feed description or a post's content; a 1 MB sitemap title."""
        limits = IngestLimits(max_document_bytes=128 * 2**20)
        content = self.with_huge_field()
        result = self.read(Document(source="huge", content=content), limits)
        too_long = result.rejected[result.rejected["reason"].str.startswith("too long")]
        assert len(too_long) == 1 and too_long["row"].iat[0] >= 1
        assert len(result.valid) == len(self.expected) - self.expected_loss_with_huge_field

    expected_loss_with_huge_field: ClassVar[int] = 1

    def with_huge_field(self) -> bytes:
        raise NotImplementedError


class TestFeedRSS(ArticleSourceContract):
    site = "savvytokyo"
    fixture_name = "savvytokyo-feed.rss"
    expected_format = "feed"
    expected: ClassVar[dict[str, dict[str, Any]]] = {
        "https://savvytokyo.com/planning-hanami-2021-socially-distanced-picnic-tips/": {
            "title": "Planning Hanami 2021: Socially Distanced Picnic Tips",
            "category": "Living",
            "tags": "cherry blossoms|hanami",
            "published_at": pd.Timestamp("2021-03-06T23:15:00Z"),
            "image_url": "https://savvytokyo.com/wp-content/uploads/2021/03/hanami-picnic.jpg",
            "language": "en",
            "body": "Weekday mornings at Shinjuku Gyoen are quiet",
        },
        "https://savvytokyo.com/ten-years-on-remembering-the-great-east-japan-earthquake/": {
            # "Uncategorized" is WordPress's "no category": the next label wins.
            "category": "Culture",
            "image_url": "https://savvytokyo.com/wp-content/uploads/2021/03/tohoku-coast.jpg",
            "body": "changed them & their families",
        },
        "https://savvytokyo.com/recipe-homemade-chirashizushi-for-girls-day/": {
            # The feed's "food &amp; drink" in the config's spelling.
            "category": "Food & Drink",
            "title": "Recipe: Homemade Chirashizushi For Girls’ Day",
            "image_url": (
                "https://savvytokyo.com/wp-content/uploads/2021/03/chirashizushi-300x200.jpg"
            ),
        },
    }
    broken = b"<?xml version='1.0'?><html><body><p>Service Unavailable</p></body></html>"
    broken_reason = "not an RSS or Atom feed"

    def read(self, document: Document, limits: IngestLimits | None = None) -> LoadResult:
        return read_feed(document, site_context(self.site), limits=limits, now=NOW)

    def test_html_in_descriptions_is_reduced_to_text(self) -> None:
        body = self.result().valid["body"].iat[0]
        assert "<" not in body and "dataLayer" not in body
        assert "Go early, go small\n\nWeekday mornings" in body

    def test_an_item_without_a_date_is_rejected_with_its_position(self) -> None:
        rejected = self.result().rejected
        assert rejected[["row", "field"]].values.tolist() == [[4, "published_at"]]

    def test_malformed_xml_keeps_recovered_items_and_reports_the_line(self) -> None:
        content = (
            (FIXTURES / self.fixture_name)
            .read_bytes()
            .replace(b"<title>Ten Years On", b"<title>Ten & Years On", 1)
        )
        result = self.read(Document(source="malformed", content=content))
        problem = result.problems[result.problems["field"] == "(document)"].iloc[0]
        assert problem["action"] == "repaired"
        assert "malformed XML at line" in problem["reason"]
        assert len(result.valid) == 3

    def test_a_wrong_declared_encoding_is_repaired_and_said(self) -> None:
        content = (FIXTURES / self.fixture_name).read_bytes()
        latin = content.replace(b"Girls&#8217; Day", "Girls’ Día".encode("cp1252"))
        result = self.read(Document(source="latin", content=latin))
        assert len(result.valid) == 3
        assert "Girls’ Día" in set(result.valid["title"].str.slice(-10)) or any(
            "Día" in t for t in result.valid["title"]
        )
        assert (result.problems["action"] == "repaired").any()

    def with_huge_field(self) -> bytes:
        content = (FIXTURES / self.fixture_name).read_bytes()
        return content.replace(
            b"Colorful scattered sushi", b"Colorful " + b"very " * (10 * 2**20) + b"sushi", 1
        )


class TestFeedAtom(ArticleSourceContract):
    site = "gaijinpot-blog"
    fixture_name = "gaijinpot-blog-atom.xml"
    expected_format = "feed"
    expected: ClassVar[dict[str, dict[str, Any]]] = {
        "https://blog.gaijinpot.com/ramen-etiquette-slurping-soup-and-everything-else/": {
            "category": "Food",
            "tags": "ramen",
            "published_at": pd.Timestamp("2021-03-06T23:00:00Z"),
            "modified_at": pd.Timestamp("2021-03-07T00:30:00Z"),
            "body": "Ramen shops turn tables fast",
        },
        "https://blog.gaijinpot.com/tokyo-2020-torch-relay-to-start-in-fukushima-this-month/": {
            "category": "Life in Japan",
        },
        "https://blog.gaijinpot.com/early-sakura-kawazu-cherry-blossoms-in-izu/": {
            # No <published>: <updated> stands in.
            "published_at": pd.Timestamp("2021-03-05T04:00:00Z"),
        },
    }
    broken = b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>x'
    broken_reason = "malformed XML"

    def read(self, document: Document, limits: IngestLimits | None = None) -> LoadResult:
        return read_feed(document, site_context(self.site), limits=limits, now=NOW)

    def test_a_broken_document_is_rejected_with_source_and_reason(self) -> None:
        # A cut Atom entry without a link is recovered, then rejected for the link.
        result = self.read(Document(source="broken-source", content=self.broken))
        assert len(result.valid) == 0
        assert "malformed XML" in " ".join(result.problems["reason"])
        assert (result.rejected["file"] == "broken-source").all()

    def with_huge_field(self) -> bytes:
        content = (FIXTURES / self.fixture_name).read_bytes()
        return content.replace(b"Deep pink", b"Deep " + b"pink " * (10 * 2**20), 1)


class TestWordPress(ArticleSourceContract):
    site = "gaijinpot-blog"
    fixture_name = "wp-posts-page-1.json"
    expected_format = "wordpress"
    expected: ClassVar[dict[str, dict[str, Any]]] = {
        "https://blog.gaijinpot.com/ramen-etiquette-slurping-soup-and-everything-else/": {
            "title": "Ramen Etiquette: Slurping, Soup and Everything Else",
            "category": "Food",
            "tags": "ramen|etiquette",
            "published_at": pd.Timestamp("2021-03-06T23:00:00Z"),
            "modified_at": pd.Timestamp("2021-03-07T00:30:00Z"),
            "image_url": "https://blog.gaijinpot.com/wp-content/uploads/sites/4/2021/03/ramen.jpg",
            "body": "don’t linger",
        },
        "https://blog.gaijinpot.com/tokyo-2020-torch-relay-to-start-in-fukushima-this-month/": {
            "category": "Life in Japan",
            "tags": "olympics",
        },
    }
    broken = b'[{"id": 1, "link": "https://blog.gaijinpot.com/x/", "title": {"rendered": "x"}'
    broken_reason = "invalid JSON: Expecting ',' delimiter at line 1"

    def read(self, document: Document, limits: IngestLimits | None = None) -> LoadResult:
        return read_wordpress(document, site_context(self.site), limits=limits, now=NOW)

    def test_the_featured_image_the_api_may_not_show_is_left_empty(self) -> None:
        valid = self.result().valid.set_index("url")
        torch = (
            "https://blog.gaijinpot.com/tokyo-2020-torch-relay-to-start-in-fukushima-this-month/"
        )
        assert pd.isna(valid.at[torch, "image_url"])

    def test_a_draft_is_read_as_unpublished(self) -> None:
        valid = self.read(fixture("wp-posts-page-2.json")).valid.set_index("title")
        assert valid.at["How to Read Your Electricity Bill", "status"] == "unpublished"
        assert valid.at["Early Sakura: Kawazu Cherry Blossoms in Izu", "category"] == "Travel"

    def test_the_api_error_object_is_rejected_with_its_message(self) -> None:
        error = json.dumps(
            {
                "code": "rest_post_invalid_page_number",
                "message": "The page number requested "
                "is larger than the number of pages available.",
                "data": {"status": 400},
            }
        ).encode()
        result = self.read(Document(source="page-9", content=error))
        assert (
            "WordPress API error rest_post_invalid_page_number" in result.rejected["reason"].iat[0]
        )

    def test_posts_without_embed_keep_no_category_and_say_why(self) -> None:
        posts = json.loads((FIXTURES / self.fixture_name).read_bytes())
        for post in posts:
            del post["_embedded"]
        result = self.read(Document(source="no-embed", content=json.dumps(posts).encode()))
        assert (result.valid["category"] == "").all()
        note = result.problems[result.problems["action"] == "cleared"]["reason"].iat[0]
        assert "_embed=1" in note

    def test_a_post_with_a_wrongly_typed_field_is_rejected_alone(self) -> None:
        posts = json.loads((FIXTURES / self.fixture_name).read_bytes())
        posts[1]["link"] = ["not", "a", "string"]
        result = self.read(Document(source="typed", content=json.dumps(posts).encode()))
        assert len(result.valid) == 1
        assert result.rejected[["row", "field"]].values.tolist() == [[2, "link"]]

    def with_huge_field(self) -> bytes:
        posts = json.loads((FIXTURES / self.fixture_name).read_bytes())
        posts[0]["content"]["rendered"] = "<p>" + "word " * (10 * 2**20) + "</p>"
        return json.dumps(posts).encode()


class TestNewsSitemap(ArticleSourceContract):
    site = "japantoday"
    fixture_name = "japantoday-news-sitemap.xml"
    expected_format = "sitemap"
    expected: ClassVar[dict[str, dict[str, Any]]] = {
        f"{JT}/politics/blinken-austin-to-visit-japan-from-march-15": {
            "title": "Blinken, Austin to visit Japan from March 15",
            "published_at": pd.Timestamp("2021-03-04T02:30:00Z"),
            "modified_at": pd.Timestamp("2021-03-04T03:41:07Z"),
            "tags": "Japan|U.S.|diplomacy",
            "image_url": "https://japantoday.com/images/size/x/2021/03/blinken-austin.jpg",
        },
        f"{JT}/national/graduation-ceremonies-go-ahead-with-limited-guests": {
            "language": "en",
        },
        f"{JT}/business/sakura-themed-sweets-arrive-early-as-shops-bet-on-stay-home-hanami": {
            "body": "",
        },
    }
    broken = b"<?xml version='1.0'?><urlset><url><loc>https://japantoday.com/a</loc></url><url>"
    broken_reason = "malformed XML at line 1"

    def read(self, document: Document, limits: IngestLimits | None = None) -> LoadResult:
        return read_sitemap(document, site_context(self.site), limits=limits, now=NOW).articles

    def test_a_relative_loc_is_rejected_with_its_entry_number(self) -> None:
        rejected = self.result().rejected
        assert rejected[["row", "field"]].values.tolist() == [[4, "url"]]

    def test_entries_before_an_xml_error_are_kept(self) -> None:
        content = (FIXTURES / self.fixture_name).read_bytes().replace(b"</urlset>", b"<url>")
        result = read_sitemap(Document(source="cut", content=content), site_context(self.site))
        assert len(result.articles.valid) == 3
        problems = result.articles.problems
        reason = problems.loc[problems["field"] == "(document)", "reason"].iat[0]
        assert "malformed XML at line" in reason and "the 4 entries before it were kept" in reason

    def test_an_xml_bomb_is_not_expanded(self) -> None:
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(
                f'<!ENTITY lol{i} "{"&lol" + str(i - 1) + ";" if i else "&lol;"}'.encode()
                + b"&lol;" * 9
                + b'">'
                for i in range(1, 10)
            )
            + b"]><urlset><url><loc>https://japantoday.com/&lol9;</loc></url></urlset>"
        )
        result = read_sitemap(Document(source="bomb", content=bomb), site_context(self.site))
        assert sum(len(link.url) for link in result.pages) < 10_000

    def with_huge_field(self) -> bytes:
        content = (FIXTURES / self.fixture_name).read_bytes()
        return content.replace(
            b"<news:title>Graduation ceremonies",
            b"<news:title>" + b"Graduation " * (2**20 // 11) + b"ceremonies",
            1,
        )


def test_a_plain_sitemap_lists_pages_and_an_index_lists_sitemaps() -> None:
    site = site_context("gaijinpot-travel")
    pages = read_sitemap(fixture("gaijinpot-travel-sitemap-pages.xml"), site)
    assert len(pages.articles.valid) == 0 and not len(pages.articles.problems)
    assert [link.url for link in pages.pages] == [
        "https://travel.gaijinpot.com/kinkaku-ji-temple-golden-pavilion/",
        "https://travel.gaijinpot.com/ise/",
        "https://travel.gaijinpot.com/mie/",
    ]
    assert pages.pages[0].lastmod == pd.Timestamp("2021-03-02T05:10:44Z")
    index = read_sitemap(fixture("gaijinpot-travel-sitemap-index.xml"), site)
    assert [link.url for link in index.sitemaps] == [
        "https://travel.gaijinpot.com/sitemap-pages.xml"
    ]


class TestArticlePage(ArticleSourceContract):
    site = "gaijinpot-travel"
    fixture_name = "gaijinpot-travel-kinkaku-ji.html"
    expected_format = "page"
    expected: ClassVar[dict[str, dict[str, Any]]] = {
        "https://travel.gaijinpot.com/kinkaku-ji-temple-golden-pavilion/": {
            "title": "Kinkaku-ji Temple (Golden Pavilion)",
            "category": "Shrines & Temples",
            "published_at": pd.Timestamp("2021-03-02T05:10:44Z"),
            "image_url": "https://travel.gaijinpot.com/app/uploads/sites/6/2016/02/kinkakuji.jpg",
            "language": "en",
            "body": "covered in gold leaf",
        }
    }
    broken = b"\x00\x01\x02 binary \xff\xfe garbage"
    broken_reason = "missing"

    def read(self, document: Document, limits: IngestLimits | None = None) -> LoadResult:
        return read_page(document, site_context(self.site), limits=limits, now=NOW)

    def test_boilerplate_is_left_out_of_the_body(self) -> None:
        body = self.result().valid["body"].iat[0]
        assert "Admission is 400 yen" in body
        for chrome in ("Privacy Policy", "Be the first to comment", "Ginkaku-ji", "window.ga"):
            assert chrome not in body

    def test_a_broken_json_ld_block_is_reported_and_the_others_used(self) -> None:
        problems = self.result().problems
        assert problems[["field", "action"]].values.tolist() == [["(json-ld)", "cleared"]]
        assert "line 21" in problems["reason"].iat[0]

    def test_opengraph_and_meta_tags_serve_when_json_ld_is_missing(self) -> None:
        result = read_page(
            fixture("savvytokyo-recipe-sakura-mochi.html"), site_context("savvytokyo"), now=NOW
        )
        row = result.valid.iloc[0]
        assert row["url"] == "https://savvytokyo.com/recipe-sakura-mochi/"
        assert row["category"] == "Food & Drink"
        assert row["published_at"] == pd.Timestamp("2021-02-26T01:30:00Z")
        assert row["tags"] == "sakura|wagashi|mochi|hinamatsuri"
        assert "domyoji flour" in row["body"] and "All rights reserved" not in row["body"]

    def test_a_shift_jis_page_is_decoded_by_its_meta_charset(self) -> None:
        result = self.read(fixture("gaijinpot-travel-kinkakuji-shift_jis.html"))
        row = result.valid.iloc[0]
        assert row["title"] == "金閣寺（鹿苑寺）"
        assert row["language"] == "ja" and "鏡湖池" in row["body"]
        assert not len(result.problems)

    def test_a_canonical_url_on_another_host_is_not_taken(self) -> None:
        html = (
            (FIXTURES / self.fixture_name)
            .read_bytes()
            .replace(
                b"https://travel.gaijinpot.com/kinkaku-ji-temple-golden-pavilion/",
                b"https://syndicator.example/copy/",
            )
        )
        result = self.read(
            Document(source="p", content=html, url="https://travel.gaijinpot.com/kinkaku-ji/")
        )
        assert result.valid["url"].iat[0] == "https://travel.gaijinpot.com/kinkaku-ji/"

    expected_loss_with_huge_field = 1

    def with_huge_field(self) -> bytes:
        content = (FIXTURES / self.fixture_name).read_bytes()
        return content.replace(
            b'"headline":"Kinkaku-ji', b'"headline":"' + b"Kinkaku-ji " * 200 + b"Kinkaku-ji", 1
        )


def test_a_gzipped_file_is_inflated_and_a_gzip_bomb_refused(tmp_path: Path) -> None:
    path = tmp_path / "sitemap.xml.gz"
    path.write_bytes(gzip.compress((FIXTURES / "japantoday-news-sitemap.xml").read_bytes()))
    assert read_file(path, IngestLimits()).content.startswith(b"<?xml")
    bomb = tmp_path / "bomb.xml.gz"
    bomb.write_bytes(gzip.compress(b" " * (8 * 2**20)))
    with pytest.raises(DocumentError, match="zip bomb"):
        read_file(bomb, IngestLimits(max_document_bytes=2**20))
    with pytest.raises(DocumentError, match="file not found"):
        read_file(tmp_path / "missing.xml", IngestLimits())


def test_absurd_dates_are_rejected_with_the_range() -> None:
    posts = json.loads((FIXTURES / "wp-posts-page-1.json").read_bytes())
    posts[0]["date_gmt"] = "1901-01-01T00:00:00"
    posts[1]["date_gmt"] = "9999-12-31T23:59:59"
    result = read_wordpress(
        Document(source="dates", content=json.dumps(posts).encode()),
        site_context("gaijinpot-blog"),
        now=NOW,
    )
    assert len(result.valid) == 0
    assert result.rejected["reason"].str.startswith("absurd date").all()
    assert result.rejected["row"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("content", "declared", "text", "repaired"),
    [
        ("Día".encode(), None, "Día", False),
        ("Día".encode("cp1252"), "windows-1252", "Día", False),
        (b"\xef\xbb\xbfD\xc3\xada", None, "Día", False),
        ("Día".encode("utf-16"), None, "Día", False),
        (("Caf\u00e9 " * 20).encode("cp1252"), None, "Café", True),
    ],
)
def test_text_is_decoded_by_bom_declaration_or_detection(
    content: bytes, declared: str | None, text: str, repaired: bool
) -> None:
    decoded, note = decode_text(content, declared)
    assert text in decoded
    assert (note is not None) == repaired


def test_category_labels_follow_the_config_spelling() -> None:
    site = site_context("savvytokyo")
    assert site.category_and_tags(["FOOD &amp; DRINK", "sake"]) == ("Food & Drink", "sake")
    assert site.category_and_tags(["Uncategorized"], ["families"]) == ("Families", "")
    assert site.category_and_tags(["New Label", "Culture"]) == ("Culture", "New Label")
    assert site.category_and_tags(["Brand|New"]) == ("Brand/New", "")
    assert site.category_and_tags([]) == ("", "")


JAPANESE_TITLES = ["金閣寺の秋", "京都の桜が見頃に", "東京の新しい美術館"]


def japanese_feed() -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://savvytokyo.com/jp-{i}/</link>"
        f"<description>本文です。{title}について。</description>"
        f"<pubDate>Fri, 05 Mar 2021 0{i}:00:00 +0000</pubDate></item>\n"
        for i, title in enumerate(JAPANESE_TITLES)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>\n'
        "<title>Savvy Tokyo</title><link>https://savvytokyo.com/</link>\n"
        f"{items}</channel></rss>\n"
    ).encode()


def test_one_bad_byte_in_a_utf8_feed_is_replaced_alone_and_located() -> None:
    content = japanese_feed()
    # Lines 4-6 are the items; put a stray byte in the second one's description.
    lines = content.split(b"\n")
    at = lines[4].index("本文です".encode())
    lines[4] = lines[4][:at] + b"\xff" + lines[4][at:]
    column = len(lines[4][:at].decode()) + 1
    result = read_feed(
        Document(source="jp", content=b"\n".join(lines)), site_context("savvytokyo"), now=NOW
    )
    assert sorted(result.valid["title"]) == sorted(JAPANESE_TITLES)  # no mojibake
    bodies = result.valid.set_index("title")["body"]
    assert bodies[JAPANESE_TITLES[1]].startswith("\ufffd本文です")
    assert bodies[JAPANESE_TITLES[0]].startswith("本文です")
    problem = result.problems[result.problems["action"] == "repaired"].iloc[0]
    assert problem["row"] == 0
    assert f"line 5, column {column} (0xff)" in problem["reason"]


def test_a_bad_byte_is_located_by_line_and_column_not_byte_offset() -> None:
    lines = ["東京の桜 " * 40 for _ in range(6)]
    data = [line.encode() for line in lines]
    data[3] = data[3][: len("東京の桜 " * 25 + "東京") * 3 - 50] + b"\xc3" + b"(" + data[3][-10:]
    text, note = decode_text(b"\n".join(data))
    assert note is not None and "line 4, column" in note and "byte 0x" not in note
    expected_column = len(data[3][: data[3].index(b"\xc3(")].decode()) + 1
    assert f"line 4, column {expected_column} (0xc3)" in note
    assert text.count("\ufffd") == 1 and text.count("東京の桜") > 200


@pytest.mark.parametrize(
    ("content", "declared", "expected", "replaced"),
    [
        # UTF-8 with a handful of bad bytes stays UTF-8.
        ("京都の桜が見頃です。".encode() * 20 + b"\xff\xfe\x80", None, "京都の桜", 3),
        # A Shift_JIS document, declared or not, is Shift_JIS: many invalid UTF-8 sequences.
        ("京都の桜が見頃です。".encode("shift_jis") * 20, None, "京都の桜が見頃です。", 0),
        ("京都の桜が見頃です。".encode("shift_jis") * 20, "Shift_JIS", "京都の桜が見頃です。", 0),
        # ISO-8859-1 declared: read as declared.
        ("Caf\u00e9 déjà vu".encode("latin-1"), "iso-8859-1", "Café déjà vu", 0),
    ],
)
def test_a_document_in_another_encoding_is_told_from_damaged_utf8(
    content: bytes, declared: str | None, expected: str, replaced: int
) -> None:
    text, _ = decode_text(content, declared)
    assert expected in text
    assert text.count("\ufffd") == replaced


FORMATS_BY_FIXTURE = {
    "savvytokyo-feed.rss": "feed",
    "gaijinpot-blog-atom.xml": "feed",
    "wp-posts-page-1.json": "wordpress",
    "japantoday-news-sitemap.xml": "sitemap",
    "savvytokyo-recipe-sakura-mochi.html": "page",
    "japantoday-access.log": "access-log",
    "savvytokyo-ga4-pages.csv": "analytics",
}
WIDE = {
    "utf-16-le": lambda t: t.encode("utf-16"),
    "utf-16-be": lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    "utf-32": lambda t: t.encode("utf-32"),
}


@pytest.mark.parametrize("encoding", list(WIDE))
@pytest.mark.parametrize("name", list(FORMATS_BY_FIXTURE))
def test_utf16_and_utf32_with_a_bom_are_recognised(name: str, encoding: str) -> None:
    # (The access log holds a Latin-1 byte on purpose: U+FFFD stands in for it here.)
    text = (FIXTURES / name).read_bytes().decode("utf-8", "replace")
    content = WIDE[encoding](text.replace('encoding="UTF-8"', f'encoding="{encoding}"'))
    assert sniff_format(Document(source=name, content=content)) == FORMATS_BY_FIXTURE[name]


@pytest.mark.parametrize("encoding", [*WIDE, "utf-16-be without a BOM"])
def test_a_utf16_feed_reads_the_same_articles(encoding: str) -> None:
    text = (FIXTURES / "savvytokyo-feed.rss").read_text(encoding="utf-8")
    encode = WIDE.get(encoding, lambda t: t.encode("utf-16-be"))
    content = encode(text.replace('encoding="UTF-8"', 'encoding="UTF-16"'))
    wide = read_feed(Document(source="wide", content=content), site_context("savvytokyo"), now=NOW)
    plain = read_feed(fixture("savvytokyo-feed.rss"), site_context("savvytokyo"), now=NOW)
    assert wide.valid.drop(columns="modified_at").equals(plain.valid.drop(columns="modified_at"))


def test_a_post_nested_too_deep_is_rejected_alone_and_the_good_ones_kept() -> None:
    posts = (FIXTURES / "wp-posts-page-1.json").read_text(encoding="utf-8")
    first_end = posts.index("\n },\n {") + len("\n },")
    deep = '\n {"id": 9, "meta": ' + "[" * 100_000 + "]" * 100_000 + "},"
    content = (posts[:first_end] + deep + posts[first_end:]).encode()
    result = read_wordpress(
        Document(source="deep", content=content), site_context("gaijinpot-blog"), now=NOW
    )
    assert len(result.valid) == len(json.loads(posts))  # every good post kept
    rejected = result.rejected
    assert rejected["row"].tolist() == [2]
    reason = rejected["reason"].iat[0]
    line = posts[:first_end].count("\n") + 2
    assert "nested more than 256 levels deep" in reason and f"at line {line}," in reason


def test_a_lone_surrogate_escape_is_replaced_and_the_ingest_goes_on() -> None:
    """JSON's "\\ud800" decodes to a string no UTF-8 (nor Arrow) can hold."""
    from recommender.ingest.analytics import read_analytics

    text = (FIXTURES / "wp-posts-page-1.json").read_text(encoding="utf-8")
    text = text.replace("Ramen Etiquette", "Ramen \\ud800Etiquette", 1)
    result = read_wordpress(
        Document(source="s", content=text.encode()), site_context("gaijinpot-blog"), now=NOW
    )
    assert len(result.valid) == len(json.loads(text))
    assert result.valid["title"].str.contains("Ramen \ufffdEtiquette").any()
    repaired = result.problems[result.problems["action"] == "repaired"]
    assert repaired[["row", "field"]].values.tolist() == [[1, "(record)"]]

    lines = (
        '{"ts": "2021-03-07T00:00:00Z", "url": "/a/", "session": "s\\udfff"}\n'
        '{"ts": "2021-03-07T00:00:00Z", "url": "/b/"}\n'
    )
    traffic = read_analytics(
        Document(source="ga", content=lines.encode()), site_context("savvytokyo"), now=NOW
    )
    assert len(traffic.events.valid) == 2
    assert traffic.events.problems[["row", "action"]].values.tolist() == [[1, "repaired"]]
