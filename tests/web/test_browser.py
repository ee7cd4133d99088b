"""The widget as a reader meets it: a publisher's page (one origin) embeds the
script of the service (another origin) in real headless Chromium; the block
shows, the impressions and a click reach the events spool that the batch job
reads. Nothing leaves 127.0.0.1: the partner sites' links are answered by the
test itself.

Needs Debian's chromium (/usr/bin/chromium; ``.ci/run`` installs it with apt)
and the Playwright driver from the test extra; nothing is installed here.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd
import pytest

from recommender.ingest import read_events
from recommender.lists import RunInfo
from recommender.store import open_store
from tests.web.conftest import SEED_BLOCK, SITES, LiveServer, network_lists, page

CHROMIUM = Path("/usr/bin/chromium")
#: The screenshot goes to the test's temporary folder (tests never write into the
#: repository); set this variable to a folder to keep it.
SCREENSHOT_DIR_ENV = "RECOMMENDER_TEST_ARTIFACTS"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (/usr/bin/chromium): "
        "apt-get install chromium, as .ci/run does",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright driver (test extra) is not installed"
)

# As this machine's notes say: no sandbox as root, and no background traffic
# toward Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ARTICLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Blinken, Austin to visit Japan from March 15 | JapanToday</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}</style>
</head><body>
<main><article>
<h1>Blinken, Austin to visit Japan from March 15</h1>
<p>U.S. Secretary of State Antony Blinken and Defense Secretary Lloyd Austin are making
arrangements to visit Japan from March 15 for foreign policy and security talks.</p>
{spacer}</article>
<div id="recs" data-recommender-article="{article}" data-recommender-site="japantoday"
     data-recommender-placement="below-article"></div>
</main>
<script src="{service}/widget.js" async></script>
</body></html>
"""


class PublisherSite:
    """The publisher's own pages, on another origin than the service."""

    def __init__(self, service_url: str) -> None:
        service = service_url

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # /ARTICLE, /below/ARTICLE for the block far below the fold, or
                # /page?article=ID for any id (the page's markup is the publisher's).
                parts = urlsplit(self.path)
                below, _, article = parts.path.strip("/").rpartition("/")
                if article == "page":
                    article = parse_qs(parts.query)["article"][0]
                spacer = '<div style="height: 3000px"></div>' if below == "below" else ""
                body = ARTICLE_PAGE.format(
                    article=html.escape(article, quote=True), service=service, spacer=spacer
                )
                body = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PublisherSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def browser_page(live_service: LiveServer) -> Iterator[tuple[object, str, list[str]]]:
    """A Chromium page, the publisher's site URL, and the external URLs asked for."""
    external: list[str] = []
    with PublisherSite(live_service.url) as site, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900})

        def partner_site(route: object) -> None:
            # The partner sites, answered here: the test never touches the internet.
            external.append(route.request.url)  # type: ignore[attr-defined]
            route.fulfill(  # type: ignore[attr-defined]
                status=200, content_type="text/html", body="<h1>partner article</h1>"
            )

        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), partner_site)
        page = context.new_page()
        try:
            yield page, site.url, external
        finally:
            context.close()
            browser.close()


def wait_for(condition: Callable[[], pd.DataFrame], what: str, timeout: float = 15) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if len(found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_reader_sees_the_block_and_a_click_is_stored(
    browser_page, settings, tmp_path: Path
) -> None:
    page, site_url, external = browser_page
    page.goto(f"{site_url}/jt-1")
    page.wait_for_selector("#recs .rec-item")

    assert page.inner_text("#recs .rec-heading") == "A mix of what's trending on our other sites"
    shown = page.eval_on_selector_all(
        "#recs .rec-item",
        """items => items.map(li => [
            li.querySelector('.rec-category')?.textContent ?? '',
            li.querySelector('.rec-title').textContent,
            li.querySelector('.rec-site').textContent])""",
    )
    assert [tuple(row) for row in shown] == [
        (category, title, SITES[site]) for category, title, site in SEED_BLOCK
    ]
    styled = page.eval_on_selector("#recs .rec-items", "el => getComputedStyle(el).display")
    assert styled == "grid"  # widget.css was loaded from the service
    screenshot = Path(os.environ.get(SCREENSHOT_DIR_ENV) or tmp_path) / "widget-browser.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")

    def events(kind: str) -> pd.DataFrame:
        frame = read_events(settings.events_dir / "*.csv").valid
        return frame[frame["kind"] == kind]

    impressions = wait_for(lambda: events("impression"), "the block's impressions")
    assert len(impressions) == len(SEED_BLOCK)
    assert set(impressions["source_article_id"]) == {"jt-1"}
    assert set(impressions["placement"]) == {"below-article"}

    first = page.locator("#recs .rec-item a").first
    clicked_id = first.get_attribute("data-rec-article")
    first.click()
    page.wait_for_url("https://savvytokyo.example/**")
    landing = parse_qs(urlsplit(page.url).query)
    assert landing["utm_source"] == ["japantoday"] and landing["utm_content"] == ["jt-1"]
    assert landing["utm_campaign"] == ["below-article"] and landing["ref"] == ["feed"]
    assert external == [page.url]  # the only request that left 127.0.0.1: the click

    clicks = wait_for(lambda: events("click"), "the click event")
    assert clicks[["article_id", "source_article_id", "placement"]].values.tolist() == [
        [clicked_id, "jt-1", "below-article"]
    ]
    assert clicks["session"].iloc[0] == impressions["session"].iloc[0]  # one page view


def test_hostile_data_shows_as_text_and_runs_nothing(browser_page) -> None:
    page, site_url, external = browser_page
    page.goto(f"{site_url}/evil")
    page.wait_for_selector("#recs .rec-item")
    titles = page.eval_on_selector_all("#recs .rec-title", "els => els.map(a => a.textContent)")
    assert titles == ["<script>window.pwned=1</script>", "Fish & Chips \"quoted\" 'single'"]
    categories = page.eval_on_selector_all(
        "#recs .rec-category", "els => els.map(e => e.textContent)"
    )
    assert categories[0] == '<img src=x onerror="window.pwned=1">'
    page.wait_for_timeout(300)  # time for an injected handler to have fired
    assert page.evaluate("window.pwned") is None
    hrefs = page.eval_on_selector_all("#recs a", "els => els.map(a => a.href)")
    assert hrefs and all(href.startswith("https://") for href in hrefs)
    assert page.locator("#recs img, #recs script, #recs b").count() == 0
    assert external == []


def test_impressions_wait_until_the_block_is_seen(browser_page, settings) -> None:
    page, site_url, _ = browser_page
    page.goto(f"{site_url}/below/jt-1")
    page.wait_for_selector("#recs .rec-item", state="attached")
    page.wait_for_timeout(1000)  # several flushes of the spool
    assert not list(settings.events_dir.glob("*.csv"))  # below the fold: not seen yet
    page.locator("#recs").scroll_into_view_if_needed()
    seen = wait_for(
        lambda: read_events(settings.events_dir / "*.csv").valid, "impressions after scrolling"
    )
    assert seen["kind"].tolist() == ["impression"] * len(SEED_BLOCK)


#: A list whose titles and labels run script when inserted as HTML unescaped
#: (as the JSON endpoint's answer would be).
SCRIPTED_BLOCK = [
    ("<img src=x onerror=alert(document.domain)>", "<img src=x onerror=alert(1)>", "savvytokyo"),
    ("Food", "<svg onload=alert(2)>", "gaijinpot-blog"),
]

#: Ids from a page's markup that try to make widget.js fetch another endpoint.
PATH_CHANGING_IDS = [
    "../v1/recommendations/scripted",
    "../v1/recommendations/jt-070",
    "%2e%2e/v1/recommendations/scripted",
    ".%2e/v1/recommendations/scripted",
    "..%2fv1%2frecommendations%2fscripted",
    "../../v1/recommendations/scripted?site=japantoday",
    "..",
    "scripted?x=#",
    "jt-1#../v1/recommendations/scripted",
    "a?article=../v1/recommendations/scripted",
    "../v1/trending?k=5#" + "x" * 4000,
]


@pytest.fixture
def scripted_run(settings) -> None:
    """A run in which the page ``scripted`` has titles that run script as HTML."""
    store = open_store(settings.store_url)
    lists = [*network_lists("run-02"), page("scripted", "run-02", SCRIPTED_BLOCK, "japantoday")]
    store.publish(lists, RunInfo("run-02", "2021-03-08T00:00:00+00:00"))
    store.close()


@pytest.mark.parametrize("article_id", PATH_CHANGING_IDS, ids=lambda a: a[:40])
def test_no_id_makes_the_script_insert_anything_but_the_block(
    browser_page, scripted_run, article_id: str
) -> None:
    page_, site_url, external = browser_page
    dialogs: list[str] = []
    page_.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    fragments: list[str] = []
    page_.on(
        "response",
        lambda response: fragments.append(response.url) if "/widget?" in response.url else None,
    )
    page_.goto(f"{site_url}/page?{urlencode({'article': article_id})}")
    page_.wait_for_load_state("networkidle")
    page_.wait_for_timeout(300)  # time for an injected handler to have fired
    assert dialogs == []
    assert page_.evaluate("window.pwned") is None
    text = page_.inner_text("#recs")
    assert '"run_id"' not in text and '"items"' not in text and "{" not in text
    assert page_.locator("#recs img, #recs svg, #recs script").count() == 0
    # The id is an unknown page: the block shows the site's fallback.
    page_.wait_for_selector("#recs .rec-item", timeout=10_000)
    titles = page_.eval_on_selector_all("#recs .rec-title", "els => els.map(a => a.textContent)")
    assert titles == [title for _, title, _ in SEED_BLOCK[2:]]
    assert [parse_qs(urlsplit(url).query)["article"] for url in fragments] == [[article_id]]
    assert external == []


def test_a_very_long_id_gets_the_fallback_block(browser_page) -> None:
    page_, site_url, _ = browser_page
    page_.goto(f"{site_url}/page?{urlencode({'article': 'j' * 3000})}")
    page_.wait_for_selector("#recs .rec-item", timeout=10_000)
    titles = page_.eval_on_selector_all("#recs .rec-title", "els => els.map(a => a.textContent)")
    assert titles == [title for _, title, _ in SEED_BLOCK[2:]]
    assert page_.get_attribute("#recs .rec-block", "data-rec-source") is None


def test_the_api_docs_show_without_internet(browser_page, live_service) -> None:
    page_, _, external = browser_page
    page_.goto(f"{live_service.url}/docs")
    page_.wait_for_selector(".opblock", timeout=10_000)
    paths = page_.eval_on_selector_all(
        ".opblock-summary-path", "els => els.map(e => e.textContent.replace(/\\u200b/g, ''))"
    )
    assert {"/v1/recommendations/{article_id}", "/widget", "/v1/events", "/healthz"} <= set(paths)
    assert external == []  # nothing from a CDN, nothing to an online validator
