"""How fast ingest reads each format and upserts into the corpus, on generated data.

Run: ``python benchmarks/ingest.py [--scale 1.0]``. Prints one line per stage with
the median of 3 runs; results are recorded in ``benchmarks/results/ingest.md``.
The data is synthetic (shaped like the fixtures in ``tests/fixtures/ingest``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from recommender.config import load_config
from recommender.ingest.accesslog import read_access_log
from recommender.ingest.corpus import Corpus
from recommender.ingest.documents import Document
from recommender.ingest.feeds import read_feed
from recommender.ingest.pages import read_page
from recommender.ingest.records import SiteContext
from recommender.ingest.sitemaps import read_sitemap
from recommender.ingest.wordpress import read_wordpress

REPO = Path(__file__).resolve().parents[1]
NOW = pd.Timestamp("2021-03-08T00:00:00Z")
BODY = "<p>Sakura mochi is a pink rice cake wrapped in a salted cherry leaf.</p>" * 20


def feed(n: int) -> bytes:
    items = "".join(
        f"<item><title>Story {i}</title><link>https://savvytokyo.com/story-{i}/</link>"
        f"<pubDate>Sat, 06 Mar 2021 23:15:00 +0000</pubDate><category>Living</category>"
        f"<description><![CDATA[{BODY}]]></description></item>"
        for i in range(n)
    )
    return f"<rss version='2.0'><channel>{items}</channel></rss>".encode()


def wordpress(n: int) -> bytes:
    posts = [
        {
            "link": f"https://savvytokyo.com/story-{i}/",
            "date_gmt": "2021-03-06T23:15:00",
            "status": "publish",
            "title": {"rendered": f"Story {i}"},
            "content": {"rendered": BODY},
            "_embedded": {"wp:term": [[{"name": "Living", "taxonomy": "category"}]]},
        }
        for i in range(n)
    ]
    return json.dumps(posts).encode()


def sitemap(n: int) -> bytes:
    urls = "".join(
        f"<url><loc>https://savvytokyo.com/story-{i}/</loc><lastmod>2021-03-0{1 + i % 7}</lastmod>"
        "</url>"
        for i in range(n)
    )
    return (
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>" + urls + "</urlset>"
    ).encode()


def access_log(n: int) -> bytes:
    agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/89.0 Safari/537.36",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ]
    return "\n".join(
        f"192.0.2.{i % 250} - - [07/Mar/2021:09:{i % 60:02d}:{i % 59:02d} +0900] "
        f'"GET /story-{i % 5000}/?utm_source=x HTTP/1.1" 200 100 "-" "{agents[i % 7 == 0]}"'
        for i in range(n)
    ).encode()


def page() -> bytes:
    return (
        REPO / "tests" / "fixtures" / "ingest" / "gaijinpot-travel-kinkaku-ji.html"
    ).read_bytes()


def median_seconds(run: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply every size by this.")
    args = parser.parse_args()
    scale = args.scale
    config = load_config(REPO / "data" / "sample.toml")
    site = SiteContext.from_config(config, "savvytokyo")

    def doc(content: bytes) -> Document:
        return Document(source="bench", content=content, url="https://savvytokyo.com/x/")

    n_feed, n_posts, n_urls, n_hits, n_pages = (
        int(1_000 * scale),
        int(1_000 * scale),
        int(50_000 * scale),
        int(200_000 * scale),
        int(20 * scale),
    )
    feed_doc, wp_doc, sitemap_doc, log_doc, page_doc = (
        doc(feed(n_feed)),
        doc(wordpress(n_posts)),
        doc(sitemap(n_urls)),
        doc(access_log(n_hits)),
        doc(page()),
    )
    articles = read_wordpress(wp_doc, site, now=NOW).valid
    rows = [
        ("RSS feed", n_feed, "items", lambda: read_feed(feed_doc, site, now=NOW)),
        ("WordPress JSON", n_posts, "posts", lambda: read_wordpress(wp_doc, site, now=NOW)),
        ("sitemap", n_urls, "entries", lambda: read_sitemap(sitemap_doc, site, now=NOW)),
        (
            "HTML pages",
            n_pages,
            "pages",
            lambda: [read_page(page_doc, site, now=NOW) for _ in range(n_pages)],
        ),
        (
            "access log",
            n_hits,
            "lines",
            lambda: read_access_log(log_doc, site, articles=articles, now=NOW),
        ),
    ]
    for name, n, unit, run in rows:
        seconds = median_seconds(run)
        print(f"{name:<16} {n:>9,} {unit:<8} {seconds:8.3f} s  {n / seconds:>10,.0f} {unit}/s")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.parquet"

        def upsert() -> None:
            corpus = Corpus.load(path)
            corpus.upsert(articles, now=NOW)
            corpus.save(path)

        seconds = median_seconds(upsert)
        print(f"{'upsert + save':<16} {len(articles):>9,} {'articles':<8} {seconds:8.3f} s")


if __name__ == "__main__":
    main()
