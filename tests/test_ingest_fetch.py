"""Fetching over HTTP, against a server on 127.0.0.1 that these tests start (never the internet).

The server (:class:`LocalSite`) serves fixture files and misbehaves on
purpose: slow answers, 500s, redirect loops, truncated bodies, conditional
requests, robots.txt, gzip bombs.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recommender.ingest.fetch import Fetched, Fetcher, FetchPolicy

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"

Route = Callable[["_Handler"], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        site = self.server.site
        path = self.path.split("?", 1)[0]
        with site.lock:
            site.hits[path] = site.hits.get(path, 0) + 1
            site.headers_seen.setdefault(path, []).append(dict(self.headers))
            site.in_flight += 1
            site.max_in_flight = max(site.max_in_flight, site.in_flight)
        try:
            route = site.routes.get(self.path) or site.routes.get(path)
            if route is None:
                self.send(404, b"not found", "text/plain")
            else:
                route(self)
        finally:
            with site.lock:
                site.in_flight -= 1

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: LocalSite


class LocalSite:
    """An HTTP server on 127.0.0.1 with a random free port; routes are set per test."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.headers_seen: dict[str, list[dict[str, str]]] = {}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.site = self
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = lambda h: h.send(status, data, content_type, headers)

    def serve_fixture(self, path: str, name: str, content_type: str, **replace: str) -> None:
        """A fixture file, with its real hosts replaced by this server's."""
        text = (FIXTURES / name).read_bytes()
        for old, new in replace.items():
            text = text.replace(old.encode(), new.encode())
        self.serve(path, text, content_type)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    server = LocalSite()
    yield server
    server.close()


FAST = FetchPolicy(
    connect_timeout=2.0,
    read_timeout=0.5,
    attempt_timeout=2.0,
    retries=2,
    backoff=0.01,
    max_backoff=0.05,
)


def fetch(url: str, policy: FetchPolicy = FAST, validators: dict | None = None) -> Fetched:
    async def go() -> Fetched:
        async with Fetcher(policy, validators) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(go())


def test_a_plain_fetch_returns_the_document_and_its_media_type(site: LocalSite) -> None:
    site.serve("/feed/", "<rss version='2.0'/>", "application/rss+xml; charset=UTF-8")
    result = fetch(site.url("/feed/"))
    assert result.error is None and result.status == 200
    assert result.document is not None
    assert result.document.content == b"<rss version='2.0'/>"
    assert result.document.media_type == "application/rss+xml"
    assert result.document.charset == "utf-8"
    sent = site.headers_seen["/feed/"][0]
    assert sent["User-Agent"].startswith("recommender/")
    assert "gzip" in sent["Accept-Encoding"]


def test_a_slow_server_times_out_after_the_retries(site: LocalSite) -> None:
    def slow(handler: _Handler) -> None:
        time.sleep(1.5)
        handler.send(200, b"late")

    site.routes["/slow"] = slow
    policy = FetchPolicy(read_timeout=0.2, attempt_timeout=1.0, retries=1, backoff=0.01)
    started = time.monotonic()
    result = fetch(site.url("/slow"), policy)
    assert result.document is None
    assert "timed out" in (result.error or "") and "2 attempt(s)" in (result.error or "")
    assert site.url("/slow") in (result.error or "")
    assert time.monotonic() - started < 3.0


def test_a_server_that_drips_bytes_is_cut_by_the_attempt_deadline(site: LocalSite) -> None:
    def drip(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.05)

    site.routes["/drip"] = drip
    policy = FetchPolicy(read_timeout=1.0, attempt_timeout=0.5, retries=0)
    result = fetch(site.url("/drip"), policy)
    assert result.document is None
    assert "no complete answer within 0.5 s" in (result.error or "")


def test_a_500_is_retried_with_backoff_until_it_succeeds(site: LocalSite) -> None:
    def flaky(handler: _Handler) -> None:
        if site.hits["/flaky"] < 3:
            handler.send(500, b"oops")
        else:
            handler.send(200, b"<rss/>")

    site.routes["/flaky"] = flaky
    result = fetch(site.url("/flaky"))
    assert result.error is None and result.attempts == 3
    assert site.hits["/flaky"] == 3


def test_a_500_that_stays_is_reported_after_every_attempt(site: LocalSite) -> None:
    site.serve("/down", "oops", status=503, headers={"Retry-After": "0"})
    result = fetch(site.url("/down"))
    assert result.document is None
    assert result.error == f"{site.url('/down')}: HTTP 503 after 3 attempt(s)"
    assert site.hits["/down"] == 3


def test_a_4xx_is_not_retried_and_404_410_mean_gone(site: LocalSite) -> None:
    site.serve("/gone", "gone", status=410)
    result = fetch(site.url("/gone"))
    assert result.gone and result.status == 410 and site.hits["/gone"] == 1
    assert fetch(site.url("/missing")).gone
    site.serve("/forbidden", "no", status=403)
    forbidden = fetch(site.url("/forbidden"))
    assert not forbidden.gone and "HTTP 403 Forbidden" in (forbidden.error or "")


def test_a_redirect_loop_is_named_as_such(site: LocalSite) -> None:
    site.serve("/a", "", status=302, headers={"Location": "/b"})
    site.serve("/b", "", status=301, headers={"Location": site.url("/a")})
    result = fetch(site.url("/a"))
    assert result.document is None
    assert result.error == f"redirect loop: {site.url('/a')} → {site.url('/b')} → {site.url('/a')}"


def test_redirects_are_followed_up_to_the_limit(site: LocalSite) -> None:
    for i in range(8):
        site.serve(f"/hop{i}", "", status=307, headers={"Location": f"/hop{i + 1}"})
    site.serve("/hop8", "<rss/>")
    assert "more than 5 redirects" in (fetch(site.url("/hop0")).error or "")
    result = fetch(site.url("/hop4"))
    assert result.document is not None and result.document.url == site.url("/hop8")


def test_a_truncated_body_is_retried_then_reported(site: LocalSite) -> None:
    def truncated(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"<rss><channel><item><title>cut")
        handler.wfile.flush()
        handler.close_connection = True

    site.routes["/cut"] = truncated
    result = fetch(site.url("/cut"))
    assert result.document is None
    assert "body truncated" in (result.error or "") and "3 attempt(s)" in (result.error or "")
    assert site.hits["/cut"] == 3


def test_conditional_requests_turn_an_unchanged_source_into_a_304(site: LocalSite) -> None:
    def conditional(handler: _Handler) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':
            handler.send_response(304)
            handler.send_header("ETag", '"v1"')
            handler.end_headers()
        else:
            handler.send(
                200,
                b"<rss/>",
                headers={"ETag": '"v1"', "Last-Modified": "Sun, 07 Mar 2021 00:00:00 GMT"},
            )

    site.routes["/feed"] = conditional
    url = site.url("/feed")
    first = fetch(url)
    assert first.document is not None and first.validators["etag"] == '"v1"'
    second = fetch(url, validators={url: dict(first.validators)})
    assert second.not_modified and second.document is None and second.status == 304
    sent = site.headers_seen["/feed"][1]
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Sun, 07 Mar 2021 00:00:00 GMT"


def test_robots_txt_disallow_is_obeyed_and_read_once_per_host(site: LocalSite) -> None:
    site.serve("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.serve("/private/feed", "<rss/>")
    site.serve("/public/feed", "<rss/>")

    async def both() -> list[Fetched]:
        async with Fetcher(FAST) as fetcher:
            return await fetcher.fetch_all([site.url("/private/feed"), site.url("/public/feed")])

    private, public = asyncio.run(both())
    assert private.document is None
    assert "disallowed by robots.txt" in (private.error or "")
    assert "/private/feed" not in site.hits
    assert public.document is not None
    assert site.hits["/robots.txt"] == 1


def test_a_redirect_into_a_disallowed_path_is_not_followed(site: LocalSite) -> None:
    site.serve("/robots.txt", "User-agent: recommender\nDisallow: /members/\n", "text/plain")
    site.serve("/story", "", status=302, headers={"Location": "/members/story"})
    site.serve("/members/story", "secret")
    result = fetch(site.url("/story"))
    assert "disallowed by robots.txt" in (result.error or "")
    assert "/members/story" not in site.hits


def test_an_unreadable_robots_txt_disallows_the_host(site: LocalSite) -> None:
    site.serve("/robots.txt", "oops", status=500)
    site.serve("/feed", "<rss/>")
    result = fetch(site.url("/feed"))
    assert result.document is None
    assert "robots.txt" in (result.error or "") and "unreadable" in (result.error or "")
    assert "/feed" not in site.hits


def test_requests_to_one_host_stay_within_the_per_host_limit(site: LocalSite) -> None:
    def slowish(handler: _Handler) -> None:
        time.sleep(0.15)
        handler.send(200, b"<rss/>")

    for i in range(8):
        site.routes[f"/p{i}"] = slowish
    policy = FetchPolicy(per_host=2, read_timeout=2.0, retries=0)

    async def many() -> list[Fetched]:
        async with Fetcher(policy) as fetcher:
            return await fetcher.fetch_all([site.url(f"/p{i}") for i in range(8)])

    results = asyncio.run(many())
    assert all(r.document is not None for r in results)
    assert site.max_in_flight == 2  # concurrent, but never more than the limit


def test_a_gzip_bomb_is_refused_without_inflating_it(site: LocalSite) -> None:
    bomb = gzip.compress(b"\0" * (16 * 2**20), 9)  # 16 MiB of zeros in ~16 KB
    site.serve("/bomb.xml", bomb, "application/xml", headers={"Content-Encoding": "gzip"})
    result = fetch(site.url("/bomb.xml"), FetchPolicy(max_bytes=2**20, retries=0))
    assert result.document is None
    assert "zip bomb" in (result.error or "") and "1,048,576 bytes" in (result.error or "")


def test_gzip_content_encoding_is_decoded(site: LocalSite) -> None:
    body = b"<urlset/>" * 1000
    site.serve(
        "/sitemap.xml", gzip.compress(body), "application/xml", headers={"Content-Encoding": "gzip"}
    )
    result = fetch(site.url("/sitemap.xml"))
    assert result.document is not None and result.document.content == body


def test_a_body_over_the_size_limit_is_refused(site: LocalSite) -> None:
    site.serve("/huge", b"x" * 300_000)
    result = fetch(site.url("/huge"), FetchPolicy(max_bytes=100_000, retries=0))
    assert "larger than the limit of 100,000" in (result.error or "")


def test_a_refused_connection_is_reported(site: LocalSite) -> None:
    result = fetch("http://127.0.0.1:9/feed", FetchPolicy(retries=0, connect_timeout=1.0))
    assert result.document is None and "connection failed" in (result.error or "")


def test_the_link_header_gives_the_next_page(site: LocalSite) -> None:
    site.serve(
        "/wp-json/wp/v2/posts",
        "[]",
        "application/json",
        headers={"Link": '</wp-json/wp/v2/posts?page=2>; rel="next"', "X-WP-TotalPages": "2"},
    )
    result = fetch(site.url("/wp-json/wp/v2/posts"))
    assert result.document is not None
    assert result.document.next_url == site.url("/wp-json/wp/v2/posts?page=2")
