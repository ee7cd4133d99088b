"""Time limits on each connection, which uvicorn does not set itself.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``), but nothing else: a client that sends a request
head a byte at a time, or a body at 1 byte/s, or that connects and never
sends anything, keeps its connection (and the memory behind it) for ever, and
a thousand such clients take the service down. The protocols here are
uvicorn's own (httptools when it is installed, as uvicorn's ``auto`` picks
it, else h11) plus two limits:

- the request head (request line and headers) must arrive within
  ``header_timeout`` seconds, counted from the connection's start, or, on a
  kept-alive connection, from the first byte of the next request;
- the body must arrive within ``body_timeout`` seconds of the head.

A client past a limit gets ``408 Request Timeout`` (when it had started a
request and no response was started) and the connection is closed; an
application waiting for the body sees the client disconnect.

The limits come from the app: :func:`recommender.web.app.create_app` puts
them into the ASGI lifespan state under :data:`LIMITS_STATE_KEY`, which
uvicorn hands to every connection's protocol, so each worker process of
``recommender serve --workers N`` gets the limits of its own settings.
Without them (another app, or ``lifespan="off"``), the defaults apply.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from recommender.web.settings import ServiceSettings

_log = logging.getLogger(__name__)

#: Key of the lifespan state that holds ``{"header_timeout": s, "body_timeout": s}``.
LIMITS_STATE_KEY = "recommender.http_limits"

#: What ``recommender serve`` passes to uvicorn as ``http``: an import string,
#: so that worker processes (started with ``spawn``) find the class too.
PROTOCOL_IMPORT = "recommender.web.server:ServiceHTTPProtocol"

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"%s"
)


def limits_state(settings: ServiceSettings) -> dict[str, Any]:
    """The lifespan state that gives the protocols ``settings``' limits."""
    return {
        LIMITS_STATE_KEY: {
            "header_timeout": settings.header_timeout_seconds,
            "body_timeout": settings.body_timeout_seconds,
        }
    }


def uvicorn_options(settings: ServiceSettings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` / ``uvicorn.run`` that set
    ``settings``' time limits."""
    return {"http": PROTOCOL_IMPORT, "timeout_keep_alive": settings.keep_alive_seconds}


class _TimeLimits:
    """The limits, for a subclass of one of uvicorn's HTTP/1.1 protocols.

    The subclass says what the parser is at (:meth:`_waiting_for_head`,
    :meth:`_in_body`), calls :meth:`_note_data` before it parses received
    bytes and :meth:`_check_limits` after anything that may move a request on.
    """

    # Defaults; ServiceSettings holds the ones `recommender serve` uses.
    header_timeout: float = ServiceSettings.header_timeout_seconds
    body_timeout: float = ServiceSettings.body_timeout_seconds

    # From uvicorn's protocols.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    app_state: dict[str, Any]
    client: tuple[str, int] | None
    cycle: Any

    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    #: Bytes of a next request arrived while no request was in progress.
    _head_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._start_limits()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_limits()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        self._note_data()
        super().data_received(data)  # type: ignore[misc]
        self._check_limits()

    def _start_limits(self) -> None:
        limits = self.app_state.get(LIMITS_STATE_KEY) or {}
        self.header_timeout = float(limits.get("header_timeout", self.header_timeout))
        self.body_timeout = float(limits.get("body_timeout", self.body_timeout))
        # The first request's head is due from the connection's start: a
        # client that connects and sends nothing is closed too.
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)

    def _waiting_for_head(self) -> bool:
        """No request in progress: none being read, none being answered."""
        raise NotImplementedError

    def _in_body(self) -> bool:
        """A request's body is being read."""
        raise NotImplementedError

    def _note_data(self) -> None:
        if self._waiting_for_head():
            self._head_bytes = True

    def _check_limits(self) -> None:
        """Start or stop the clocks after the parser moved on."""
        if self.transport.is_closing():
            self._stop_limits()
            return
        if not self._waiting_for_head():
            self._cancel_head_timer()
            self._head_bytes = False
        elif self._head_timer is None and self._head_bytes:
            # Any byte of a next request on a kept-alive connection (even a
            # blank line) starts its clock: uvicorn's keep-alive limit stops
            # at the first byte.
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)
        if not self._in_body():
            self._cancel_body_timer()
        elif self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_expired)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _stop_limits(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            # Silently, like uvicorn's keep-alive limit, when nothing was sent.
            self._close("request head", self.header_timeout, reply=self._head_bytes)

    def _body_expired(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing():
            started = self.cycle is not None and self.cycle.response_started
            self._close("request body", self.body_timeout, reply=not started)

    def _close(self, what: str, limit: float, *, reply: bool) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        _log.info("closing the connection of %s: %s not received within %g s", client, what, limit)
        if reply:
            message = f"{what} not received within {limit:g} s".encode()
            self.transport.write(_REQUEST_TIMEOUT % (len(message), message))
        self._stop_limits()
        self.transport.close()


class H11ServiceProtocol(_TimeLimits, H11Protocol):
    """uvicorn's h11 protocol with the time limits."""

    def on_response_complete(self) -> None:
        super().on_response_complete()  # also parses what a pipelining client sent
        self._check_limits()

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _in_body(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY


ServiceHTTPProtocol: type[asyncio.Protocol]

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: uvicorn's `auto` takes h11 then too
    ServiceHTTPProtocol = H11ServiceProtocol
else:

    class HttpToolsServiceProtocol(_TimeLimits, HttpToolsProtocol):
        """uvicorn's httptools protocol with the time limits."""

        _parsing_body = False

        def on_headers_complete(self) -> None:
            self._parsing_body = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._parsing_body = False
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._check_limits()

        def _waiting_for_head(self) -> bool:
            return not self._parsing_body and (self.cycle is None or self.cycle.response_complete)

        def _in_body(self) -> bool:
            return self._parsing_body

    ServiceHTTPProtocol = HttpToolsServiceProtocol
