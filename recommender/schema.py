"""The Article and Event frames: declared columns, dtypes and validation.

Every input format is read into a raw frame of text columns plus two
bookkeeping columns, ``_file`` and ``_row`` (1-based record number in that
file), then validated here. Validation is vectorised (no Python loop per
row) and returns the good rows with their declared dtypes, plus one
*problem* per bad field: file, row, field, value, reason, and the action
taken (``rejected``: the row is left out; ``cleared``: an optional field was
emptied and the row kept).

Article columns
    article_id (str, unique across the network), site (str, a registry key),
    url (http/https), title (non-empty), body (str, may be empty), category
    (the site's own label, may be empty), published_at (datetime64, UTC),
    modified_at (datetime64, UTC, optional: when the source last changed it),
    image_url (http/https or missing), tags (``|``-separated str), language
    (str), status (``published`` | ``unpublished``).

Event columns
    ts (datetime64, UTC), article_id (str or missing), url (str or missing;
    one of the two is required), kind (``view`` | ``impression`` | ``click``),
    source_article_id, placement, session (str or missing).

Naive timestamps (no offset) are taken as UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

ARTICLE_DTYPES: dict[str, str] = {
    "article_id": "string",
    "site": "string",
    "url": "string",
    "title": "string",
    "body": "string",
    "category": "string",
    "published_at": "datetime64[ns, UTC]",
    "modified_at": "datetime64[ns, UTC]",
    "image_url": "string",
    "tags": "string",
    "language": "string",
    "status": "string",
}
ARTICLE_REQUIRED = ("article_id", "site", "url", "title", "published_at")

EVENT_DTYPES: dict[str, str] = {
    "ts": "datetime64[ns, UTC]",
    "article_id": "string",
    "url": "string",
    "kind": "string",
    "source_article_id": "string",
    "placement": "string",
    "session": "string",
}
EVENT_KINDS = ("view", "impression", "click")
ARTICLE_STATUSES = ("published", "unpublished")

PROBLEM_COLUMNS = ["file", "row", "field", "value", "reason", "action"]

_HTTP_URL = r"^https?://[^\s/?#]+[^\s]*$"


def empty_problems() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in PROBLEM_COLUMNS})


def empty_articles() -> pd.DataFrame:
    return _typed(pd.DataFrame(), ARTICLE_DTYPES)


def empty_events() -> pd.DataFrame:
    return _typed(pd.DataFrame(), EVENT_DTYPES)


@dataclass
class LoadResult:
    """Good rows (typed frame) and the problems found while loading them."""

    valid: pd.DataFrame
    problems: pd.DataFrame = field(default_factory=empty_problems)
    n_read: int = 0

    @property
    def rejected(self) -> pd.DataFrame:
        return self.problems[self.problems["action"] == "rejected"]

    @property
    def n_rejected(self) -> int:
        rejected = self.rejected
        return len(rejected[["file", "row"]].drop_duplicates())

    def reasons(self) -> pd.Series:
        """Rejected rows counted by (field, reason kind)."""
        rejected = self.rejected.drop_duplicates(["file", "row"])
        kind = rejected["reason"].str.split(":").str[0]
        return kind.groupby([rejected["field"], kind]).size().sort_values(ascending=False)

    def describe_problems(self, limit: int = 10) -> list[str]:
        """Human-readable lines ``file row N field 'x': reason``, at most ``limit``."""
        return [
            f"{p.file} row {p.row} field {p.field!r}: {p.reason} [{p.action}]"
            for p in self.problems.head(limit).itertuples()
        ]


# ---------------------------------------------------------------------------
# helpers


def _typed(frame: pd.DataFrame, dtypes: Mapping[str, Any]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for name, dtype in dtypes.items():
        if name in frame:
            out[name] = frame[name].astype(dtype)
        else:
            out[name] = pd.Series(
                pd.NA if dtype == "string" else pd.NaT, index=frame.index, dtype=dtype
            )
    return out.reset_index(drop=True)


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as stripped text, missing values as <NA>; lists joined by '|'."""
    if name not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    column = frame[name]
    if column.dtype == object:
        column = column.map(lambda v: "|".join(map(str, v)) if isinstance(v, list | tuple) else v)
    text = column.astype("string").str.strip()
    return text.mask(text == "")


def _utc_ns(parsed: pd.Series) -> pd.Series:
    """To nanosecond UTC; times outside what it holds (years before 1677 or
    after 2262, e.g. 0001 or 9999 placeholders) become NaT instead of raising."""
    in_range = (parsed >= _NS_MIN) & (parsed <= _NS_MAX)
    return parsed.where(in_range).astype("datetime64[ns, UTC]")


_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse to tz-aware UTC; unparsable or out-of-range values become NaT.
    Naive means UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _utc_ns(values.dt.tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _utc_ns(values.dt.tz_localize("UTC"))
    text = values.astype("string").str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():  # other formats (RFC 2822, "March 1, 2021"): slower, only for the rest
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    return _utc_ns(parsed)


class _Checker:
    """Collects problems as boolean masks over a raw frame."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.bad = pd.Series(False, index=raw.index)
        self._parts: list[pd.DataFrame] = []

    def add(
        self,
        mask: pd.Series,
        field: str,
        values: pd.Series,
        reason: str | pd.Series,
        action: str = "rejected",
    ) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        reasons = reason[mask] if isinstance(reason, pd.Series) else reason
        self._parts.append(
            pd.DataFrame(
                {
                    "file": self.raw.loc[mask, "_file"].astype(str),
                    "row": self.raw.loc[mask, "_row"].astype("int64"),
                    "field": field,
                    "value": values[mask].astype("string").fillna("").str.slice(0, 200),
                    "reason": reasons,
                    "action": action,
                }
            )
        )
        if action == "rejected":
            self.bad |= mask

    def timestamps(self, name: str, why_required: str) -> pd.Series:
        """Parse column ``name`` to UTC; reject rows where it is missing or unparsable."""
        text = _text(self.raw, name)
        if name not in self.raw:
            parsed = pd.Series(pd.NaT, index=self.raw.index, dtype="datetime64[ns, UTC]")
        else:
            parsed = parse_timestamps(self.raw[name])
        self.add(parsed.isna() & text.isna(), name, text, f"missing: {why_required}")
        self.add(
            parsed.isna() & text.notna(),
            name,
            text,
            "unparsable date: expected ISO 8601 such as 2021-03-01T09:30:00+09:00",
        )
        return parsed

    def problems(self) -> pd.DataFrame:
        if not self._parts:
            return empty_problems()
        problems = pd.concat(self._parts)
        return problems.sort_values(["file", "row"], kind="stable").reset_index(drop=True)


def _with_bookkeeping(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    raw = raw.reset_index(drop=True)
    if "_file" not in raw:
        raw = raw.assign(_file=source)
    if "_row" not in raw:
        raw = raw.assign(_row=np.arange(1, len(raw) + 1))
    return raw


# ---------------------------------------------------------------------------
# articles


def validate_articles(
    raw: pd.DataFrame, *, sites: Collection[str] | None = None, source: str = "<frame>"
) -> LoadResult:
    """Validate a raw article frame.

    ``sites``: the registry's site keys (None skips that check). Rows with a
    missing id, title or URL, a URL that is not http(s), an unknown site, an
    unparsable date, an unknown status or an id already seen are rejected;
    a bad ``image_url`` is cleared. Of duplicate ids the first valid row wins.
    """
    raw = _with_bookkeeping(raw, source)
    check = _Checker(raw)

    article_id = _text(raw, "article_id")
    site = _text(raw, "site")
    url = _text(raw, "url")
    title = _text(raw, "title")
    published = check.timestamps("published_at", "an article needs a publication date")
    modified_text = _text(raw, "modified_at")
    modified = (
        parse_timestamps(raw["modified_at"])
        if "modified_at" in raw
        else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    )
    check.add(
        modified.isna() & modified_text.notna(),
        "modified_at",
        modified_text,
        "unparsable date: expected ISO 8601; modification time dropped",
        action="cleared",
    )
    image_url = _text(raw, "image_url")
    status = _text(raw, "status").str.lower().fillna("published")

    check.add(article_id.isna(), "article_id", article_id, "missing: an article needs an id")
    check.add(site.isna(), "site", site, "missing: an article needs a site key")
    if sites is not None:
        known = set(sites)
        unknown = site.notna() & ~site.isin(known)
        check.add(
            unknown,
            "site",
            site,
            f"unknown site: not in the config's sites ({', '.join(sorted(known))})",
        )
    check.add(url.isna(), "url", url, "missing: an article needs a URL")
    bad_url = url.notna() & ~url.str.match(_HTTP_URL, na=False)
    check.add(bad_url, "url", url, "bad URL: expected an absolute http(s) URL")
    check.add(title.isna(), "title", title, "missing: an article needs a title")
    check.add(
        ~status.isin(ARTICLE_STATUSES),
        "status",
        status,
        f"unknown status: expected one of {', '.join(ARTICLE_STATUSES)}",
    )
    bad_image = image_url.notna() & ~image_url.str.match(_HTTP_URL, na=False)
    check.add(
        bad_image,
        "image_url",
        image_url,
        "bad URL: expected an absolute http(s) URL; image dropped",
        action="cleared",
    )

    # Duplicates last, among rows that are otherwise good: the first good one wins.
    candidate_ids = article_id.where(~check.bad)
    dup = candidate_ids.notna() & candidate_ids.duplicated(keep="first")
    if dup.any():
        firsts = candidate_ids.dropna().drop_duplicates()
        first_row = pd.Series(firsts.index, index=firsts.to_numpy())
        at = first_row.loc[article_id[dup].to_numpy()].to_numpy()
        files = raw["_file"].astype(str).loc[at].to_numpy()
        rows = raw["_row"].astype(str).loc[at].to_numpy()
        where = "duplicate article_id: first seen at " + files + " row " + rows
        check.add(dup, "article_id", article_id, pd.Series(where, index=article_id[dup].index))

    good = ~check.bad
    frame = pd.DataFrame(
        {
            "article_id": article_id,
            "site": site,
            "url": url,
            "title": title,
            "body": _text(raw, "body").fillna(""),
            "category": _text(raw, "category").fillna(""),
            "published_at": published,
            "modified_at": modified,
            "image_url": image_url.mask(bad_image),
            "tags": _text(raw, "tags").fillna(""),
            "language": _text(raw, "language").fillna(""),
            "status": status,
        }
    )[good]
    return LoadResult(_typed(frame, ARTICLE_DTYPES), check.problems(), len(raw))


# ---------------------------------------------------------------------------
# events


def validate_events(raw: pd.DataFrame, *, source: str = "<frame>") -> LoadResult:
    """Validate a raw event frame.

    A missing ``kind`` column means every row is a ``view`` (a plain
    pageview export). Rows with an unparsable time, an unknown kind, or
    neither article_id nor url are rejected.
    """
    raw = _with_bookkeeping(raw, source)
    check = _Checker(raw)
    ts = check.timestamps("ts", "an event needs a time")
    kind = _text(raw, "kind").str.lower()
    if "kind" not in raw:
        kind = kind.fillna("view")
    article_id = _text(raw, "article_id")
    url = _text(raw, "url")

    check.add(
        ~kind.isin(EVENT_KINDS).fillna(False),
        "kind",
        kind,
        f"unknown kind: expected one of {', '.join(EVENT_KINDS)}",
    )
    check.add(
        article_id.isna() & url.isna(),
        "article_id",
        article_id,
        "missing: an event needs an article_id or a url",
    )

    good = ~check.bad
    frame = pd.DataFrame(
        {
            "ts": ts,
            "article_id": article_id,
            "url": url,
            "kind": kind,
            "source_article_id": _text(raw, "source_article_id"),
            "placement": _text(raw, "placement"),
            "session": _text(raw, "session"),
        }
    )[good]
    return LoadResult(_typed(frame, EVENT_DTYPES), check.problems(), len(raw))
