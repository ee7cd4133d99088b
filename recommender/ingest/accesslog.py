"""nginx and Apache access logs in the "combined" format.

One line per request (here folded)::

    203.0.113.9 - - [01/Mar/2021:09:12:44 +0900] "GET /recipe-sakura-mochi/?utm_source=x HTTP/2.0"
        200 5120 "https://japantoday.com/" "Mozilla/5.0 ..."

Fields nginx appends after the user agent (``$request_time``, ...) are
ignored. A hit is a page view when it is a ``GET`` answered with 2xx or 304,
for a path that is not a static asset (``.css``, ``.js``, images, fonts,
feeds); the rest are counted as skipped, and crawlers (by user agent) as
bots. The path is joined to the site's URL from the config, so it can be
matched to an article's URL. A log with a byte-order mark (UTF-16, UTF-32)
is decoded by it; a line that is not UTF-8, longer than
``IngestLimits.max_line_bytes``, not in the combined format or with an
impossible time is rejected with its line number.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pandas as pd

from recommender.errors import ConfigError
from recommender.ingest.documents import Document, IngestLimits, Problem, without_bom
from recommender.ingest.records import SiteContext
from recommender.ingest.traffic import Traffic, bot_mask, finish_events, session_ids

COMBINED = re.compile(
    r"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?:\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"(?:\s.*)?$'
)
_REQUEST = re.compile(r"^(?P<method>[A-Z]+) (?P<target>\S+)(?: HTTP/[\d.]+)?$")
_ASSET = re.compile(
    r"\.(?:css|js|mjs|map|png|jpe?g|gif|webp|avif|svg|ico|bmp|woff2?|ttf|otf|eot|mp4|webm|mp3"
    r"|pdf|zip|gz|xml|rss|atom|json|txt)$",
    re.IGNORECASE,
)
_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


def _path(target: str) -> str:
    """The path and query of a request target (origin-form or absolute-form)."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return target


def read_access_log(
    document: Document,
    site: SiteContext,
    *,
    articles: pd.DataFrame | None = None,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> Traffic:
    """Page views of one access log (see module docs); ``row`` is the line number.

    ``articles``: an Article frame to map the URLs to (see
    :func:`recommender.ingest.traffic.finish_events`).
    """
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    if not site.url:
        raise ConfigError(
            f"site {site.key!r} has no url in the config: access log paths need it to form URLs"
        )
    source = document.source
    document, repaired = without_bom(document)
    problems: list[Problem] = [repaired] if repaired else []
    numbers: list[int] = []
    texts: list[str] = []
    for number, line in enumerate(document.lines(), start=1):
        if not line.strip():
            continue
        if len(line) > limits.max_line_bytes:
            problems.append(
                Problem(
                    source,
                    number,
                    "(line)",
                    "",
                    f"line of {len(line):,} bytes (limit {limits.max_line_bytes:,})",
                )
            )
            continue
        try:
            texts.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            problems.append(
                Problem(
                    source,
                    number,
                    "(line)",
                    line[:80].decode("utf-8", "replace"),
                    f"not UTF-8: byte 0x{line[error.start]:02x} at column {error.start + 1}",
                )
            )
            continue
        numbers.append(number)
    lines = pd.Series(texts, dtype="string")
    fields = lines.str.extract(COMBINED)
    not_combined = fields["time"].isna()
    for i in not_combined[not_combined].index:
        problems.append(
            Problem(
                source,
                numbers[i],
                "(line)",
                str(lines.iat[i])[:80],
                "not an access log line in the combined format "
                '(client - user [time] "request" status bytes "referer" "user agent")',
            )
        )
    fields = fields[~not_combined].assign(_row=[numbers[i] for i in fields.index[~not_combined]])
    ts = pd.to_datetime(fields["time"], format=_TIME_FORMAT, utc=True, errors="coerce")
    for i in ts[ts.isna()].index:
        problems.append(
            Problem(
                source,
                numbers[i],
                "ts",
                str(fields.at[i, "time"]),
                "unparsable time: expected [10/Mar/2021:13:55:36 +0900]",
            )
        )
    fields = fields[ts.notna()].assign(ts=ts[ts.notna()])
    request = fields["request"].str.extract(_REQUEST)
    status = pd.to_numeric(fields["status"], errors="coerce")
    target = request["target"].fillna("").map(_path)
    path_only = target.str.split("?", n=1).str[0]
    view = (
        (request["method"] == "GET")
        & (status.between(200, 299) | (status == 304))
        & target.str.startswith("/")
        & ~path_only.str.contains(_ASSET, na=False)
    ).fillna(False)
    bots = bot_mask(fields["agent"].str.replace(r"\\(.)", r"\1", regex=True)) & view
    keep = view & ~bots
    kept = fields[keep]
    raw = pd.DataFrame(
        {
            "ts": kept["ts"],
            "url": site.url.rstrip("/") + target[keep],
            "kind": "view",
            "session": session_ids(kept["client"], kept["agent"]),
            "_row": kept["_row"],
        }
    )
    return finish_events(
        raw,
        source=source,
        limits=limits,
        now=now,
        articles=articles,
        problems=problems,
        n_unparsed=len(problems),
        bots=int(bots.sum()),
        skipped=int((~view).sum()),
    )
