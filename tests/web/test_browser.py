"""The widget as a reader meets it: a publisher's page (one origin) embeds the
script of the service (another origin) in real headless Chromium; the block
shows, the impressions and a click reach the events spool that the batch job
reads. Nothing leaves 127.0.0.1: the partner sites' links are answered by the
test itself.

Needs Debian's chromium (/usr/bin/chromium; ``.ci/run`` installs it with apt)
and the Playwright driver from the test extra; nothing is installed here.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import pandas as pd
import pytest

from recommender.ingest import read_events
from recommender.lists import RunInfo, section_page_id, variant_page_id
from recommender.store import open_store
from recommender.web import ServiceSettings, create_app
from recommender.web.widget import render_widget
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
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blinken, Austin to visit Japan from March 15 | JapanToday</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}</style>
</head><body>
<main><article>
<h1>Blinken, Austin to visit Japan from March 15</h1>
<p>U.S. Secretary of State Antony Blinken and Defense Secretary Lloyd Austin are making
arrangements to visit Japan from March 15 for foreign policy and security talks.</p>
{spacer}</article>
<div id="recs" {target}data-recommender-site="japantoday"
     data-recommender-placement="{placement}"></div>
</main>
<script src="{service}/widget.js" async></script>
</body></html>
"""


class PublisherSite:
    """The publisher's own pages, on another origin than the service."""

    def __init__(self, service_url: str, pages: dict[str, str] | None = None) -> None:
        service = service_url
        fixed = dict(pages or {})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # /ARTICLE, /below/ARTICLE for the block far below the fold, or
                # /page?article=ID for any id (the page's markup is the publisher's);
                # any of them with ?placement=NAME for another placement than
                # "below-article"; /section/LABEL for a section page, /home for the
                # site's home page (the slot names only the site).
                # Any path of ``pages``: that page as given.
                parts = urlsplit(self.path)
                if parts.path in fixed:
                    self._answer(fixed[parts.path])
                    return
                query = parse_qs(parts.query)
                below, _, article = parts.path.strip("/").rpartition("/")
                if article == "page":
                    article = query["article"][0]
                placement = query.get("placement", ["below-article"])[0]
                spacer = '<div style="height: 3000px"></div>' if below == "below" else ""
                if below == "section":
                    label = html.escape(unquote(article), quote=True)
                    target = f'data-recommender-section="{label}" '
                elif not below and article == "home":
                    target = ""
                else:
                    target = f'data-recommender-article="{html.escape(article, quote=True)}" '
                body = ARTICLE_PAGE.format(
                    target=target,
                    placement=html.escape(placement, quote=True),
                    service=service,
                    spacer=spacer,
                )
                self._answer(body)

            def _answer(self, text: str) -> None:
                body = text.encode()
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


#: Desktop and phone windows (the phone's honours the page's meta viewport).
DESKTOP = {"viewport": {"width": 1100, "height": 900}}
PHONE = {"viewport": {"width": 320, "height": 640}, "is_mobile": True, "has_touch": True}


@contextmanager
def chromium(
    service_url: str, pages: dict[str, str] | None = None, **context_options: Any
) -> Iterator[tuple[Any, str, list[str]]]:
    """A Chromium page (a context made with ``context_options``, the desktop
    window by default), the publisher's site URL, and the external URLs asked
    for. ``pages``: the publisher's pages at these paths, as given."""
    external: list[str] = []
    with PublisherSite(service_url, pages) as site, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(**(context_options or DESKTOP))

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


@pytest.fixture
def browser_page(live_service: LiveServer) -> Iterator[tuple[object, str, list[str]]]:
    """A Chromium page, the publisher's site URL, and the external URLs asked for."""
    with chromium(live_service.url) as opened:
        yield opened


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
    # What a ranker learns from: the published run, each item's slot in order.
    assert set(impressions["run_id"]) == {"run-01"}
    assert impressions["position"].tolist() == list(range(1, len(SEED_BLOCK) + 1))
    assert impressions["variant"].isna().all() and impressions["propensity"].isna().all()

    first = page.locator("#recs .rec-item a").first
    clicked_id = first.get_attribute("data-rec-article")
    first.click()
    page.wait_for_url("https://savvytokyo.example/**")
    landing = parse_qs(urlsplit(page.url).query)
    assert landing["utm_source"] == ["japantoday"] and landing["utm_content"] == ["jt-1"]
    assert landing["utm_campaign"] == ["below-article"] and landing["ref"] == ["feed"]
    assert external == [page.url]  # the only request that left 127.0.0.1: the click

    clicks = wait_for(lambda: events("click"), "the click event")
    assert clicks[["article_id", "source_article_id", "placement", "run_id"]].values.tolist() == [
        [clicked_id, "jt-1", "below-article", "run-01"]
    ]
    assert clicks["position"].tolist() == [1]  # the first item was clicked
    assert clicks["variant"].isna().all() and clicks["propensity"].isna().all()
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


def test_a_block_in_an_experiment_reports_its_variant_and_propensities(
    live_service, settings
) -> None:
    """A backend's server-side fragment with a variant and per-item
    propensities (what A/B tests and exploration will write): widget.js sends
    them with each impression and click."""
    block = network_lists("run-01")[0]
    chances = [1.0, 0.25, *[1 / 12] * (len(block.items) - 2)]
    fragment = render_widget(
        block,
        events_url=f"{live_service.url}/v1/events",
        placement="below-article",
        variant="explore.on",
        propensities=chances,
    )
    html_page = (
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        f"<div id='recs'>{fragment}</div>"
        f"<script src='{live_service.url}/widget.js' async></script></body></html>"
    )

    def events(kind: str) -> pd.DataFrame:
        frame = read_events(settings.events_dir / "*.csv").valid
        return frame[frame["kind"] == kind]

    with chromium(live_service.url, pages={"/experiment": html_page}) as (page, site_url, _):
        page.goto(f"{site_url}/experiment")
        shown = wait_for(lambda: events("impression"), "the block's impressions")
        assert shown["run_id"].tolist() == ["run-01"] * len(chances)
        assert shown["variant"].tolist() == ["explore.on"] * len(chances)
        assert shown["position"].tolist() == list(range(1, len(chances) + 1))
        assert shown["propensity"].tolist() == chances
        page.locator("#recs .rec-item a").nth(1).click()
        clicks = wait_for(lambda: events("click"), "the click event")
    assert clicks[["position", "propensity", "variant"]].values.tolist() == [
        [2, 0.25, "explore.on"]
    ]


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


# Layouts and thumbnails (issue 18): the grid and sidebar layouts as a reader's
# browser lays them out, with images that load, fail or are switched off.

#: The image host of the thumbnails' page, answered by the test (:class:`ImageHost`).
IMAGES = "https://img.example"
#: An article image that answers 404 (its site, savvytokyo, has a default image).
MISSING = f"{IMAGES}/articles/missing.png"
#: An article image whose bytes are no image (its site, gaijinpot-blog, has no default).
BROKEN = f"{IMAGES}/articles/broken.png"
SITE_IMAGES = {
    "savvytokyo": f"{IMAGES}/sites/savvytokyo.png",
    "gaijinpot-travel": f"{IMAGES}/sites/gaijinpot-travel.png",
}
#: The article image of each item of the page "thumbs" (the items of SEED_BLOCK).
THUMB_IMAGES = [
    MISSING,  # savvytokyo: falls back to its site's image in the browser
    BROKEN,  # gaijinpot-blog: no default, the image hides in its box
    f"{IMAGES}/articles/2.png",  # gaijinpot-travel: loads
    None,  # savvytokyo: the site's default image, chosen by the service
    None,  # gaijinpot-blog: no image at all, an empty box
    f"{IMAGES}/articles/5.png",  # savvytokyo: loads
]
GRID_COLUMNS = 4
#: The service's placements (the config's [placements]), one per layout.
PLACEMENTS = {
    "text": {"layout": "text"},
    "grid": {"layout": "grid", "columns": GRID_COLUMNS},
    "sidebar": {"layout": "sidebar"},
}
WIDTHS = {"desktop": 1100, "phone": 320}
WINDOWS = {"desktop": DESKTOP, "phone": PHONE}


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG image of one colour (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = (b"\x00" + bytes(rgb) * width) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class ImageHost:
    """The image host, answered in the test: a 320x180 PNG of its own colour
    per path, a 404 for :data:`MISSING`, bytes that are no image for
    :data:`BROKEN`. While ``held``, requests wait unanswered in ``pending``."""

    def __init__(self, held: bool = False) -> None:
        self.held = held
        self.pending: list[Any] = []

    def __call__(self, route: Any) -> None:
        if self.held:
            self.pending.append(route)
        else:
            self.answer(route)

    @staticmethod
    def answer(route: Any) -> None:
        url = route.request.url
        if url == MISSING:
            route.fulfill(status=404, content_type="text/plain", body="not found")
        elif url == BROKEN:
            route.fulfill(status=200, content_type="image/png", body=b"this is not a PNG")
        else:
            colour = zlib.crc32(url.encode()).to_bytes(4, "big")[:3]
            route.fulfill(status=200, content_type="image/png", body=png(320, 180, (*colour,)))

    def release(self) -> None:
        self.held = False
        for route in self.pending:
            self.answer(route)
        self.pending.clear()


def thumbs_list(run_id: str) -> Any:
    block = page("thumbs", run_id, SEED_BLOCK, "japantoday")
    items = tuple(
        dataclasses.replace(it, image_url=url)
        for it, url in zip(block.items, THUMB_IMAGES, strict=True)
    )
    return dataclasses.replace(block, items=items)


@pytest.fixture
def layout_service(settings: ServiceSettings) -> Iterator[LiveServer]:
    """The service with a placement per layout and site default images, and a
    run in which the page ``thumbs`` has article images."""
    store = open_store(settings.store_url)
    lists = [*network_lists("run-02"), thumbs_list("run-02")]
    store.publish(lists, RunInfo("run-02", "2021-03-08T00:00:00+00:00"))
    store.close()
    configured = dataclasses.replace(settings, placements=PLACEMENTS, site_images=SITE_IMAGES)
    with LiveServer(create_app(configured)) as server:
        yield server


#: Every thumbnail has loaded or has given up (hidden in its box).
SETTLED = """() => [...document.querySelectorAll('#recs img.rec-image')].every(img =>
    img.hasAttribute('data-rec-hidden') || (img.complete && img.naturalWidth > 0))"""
#: widget.css has been applied to the block.
STYLED = """() => { const sheet = document.querySelector('link[data-rec-style]');
    const items = document.querySelector('#recs .rec-items');
    return !!(sheet && sheet.sheet && items && getComputedStyle(items).display === 'grid'); }"""
BOXES = """els => els.map(e => { const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height}; })"""


def boxes(page_: Any, selector: str) -> list[dict[str, float]]:
    return page_.eval_on_selector_all(selector, BOXES)


def open_block(page_: Any, site_url: str, placement: str) -> None:
    page_.goto(f"{site_url}/page?{urlencode({'article': 'thumbs', 'placement': placement})}")
    page_.wait_for_selector("#recs .rec-item")
    page_.wait_for_function(STYLED)


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two boxes share more than half a pixel each way."""
    across = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    down = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return across > 0.5 and down > 0.5


def test_broken_thumbnails_fall_back_and_the_grid_does_not_jump(layout_service) -> None:
    images = ImageHost(held=True)
    with chromium(layout_service.url) as (page_, site_url, external):
        page_.context.route(f"{IMAGES}/**", images)
        open_block(page_, site_url, "grid")
        assert page_.get_attribute("#recs .rec-block", "data-rec-layout") == "grid"
        tags = page_.eval_on_selector_all(
            "#recs .rec-item",
            """items => items.map(li => { const img = li.querySelector('img.rec-image');
                return img && ['src', 'loading', 'width', 'height', 'data-rec-fallback']
                    .map(name => img.getAttribute(name)); })""",
        )
        assert tags == [
            [MISSING, "lazy", "320", "180", SITE_IMAGES["savvytokyo"]],
            [BROKEN, "lazy", "320", "180", None],
            [THUMB_IMAGES[2], "lazy", "320", "180", SITE_IMAGES["gaijinpot-travel"]],
            [SITE_IMAGES["savvytokyo"], "lazy", "320", "180", None],
            None,
            [THUMB_IMAGES[5], "lazy", "320", "180", SITE_IMAGES["savvytokyo"]],
        ]
        # The browser asks for every thumbnail; none is answered yet.
        asked = {tag[0] for tag in tags if tag}
        deadline = time.monotonic() + 15
        while {route.request.url for route in images.pending} != asked:
            assert time.monotonic() < deadline, "the thumbnails were not all asked for"
            page_.wait_for_timeout(50)
        assert page_.evaluate(
            "() => [...document.querySelectorAll('#recs img.rec-image')]"
            ".every(img => !img.complete && img.naturalWidth === 0)"
        )
        before = {part: boxes(page_, f"#recs {part}") for part in (".rec-thumb", ".rec-item")}
        images.release()
        page_.wait_for_function(SETTLED, timeout=15_000)
        after = {part: boxes(page_, f"#recs {part}") for part in (".rec-thumb", ".rec-item")}

        # The layout did not move: every box is where and as large as it was.
        assert after == before
        thumbs = after[".rec-thumb"]
        rows: dict[int, list[dict[str, float]]] = {}
        for box in thumbs:
            rows.setdefault(round(box["y"]), []).append(box)
        assert [len(row) for row in rows.values()] == [GRID_COLUMNS, len(SEED_BLOCK) - GRID_COLUMNS]
        for row in rows.values():
            assert len({round(box["height"], 1) for box in row}) == 1
        for box in thumbs:
            assert box["width"] > 100
            assert box["height"] == pytest.approx(box["width"] * 9 / 16, abs=1)

        state = page_.eval_on_selector_all(
            "#recs img.rec-image",
            """imgs => imgs.map(img => [img.currentSrc, img.naturalWidth,
                img.hasAttribute('data-rec-hidden'), getComputedStyle(img).visibility])""",
        )
        # The 404: its site's default image, through the onerror fallback.
        assert state[0] == [SITE_IMAGES["savvytokyo"], 320, False, "visible"]
        # No image and no default: hidden in its box, no broken-image icon.
        assert state[1][2:] == [True, "hidden"]
        assert state[1][1] == 0
        assert [row[1:] for row in state[2:]] == [[320, False, "visible"]] * 3
        assert external == []


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("layout", list(PLACEMENTS))
def test_every_layout_fits_the_window(
    layout_service, tmp_path: Path, layout: str, window: str
) -> None:
    width = WIDTHS[window]
    with chromium(layout_service.url, **WINDOWS[window]) as (page_, site_url, external):
        page_.context.route(f"{IMAGES}/**", ImageHost())
        open_block(page_, site_url, layout)
        # Each lazy thumbnail in view once, so that the screenshot shows them settled.
        items = page_.locator("#recs .rec-item")
        for n in range(items.count()):
            items.nth(n).scroll_into_view_if_needed()
        page_.wait_for_function(SETTLED, timeout=15_000)
        page_.evaluate("window.scrollTo(0, 0)")

        screenshot = (
            Path(os.environ.get(SCREENSHOT_DIR_ENV) or tmp_path) / f"widget-{layout}-{window}.png"
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page_.screenshot(path=str(screenshot), full_page=True)
        assert png_size(screenshot.read_bytes())[0] == width

        assert page_.get_attribute("#recs .rec-block", "data-rec-layout") == (
            None if layout == "text" else layout
        )
        assert page_.evaluate("document.documentElement.scrollWidth") <= width
        cards = boxes(page_, "#recs .rec-item")
        assert len(cards) == len(SEED_BLOCK)
        for card in cards:
            assert card["x"] >= 0 and card["x"] + card["width"] <= width
        titles = boxes(page_, "#recs .rec-title")
        assert all(box["width"] > 0 and box["height"] > 0 for box in titles)
        assert page_.locator("#recs .rec-title").all_inner_texts() == [t for _, t, _ in SEED_BLOCK]
        assert not any(overlap(a, b) for n, a in enumerate(cards) for b in cards[n + 1 :])

        columns = len({round(card["x"]) for card in cards})
        if layout == "grid":
            assert columns == (GRID_COLUMNS if window == "desktop" else 1)
            assert [round(card["y"]) for card in cards[:columns]] == [round(cards[0]["y"])] * (
                columns
            )
            # Titles of a row align, with or without a category label above them.
            row = [round(title["y"]) for title in titles[:columns]]
            assert row == [row[0]] * columns
        elif layout == "sidebar":
            assert columns == 1
            # The thumbnail beside the text, not above it.
            for thumb, title in zip(boxes(page_, "#recs .rec-thumb"), titles, strict=True):
                assert thumb["x"] + thumb["width"] <= title["x"]
                assert thumb["height"] == pytest.approx(thumb["width"] * 9 / 16, abs=1)
        else:
            assert page_.locator("#recs img, #recs .rec-thumb").count() == 0
            if window == "phone":
                assert columns == 1
        assert external == []


@pytest.mark.parametrize("layout", ["grid", "sidebar"])
def test_the_block_reads_with_images_off(layout_service, layout: str) -> None:
    aborted: list[str] = []

    def no_images(route: Any) -> None:
        if route.request.resource_type == "image":
            aborted.append(route.request.url)
            route.abort()
        else:
            route.fallback()

    with chromium(layout_service.url) as (page_, site_url, external):
        page_.context.route("**/*", no_images)
        open_block(page_, site_url, layout)
        page_.wait_for_function(SETTLED, timeout=15_000)
        assert set(aborted) >= {tag for tag in THUMB_IMAGES if tag}
        # Every thumbnail failed (the site defaults too): all hidden in their boxes.
        hidden = page_.eval_on_selector_all(
            "#recs img.rec-image", "imgs => imgs.map(img => getComputedStyle(img).visibility)"
        )
        assert hidden == ["hidden"] * 5

        shown = page_.eval_on_selector_all(
            "#recs .rec-item",
            """items => items.map(li => [
                li.querySelector('.rec-category')?.innerText ?? '',
                li.querySelector('.rec-title').innerText,
                li.querySelector('.rec-site').innerText])""",
        )
        # innerText follows the CSS: categories show upper-cased.
        assert [tuple(row) for row in shown] == [
            (category.upper(), title, SITES[site]) for category, title, site in SEED_BLOCK
        ]
        texts = [
            box
            for part in (".rec-category", ".rec-title", ".rec-site", ".rec-thumb")
            for box in boxes(page_, f"#recs {part}")
        ]
        assert all(box["width"] > 0 and box["height"] > 0 for box in texts)
        # No two cards, and no two parts of the block, lie on each other.
        cards = boxes(page_, "#recs .rec-item")
        assert not any(overlap(a, b) for n, a in enumerate(cards) for b in cards[n + 1 :])
        assert not any(overlap(a, b) for n, a in enumerate(texts) for b in texts[n + 1 :])
        for thumb in boxes(page_, "#recs .rec-thumb"):
            assert thumb["height"] == pytest.approx(thumb["width"] * 9 / 16, abs=1)
        assert external == []


def test_thumbnails_far_below_the_fold_wait_and_then_show_their_own_image(
    layout_service,
) -> None:
    asked: list[str] = []
    host = ImageHost()

    def record(route: Any) -> None:
        asked.append(route.request.url)
        host(route)

    with chromium(layout_service.url) as (page_, site_url, _):
        page_.context.route(f"{IMAGES}/**", record)
        page_.goto(f"{site_url}/below/thumbs?placement=grid")
        page_.wait_for_selector("#recs .rec-item", state="attached")
        page_.wait_for_function(STYLED)
        page_.wait_for_timeout(500)
        assert asked == []  # loading="lazy": nothing is fetched far below the fold
        # A deferred image has not failed: the script left every one as it was.
        assert (
            page_.eval_on_selector_all(
                "#recs img.rec-image",
                "imgs => imgs.filter(img => img.hasAttribute('data-rec-hidden')"
                " || !img.hasAttribute('data-rec-watched')).length",
            )
            == 0
        )
        assert page_.eval_on_selector_all(
            "#recs img.rec-image", "imgs => imgs.map(img => img.getAttribute('src'))"
        ) == [*THUMB_IMAGES[:3], SITE_IMAGES["savvytokyo"], THUMB_IMAGES[5]]
        page_.locator("#recs").scroll_into_view_if_needed()
        page_.wait_for_function(SETTLED, timeout=15_000)
        shown = page_.eval_on_selector_all(
            "#recs img.rec-image",
            "imgs => imgs.map(img => img.hasAttribute('data-rec-hidden') ? null : img.currentSrc)",
        )
        assert shown == [
            SITE_IMAGES["savvytokyo"],
            None,
            THUMB_IMAGES[2],
            SITE_IMAGES["savvytokyo"],
            THUMB_IMAGES[5],
        ]
        assert set(asked) == {*THUMB_IMAGES[:3], SITE_IMAGES["savvytokyo"], THUMB_IMAGES[5]}


def test_section_and_home_pages_show_their_own_blocks(browser_page, settings) -> None:
    store = open_store(settings.store_url)
    section = page(
        section_page_id("japantoday", "Food & Drink"),
        "run-02",
        [("Food", "Ramen in Osaka", "savvytokyo"), ("Food", "Sake tours", "gaijinpot-travel")],
        "japantoday",
    )
    store.publish([*network_lists("run-02"), section], RunInfo("run-02", "2021-03-08T00:00:00Z"))
    store.close()
    page_, site_url, external = browser_page
    page_.goto(f"{site_url}/section/{quote('Food & Drink')}")
    page_.wait_for_selector("#recs .rec-item", timeout=10_000)
    titles = page_.eval_on_selector_all("#recs .rec-title", "els => els.map(a => a.textContent)")
    assert titles == ["Ramen in Osaka", "Sake tours"]
    source = page_.get_attribute("#recs .rec-block", "data-rec-source")
    assert source == "section:japantoday:Food & Drink"
    page_.goto(f"{site_url}/home")
    page_.wait_for_selector("#recs .rec-item", timeout=10_000)
    titles = page_.eval_on_selector_all("#recs .rec-title", "els => els.map(a => a.textContent)")
    assert titles == [title for _, title, _ in SEED_BLOCK[2:]]
    assert page_.get_attribute("#recs .rec-block", "data-rec-source") == "site:japantoday"
    assert external == []


def test_an_ab_test_shows_each_page_view_its_variant_and_logs_it(settings) -> None:
    # All page views go to "ranker" (control's share is negligible): its list of jt-1
    # is shown, and the impressions carry the variant; the script draws the bucket.
    ranker = [("Food", "Ranker's pick", "savvytokyo"), ("Food", "Second pick", "savvytokyo")]
    store = open_store(settings.store_url)
    lists = [
        *network_lists("run-02"),
        page(variant_page_id("blend", "ranker", "jt-1"), "run-02", ranker, "japantoday"),
    ]
    store.publish(lists, RunInfo("run-02", "2021-03-08T00:00:00+00:00"))
    store.close()
    experiments = {
        "blend": {
            "placement": "below-article",
            "variants": {"control": 1e-9, "ranker": 1.0},
            "control": None,
        }
    }
    configured = dataclasses.replace(settings, experiments=experiments)
    with (
        LiveServer(create_app(configured)) as service,
        chromium(service.url) as (page_, site_url, external),
    ):
        asked: list[str] = []
        page_.on("request", lambda r: asked.append(r.url) if "/widget?" in r.url else None)
        page_.goto(f"{site_url}/jt-1")
        page_.wait_for_selector("#recs .rec-item", timeout=10_000)
        titles = page_.eval_on_selector_all(
            "#recs .rec-title", "els => els.map(a => a.textContent)"
        )
        assert titles == [title for _, title, _ in ranker]
        assert page_.get_attribute("#recs .rec-block", "data-rec-variant") == "ranker"
        bucket = parse_qs(urlsplit(asked[0]).query)["ab"][0]
        assert 0 <= int(bucket) <= 999
        seen = wait_for(
            lambda: read_events(settings.events_dir / "*.csv").valid, "the variant's impressions"
        )
        assert set(seen["variant"]) == {"ranker"} and len(seen) == len(ranker)
        # Another placement is in no experiment: no bucket asked for, no variant shown.
        page_.goto(f"{site_url}/jt-1?placement=sidebar")
        page_.wait_for_selector("#recs .rec-item", timeout=10_000)
        assert page_.get_attribute("#recs .rec-block", "data-rec-variant") is None
        assert "ab" not in parse_qs(urlsplit(asked[-1]).query)
        assert external == []
