"""HTML article pages: metadata from the usual places, body text by trafilatura.

Each field is taken from the first place that has it:

- title: JSON-LD ``headline``, ``og:title``, ``twitter:title``, ``<title>``;
- URL: ``<link rel="canonical">``, ``og:url``, JSON-LD ``url``, the fetched URL
  (a canonical URL on another host than the page's is ignored: a syndicated
  copy belongs to the site that serves it);
- category: JSON-LD ``articleSection``, ``article:section``, the ``section``,
  ``parsely-section`` and ``category`` meta tags; tags from
  ``article:tag``, JSON-LD ``keywords``, ``news_keywords`` and ``keywords``;
- publication date: JSON-LD ``datePublished``, ``article:published_time``,
  the ``pubdate``/``date``/``dc.date`` meta tags, else htmldate's guess
  (through trafilatura) from the page's text and URL;
- image: ``og:image``, JSON-LD ``image``, ``twitter:image``;
- language: JSON-LD ``inLanguage``, ``og:locale``, ``<html lang>``;
- body: JSON-LD ``articleBody``, else trafilatura's main-text extraction
  (navigation, comments and boilerplate left out).

JSON-LD is read from every ``<script type="application/ld+json">`` block,
including ``@graph`` lists; the first object typed as an article
(``NewsArticle``, ``Article``, ``BlogPosting``, ...) wins. A block that is not
valid JSON is reported (``cleared``) with its line and the others are used.
The page's bytes are decoded as every text input is
(:mod:`recommender.ingest.charsets`): a byte-order mark, UTF-8, the HTTP
charset or the page's ``<meta charset>``, UTF-8 with a few bad bytes replaced
and located, or else detected (``repaired``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import pandas as pd
import trafilatura
from lxml import etree, html  # type: ignore[import-untyped]

from recommender.ingest.charsets import decode
from recommender.ingest.documents import Document, IngestLimits, Problem
from recommender.ingest.htmltext import html_to_text
from recommender.ingest.jsontext import may_hold_surrogates, without_surrogates
from recommender.ingest.records import SiteContext, finish_articles
from recommender.schema import LoadResult

_ARTICLE_TYPES = frozenset(
    {
        "Article",
        "NewsArticle",
        "ReportageNewsArticle",
        "AnalysisNewsArticle",
        "OpinionNewsArticle",
        "BackgroundNewsArticle",
        "BlogPosting",
        "TechArticle",
        "Report",
        "LiveBlogPosting",
    }
)
_SECTION_META = ("section", "parsely-section", "category", "article:section")
_DATE_META = (
    "pubdate",
    "publishdate",
    "publish-date",
    "date",
    "dc.date",
    "dc.date.issued",
    "parsely-pub-date",
    "sailthru.date",
    "article.published",
)


def _decode(document: Document) -> tuple[bytes, Problem | None]:
    """The page as UTF-8 bytes, decoded from its declared or detected charset."""
    decoded = decode(document.content, document.charset, markup="html")
    problem = None
    if decoded.note:
        problem = Problem(document.source, 0, "(document)", "", decoded.note, "repaired")
    return decoded.text.encode("utf-8"), problem


def _walk_jsonld(node: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_jsonld(item)
    elif isinstance(node, Mapping):
        yield node
        if "@graph" in node:
            yield from _walk_jsonld(node["@graph"])


def _is_article(node: Mapping[str, Any]) -> bool:
    kinds = node.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(k, str) and k.rsplit("/", 1)[-1] in _ARTICLE_TYPES for k in kinds)


def _first_text(value: object) -> str | None:
    """A JSON-LD value as text: strings as they are, the first of a list, an
    object's ``url``, ``@id`` or ``name``."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        for item in value:
            text = _first_text(item)
            if text:
                return text
        return None
    if isinstance(value, Mapping):
        for key in ("url", "@id", "contentUrl", "name"):
            if isinstance(value.get(key), str):
                return str(value[key]).strip() or None
    return None


def _all_texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [t for item in value for t in _all_texts(item)]
    text = _first_text(value)
    return [text] if text else []


class _Page:
    """The parsed page and its metadata, looked up by name."""

    def __init__(self, document: Document, content: bytes, problems: list[Problem]) -> None:
        self.document = document
        parser = html.HTMLParser(encoding="utf-8", remove_comments=True)
        self.tree = html.document_fromstring(content, parser=parser)
        self.meta: dict[str, list[str]] = {}
        for node in self.tree.iter("meta"):
            key = (node.get("property") or node.get("name") or node.get("itemprop") or "").strip()
            value = node.get("content")
            if key and value and value.strip():
                self.meta.setdefault(key.lower(), []).append(value.strip())
        self.article: Mapping[str, Any] = {}
        for script in self.tree.xpath('//script[@type="application/ld+json"]'):
            try:
                data = json.loads(script.text or "")
            except (json.JSONDecodeError, RecursionError) as error:
                message = error.msg if isinstance(error, json.JSONDecodeError) else "too deep"
                problems.append(
                    Problem(
                        document.source,
                        1,
                        "(json-ld)",
                        (script.text or "")[:80],
                        f"invalid JSON-LD block at line {script.sourceline}: {message}; ignored",
                        "cleared",
                    )
                )
                continue
            if may_hold_surrogates(script.text or ""):
                data, _ = without_surrogates(data)
            found = next((n for n in _walk_jsonld(data) if _is_article(n)), None)
            if found is not None and not self.article:
                self.article = found

    def first_meta(self, *names: str) -> str | None:
        for name in names:
            values = self.meta.get(name)
            if values:
                return values[0]
        return None

    def xpath_text(self, query: str) -> str | None:
        value = self.tree.xpath(f"string(({query})[1])")
        return value.strip() or None

    def url(self) -> str | None:
        page_url = self.document.url
        for candidate in (
            self.xpath_text('//link[@rel="canonical"]/@href'),
            self.first_meta("og:url"),
            _first_text(self.article.get("url"))
            or _first_text(self.article.get("mainEntityOfPage")),
        ):
            if not candidate:
                continue
            absolute = urljoin(page_url or "", candidate)
            if page_url is None or urlsplit(absolute).hostname == urlsplit(page_url).hostname:
                return absolute
        return page_url

    def title(self) -> str | None:
        return (
            _first_text(self.article.get("headline"))
            or self.first_meta("og:title", "twitter:title", "title")
            or self.xpath_text("//title")
            or self.xpath_text("//h1")
        )

    def labels(self) -> tuple[list[str], list[str]]:
        sections = _all_texts(self.article.get("articleSection"))
        for name in _SECTION_META:
            sections += self.meta.get(name, [])
        tags = list(self.meta.get("article:tag", []))
        tags += _all_texts(self.article.get("keywords"))
        for name in ("news_keywords", "keywords"):
            for value in self.meta.get(name, []):
                tags += [t.strip() for t in value.split(",") if t.strip()]
        return sections, tags

    def published(self) -> str | None:
        return (
            _first_text(self.article.get("datePublished"))
            or self.first_meta("article:published_time", "og:published_time", *_DATE_META)
            or self.xpath_text("//time[@pubdate]/@datetime")
        )

    def modified(self) -> str | None:
        return _first_text(self.article.get("dateModified")) or self.first_meta(
            "article:modified_time", "og:updated_time"
        )

    def image(self) -> str | None:
        return (
            self.first_meta("og:image", "og:image:url", "og:image:secure_url")
            or _first_text(self.article.get("image"))
            or self.first_meta("twitter:image", "twitter:image:src")
        )

    def language(self) -> str | None:
        return (
            _first_text(self.article.get("inLanguage"))
            or self.first_meta("og:locale")
            or self.xpath_text("/html/@lang")
        )

    def body(self, content: bytes) -> str:
        text = self.article.get("articleBody")
        if isinstance(text, str) and text.strip():
            return html_to_text(text)
        extracted = trafilatura.extract(
            content.decode("utf-8"),
            url=self.document.url,
            include_comments=False,
            include_tables=False,
            favor_precision=True,
            deduplicate=False,
        )
        return extracted or ""

    def guessed_date(self, content: bytes) -> str | None:
        metadata = trafilatura.extract_metadata(
            content.decode("utf-8"), default_url=self.document.url
        )
        return metadata.date if metadata is not None and metadata.date else None


def read_page(
    document: Document,
    site: SiteContext,
    *,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> LoadResult:
    """The article of one HTML page (see module docs); its ``row`` is 1."""
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    problems: list[Problem] = []
    content, repaired = _decode(document)
    if repaired is not None:
        problems.append(repaired)

    def finish(records: list[dict[str, Any]]) -> LoadResult:
        return finish_articles(
            records,
            [1] * len(records),
            source=document.source,
            site=site,
            limits=limits,
            now=now,
            base_url=document.url,
            problems=problems,
            n_unparsed=1 - len(records),
        )

    try:
        page = _Page(document, content, problems)
    except (etree.ParserError, ValueError) as error:
        problems.append(Problem(document.source, 1, "(document)", "", f"not an HTML page: {error}"))
        return finish([])
    sections, tags = page.labels()
    record = {
        "url": page.url(),
        "title": html_to_text(page.title() or ""),
        "body": page.body(content),
        "categories": sections,
        "tags": tags,
        "published_at": page.published() or page.guessed_date(content),
        "modified_at": page.modified(),
        "image_url": page.image(),
        "language": page.language(),
    }
    return finish([record])
