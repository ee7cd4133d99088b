"""The operator's page in real headless Chromium: it opens with its token,
its charts show, and it asks for nothing outside 127.0.0.1 (every other
request is answered by the test itself and recorded). A screenshot is saved.

Needs Debian's chromium (/usr/bin/chromium) and the Playwright driver from
the test extra; nothing is installed here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from recommender.web import ServiceSettings, create_app
from tests.web.conftest import SITES, LiveServer
from tests.web.test_dashboard import TOKEN, make_dash_store, traffic_rows, write_spool

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

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_dashboard_shows_its_charts_and_loads_nothing_from_outside(tmp_path: Path) -> None:
    settings = ServiceSettings(
        store_url=make_dash_store(tmp_path),
        events_dir=tmp_path / "events",
        sites=SITES,
        refresh_seconds=0,
        dashboard_token=TOKEN,
    )
    write_spool(settings.events_dir, traffic_rows(), "events-20261130T120000000000Z-1-000001.csv")
    outside: list[str] = []
    asked: list[str] = []
    with LiveServer(create_app(settings)) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})

        def elsewhere(route: Any) -> None:
            outside.append(route.request.url)
            route.fulfill(status=404, content_type="text/plain", body="not here")

        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), elsewhere)
        page = context.new_page()
        page.on("request", lambda request: asked.append(request.url))
        try:
            refused = page.goto(f"{server.url}/dashboard")
            assert refused is not None and refused.status == 401
            opened = page.goto(f"{server.url}/dashboard?token={TOKEN}")
            assert opened is not None and opened.status == 200
            page.wait_for_load_state("networkidle")
            for chart in (
                "ctr-site",
                "ctr-placement",
                "ctr-site-total",
                "trending-network",
                "runs-seconds",
                "runs-lists",
                "backtest",
                "ranker",
            ):
                assert page.is_visible(f"svg#{chart}"), chart
                box = page.eval_on_selector(
                    f"svg#{chart}",
                    "el => [el.getBoundingClientRect().width, el.getBoundingClientRect().height]",
                )
                assert box[0] > 300 and box[1] > 50, (chart, box)
            # The points are drawn (the data's circles are in the charts).
            assert page.eval_on_selector_all("svg#ctr-site circle.point", "els => els.length") == 5
            assert page.evaluate("() => window.pwned") is None
            screenshot = Path(os.environ.get(SCREENSHOT_DIR_ENV) or tmp_path) / "dashboard.png"
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.read_bytes().startswith(b"\x89PNG")
        finally:
            context.close()
            browser.close()
    assert outside == []
    assert asked and all(url.startswith(server.url) for url in asked), asked
