"""RSS 0.9x/1.0/2.0 and Atom feeds, parsed by feedparser.

Per item: the link (``<link>``, Atom ``rel="alternate"``, or a permalink
``<guid>``), the title and the description or full content
(``content:encoded``, Atom ``<content>``) reduced to plain text, the
categories (``<category>``, Atom ``term``; the first the site's config knows
becomes the category, the others tags), the publication date (``pubDate``,
``published``, ``dc:date``; ``updated`` when there is no other), the image
(``media:content``, ``media:thumbnail``, an image ``<enclosure>``) and the
channel's language.

feedparser reads feeds that are not well-formed XML with a lenient parser:
the items it recovers are kept and the XML error is reported (``repaired``)
with its line and column. A document that yields no feed at all is rejected.

The bytes are decoded before feedparser sees them, as every text input is
(:func:`recommender.ingest.documents.utf8_document`): a byte-order mark,
UTF-8, the declared charset; a UTF-8 feed with a stray byte keeps its text,
with just that byte replaced and its line and column reported.
"""

from __future__ import annotations

import calendar
import time
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser  # type: ignore[import-untyped]
import pandas as pd

from recommender.ingest.documents import Document, IngestLimits, Problem, utf8_document
from recommender.ingest.htmltext import html_to_text
from recommender.ingest.records import SiteContext, finish_articles
from recommender.schema import LoadResult


def _iso(parsed: time.struct_time | None) -> str | None:
    """feedparser's UTC struct_time as ISO 8601; None when absent or impossible."""
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        # Out of the platform's range: keep the year visible for the absurd-date check.
        return f"{parsed.tm_year:04d}-{parsed.tm_mon:02d}-{parsed.tm_mday:02d}"


def _image(entry: Mapping[str, Any]) -> str | None:
    for media in entry.get("media_content") or []:
        kind = str(media.get("type") or "")
        if media.get("url") and (media.get("medium") == "image" or kind.startswith("image/")):
            return str(media["url"])
    for thumb in entry.get("media_thumbnail") or []:
        if thumb.get("url"):
            return str(thumb["url"])
    for enclosure in entry.get("enclosures") or []:
        if str(enclosure.get("type") or "").startswith("image/") and enclosure.get("href"):
            return str(enclosure["href"])
    return None


def _link(entry: Mapping[str, Any]) -> str | None:
    if entry.get("link"):
        return str(entry["link"])
    guid = str(entry.get("id") or "")
    return guid if guid.startswith(("http://", "https://")) else None


def _body(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or []
    html = max((str(c.get("value") or "") for c in contents), key=len, default="")
    return html_to_text(html or str(entry.get("summary") or ""))


def _record(entry: dict[str, Any], language: str) -> dict[str, Any]:
    # dict.get: feedparser's own get() maps a missing "published" to "updated"
    # with a deprecation warning; the fallback is made explicit below.
    published = _iso(dict.get(entry, "published_parsed")) or dict.get(entry, "published")
    updated = _iso(dict.get(entry, "updated_parsed")) or dict.get(entry, "updated")
    labels = [t.get("term") or t.get("label") for t in entry.get("tags") or []]
    return {
        "url": _link(entry),
        "title": html_to_text(str(entry.get("title") or "")),
        "body": _body(entry),
        "categories": [label for label in labels if label],
        "published_at": published or updated,
        "modified_at": updated,
        "image_url": _image(entry),
        "language": language,
    }


def _xml_problem(source: str, error: Exception, recovered: int) -> Problem:
    where = ""
    if isinstance(error, xml.sax.SAXParseException):
        where = f" at line {error.getLineNumber()}, column {error.getColumnNumber()}"
    if recovered:
        return Problem(
            source,
            0,
            "(document)",
            "",
            f"malformed XML{where}: {error}; {recovered} item(s) recovered by the lenient parser",
            "repaired",
        )
    return Problem(source, 0, "(document)", "", f"malformed XML{where}: {error}; no items")


def read_feed(
    document: Document,
    site: SiteContext,
    *,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> LoadResult:
    """Articles of an RSS or Atom feed (see module docs); ``row`` is the item number."""
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    document, repaired = utf8_document(document, markup="xml")
    problems: list[Problem] = [repaired] if repaired else []
    # feedparser applies RFC 3023's defaults (text/xml means us-ascii) as soon as
    # it is given headers: give them only when the server sent a media type, and
    # say UTF-8, which the bytes now are.
    headers = {}
    if document.media_type:
        headers = {
            "content-type": f"{document.media_type}; charset=utf-8",
            "content-location": document.url or "",
        }
    parsed = feedparser.parse(
        document.content,
        response_headers=headers or None,
        sanitize_html=False,
        resolve_relative_uris=True,
    )
    entries = list(parsed.get("entries") or [])
    if not parsed.get("version") and not entries:
        error = parsed.get("bozo_exception")
        reason = f"not an RSS or Atom feed{f' ({error})' if error else ''}"
        if isinstance(error, xml.sax.SAXParseException):
            problems.append(_xml_problem(document.source, error, 0))
        else:
            problems.append(Problem(document.source, 0, "(document)", "", reason))
        return finish_articles(
            [], [], source=document.source, site=site, limits=limits, now=now, problems=problems
        )
    if parsed.get("bozo"):
        error = parsed["bozo_exception"]
        if isinstance(error, feedparser.CharacterEncodingOverride):
            problems.append(
                Problem(
                    document.source,
                    0,
                    "(document)",
                    "",
                    f"wrong declared encoding ({error}); decoded as {parsed.get('encoding')}",
                    "repaired",
                )
            )
        elif not isinstance(error, feedparser.NonXMLContentType):
            problems.append(_xml_problem(document.source, error, len(entries)))
    language = str(parsed.get("feed", {}).get("language") or "")
    records = [_record(entry, language) for entry in entries]
    return finish_articles(
        records,
        range(1, len(records) + 1),
        source=document.source,
        site=site,
        limits=limits,
        now=now,
        base_url=document.url or str(parsed.get("feed", {}).get("link") or "") or None,
        problems=problems,
    )
