"""The operator's page in real headless Chromium: it opens with its token,
its charts show, and it asks for nothing outside 127.0.0.1 (every other
request is answered by the test itself and recorded). A screenshot is saved.

Needs Debian's chromium (/usr/bin/chromium) and the Playwright driver from
the test extra; nothing is installed here.
"""

from __future__ import annotations

import os
from pathlib import Path

from recommender.web import ServiceSettings, create_app
from tests.web.conftest import SITES, LiveServer

# The browser set-up (Chromium, its flags, the skips) of the widget's browser test.
from tests.web.test_browser import SCREENSHOT_DIR_ENV, chromium
from tests.web.test_browser import pytestmark as pytestmark
from tests.web.test_dashboard import TOKEN, make_dash_store, traffic_rows, write_spool


def test_the_dashboard_shows_its_charts_and_loads_nothing_from_outside(tmp_path: Path) -> None:
    settings = ServiceSettings(
        store_url=make_dash_store(tmp_path),
        events_dir=tmp_path / "events",
        sites=SITES,
        refresh_seconds=0,
        dashboard_token=TOKEN,
    )
    write_spool(settings.events_dir, traffic_rows(), "events-20261130T120000000000Z-1-000001.csv")
    asked: list[str] = []
    with (
        LiveServer(create_app(settings)) as server,
        chromium(server.url, viewport={"width": 1600, "height": 1000}) as (page, _, outside),
    ):
        page.on("request", lambda request: asked.append(request.url))
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
        assert outside == []  # every request outside 127.0.0.1 is recorded there
    assert asked and all(url.startswith(server.url) for url in asked), asked
