"""Fetching sources over HTTP: polite, bounded and incremental.

:class:`Fetcher` wraps an ``httpx.AsyncClient`` and adds what a crawler of
partner sites needs:

- **robots.txt** (parsed by Protego) is read once per host and obeyed for
  every URL and every redirect hop; a robots.txt that answers 4xx allows
  everything, one that cannot be read (5xx, timeout) disallows everything for
  this run, as RFC 9309 asks;
- **timeouts**: to connect, between two bytes, and for a whole attempt
  (a server that drips one byte a second cannot hold a run);
- **retries with backoff** on timeouts, dropped or truncated connections and
  HTTP 429/500/502/503/504: ``backoff`` seconds doubled per attempt, with
  jitter, or the server's ``Retry-After`` (both capped at ``max_backoff``);
- a **per-host concurrency limit** (and an overall connection limit);
- **redirects** followed by hand, at most ``max_redirects``, a loop named as such;
- **conditional requests**: the ``ETag`` / ``Last-Modified`` of each URL's
  last good answer are sent back as ``If-None-Match`` / ``If-Modified-Since``,
  and a 304 means the source has not changed;
- **bounded bodies**: a body larger than ``max_bytes`` after decompression is
  refused, and gzip/deflate are inflated in bounded steps (see
  :class:`~recommender.ingest.documents.BoundedInflater`), so a gzip bomb
  costs nothing. Only ``gzip`` and ``deflate`` are asked for.

A failed fetch is not an exception: :class:`Fetched` says what happened
(status, error with the URL and the reason, attempts made).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from recommender import __version__
from recommender.ingest.documents import BoundedInflater, Document, DocumentError

_log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: robots.txt files are read up to this many bytes (RFC 9309 asks for at least 500 KiB).
ROBOTS_MAX_BYTES = 512 * 1024

_ALLOW_ALL = Protego.parse("")
_DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /")


@dataclass(frozen=True)
class FetchPolicy:
    """How to fetch. Times in seconds, sizes in bytes.

    ``user_agent``: sent with every request and matched against robots.txt
    groups. ``connect_timeout``, ``read_timeout`` (longest wait for the next
    bytes), ``attempt_timeout`` (a whole attempt, body included).
    ``retries``: attempts after the first. ``backoff``: wait before the first
    retry, doubled for each next one; ``max_backoff`` caps it and any
    ``Retry-After``. ``per_host``: requests in flight to one host;
    ``max_connections``: in all. ``max_redirects``: hops per fetch.
    ``max_bytes``: largest body after decompression. ``obey_robots``: read
    and obey robots.txt.
    """

    user_agent: str = f"recommender/{__version__} (+cross-site recommendations; ingest)"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    attempt_timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 60.0
    per_host: int = 2
    max_connections: int = 16
    max_redirects: int = 5
    max_bytes: int = 64 * 2**20
    obey_robots: bool = True


@dataclass(frozen=True)
class Fetched:
    """The outcome of fetching one URL.

    ``document``: the body when the final answer was 2xx. ``status``: the
    final HTTP status (``None`` when no answer came). ``not_modified``: the
    server answered 304 to a conditional request. ``error``: why there is no
    document, naming the URL. ``attempts``: requests made for the last hop.
    """

    url: str
    document: Document | None = None
    status: int | None = None
    not_modified: bool = False
    error: str | None = None
    attempts: int = 0
    validators: Mapping[str, str] = field(default_factory=dict)

    @property
    def gone(self) -> bool:
        """The server says the resource is no longer there (404 or 410)."""
        return self.status in (404, 410)


class _Retry(Exception):
    """A transient failure of one attempt; ``delay`` is the server's Retry-After."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes = b""
    charset: str | None = None
    final_url: str = ""
    next_url: str | None = None


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Fetcher:
    """Fetches URLs under a :class:`FetchPolicy` (see module docs).

    ``validators``: the ``etag`` / ``last_modified`` of each URL from an
    earlier run, for conditional requests. :attr:`validators` holds them
    updated with this run's answers; save them only once what was fetched is
    safely stored, or a source could be skipped as unchanged before it was
    ever stored. Use as ``async with Fetcher(...) as fetcher:``.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        validators: Mapping[str, Mapping[str, str]] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.validators: dict[str, dict[str, str]] = {
            url: dict(v) for url, v in (validators or {}).items()
        }
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.policy.per_host)
        )
        self._robots: dict[str, tuple[Protego, str | None]] = {}
        self._robots_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def __aenter__(self) -> Fetcher:
        policy = self.policy
        self._client = httpx.AsyncClient(
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(
                policy.read_timeout, connect=policy.connect_timeout, pool=policy.attempt_timeout
            ),
            limits=httpx.Limits(max_connections=policy.max_connections),
            follow_redirects=False,
            transport=self._transport,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- one request -------------------------------------------------------
    async def _request(self, url: str, headers: Mapping[str, str], max_bytes: int) -> _Answer:
        assert self._client is not None, "use the Fetcher in 'async with'"
        async with self._client.stream("GET", url, headers=headers) as response:
            answer = _Answer(
                response.status_code,
                response.headers,
                charset=response.charset_encoding,
                final_url=str(response.url),
                next_url=response.links.get("next", {}).get("url"),
            )
            if not 200 <= response.status_code < 300:
                return answer
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise DocumentError(
                    f"body of {int(length):,} bytes is larger than the limit of {max_bytes:,}"
                )
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding in ("", "identity"):
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > max_bytes:
                        raise DocumentError(f"body larger than the limit of {max_bytes:,} bytes")
                answer.body = bytes(body)
            else:
                inflater = BoundedInflater(encoding, max_bytes)
                async for chunk in response.aiter_raw():
                    inflater.feed(chunk)
                answer.body = inflater.finish()
            return answer

    async def _attempts(self, url: str, headers: Mapping[str, str]) -> tuple[_Answer, int]:
        """One hop, retried on transient failures; raises :class:`DocumentError`
        with the last reason when every attempt failed."""
        policy = self.policy
        host = urlsplit(url).netloc
        reason = ""
        for attempt in range(1, policy.retries + 2):
            delay: float | None = None
            try:
                async with self._hosts[host], asyncio.timeout(policy.attempt_timeout):
                    answer = await self._request(url, headers, policy.max_bytes)
                if answer.status not in RETRY_STATUSES:
                    return answer, attempt
                reason = f"HTTP {answer.status}"
                delay = _retry_after(answer.headers.get("retry-after"))
            except TimeoutError:
                reason = f"no complete answer within {policy.attempt_timeout:g} s"
            except httpx.TimeoutException as error:
                reason = f"timed out ({type(error).__name__})"
            except httpx.RemoteProtocolError as error:
                reason = f"connection broken or body truncated: {error}"
            except httpx.TransportError as error:
                reason = f"connection failed: {error or type(error).__name__}"
            if attempt > policy.retries:
                break
            wait = policy.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            wait = min(policy.max_backoff, delay if delay is not None else wait)
            _log.info("%s: %s; retry %d in %.1f s", url, reason, attempt, wait)
            await asyncio.sleep(wait)
        raise DocumentError(f"{reason} after {policy.retries + 1} attempt(s)")

    # -- robots.txt --------------------------------------------------------
    async def _robots_for(self, url: str) -> tuple[Protego, str | None]:
        """The robots rules of the URL's origin and, when it could not be read, why."""
        origin = _origin(url)
        async with self._robots_locks[origin]:
            if origin not in self._robots:
                self._robots[origin] = await self._load_robots(origin)
        return self._robots[origin]

    async def _load_robots(self, origin: str) -> tuple[Protego, str | None]:
        target = f"{origin}/robots.txt"
        try:
            for _ in range(self.policy.max_redirects + 1):
                answer, _ = await self._attempts(target, {})
                location = answer.headers.get("location")
                if answer.status in REDIRECT_STATUSES and location:
                    target = urljoin(target, location)
                    continue
                break
        except DocumentError as error:
            return _DISALLOW_ALL, f"robots.txt of {origin} unreadable ({error.reason})"
        if 200 <= answer.status < 300:
            text = answer.body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace")
            return Protego.parse(text), None
        if 400 <= answer.status < 500:
            return _ALLOW_ALL, None
        return _DISALLOW_ALL, f"robots.txt of {origin} unreadable (HTTP {answer.status})"

    # -- a whole fetch -----------------------------------------------------
    async def fetch(self, url: str) -> Fetched:
        """Fetch ``url`` (see module docs); never raises for what the server does."""
        conditional = {}
        known = self.validators.get(url, {})
        if known.get("etag"):
            conditional["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            conditional["If-Modified-Since"] = known["last_modified"]
        chain = [url]
        current = url
        attempts = 0
        while True:
            if self.policy.obey_robots:
                rules, unreadable = await self._robots_for(current)
                if not rules.can_fetch(current, self.policy.user_agent):
                    why = unreadable or f"disallowed by robots.txt of {_origin(current)}"
                    return Fetched(url, error=f"{current}: {why}")
            try:
                answer, attempts = await self._attempts(current, conditional)
            except DocumentError as error:
                return Fetched(url, error=f"{current}: {error.reason}", attempts=attempts)
            location = answer.headers.get("location")
            if answer.status in REDIRECT_STATUSES and location:
                current = urljoin(current, location)
                if current in chain:
                    loop = " → ".join([*chain[chain.index(current) :], current])
                    return Fetched(url, status=answer.status, error=f"redirect loop: {loop}")
                chain.append(current)
                if len(chain) > self.policy.max_redirects + 1:
                    return Fetched(
                        url,
                        status=answer.status,
                        error=f"{url}: more than {self.policy.max_redirects} redirects "
                        f"(last to {current})",
                    )
                continue
            return self._outcome(url, answer, attempts)

    def _outcome(self, url: str, answer: _Answer, attempts: int) -> Fetched:
        if answer.status == 304:
            return Fetched(
                url,
                status=304,
                not_modified=True,
                attempts=attempts,
                validators=self.validators[url],
            )
        if not 200 <= answer.status < 300:
            phrase = httpx.codes.get_reason_phrase(answer.status)
            return Fetched(
                url,
                status=answer.status,
                error=f"{answer.final_url}: HTTP {answer.status} {phrase}".rstrip(),
                attempts=attempts,
            )
        validators = {
            key: value
            for key, value in (
                ("etag", answer.headers.get("etag")),
                ("last_modified", answer.headers.get("last-modified")),
            )
            if value
        }
        if validators:
            self.validators[url] = validators
        else:
            self.validators.pop(url, None)
        document = Document(
            source=url,
            content=answer.body,
            url=answer.final_url,
            media_type=answer.headers.get("content-type", "").split(";")[0].strip().lower(),
            charset=answer.charset,
            next_url=urljoin(answer.final_url, answer.next_url) if answer.next_url else None,
        )
        return Fetched(url, document, answer.status, attempts=attempts, validators=validators)

    async def fetch_all(self, urls: list[str]) -> list[Fetched]:
        """Fetch many URLs concurrently (within the limits), in the order given."""
        return list(await asyncio.gather(*(self.fetch(url) for url in urls)))
