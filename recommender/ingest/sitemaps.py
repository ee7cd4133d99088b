"""XML sitemaps (sitemaps.org 0.9), Google News sitemaps and sitemap indexes.

A ``<urlset>`` entry with ``<news:news>`` is an article by itself: its
``<loc>``, ``<news:title>``, ``<news:publication_date>`` (else
``<lastmod>``), ``<news:language>``, ``<news:keywords>`` (tags) and
``<image:image>/<image:loc>``. An entry without a news title is a *page*:
its URL and ``<lastmod>``, for the pipeline to fetch when it is new or
changed. A ``<sitemapindex>`` lists child sitemaps, with their lastmod.

Parsing is incremental (lxml ``iterparse``) with entities, DTDs and network
access off, so a 50,000-URL sitemap stays small in memory and an XML bomb
does nothing. A document that stops being well-formed keeps the entries
before the error; the error is reported with its line and column. The bytes
are decoded first as every text input is (a stray byte in a UTF-8 sitemap is
replaced and located, not an XML error that ends the reading).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from lxml import etree  # type: ignore[import-untyped]

from recommender.ingest.documents import Document, IngestLimits, Problem, utf8_document
from recommender.ingest.matching import canonical_url
from recommender.ingest.records import SiteContext, finish_articles, parse_dates
from recommender.schema import LoadResult

_IMAGE_NS = "http://www.google.com/schemas/sitemap-image/1.1"


@dataclass(frozen=True)
class SitemapLink:
    """A URL a sitemap lists without an article's metadata: a page or a child sitemap.

    ``lastmod``: when the sitemap says it last changed (UTC; ``NaT`` unknown).
    ``row``: the entry's position in the sitemap.
    """

    url: str
    lastmod: pd.Timestamp
    row: int


@dataclass
class Sitemap:
    """What one sitemap document lists."""

    articles: LoadResult
    pages: list[SitemapLink] = field(default_factory=list)
    sitemaps: list[SitemapLink] = field(default_factory=list)


def _local(tag: object) -> tuple[str, str]:
    """(namespace, local name) of an element tag; ('', '') for comments and the like."""
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _entry(element: Any) -> dict[str, str | None]:
    """The fields of one ``<url>`` or ``<sitemap>`` element, in one pass over it.

    Names are matched without their namespace (sitemaps written without one
    are common), except the image extension's, whose ``<loc>`` is the image.
    """
    found: dict[str, str] = {}
    for node in element.iter():
        namespace, name = _local(node.tag)
        key = f"image_{name}" if namespace == _IMAGE_NS else name
        text = node.text.strip() if node.text else ""
        if text and key not in found:
            found[key] = text
    return {
        "loc": found.get("loc"),
        "lastmod": found.get("lastmod"),
        "title": found.get("title"),
        "published_at": found.get("publication_date"),
        "language": found.get("language"),
        "keywords": found.get("keywords"),
        "image": found.get("image_loc"),
    }


def _links(entries: list[tuple[str, str | None, int]]) -> list[SitemapLink]:
    """(url, lastmod text, row) triples as links, the dates parsed in one go."""
    lastmods, _ = parse_dates(pd.Series([lastmod for _, lastmod, _ in entries], dtype="string"))
    return [
        SitemapLink(url, lastmod, row)
        for (url, _, row), lastmod in zip(entries, lastmods, strict=True)
    ]


def read_sitemap(
    document: Document,
    site: SiteContext,
    *,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> Sitemap:
    """The articles, pages and child sitemaps of one sitemap (see module docs);
    ``row`` is the entry's position."""
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    source = document.source
    document, repaired = utf8_document(document, markup="xml")
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    problems: list[Problem] = [repaired] if repaired else []
    pages: list[tuple[str, str | None, int]] = []
    children: list[tuple[str, str | None, int]] = []
    root = ""
    row = 0
    parser = etree.iterparse(
        io.BytesIO(document.content),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        for event, element in parser:
            _, name = _local(element.tag)
            if event == "start":
                if not root:
                    root = name
                    if root not in ("urlset", "sitemapindex"):
                        problems.append(
                            Problem(
                                source,
                                0,
                                "(document)",
                                "",
                                f"not a sitemap: root element <{root}>, "
                                "expected <urlset> or <sitemapindex>",
                            )
                        )
                        break
                continue
            if name not in ("url", "sitemap") or element.getparent() is None:
                continue
            row += 1
            entry = _entry(element)
            # Drop what has been read, so memory stays flat over 50,000 entries.
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
            loc = entry["loc"]
            url = canonical_url(loc, document.url) if loc else None
            if not url or not url.startswith(("http://", "https://")):
                reason = "missing <loc>" if not loc else "bad URL: expected an absolute http(s) URL"
                problems.append(Problem(source, row, "url", loc or "", reason))
                continue
            link = (url, entry["lastmod"], row)
            if name == "sitemap":
                children.append(link)
            elif entry["title"]:
                records.append(
                    {
                        "url": url,
                        "title": entry["title"],
                        "published_at": entry["published_at"] or entry["lastmod"],
                        "modified_at": entry["lastmod"],
                        "language": entry["language"],
                        "tags": [k for k in (entry["keywords"] or "").split(",") if k.strip()],
                        "image_url": entry["image"],
                    }
                )
                rows.append(row)
            else:
                pages.append(link)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        problems.append(
            Problem(
                source,
                0,
                "(document)",
                "",
                f"malformed XML at line {line}, column {column}: {error.msg}; "
                f"the {row} entries before it were kept",
            )
        )
    return Sitemap(
        finish_articles(
            records,
            rows,
            source=source,
            site=site,
            limits=limits,
            now=now,
            base_url=document.url,
            problems=problems,
        ),
        _links(pages),
        _links(children),
    )
