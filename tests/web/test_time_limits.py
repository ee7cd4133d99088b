"""Slow and idle clients against a real server on 127.0.0.1: a request head
sent a byte at a time, a body at a few bytes a second, a connection that
sends nothing, an idle kept-alive connection. Each is closed within its
limit, and the service goes on answering meanwhile. The limits are set to
about a second so that each test takes a few seconds."""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.web import create_app
from recommender.web.server import H11ServiceProtocol, ServiceHTTPProtocol, uvicorn_options
from tests.web.conftest import LiveServer

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1.0  # seconds, for the head, the body and keep-alive alike
#: How late past its limit a connection may be closed (a loaded machine).
SLACK = 2.0
#: A client that gets no answer within this gives up: the server kept it.
GIVE_UP = LIMIT + SLACK + 3.0

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
POST_HEAD = (
    b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 200\r\n\r\n"
)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def until_closed(sock: socket.socket, drip: bytes = b"", every: float = 0.2) -> tuple[float, bytes]:
    """Send ``drip`` a byte every ``every`` seconds (then nothing) until the
    server closes the connection; the seconds that took and what it sent.
    Fails when the server keeps the connection past :data:`GIVE_UP`."""
    start = time.monotonic()
    received = b""
    sock.settimeout(every)
    position = 0
    while time.monotonic() - start < GIVE_UP:
        if position < len(drip):
            try:
                sock.sendall(drip[position : position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start, received
            position += 1
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, received
        if not chunk:
            return time.monotonic() - start, received
        received += chunk
    raise AssertionError(f"the server kept the connection for {GIVE_UP} s; it sent {received!r}")


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length body."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head


def assert_answers(url: str) -> None:
    """The service still answers a plain request at once."""
    with connect(url) as sock:
        sock.sendall(HEAD)
        assert read_response(sock).startswith(b"HTTP/1.1 200")


@pytest.fixture(params=["httptools", "h11"])
def limited_service(request: pytest.FixtureRequest, settings) -> Iterator[str]:
    """The service with one-second limits, under each of uvicorn's HTTP parsers."""
    limited = dataclasses.replace(
        settings,
        header_timeout_seconds=LIMIT,
        body_timeout_seconds=LIMIT,
        keep_alive_seconds=int(LIMIT),
    )
    options = uvicorn_options(limited)
    if request.param == "h11":
        options["http"] = H11ServiceProtocol
    else:
        assert ServiceHTTPProtocol.__name__ == "HttpToolsServiceProtocol"
    with LiveServer(create_app(limited), **options) as server:
        yield server.url


def test_a_slow_request_head_is_cut_off(limited_service: str) -> None:
    with connect(limited_service) as sock:
        took, answer = until_closed(sock, b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100)
    assert LIMIT * 0.8 <= took <= LIMIT + SLACK
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"request head not received within 1 s")
    assert_answers(limited_service)


def test_many_slow_heads_are_all_cut_off_and_others_are_served(limited_service: str) -> None:
    socks = [connect(limited_service) for _ in range(100)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        assert_answers(limited_service)  # served meanwhile
        results: list[float] = []

        def wait(sock: socket.socket) -> None:
            results.append(until_closed(sock)[0])

        threads = [threading.Thread(target=wait, args=(sock,)) for sock in socks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(GIVE_UP + 5)
        assert len(results) == len(socks) and max(results) <= LIMIT + SLACK
    finally:
        for sock in socks:
            sock.close()


def test_a_connection_that_sends_nothing_is_closed(limited_service: str) -> None:
    with connect(limited_service) as sock:
        took, answer = until_closed(sock)
    assert LIMIT * 0.8 <= took <= LIMIT + SLACK and answer == b""


def test_a_body_at_a_few_bytes_a_second_is_cut_off(limited_service: str, settings) -> None:
    with connect(limited_service) as sock:
        sock.sendall(POST_HEAD)
        took, answer = until_closed(sock, b'{"events": [' + b" " * 150, every=0.25)
    assert LIMIT * 0.8 <= took <= LIMIT + SLACK
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"request body not received within 1 s")
    assert_answers(limited_service)
    assert not list(settings.events_dir.glob("*.csv"))


def test_an_idle_kept_alive_connection_is_closed(limited_service: str) -> None:
    with connect(limited_service) as sock:
        for _ in range(2):  # kept alive between requests, within the limit
            sock.sendall(HEAD)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(LIMIT / 4)
        took, answer = until_closed(sock)
    assert took <= LIMIT + SLACK and answer == b""


def test_blank_lines_do_not_keep_a_connection_open(limited_service: str) -> None:
    with connect(limited_service) as sock:
        sock.sendall(HEAD)
        read_response(sock)
        took, _ = until_closed(sock, b"\r\n" * 40)
    assert took <= LIMIT + SLACK


def test_clients_within_the_limits_are_served(limited_service: str) -> None:
    with connect(limited_service) as sock:
        for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(LIMIT / 5)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        body = b'{"events": [{"kind": "click", "article_id": "st-1"}]}'
        head = POST_HEAD.replace(b"200", str(len(body)).encode())
        sock.sendall(head + body[:10])
        time.sleep(LIMIT / 3)
        sock.sendall(body[10:])
        assert read_response(sock).startswith(b"HTTP/1.1 202")


@pytest.mark.slow
def test_recommender_serve_sets_the_limits(store_url: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recommender.cli",
            "serve",
            "--store",
            store_url.removeprefix("sqlite:///"),
            "--events-dir",
            str(tmp_path / "events"),
            "--port",
            "0",
            "--header-timeout",
            str(LIMIT),
            "--body-timeout",
            str(LIMIT),
            "--keep-alive-timeout",
            str(int(LIMIT)),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:
            if found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                url = found.group(1)
                break
        assert url, "serve did not start"
        with connect(url) as sock:
            took, answer = until_closed(sock, b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100)
        assert took <= LIMIT + SLACK and answer.startswith(b"HTTP/1.1 408")
        with connect(url) as sock:
            sock.sendall(POST_HEAD)
            took, answer = until_closed(sock, b"{" + b" " * 150, every=0.25)
        assert took <= LIMIT + SLACK and answer.startswith(b"HTTP/1.1 408")
        with connect(url) as sock:
            sock.sendall(HEAD)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            took, _ = until_closed(sock)
        assert took <= LIMIT + SLACK
    finally:
        process.terminate()
        assert process.wait(timeout=20) in (0, -15)
