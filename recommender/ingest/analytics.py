"""Analytics exports: CSV (or tab-separated) and JSON Lines, one hit or one count per row.

Columns are found by name, case and punctuation ignored (``Page path``,
``page_path`` and ``pagePath`` are the same):

- time: ``ts``, ``timestamp``, ``time``, ``datetime``, ``event_time``,
  ``date``, ``date_hour`` (``20210301`` and ``2021030109`` as analytics tools
  write them are understood);
- page: ``url``, ``page_location``, ``page_url``, ``page``, ``page_path``,
  ``path``, ``landing_page``, ``page_path_and_screen_class`` (a path is joined
  to the site's URL from the config), or ``article_id``;
- optional: ``kind`` / ``event_name`` (``page_view`` is a view),
  ``session`` / ``session_id`` / ``client_id``, ``user_agent`` (crawlers are
  dropped), ``source_article_id``, ``placement``;
- optional, what the widget's events carry for a ranker to learn from (each
  also as a GA4 custom dimension, ``customEvent:run_id`` and so on):
  ``run_id``, ``variant``, ``position`` (the item's slot, 1 = the first),
  ``propensity`` (the probability it was shown with); validated as the
  Event contract says (:mod:`recommender.schema`);
- a count (``views``, ``pageviews``, ``screen_page_views``, ``count``,
  ``hits``) makes a row stand for that many events at its time.

Lines starting with ``#`` (the preamble of a GA4 export) and blank lines are
skipped. A file with a byte-order mark is decoded by it (UTF-16 or UTF-32
exports from spreadsheet tools); otherwise each line must be UTF-8, and one
that is not is rejected with its line number while the others go on.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from recommender.ingest.documents import (
    Document,
    IngestLimits,
    Problem,
    problems_where,
    without_bom,
)
from recommender.ingest.jsontext import (
    MAX_JSON_DEPTH,
    may_hold_surrogates,
    too_deep,
    without_surrogates,
)
from recommender.ingest.records import SiteContext
from recommender.ingest.traffic import Traffic, bot_mask, finish_events

_ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "datetime", "eventtime", "hittime", "date", "datehour"),
    "url": (
        "url",
        "pagelocation",
        "pageurl",
        "page",
        "pagepath",
        "path",
        "landingpage",
        "pagepathandscreenclass",
    ),
    "article_id": ("articleid",),
    "kind": ("kind", "eventname", "event", "type"),
    "session": ("session", "sessionid", "clientid", "userpseudoid"),
    "user_agent": ("useragent", "ua"),
    "source_article_id": ("sourcearticleid",),
    "placement": ("placement",),
    "run_id": ("runid", "customeventrunid"),
    "variant": ("variant", "customeventvariant"),
    "position": ("position", "customeventposition"),
    "propensity": ("propensity", "customeventpropensity"),
    "count": ("views", "pageviews", "screenpageviews", "count", "hits"),
}
_KINDS = {
    "page_view": "view",
    "pageview": "view",
    "pageviews": "view",
    "views": "view",
    "impressions": "impression",
    "clicks": "click",
}
#: A count above this in one row is an export error, not traffic.
MAX_COUNT_PER_ROW = 1_000_000
_COMPACT_DATE = re.compile(r"^\d{8}(\d{2})?$")


def _name(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _columns(headers: list[str]) -> dict[str, str]:
    """Event column → the export's header that holds it."""
    by_name = {_name(h): h for h in reversed(headers)}
    found = {}
    for column, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in by_name:
                found[column] = by_name[alias]
                break
    return found


def _lines(document: Document, limits: IngestLimits) -> Iterator[tuple[int, str | Problem]]:
    """(line number, text or the problem that line has)."""
    for number, line in enumerate(document.lines(), start=1):
        if len(line) > limits.max_line_bytes:
            reason = f"line of {len(line):,} bytes (limit {limits.max_line_bytes:,})"
            yield number, Problem(document.source, number, "(line)", "", reason)
            continue
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as error:
            yield (
                number,
                Problem(
                    document.source,
                    number,
                    "(line)",
                    line[:80].decode("utf-8", "replace"),
                    f"not UTF-8: byte 0x{line[error.start]:02x} at column {error.start + 1}",
                ),
            )


def _records(
    document: Document, limits: IngestLimits
) -> tuple[list[dict[str, object]], list[int], list[Problem]]:
    """The export's rows as dicts, their line numbers, and the lines that failed."""
    problems: list[Problem] = []
    good: list[tuple[int, str]] = []
    for number, item in _lines(document, limits):
        if isinstance(item, Problem):
            problems.append(item)
        elif item.strip() and not item.lstrip().startswith("#"):
            good.append((number, item))
    records: list[dict[str, object]] = []
    rows: list[int] = []
    if not good:
        return records, rows, problems
    if good[0][1].lstrip().startswith("{"):
        for number, line in good:
            deep = too_deep(line)
            if deep is not None:
                reason = (
                    f"invalid JSON: nested more than {MAX_JSON_DEPTH} levels deep "
                    f"(at column {deep + 1})"
                )
                problems.append(Problem(document.source, number, "(record)", line[:80], reason))
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as error:
                reason = error.msg if isinstance(error, json.JSONDecodeError) else "nested too deep"
                problems.append(
                    Problem(
                        document.source, number, "(record)", line[:80], f"invalid JSON: {reason}"
                    )
                )
                continue
            if not isinstance(record, dict):
                problems.append(
                    Problem(
                        document.source, number, "(record)", line[:80], "expected a JSON object"
                    )
                )
                continue
            if may_hold_surrogates(line):
                record, n = without_surrogates(record)
                if n:
                    reason = f"{n} lone surrogate(s) replaced by U+FFFD"
                    problems.append(
                        Problem(document.source, number, "(record)", "", reason, "repaired")
                    )
            records.append(record)
            rows.append(number)
        return records, rows, problems
    delimiter = "\t" if "\t" in good[0][1] else ","
    numbers = [number for number, _ in good]
    reader = csv.reader((line for _, line in good), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            # One broken line (a NUL byte, an open quote at the end): the reader goes on.
            number = numbers[min(reader.line_num, len(numbers)) - 1]
            problems.append(Problem(document.source, number, "(record)", "", f"bad CSV: {error}"))
            continue
        if header is None:
            header = values
            continue
        # line_num counts the lines read so far: a quoted field may span several.
        number = numbers[reader.line_num - 1]
        if len(values) != len(header):
            problems.append(
                Problem(
                    document.source,
                    number,
                    "(record)",
                    delimiter.join(values)[:80],
                    f"{len(values)} fields, the header has {len(header)}",
                )
            )
            continue
        records.append(dict(zip(header, values, strict=True)))
        rows.append(number)
    return records, rows, problems


def _compact_dates(values: pd.Series) -> pd.Series:
    """``20210301`` → ``2021-03-01``, ``2021030109`` → ``2021-03-01T09:00``."""
    text = values.astype("string").str.strip()
    compact = text.str.match(_COMPACT_DATE).fillna(False)
    if not compact.any():
        return text
    short = text[compact]
    iso = short.str.slice(0, 4) + "-" + short.str.slice(4, 6) + "-" + short.str.slice(6, 8)
    hour = short.str.slice(8, 10)
    iso = iso.where(hour == "", iso + "T" + hour + ":00:00")
    return text.mask(compact, iso)


def read_analytics(
    document: Document,
    site: SiteContext,
    *,
    articles: pd.DataFrame | None = None,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> Traffic:
    """Events of one analytics export (see module docs); ``row`` is the line number."""
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    source = document.source
    document, repaired = without_bom(document)
    records, rows, problems = _records(document, limits)
    if repaired:
        problems.insert(0, repaired)
    unparsed = sum(p.row > 0 for p in problems)

    def finish(raw: pd.DataFrame, bots: int = 0, skipped: int = 0) -> Traffic:
        return finish_events(
            raw,
            source=source,
            limits=limits,
            now=now,
            articles=articles,
            problems=problems,
            n_unparsed=unparsed,
            bots=bots,
            skipped=skipped,
        )

    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    columns = _columns([str(c) for c in frame.columns])
    if records and ("ts" not in columns or not {"url", "article_id"} & set(columns)):
        missing = "a time column" if "ts" not in columns else "a page URL/path or article_id column"
        problems.append(
            Problem(
                source,
                0,
                "(document)",
                "",
                f"no {missing}: found {', '.join(map(str, frame.columns))}",
            )
        )
        return finish(pd.DataFrame(columns=["ts", "_row"]))
    raw = pd.DataFrame({name: frame[header] for name, header in columns.items()})
    raw["_row"] = np.asarray(rows, dtype="int64")
    if not len(raw):
        return finish(raw.assign(ts=pd.Series(dtype="string")))
    raw["ts"] = _compact_dates(raw["ts"])
    if "url" in raw:
        url = raw["url"].astype("string").str.strip()
        relative = url.str.startswith("/").fillna(False)
        raw["url"] = url.mask(relative, site.url.rstrip("/") + url)
    if "kind" in raw:
        kind = raw["kind"].astype("string").str.strip().str.lower()
        raw["kind"] = kind.replace(_KINDS)
    bots = pd.Series(False, index=raw.index)
    if "user_agent" in raw:
        bots = bot_mask(raw["user_agent"])
        raw = raw[~bots].drop(columns="user_agent")
    if "count" in raw:
        count = pd.to_numeric(raw["count"].astype("string").str.replace(",", ""), errors="coerce")
        bad = count.isna() | (count < 0) | (count != count.round()) | (count > MAX_COUNT_PER_ROW)
        problems += problems_where(
            bad,
            raw,
            source=source,
            field="count",
            values=raw["count"],
            reason=f"bad count: expected a whole number from 0 to {MAX_COUNT_PER_ROW:,}",
        )
        unparsed += int(bad.sum())
        raw = raw[~bad].assign(count=count[~bad].astype("int64"))
    return finish(raw.reset_index(drop=True), bots=int(bots.sum()))
