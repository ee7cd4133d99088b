"""`recommender ingest` end to end: the incremental corpus, traffic, fetching, the command."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.errors import InputError
from recommender.ingest import read_articles, read_events
from recommender.ingest.corpus import Corpus, EventLog, corpus_lock
from recommender.ingest.fetch import FetchPolicy
from recommender.ingest.pipeline import IngestOptions, IngestReport, ingest
from tests.test_ingest_fetch import LocalSite
from tests.test_ingest_sources import FIXTURES, REPO, sample_config

NOW = pd.Timestamp("2021-03-08T00:00:00Z")
FAST = FetchPolicy(read_timeout=1.0, attempt_timeout=3.0, retries=1, backoff=0.01)


@pytest.fixture
def site() -> LocalSite:
    server = LocalSite()
    yield server
    server.close()


def run(tmp_path: Path, site_key: str, *sources: str | Path, **options: object) -> IngestReport:
    return ingest(
        [str(s) for s in sources],
        sample_config(),
        corpus_path=tmp_path / "corpus.parquet",
        events_path=tmp_path / "events.parquet",
        options=IngestOptions(site=site_key, fetch=FAST, **options),  # type: ignore[arg-type]
        now=NOW,
    )


def counts(report: IngestReport) -> tuple[int, int, int, int, int]:
    c = report.counts
    return c.new, c.updated, c.unpublished, c.unchanged, report.rejected


def test_the_same_ingest_twice_changes_nothing(tmp_path: Path) -> None:
    sources = [FIXTURES / "wp-posts-page-1.json", FIXTURES / "gaijinpot-blog-atom.xml"]
    first = run(tmp_path, "gaijinpot-blog", *sources)
    # Three distinct articles: the Atom entries repeat two WordPress posts.
    assert counts(first) == (3, 0, 0, 0, 0)
    corpus = tmp_path / "corpus.parquet"
    written = corpus.stat().st_mtime_ns
    second = run(tmp_path, "gaijinpot-blog", *sources)
    assert counts(second) == (0, 0, 0, 3, 0)
    assert corpus.stat().st_mtime_ns == written  # not even rewritten
    stored = Corpus.load(corpus).articles.set_index("title")
    # Fields merge, the later source winning where it has a value: the Atom
    # entry's tags; the post's image and category where the entry has none.
    torch = stored.loc["Tokyo 2020 Torch Relay to Start in Fukushima This Month"]
    ramen = stored.loc["Ramen Etiquette: Slurping, Soup and Everything Else"]
    assert ramen["tags"] == "ramen" and ramen["image_url"].endswith("/ramen.jpg")
    assert torch["category"] == "Life in Japan"


def test_an_updated_article_replaces_the_old_version_and_keeps_its_id(tmp_path: Path) -> None:
    feed = FIXTURES / "savvytokyo-feed.rss"
    run(tmp_path, "savvytokyo", feed)
    before = Corpus.load(tmp_path / "corpus.parquet").articles.set_index("url")
    changed = tmp_path / "feed.rss"
    changed.write_bytes(feed.read_bytes().replace(b"Three women share", b"Four women share", 1))
    report = run(tmp_path, "savvytokyo", changed)
    assert counts(report)[:4] == (0, 1, 0, 2)
    after = Corpus.load(tmp_path / "corpus.parquet").articles.set_index("url")
    url = "https://savvytokyo.com/ten-years-on-remembering-the-great-east-japan-earthquake/"
    assert "Four women share" in after.at[url, "body"]
    assert after.at[url, "article_id"] == before.at[url, "article_id"]
    assert after.at[url, "content_hash"] != before.at[url, "content_hash"]
    assert len(after) == len(before)


def test_a_copy_under_another_url_is_a_duplicate(tmp_path: Path) -> None:
    feed = FIXTURES / "savvytokyo-feed.rss"
    run(tmp_path, "savvytokyo", feed)
    amp = tmp_path / "amp.rss"
    amp.write_bytes(
        feed.read_bytes().replace(
            b"<link>https://savvytokyo.com/ten-years-on",
            b"<link>https://savvytokyo.com/amp/ten-years-on",
        )
    )
    report = run(tmp_path, "savvytokyo", amp)
    assert report.counts.new == 0 and report.counts.duplicates == 1


def test_a_draft_unpublishes_the_post_and_complete_listings_unpublish_the_rest(
    tmp_path: Path,
) -> None:
    posts = json.loads((FIXTURES / "wp-posts-page-2.json").read_bytes())
    posts[1]["status"] = "publish"
    published = tmp_path / "page-2.json"
    published.write_text(json.dumps(posts))
    first = run(tmp_path, "gaijinpot-blog", FIXTURES / "wp-posts-page-1.json", published)
    assert counts(first) == (4, 0, 0, 0, 0)
    drafted = run(tmp_path, "gaijinpot-blog", FIXTURES / "wp-posts-page-2.json")
    assert counts(drafted) == (0, 0, 1, 1, 0)
    complete = run(tmp_path, "gaijinpot-blog", FIXTURES / "wp-posts-page-1.json", complete=True)
    assert complete.counts.unpublished == 1  # Kawazu: not in the complete listing
    stored = Corpus.load(tmp_path / "corpus.parquet").articles
    assert stored["status"].value_counts().to_dict() == {"published": 2, "unpublished": 2}
    # The batch job reads the corpus like any article file; unpublished rows stay known.
    loaded = read_articles(tmp_path / "corpus.parquet", sites=list(sample_config().sites))
    assert loaded.n_rejected == 0 and len(loaded.valid) == 4


def test_complete_is_ignored_when_a_source_failed(tmp_path: Path) -> None:
    run(tmp_path, "gaijinpot-blog", FIXTURES / "wp-posts-page-1.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    report = run(tmp_path, "gaijinpot-blog", broken, complete=True)
    assert report.counts.unpublished == 0 and report.rejected == 1
    assert any("--complete ignored" in note for note in report.notes)


def test_bad_documents_are_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    (tmp_path / "broken.xml").write_bytes(b"<?xml version='1.0'?><rss><channel><item>")
    (tmp_path / "nonsense.bin").write_bytes(bytes(range(256)) * 4)
    report = run(
        tmp_path,
        "savvytokyo",
        FIXTURES / "savvytokyo-feed.rss",
        tmp_path / "broken.xml",
        tmp_path / "nonsense.bin",
        tmp_path / "missing.rss",
        str(tmp_path / "spool" / "*.rss"),
    )
    assert report.counts.new == 3
    problems = report.problems.set_index("file")
    assert "cannot tell the format" in problems.at[str(tmp_path / "nonsense.bin"), "reason"]
    assert problems.at[str(tmp_path / "missing.rss"), "reason"] == "file not found"
    assert any("matches no file" in note for note in report.notes)
    assert report.documents_failed == 2


def test_the_corpus_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tmp_path, "savvytokyo", FIXTURES / "savvytokyo-feed.rss")
    corpus = tmp_path / "corpus.parquet"
    before = corpus.read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, "savvytokyo", FIXTURES / "savvytokyo-recipe-sakura-mochi.html")
    assert corpus.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_second_ingest_waits_for_the_lock(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.parquet"
    with corpus_lock(corpus), pytest.raises(InputError, match="another ingest"):  # noqa: SIM117
        with corpus_lock(corpus, timeout=0.3):
            pass


def test_access_logs_become_views_of_corpus_articles_without_bots(tmp_path: Path) -> None:
    run(tmp_path, "japantoday", FIXTURES / "japantoday-news-sitemap.xml")
    report = run(tmp_path, "japantoday", FIXTURES / "japantoday-access.log")
    # Views: the sweets story twice (one with ?utm_source, one with a trailing
    # slash), graduation twice (a 304 and one with ?utm_medium).
    assert report.events_added == 4
    assert report.bots == 4  # Googlebot, bingbot, curl, an empty user agent
    assert report.skipped_hits == 4  # an image, a POST, a 404, a TLS probe
    assert report.events_unmatched == 1  # the home page
    assert report.events_rejected == 3  # not UTF-8, a cut line, 31 February
    rejected = report.problems[report.problems["file"].str.endswith(".log")]
    assert sorted(rejected["row"]) == [13, 14, 16]
    events = read_events(tmp_path / "events.parquet")
    stored = Corpus.load(tmp_path / "corpus.parquet").articles.set_index("article_id")
    titles = events.valid["article_id"].map(stored["title"]).value_counts().to_dict()
    assert titles == {
        "Sakura-themed sweets arrive early as shops bet on stay-home hanami": 2,
        "Graduation ceremonies go ahead with limited guests": 2,
    }
    assert events.valid["session"].str.fullmatch(r"[0-9a-f]{16}").all()  # no addresses kept
    again = run(tmp_path, "japantoday", FIXTURES / "japantoday-access.log")
    assert (again.events_added, again.events_repeated) == (0, 4)


def test_analytics_exports_expand_counts_and_map_paths(tmp_path: Path) -> None:
    run(tmp_path, "savvytokyo", FIXTURES / "savvytokyo-feed.rss")
    report = run(
        tmp_path,
        "savvytokyo",
        FIXTURES / "savvytokyo-ga4-pages.csv",
        FIXTURES / "savvytokyo-widget-events.jsonl",
    )
    events = EventLog.load(tmp_path / "events.parquet").events
    stored = Corpus.load(tmp_path / "corpus.parquet").articles.set_index("article_id")
    by_title = events.groupby([events["article_id"].map(stored["title"]), "kind"]).size()
    assert by_title.to_dict() == {
        ("Planning Hanami 2021: Socially Distanced Picnic Tips", "view"): 1204 + 310 + 1,
        ("Ten Years On: Remembering The Great East Japan Earthquake", "view"): 95,
        ("Recipe: Homemade Chirashizushi For Girls’ Day", "click"): 1,
    }
    click = events[events["kind"] == "click"].iloc[0]
    assert (click["source_article_id"], click["placement"]) == ("jt-070", "mix-block")
    assert report.bots == 1 and report.events_unmatched == 4410
    reasons = " ".join(report.problems["reason"])
    for expected in ("bad count", "fields, the header has 5", "unknown kind", "absurd time"):
        assert expected in reasons
    again = run(tmp_path, "savvytokyo", FIXTURES / "savvytokyo-ga4-pages.csv")
    assert again.events_added == 0


def test_over_http_sitemaps_pages_and_gone_articles(site: LocalSite, tmp_path: Path) -> None:
    real = "https://travel.gaijinpot.com"
    site.serve_fixture(
        "/sitemap_index.xml",
        "gaijinpot-travel-sitemap-index.xml",
        "application/xml",
        **{real: site.base},
    )
    site.serve_fixture(
        "/sitemap-pages.xml",
        "gaijinpot-travel-sitemap-pages.xml",
        "application/xml",
        **{real: site.base},
    )
    site.serve_fixture(
        "/kinkaku-ji-temple-golden-pavilion/",
        "gaijinpot-travel-kinkaku-ji.html",
        "text/html",
        **{real: site.base},
    )
    site.serve(
        "/ise/",
        "<html><head><title>Ise | GaijinPot Travel</title>"
        "<meta property='article:published_time' content='2021-03-01T11:00:00+09:00'>"
        "</head><body><p>Ise Jingu is Shinto's holiest shrine.</p></body></html>",
    )
    site.serve("/mie/", "gone", status=503)
    report = run(tmp_path, "gaijinpot-travel", site.url("/sitemap_index.xml"), follow=True)
    assert report.counts.new == 2
    assert report.documents_failed == 1
    assert f"{site.url('/mie/')}: HTTP 503 after 2 attempt(s)" in set(report.problems["reason"])
    stored = Corpus.load(tmp_path / "corpus.parquet").articles.set_index("title")
    assert stored.at["Kinkaku-ji Temple (Golden Pavilion)", "category"] == "Shrines & Temples"

    # Next run: unchanged pages are not fetched again (lastmod), a removed one is gone.
    hits = dict(site.hits)
    site.serve(
        "/mie/",
        "<html><head><title>Mie</title><meta property='article:published_time'"
        " content='2021-02-27T18:00:00+09:00'></head><body><p>Mie.</p></body></html>",
    )
    site.serve("/ise/", "Gone", status=410)
    pages = (FIXTURES / "gaijinpot-travel-sitemap-pages.xml").read_text().replace(real, site.base)
    site.serve(
        "/sitemap-pages.xml",
        pages.replace("2021-03-01T02:00:00", "2021-03-05T02:00:00"),
        "application/xml",
    )
    second = run(tmp_path, "gaijinpot-travel", site.url("/sitemap_index.xml"), follow=True)
    assert (second.counts.new, second.counts.unpublished) == (1, 1)
    assert (
        site.hits["/kinkaku-ji-temple-golden-pavilion/"]
        == hits["/kinkaku-ji-temple-golden-pavilion/"]
    )
    stored = Corpus.load(tmp_path / "corpus.parquet").articles.set_index("title")
    assert stored.at["Ise | GaijinPot Travel", "status"] == "unpublished"


def test_over_http_wordpress_pages_follow_the_link_header_and_304s(
    site: LocalSite, tmp_path: Path
) -> None:
    def posts(page: str, link: str | None) -> None:
        body = (FIXTURES / page).read_bytes()

        def route(handler: object) -> None:
            if handler.headers.get("If-None-Match") == f'"{page}"':  # type: ignore[attr-defined]
                handler.send(304, b"")  # type: ignore[attr-defined]
                return
            headers = {"ETag": f'"{page}"', "X-WP-Total": "4", "X-WP-TotalPages": "2"}
            if link:
                headers["Link"] = f'<{link}>; rel="next"'
            handler.send(200, body, "application/json; charset=UTF-8", headers)  # type: ignore[attr-defined]

        return route

    site.routes["/wp-json/wp/v2/posts"] = posts(
        "wp-posts-page-1.json", "/wp-json/wp/v2/posts?page=2"
    )
    site.routes["/wp-json/wp/v2/posts?page=2"] = posts("wp-posts-page-2.json", None)
    url = site.url("/wp-json/wp/v2/posts?_embed=1&per_page=100")
    first = run(tmp_path, "gaijinpot-blog", url)
    assert (first.documents, first.counts.new) == (2, 3)  # the draft is never stored
    second = run(tmp_path, "gaijinpot-blog", url)
    assert second.not_modified == 1 and second.counts.changed is False
    state = json.loads((tmp_path / "corpus.parquet.fetch-state.json").read_text())
    assert state["validators"][url]["etag"] == '"wp-posts-page-1.json"'


def test_the_command_prints_counts_and_writes_rejects(tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "ingest",
        str(FIXTURES / "savvytokyo-feed.rss"),
        str(FIXTURES / "savvytokyo-recipe-sakura-mochi.html"),
        "--site",
        "savvytokyo",
        "--config",
        str(REPO / "data" / "sample.toml"),
        "--corpus",
        str(tmp_path / "corpus.parquet"),
        "--rejects",
        str(tmp_path / "rejects.csv"),
    ]
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "4 new, 0 updated, 0 unpublished, 0 unchanged, 1 rejected" in " ".join(
        done.output.split()
    )
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects[["row", "field"]].values.tolist() == [[4, "published_at"]]
    again = runner.invoke(cli, args)
    assert "0 new, 0 updated, 0 unpublished, 4 unchanged" in " ".join(again.output.split())

    options = args[3:]
    nothing = runner.invoke(cli, ["ingest", str(tmp_path / "none.rss"), *options])
    assert nothing.exit_code == 3 and "no source could be read" in nothing.output
    unknown = runner.invoke(cli, [*args[:4], "nosuchsite", *args[5:]])
    assert unknown.exit_code == 2 and "not in the config's sites" in unknown.output


def test_the_command_needs_a_corpus_path(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(FIXTURES / "savvytokyo-feed.rss"),
            "--site",
            "savvytokyo",
            "--config",
            str(REPO / "data" / "sample.toml"),
        ],
    )
    assert done.exit_code == 2 and "--corpus PATH" in done.output
    assert not os.path.exists(REPO / "data" / "corpus.parquet")


def test_a_bomb_is_a_rejected_source_and_the_good_feed_beside_it_is_ingested(
    tmp_path: Path,
) -> None:
    from recommender.ingest.documents import IngestLimits
    from tests.test_ingest_tables import parquet_bomb

    bomb = parquet_bomb(
        tmp_path / "bomb.parquet", rows=200, title_bytes=64 * 2**10, site="savvytokyo"
    )
    gz = tmp_path / "bomb.csv.gz"
    gz.write_bytes(gzip.compress(b"title,published_at\n" + b"x,2021-03-01\n" * 2**20))
    report = run(
        tmp_path,
        "savvytokyo",
        bomb,
        gz,
        FIXTURES / "savvytokyo-feed.rss",
        limits=IngestLimits(max_document_bytes=4 * 2**20),
    )
    assert report.counts.new == 3  # the feed's articles, and nothing of the bombs
    assert report.documents_failed == 2
    reasons = report.problems.set_index("file")["reason"]
    assert "decompression bomb" in reasons[str(bomb)] and "4,194,304 bytes" in reasons[str(bomb)]
    assert "zip bomb" in reasons[str(gz)]
    stored = Corpus.load(tmp_path / "corpus.parquet").articles
    assert stored["title"].str.len().max() < 1000


def test_a_utf16_feed_file_is_ingested(tmp_path: Path) -> None:
    text = (FIXTURES / "savvytokyo-feed.rss").read_text(encoding="utf-8")
    wide = tmp_path / "feed-utf16.rss"
    wide.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    report = run(tmp_path, "savvytokyo", wide)
    assert counts(report) == (3, 0, 0, 0, 1)  # as the UTF-8 feed: its 4th item has no date
