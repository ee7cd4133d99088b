"""Impressions and clicks from the widget, on their way to the next batch run.

``POST /v1/events`` validates a batch of :class:`WidgetEvent` (anything
malformed is refused as a whole, nothing of it stored), stamps each event
with the server's clock and hands it to an :class:`EventSpool`. The spool
writes buffered events as CSV files into one folder, each file complete
before it appears (written under a hidden temporary name, fsynced, then
renamed), so the batch job reads them through a glob in its config::

    [data]
    events = ["pageviews.csv.gz", "/srv/recommender/events/*.csv"]

The columns are those of the Event contract (``ts``, ``kind``,
``article_id``, ``source_article_id``, ``placement``, ``session``, and what
a ranker learns from: ``run_id``, ``variant``, ``position``,
``propensity``), so :func:`recommender.ingest.read_events` reads the files
as any other export (spool files written before the last four existed too).

Nothing in an event identifies a reader: ``session`` is what the widget
sends, a random id drawn per page view (no cookie, no storage, nothing kept
from one page to the next); addresses and user agents are never written.

Only ``impression`` and ``click`` are accepted: pageviews (what makes an
article trend) come from the sites' own analytics exports, so that posting
to a public endpoint cannot push an article up.

Ids follow :mod:`recommender.ids` (no control characters, C1 included, no
line or paragraph separators, no surrounding whitespace). The spool is also
opened in spreadsheets, which run a cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula: such a cell is written with
a leading ``'`` (the usual neutralisation, which spreadsheets show as text),
and so is a cell that itself starts with ``'``, so that :func:`unescape_cell`
(what :func:`read_spool` and the batch's :func:`recommender.ingest.read_events`
apply; see :mod:`recommender.spool`) gives back exactly what was accepted.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from recommender.errors import RecommenderError
from recommender.ids import FORBIDDEN_ID_CHARACTERS, MAX_ID_LENGTH, id_problem
from recommender.spool import (
    MAX_POSITION,
    SPOOL_COLUMNS,
    escape_cell,
    is_spool_header,
    unescape_cell,
)

_log = logging.getLogger(__name__)

#: Events one request may carry (a block of up to 100 items reports its
#: impressions in one request).
MAX_EVENTS_PER_REQUEST = 100


def _valid_id(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"not a valid id: {problem}")
    return value


# recommender.ids' rule as the OpenAPI spec states it, portable to other regex
# engines: a surrogate range is refused by Rust's (jsonschema-rs,
# pydantic-core), and `\s` means different characters to different engines,
# so here the whitespace is spelled out (what str.strip() strips that the
# excluded ranges do not already hold). Surrogates cannot come in UTF-8 text.
_NOT_IN_ID = FORBIDDEN_ID_CHARACTERS.replace(r"\ud800-\udfff", "")
_SPACE = r" \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
SCHEMA_ID_PATTERN = rf"^[^{_NOT_IN_ID}{_SPACE}](?:[^{_NOT_IN_ID}]*[^{_NOT_IN_ID}{_SPACE}])?$"

# Ids are free text in the Event contract, within recommender.ids' rule: the
# validator applies it (id_problem), the pattern documents it.
_Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(_valid_id),
    Field(json_schema_extra={"pattern": SCHEMA_ID_PATTERN}),
]
_Token = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]


def _whole_number(value: object) -> object:
    """JSON's integers: ``3``, and ``3.0`` (the same number to JSON Schema); not
    ``true``, ``"3"`` or ``3.5`` (left for the strict check to refuse)."""
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        return int(value)
    return value


#: A slot in the block: 1 to MAX_POSITION.
# (Field before the validator: after it, pydantic writes "ge"/"le" into the
# JSON schema instead of "minimum"/"maximum".)
_Position = Annotated[
    int, Field(strict=True, ge=1, le=MAX_POSITION), BeforeValidator(_whole_number)
]


class SpoolError(RecommenderError):
    """Accepted events cannot be written to the spool folder (they stay in memory)."""


class WidgetEvent(BaseModel):
    """One impression or click reported by the widget.

    The time is the server's when the event arrives: client clocks are not
    trusted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["impression", "click"] = Field(
        description="`impression`: the item was shown; `click`: its link was followed."
    )
    article_id: _Id = Field(description="The recommended article shown or clicked.")
    source_article_id: _Id | None = Field(
        default=None, description="The page the block was on (an article id, or `site:KEY`)."
    )
    placement: _Token = Field(default="widget", description="Where on the page the block sits.")
    session: _Token | None = Field(
        default=None, description="An opaque id grouping the events of one page view."
    )
    run_id: _Id | None = Field(
        default=None, description="The run whose list was shown (the block's `data-rec-run`)."
    )
    variant: _Token | None = Field(
        default=None,
        description="The experiment variant that chose the list (the block's `data-rec-variant`).",
    )
    position: _Position | None = Field(
        default=None, description="The item's slot in the block, 1 = the first."
    )
    propensity: float | None = Field(
        default=None,
        gt=0,
        le=1,
        strict=True,
        allow_inf_nan=False,
        description="The probability with which the item was shown there, where the "
        "policy is randomised (absent, or 1, otherwise).",
    )


class EventBatch(BaseModel):
    """The body of ``POST /v1/events``."""

    model_config = ConfigDict(extra="forbid")

    events: list[WidgetEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)


def read_spool(path: str | Path) -> list[tuple[str, ...]]:
    """The rows of one spool file, as :func:`spool_rows` made them (header
    checked and left out; cells unescaped). A legacy file's rows (without
    the columns added since) get those as empty cells."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or not is_spool_header(header):
            raise SpoolError(f"{path}: not an events spool file (header {header!r})")
        padding = ("",) * (len(SPOOL_COLUMNS) - len(header))
        return [tuple(unescape_cell(cell) for cell in row) + padding for row in reader]


def spool_rows(batch: EventBatch, received: datetime) -> list[tuple[str, ...]]:
    """The spool rows of ``batch`` (in :data:`SPOOL_COLUMNS` order), stamped ``received``."""
    ts = received.astimezone(UTC).isoformat(timespec="milliseconds")
    return [
        (
            ts,
            event.kind,
            event.article_id,
            event.source_article_id or "",
            event.placement,
            event.session or "",
            event.run_id or "",
            event.variant or "",
            "" if event.position is None else str(event.position),
            "" if event.propensity is None else repr(float(event.propensity)),
        )
        for event in batch.events
    ]


class EventSpool:
    """Accepted events, buffered in memory and written in batches to ``folder``.

    Each :meth:`flush` writes one file ``events-<UTC time>-<pid>-<seq>.csv``
    with a header row; names sort in time order and never collide between
    the processes of one service. ``max_buffered``: events held in memory at
    most (when the folder cannot be written, :meth:`add` refuses more beyond
    it rather than growing without bound).
    """

    def __init__(self, folder: str | Path, *, max_buffered: int = 100_000) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be >= 1 event, got {max_buffered}")
        self.folder = Path(folder)
        self.max_buffered = max_buffered
        self._rows: list[tuple[str, ...]] = []
        self._lock = threading.Lock()
        self._sequence = 0
        self._flushing = threading.Lock()

    def __len__(self) -> int:
        """Events waiting to be written."""
        return len(self._rows)

    def prepare(self) -> None:
        """Create the folder; raise :class:`SpoolError` when it cannot be written."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SpoolError(f"{self.folder}: cannot create the events folder: {error}") from None
        if not os.access(self.folder, os.W_OK):
            raise SpoolError(f"{self.folder}: the events folder is not writable")

    def add(self, rows: Sequence[tuple[str, ...]]) -> bool:
        """Buffer ``rows``; False (nothing buffered) when the buffer is full."""
        with self._lock:
            if len(self._rows) + len(rows) > self.max_buffered:
                return False
            self._rows.extend(rows)
        return True

    def flush(self) -> Path | None:
        """Write every buffered event to a new file; returns it (None when
        nothing was buffered). On failure the events go back to the buffer and
        :class:`SpoolError` says why."""
        with self._flushing:  # one writer at a time keeps files in time order
            with self._lock:
                rows, self._rows = self._rows, []
                if not rows:
                    return None
                self._sequence += 1
                sequence = self._sequence
            name = f"events-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{sequence:06d}.csv"
            final = self.folder / name
            temporary = self.folder / f".{name}.tmp"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with temporary.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(SPOOL_COLUMNS)
                    writer.writerows([escape_cell(cell) for cell in row] for row in rows)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, final)
            except OSError as error:
                with suppress(OSError):  # the folder may be what failed
                    temporary.unlink(missing_ok=True)
                with self._lock:
                    self._rows[:0] = rows
                raise SpoolError(
                    f"{self.folder}: cannot write {len(rows)} events "
                    f"(kept in memory, retried at the next flush): {error}"
                ) from None
            _log.debug("wrote %d events to %s", len(rows), final)
            return final


class RateLimiter:
    """Per-client token buckets.

    A client may make ``rate`` requests per second on average and up to
    ``burst`` at once. ``max_clients``: buckets kept at most; the client seen
    least recently is forgotten first (and starts again with a full bucket).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1 request, got {burst}")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """0.0 when ``client`` may make a request now (which is counted), else
        the seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate
