"""From a source's records to the validated Article frame, the same for every format.

A reader turns its format into plain *article records* (dicts with the keys
below) and hands them to :func:`finish_articles`, which applies what every
source shares: the site key and its category labels from the config, URLs
in canonical form, ids derived from the URL, field length limits, absurd
dates, and finally :func:`recommender.schema.validate_articles`.

Record keys: ``url``, ``title``, ``body`` (plain text), ``categories`` (the
source's category labels, best first), ``tags`` (other labels),
``published_at``, ``modified_at`` (ISO 8601 text or a datetime),
``image_url``, ``language``, ``status`` (``published`` | ``unpublished``).
Missing keys are missing values.

The frame returned has the Article columns of :mod:`recommender.schema` plus
``modified_at`` (UTC, ``NaT`` when the source does not say): when the
source last changed the article, which tells the incremental corpus whether
a page needs fetching again.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recommender.config import Config
from recommender.errors import ConfigError
from recommender.ingest.documents import IngestLimits, Problem, problems_frame, problems_where
from recommender.ingest.matching import canonical_url, url_key
from recommender.schema import (
    ARTICLE_DTYPES,
    LoadResult,
    empty_articles,
    parse_timestamps,
    validate_articles,
)

#: The Article columns plus ``modified_at`` (see module docs).
INGEST_ARTICLE_DTYPES: dict[str, str] = {**ARTICLE_DTYPES, "modified_at": "datetime64[ns, UTC]"}

# WordPress's default category: it says the author chose none.
_NO_CATEGORY = frozenset({"uncategorized", "uncategorised", "non classé", "未分類"})
_SPACES = re.compile(r"\s+")
_MAX_TAGS = 30


def clean_label(label: object) -> str:
    """A category or tag label as plain text: entities decoded, spaces collapsed,
    ``|`` (the tags separator) replaced by ``/``."""
    text = html.unescape(str(label)) if label is not None else ""
    return _SPACES.sub(" ", text).strip().replace("|", "/")


def primary_language(tag: object) -> str:
    """``en`` from ``en-US``, ``en_GB`` or ``EN``; '' when absent."""
    if not isinstance(tag, str):
        return ""
    text = tag.strip().replace("_", "-")
    return text.split("-", 1)[0].lower()[:8] if text else ""


@dataclass(frozen=True)
class SiteContext:
    """What ingest needs to know about the site a source belongs to.

    ``labels`` maps each known category label, case-folded, to its spelling
    in the config (the site's ``categories`` and the keys of its
    ``category_map``).
    """

    key: str
    display_name: str
    url: str
    language: str
    labels: Mapping[str, str]

    @classmethod
    def from_config(cls, config: Config, key: str) -> SiteContext:
        """The site ``key`` of the config's registry; :class:`ConfigError` if unknown."""
        if key not in config.sites:
            raise ConfigError(
                f"--site {key!r}: not in the config's sites ({', '.join(config.sites)})"
            )
        site = config.sites[key]
        spelled = [*site.categories, *site.category_map]
        return cls(
            key=key,
            display_name=site.display_name,
            url=site.url,
            language=site.language,
            labels={clean_label(label).casefold(): label for label in reversed(spelled)},
        )

    def category_and_tags(
        self, categories: Sequence[object], tags: Sequence[object] = ()
    ) -> tuple[str, str]:
        """The article's category label and its ``|``-separated tags.

        The category is the first of ``categories`` the site's config knows
        (in the config's spelling), else the first of them, else the first of
        ``tags`` the config knows; every other label becomes a tag.
        WordPress's "Uncategorized" counts as no category.
        """
        cats = _unique(clean_label(c) for c in categories)
        cats = [c for c in cats if c.casefold() not in _NO_CATEGORY]
        others = _unique(clean_label(t) for t in tags)
        chosen = next((c for c in cats if c.casefold() in self.labels), None)
        if chosen is None and cats:
            chosen = cats[0]
        if chosen is None:
            chosen = next((t for t in others if t.casefold() in self.labels), "")
        category = self.labels.get(chosen.casefold(), chosen)
        rest = [label for label in _unique([*cats, *others]) if label != chosen]
        return category, "|".join(rest[:_MAX_TAGS])


def _unique(labels: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for label in labels:
        if label and label.casefold() not in seen:
            seen.add(label.casefold())
            out.append(label)
    return out


def article_id_for(site: str, url: str) -> str:
    """A stable article id from the site key and the URL's :func:`url_key`.

    The same article gets the same id from its feed item, its sitemap entry
    and its page.
    """
    digest = hashlib.sha1(url_key(url).encode("utf-8")).hexdigest()[:12]
    return f"{site}-{digest}"


def empty_ingest_articles() -> pd.DataFrame:
    return (
        empty_articles()
        .assign(modified_at=pd.Series(dtype="datetime64[ns, UTC]"))
        .reset_index(drop=True)
    )


# Years a nanosecond timestamp can hold (pandas' range is 1677-09-21 to 2262-04-11).
_FIRST_YEAR, _LAST_YEAR = 1678, 2261


def _year(text: pd.Series) -> pd.Series:
    """The first run of 4 or more digits (the year, in ISO 8601 and RFC 2822 dates)."""
    digits = text.astype("string").str.extract(r"(?<!\d)(\d{4,})(?!\d)", expand=False)
    return pd.to_numeric(digits, errors="coerce")


def parse_dates(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse dates to UTC like :func:`recommender.schema.parse_timestamps`, and
    tell which have a year no timestamp can hold (year 1, year 9999): those are
    NaT and flagged, instead of making the parser raise."""
    text = text.astype("string")
    year = _year(text)
    outside = ((year < _FIRST_YEAR) | (year > _LAST_YEAR)).fillna(False).astype(bool)
    return parse_timestamps(text.mask(outside)), outside


def finish_articles(
    records: Sequence[Mapping[str, Any]],
    rows: Sequence[int],
    *,
    source: str,
    site: SiteContext,
    limits: IngestLimits,
    now: pd.Timestamp,
    base_url: str | None = None,
    problems: Iterable[Problem] = (),
    n_unparsed: int = 0,
) -> LoadResult:
    """Validate a source's article records into the ingest Article frame.

    ``rows``: each record's position in the source (1-based). ``base_url``:
    where relative links are resolved. ``problems``: what the reader already
    found (document-level errors, unparsable records); ``n_unparsed``: how
    many records the reader could not turn into a record at all (counted as
    read). Records with an over-long field or an absurd date are rejected
    here; the rest go through :func:`recommender.schema.validate_articles`.
    """
    found = list(problems)
    if not records:
        return LoadResult(empty_ingest_articles(), problems_frame(found), n_unparsed)
    raw = pd.DataFrame.from_records(list(records))
    raw["_row"] = np.asarray(rows, dtype="int64")
    raw["_file"] = source

    def text(name: str) -> pd.Series:
        if name not in raw:
            return pd.Series(pd.NA, index=raw.index, dtype="string")
        return raw[name].map(lambda v: v if isinstance(v, str) else None).astype("string")

    url = (
        text("url")
        .map(lambda u: canonical_url(u, base_url) if isinstance(u, str) else u)
        .astype("string")
    )
    category_tags = [
        site.category_and_tags(_labels(cats), _labels(tags))
        for cats, tags in zip(
            raw.get("categories", pd.Series([()] * len(raw))),
            raw.get("tags", pd.Series([()] * len(raw))),
            strict=True,
        )
    ]
    frame = pd.DataFrame(
        {
            "_file": raw["_file"],
            "_row": raw["_row"],
            "url": url,
            "title": text("title").map(
                lambda t: _SPACES.sub(" ", t).strip() if isinstance(t, str) else t
            ),
            "body": text("body"),
            "category": [c for c, _ in category_tags],
            "tags": [t for _, t in category_tags],
            "published_at": _dates(raw, "published_at"),
            "image_url": text("image_url").map(
                lambda u: canonical_url(u, base_url) if isinstance(u, str) else u
            ),
            "language": text("language").map(primary_language).replace("", site.language),
            "status": text("status").fillna("published"),
        }
    )
    frame["site"] = site.key
    frame["article_id"] = url.map(
        lambda u: article_id_for(site.key, u) if isinstance(u, str) and u else pd.NA
    )
    modified, _ = parse_dates(_dates(raw, "modified_at"))

    bad = pd.Series(False, index=frame.index)
    for name, limit in limits.field_limits.items():
        lengths = frame[name].astype("string").str.len().fillna(0)
        over = (lengths > limit) & ~bad
        reason = (
            "too long: "
            + lengths.astype("int64").map("{:,}".format)
            + f" characters (limit {limit:,})"
        )
        found += problems_where(
            over, frame, source=source, field=name, values=frame[name], reason=reason
        )
        bad |= over
    published_text = frame["published_at"].astype("string")
    published, outside = parse_dates(published_text)
    latest = now + pd.Timedelta(hours=limits.max_future_hours)
    absurd = ((published < limits.earliest) | (published > latest)).fillna(False) | outside
    absurd &= ~bad
    found += problems_where(
        absurd,
        frame,
        source=source,
        field="published_at",
        values=published_text,
        reason=f"absurd date: expected between {limits.earliest:%Y-%m-%d} and "
        f"{latest:%Y-%m-%d %H:%M} UTC",
    )
    bad |= absurd
    modified = modified.mask((modified < limits.earliest) | (modified > latest))

    kept = frame[~bad]
    result = validate_articles(kept, sites=[site.key], source=source)
    # validate_articles keeps row order and drops rejected rows and repeated ids
    # (the first good one wins): line modified_at up with the rows it kept.
    rejected_rows = set(result.rejected["row"].astype(int))
    survivors = kept[~kept["_row"].isin(rejected_rows)]
    survivors = survivors[~survivors["article_id"].duplicated(keep="first")]
    valid = result.valid.assign(modified_at=modified.loc[survivors.index].reset_index(drop=True))
    all_problems = pd.concat([problems_frame(found), result.problems], ignore_index=True)
    all_problems = all_problems.sort_values(["row"], kind="stable").reset_index(drop=True)
    return LoadResult(
        valid.astype(INGEST_ARTICLE_DTYPES).reset_index(drop=True),
        all_problems,
        len(records) + n_unparsed,
    )


def _labels(value: object) -> list[object]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def _dates(raw: pd.DataFrame, name: str) -> pd.Series:
    """A date column as ISO text (datetimes converted), missing as <NA>."""
    if name not in raw:
        return pd.Series(pd.NA, index=raw.index, dtype="string")

    def as_text(value: object) -> object:
        if hasattr(value, "isoformat"):  # datetime, pd.Timestamp
            return value.isoformat()
        return value if isinstance(value, str) else None

    return raw[name].map(as_text).astype("string")
