"""Fixtures of the HTTP service's tests: a published store whose lists are
known (including hostile titles and links), the app on it, and a real server
on 127.0.0.1 for the browser."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from recommender.lists import NETWORK_PAGE, Item, RecommendationList, RunInfo, site_page_id
from recommender.store import open_store
from recommender.web import ServiceSettings, create_app
from tests.postgres_server import fresh_url, require_postgres

SITES = {
    "japantoday": "JapanToday",
    "savvytokyo": "Savvy Tokyo",
    "gaijinpot-blog": "GaijinPot Blog",
    "gaijinpot-travel": "GaijinPot Travel",
}

#: The seed page's block (category label, title, site), the list of "jt-1".
SEED_BLOCK = [
    ("Families", "Five Of Our Favorite Japanese Baby Products", "savvytokyo"),
    ("", "2021 Top Jobs in Japan Week 9", "gaijinpot-blog"),
    ("Shrines & Temples", "Kinkaku-ji Temple (Golden Pavilion)", "gaijinpot-travel"),
    ("Food & Drink", "Recipe: Sakura Mochi", "savvytokyo"),
    ("Travel", "Truth by the Barrel: In Search of Kobe’s Finest Sake", "gaijinpot-blog"),
    ("What's Happening", "This Week: At Home And Around Tokyo For March 1-7", "savvytokyo"),
]

#: Untrusted data: markup in every text field, and links that are not http(s).
HOSTILE_BLOCK = [
    ('<img src=x onerror="window.pwned=1">', "<script>window.pwned=1</script>", "savvytokyo"),
    ("Food", "Click me", "gaijinpot-blog", "javascript:window.pwned=1"),
    ("Food", "Data link", "gaijinpot-blog", "data:text/html,<script>alert(1)</script>"),
    ('"><b>', "Fish & Chips \"quoted\" 'single'", "gaijinpot-travel"),
]


def item(run_id: str, n: int, category: str, title: str, site: str, url: str | None = None) -> Item:
    return Item(
        article_id=f"{run_id}/{site[:2]}-{n:03d}",
        site=site,
        site_name=SITES[site],
        category=category,
        title=title,
        url=url or f"https://{site}.example/articles/{n}?ref=feed",
        image_url=None,
        score=round(1.0 - n / 100, 4),
        relevance=0.5,
        trend=0.3,
        freshness=0.2,
        reason="trending",
    )


def page(source_id: str, run_id: str, rows: list[tuple[str, ...]], site: str | None = None):
    items = tuple(item(run_id, n, *row) for n, row in enumerate(rows))
    return RecommendationList(source_id, site, items, run_id, "2021-03-08T00:00:00+00:00")


def network_lists(run_id: str) -> list[RecommendationList]:
    """jt-1 (the seed's block), evil (hostile data), site and network pages."""
    return [
        page("jt-1", run_id, SEED_BLOCK, "japantoday"),
        page("evil", run_id, HOSTILE_BLOCK, "japantoday"),
        page(site_page_id("japantoday"), run_id, SEED_BLOCK[2:], "japantoday"),
        page(NETWORK_PAGE, run_id, SEED_BLOCK[::-1]),
    ]


def publish(store_url: str, run_id: str) -> None:
    store = open_store(store_url)
    store.publish(network_lists(run_id), RunInfo(run_id, "2021-03-08T00:00:00+00:00"))
    store.close()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'lists.sqlite'}"
    publish(url, "run-01")
    return url


@pytest.fixture
def postgres_store_url() -> Iterator[str]:
    """A PostgreSQL store (a schema of its own) with the same run published;
    skips with the reason when there is no server."""
    require_postgres()
    url = fresh_url()
    publish(url, "run-01")
    yield url
    store = open_store(url)
    store.drop()


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        store_url=store_url,
        events_dir=tmp_path / "events",
        sites=SITES,
        refresh_seconds=0,
        events_flush_seconds=0.1,
    )


class LiveServer:
    """The app under uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Any, **options: Any) -> None:
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say TCP.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", **options
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._socket.close()


@pytest.fixture
def live_service(settings: ServiceSettings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as server:
        yield server


def make_client(app: Any) -> Any:
    """Starlette's TestClient for ``app`` (imported here, quietly: this Starlette
    warns at import that it prefers the httpx2 package)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(app)


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[Any]:
    with make_client(create_app(settings)) as client:
        yield client
