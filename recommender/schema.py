"""The Article and Event frames: declared columns, dtypes and validation.

Every input format is read into a raw frame of text columns plus two
bookkeeping columns, ``_file`` and ``_row``, then validated here. ``_row`` is
one numbering for every line-based file: the physical line where the record
starts, the header being line 1 (JSON Lines: the record's line); for Parquet,
which has no lines, the 1-based record number. Validation is vectorised (no
Python loop per row) and returns the good rows with their declared dtypes,
plus one *problem* per bad field: file, row, field, value, reason, and the
action taken (``rejected``: the row is left out; ``cleared``: an optional
field was emptied and the row kept; ``repaired``: a value was read despite a
defect, such as a lone surrogate replaced by U+FFFD, and the row kept).

Article columns
    article_id (str, unique across the network, an id as
    :mod:`recommender.ids` defines it: no control characters), site (str, a registry key),
    url (http/https), title (non-empty), body (str, may be empty), category
    (the site's own label, may be empty), published_at (datetime64, UTC),
    modified_at (datetime64, UTC, optional: when the source last changed it),
    image_url (http/https or missing), tags (``|``-separated str), language
    (str), status (``published`` | ``unpublished``).

Event columns
    ts (datetime64, UTC), article_id (str or missing), url (str or missing;
    one of the two is required), kind (``view`` | ``impression`` | ``click``),
    source_article_id, placement, session (str or missing). article_id and
    source_article_id, when given, are ids as :mod:`recommender.ids` defines them.

    What a ranker learns from (optional columns: a file without them loads
    as before, with them missing):
    run_id (str: the id of the run whose list was shown, an id as above),
    variant (str: the experiment variant that chose the list, a token like
    ``B`` or ``ctr-prior.20``: 1 to 64 of ``A-Z a-z 0-9 _ . : -``),
    position (Int64: the item's slot in the block, 1 = the first; at most
    :data:`MAX_POSITION`), propensity (Float64: the probability with which
    the policy showed the item there, in (0, 1]; missing or 1.0 when the
    list was not randomised).

Naive timestamps (no offset) are taken as UTC. A date no nanosecond timestamp
holds (before 1677-09-22 or after 2262-04-11, such as a 9999-12-31
placeholder) is *out of range*, said apart from an unparsable one.

Events are not filtered by time here (validation knows no reference time):
events after the run's ``now`` are left out where the traffic is scored
(:func:`recommender.trending.trend_scores`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recommender.ids import MAX_ID_LENGTH, id_problem
from recommender.spool import MAX_POSITION, TOKEN_PATTERN

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
    "run_id": "string",
    "variant": "string",
    "position": "Int64",
    "propensity": "Float64",
}
EVENT_KINDS = ("view", "impression", "click")
ARTICLE_STATUSES = ("published", "unpublished")

PROBLEM_COLUMNS = ["file", "row", "field", "value", "reason", "action"]

_HTTP_URL = r"^https?://[^\s/?#]+[^\s]*$"
# The characters recommender.ids forbids in an id, as literal characters (the
# pattern goes to Arrow's regex engine); surrogates cannot be in an Arrow
# string at all and are caught when the column is converted.
_ID_FORBIDDEN = "[\x00-\x1f\x7f-\x9f\u2028\u2029]"
_SURROGATE = re.compile("[\ud800-\udfff]")


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
            missing = pd.NaT if str(dtype).startswith("datetime") else pd.NA
            out[name] = pd.Series(missing, index=frame.index, dtype=dtype)
    return out.reset_index(drop=True)


def _text(frame: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series | None]:
    """A column as stripped text, missing values as <NA>; lists (a Parquet list
    column's arrays too) joined by '|'.

    Also where values held lone surrogates (JSON's ``"\\ud800"`` escape decodes
    to one; no UTF-8 can hold it): those become U+FFFD and the mask says
    where, else the mask is None.
    """
    if name not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string"), None
    column = frame[name]
    if column.dtype == object:
        column = _map_objects(column, _joined)
    surrogates = None
    try:
        text = column.astype("string")
    except UnicodeEncodeError:
        surrogates = column.map(lambda v: isinstance(v, str) and bool(_SURROGATE.search(v)))
        column = _map_objects(
            column, lambda v: _SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v
        )
        text = column.astype("string")
        surrogates = surrogates.astype(bool)
    text = text.str.strip()
    return text.mask(text == ""), surrogates


def _joined(value: object) -> object:
    if isinstance(value, list | tuple | np.ndarray):
        return "|".join(map(str, value))
    return value


def _map_objects(column: pd.Series, func: Any) -> pd.Series:
    """``column.map(func)`` keeping object dtype (no inference to Arrow strings,
    which cannot hold a lone surrogate)."""
    return pd.Series([func(v) for v in column], index=column.index, dtype=object)


def _utc_ns(parsed: pd.Series) -> tuple[pd.Series, pd.Series]:
    """To nanosecond UTC, and where a time was outside what that holds (years
    before 1677 or after 2262, e.g. 0001 or 9999 placeholders): those become
    NaT instead of raising."""
    in_range = (parsed >= _NS_MIN) & (parsed <= _NS_MAX)
    outside = (parsed.notna() & ~in_range).astype(bool)
    return parsed.where(in_range).astype("datetime64[ns, UTC]"), outside


_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")
#: The reason given for a date no timestamp holds (see module docs).
OUT_OF_RANGE = (
    f"out of range: supported dates run from {_NS_MIN.ceil('D'):%Y-%m-%d} "
    f"to {_NS_MAX.floor('D'):%Y-%m-%d} (UTC)"
)
# An ISO 8601 date's year, to tell a year no parser takes (0000, 10000) from nonsense.
_ISO_YEAR = r"^[+-]?(\d{4,})-\d{2}-\d{2}"


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse to tz-aware UTC; unparsable or out-of-range values become NaT.
    Naive means UTC."""
    return parse_timestamps_checked(values)[0]


def parse_timestamps_checked(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`parse_timestamps`, and where a value was a date out of the range
    a timestamp holds (NaT in the first, True in the second)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _utc_ns(values.dt.tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _utc_ns(values.dt.tz_localize("UTC"))
    text = values.astype("string").str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():  # other formats (RFC 2822, "March 1, 2021"): slower, only for the rest
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    result, outside = _utc_ns(parsed)
    unparsed = result.isna() & text.notna() & ~outside
    if unparsed.any():
        year = pd.to_numeric(text[unparsed].str.extract(_ISO_YEAR, expand=False), errors="coerce")
        far = ((year < _NS_MIN.year) | (year > _NS_MAX.year)).fillna(False).astype(bool)
        outside = outside | far.reindex(outside.index, fill_value=False)
    return result, outside


class _Checker:
    """Collects problems as boolean masks over a raw frame."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.bad = pd.Series(False, index=raw.index)
        self._parts: list[pd.DataFrame] = []
        self._surrogates: dict[str, pd.Series] = {}

    def text(self, name: str, *, is_id: bool = False) -> pd.Series:
        """Column ``name`` as stripped text (see :func:`_text`). A lone surrogate
        is replaced and reported (``repaired``); in an id it rejects the row
        (see :meth:`ids`)."""
        text, surrogates = _text(self.raw, name)
        if surrogates is not None:
            self._surrogates[name] = surrogates
            if not is_id:
                self.add(
                    surrogates,
                    name,
                    text,
                    "lone surrogate (not encodable as UTF-8) replaced by U+FFFD",
                    action="repaired",
                )
        return text

    def ids(self, name: str, text: pd.Series) -> None:
        """Reject rows whose ``name`` is given but not an id as recommender.ids
        defines it (control characters, too long, a lone surrogate)."""
        bad = text.str.contains(_ID_FORBIDDEN, regex=True, na=False) | (
            text.str.len() > MAX_ID_LENGTH
        ).fillna(False)
        surrogates = self._surrogates.get(name)
        if surrogates is not None:
            bad |= surrogates
        bad = bad.fillna(False).astype(bool)
        if not bad.any():
            return
        reasons = pd.Series(
            [
                f"bad id: {id_problem(v.strip() if isinstance(v, str) else v) or 'not an id'}"
                for v in self.raw[name][bad]
            ],
            index=text.index[bad],
            dtype=object,
        )
        self.add(bad, name, text, reasons.reindex(text.index))

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
        """Parse column ``name`` to UTC; reject rows where it is missing,
        unparsable or out of the range a timestamp holds."""
        text = self.text(name)
        if name not in self.raw:
            parsed = pd.Series(pd.NaT, index=self.raw.index, dtype="datetime64[ns, UTC]")
            outside = pd.Series(False, index=self.raw.index)
        else:
            parsed, outside = parse_timestamps_checked(self.raw[name])
        self.add(parsed.isna() & text.isna(), name, text, f"missing: {why_required}")
        self.add(outside, name, text, OUT_OF_RANGE)
        self.add(
            parsed.isna() & text.notna() & ~outside,
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

    article_id = check.text("article_id", is_id=True)
    site = check.text("site")
    url = check.text("url")
    title = check.text("title")
    published = check.timestamps("published_at", "an article needs a publication date")
    modified_text = check.text("modified_at")
    if "modified_at" in raw:
        modified, modified_outside = parse_timestamps_checked(raw["modified_at"])
    else:
        modified = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
        modified_outside = pd.Series(False, index=raw.index)
    check.add(
        modified_outside,
        "modified_at",
        modified_text,
        f"{OUT_OF_RANGE}; modification time dropped",
        action="cleared",
    )
    check.add(
        modified.isna() & modified_text.notna() & ~modified_outside,
        "modified_at",
        modified_text,
        "unparsable date: expected ISO 8601; modification time dropped",
        action="cleared",
    )
    image_url = check.text("image_url")
    status = check.text("status").str.lower().fillna("published")

    check.add(article_id.isna(), "article_id", article_id, "missing: an article needs an id")
    check.ids("article_id", article_id)
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
            "body": check.text("body").fillna(""),
            "category": check.text("category").fillna(""),
            "published_at": published,
            "modified_at": modified,
            "image_url": image_url.mask(bad_image),
            "tags": check.text("tags").fillna(""),
            "language": check.text("language").fillna(""),
            "status": status,
        }
    )[good]
    return LoadResult(_typed(frame, ARTICLE_DTYPES), check.problems(), len(raw))


# ---------------------------------------------------------------------------
# events


def validate_events(raw: pd.DataFrame, *, source: str = "<frame>") -> LoadResult:
    """Validate a raw event frame.

    A missing ``kind`` column means every row is a ``view`` (a plain
    pageview export). Rows with an unparsable or out-of-range time, an
    unknown kind, neither article_id nor url, an article_id,
    source_article_id or run_id that is not an id (control characters), a
    variant that is not a token, a position that is not a whole number from
    1 to :data:`MAX_POSITION`, or a propensity not in (0, 1] are rejected.
    """
    raw = _with_bookkeeping(raw, source)
    check = _Checker(raw)
    ts = check.timestamps("ts", "an event needs a time")
    kind = check.text("kind").str.lower()
    if "kind" not in raw:
        kind = kind.fillna("view")
    article_id = check.text("article_id", is_id=True)
    source_article_id = check.text("source_article_id", is_id=True)
    url = check.text("url")

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
    check.ids("article_id", article_id)
    check.ids("source_article_id", source_article_id)
    run_id = check.text("run_id", is_id=True)
    check.ids("run_id", run_id)
    variant = check.text("variant")
    check.add(
        variant.notna() & ~variant.str.match(TOKEN_PATTERN, na=False),
        "variant",
        variant,
        "bad variant: expected 1 to 64 letters, digits or _ . : -",
    )
    position_text = check.text("position")
    position = _numbers(position_text)
    whole = (position == np.floor(position)) & (position >= 1) & (position <= MAX_POSITION)
    check.add(
        position_text.notna() & ~whole.fillna(False),
        "position",
        position_text,
        f"bad position: expected a whole number from 1 (the first slot) to {MAX_POSITION:,}",
    )
    propensity_text = check.text("propensity")
    propensity = _numbers(propensity_text)
    probability = (propensity > 0) & (propensity <= 1)
    check.add(
        propensity_text.notna() & ~probability.fillna(False),
        "propensity",
        propensity_text,
        "bad propensity: expected the probability the item was shown with, in (0, 1]",
    )

    good = ~check.bad
    frame = pd.DataFrame(
        {
            "ts": ts,
            "article_id": article_id,
            "url": url,
            "kind": kind,
            "source_article_id": source_article_id,
            "placement": check.text("placement"),
            "session": check.text("session"),
            "run_id": run_id,
            "variant": variant,
            "position": position.round(),
            "propensity": propensity,
        }
    )[good]
    return LoadResult(_typed(frame, EVENT_DTYPES), check.problems(), len(raw))


def _numbers(text: pd.Series) -> pd.Series:
    """``text`` as float64 numbers; NaN where missing or not a finite number."""
    values = pd.to_numeric(text.astype(object), errors="coerce").astype("float64")
    return values.where(np.isfinite(values))
