"""WordPress REST API v2 posts (``/wp-json/wp/v2/posts``), one page of them per document.

Per post: ``link``, ``title.rendered`` and ``content.rendered`` (or
``excerpt.rendered`` when the content is empty) reduced to plain text,
``date_gmt`` (UTC; ``date``, the site's local time, taken as UTC when the GMT
field is missing), ``modified_gmt``, ``status`` (``publish`` is published;
``future``, ``draft``, ``pending``, ``private`` and ``trash`` are not), and
with ``_embed``: the category and tag names (``_embedded["wp:term"]``) and the
featured image (``_embedded["wp:featuredmedia"]``). Without ``_embed`` a post
carries category *ids* only; the report says so, and the articles keep no
category. Paginated exports are several documents (files, or the pages a
fetch follows through ``Link: rel="next"``).

A document that is not JSON, or not an array of post objects (such as the
API's error object), is rejected with the position or the API's message; a
post whose fields have the wrong type is rejected with the field named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from recommender.ingest.documents import Document, IngestLimits, Problem
from recommender.ingest.htmltext import html_to_text
from recommender.ingest.records import SiteContext, finish_articles
from recommender.schema import LoadResult

_PUBLISHED = "publish"


class _PostError(ValueError):
    """A post field of the wrong type; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def _rendered(post: Mapping[str, Any], name: str) -> str:
    """``post[name]["rendered"]`` (or a plain string), as plain text."""
    value = post.get(name)
    if value is None:
        return ""
    if isinstance(value, Mapping):
        value = value.get("rendered", "")
    if not isinstance(value, str):
        raise _PostError(name, f"expected text or {{'rendered': text}}, got {type(value).__name__}")
    return html_to_text(value)


def _text(post: Mapping[str, Any], name: str) -> str | None:
    value = post.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _PostError(name, f"expected text, got {type(value).__name__}")
    return value


def _gmt(post: Mapping[str, Any], name: str) -> str | None:
    """A ``*_gmt`` field as ISO 8601 UTC (WordPress writes it without an offset)."""
    value = _text(post, name)
    return f"{value}+00:00" if value and value[-1].isdigit() and "+" not in value[10:] else value


def _terms(post: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Category and tag names from ``_embedded["wp:term"]`` (a list per taxonomy)."""
    embedded = post.get("_embedded")
    groups = embedded.get("wp:term") if isinstance(embedded, Mapping) else None
    categories: list[str] = []
    tags: list[str] = []
    for group in groups if isinstance(groups, list) else []:
        for term in group if isinstance(group, list) else []:
            if not isinstance(term, Mapping) or not isinstance(term.get("name"), str):
                continue
            taxonomy = term.get("taxonomy")
            (categories if taxonomy == "category" else tags).append(term["name"])
    return categories, tags


def _image(post: Mapping[str, Any]) -> str | None:
    embedded = post.get("_embedded")
    media = embedded.get("wp:featuredmedia") if isinstance(embedded, Mapping) else None
    for item in media if isinstance(media, list) else []:
        # An item the API may not show is an error object {"code": ...} instead.
        if isinstance(item, Mapping) and isinstance(item.get("source_url"), str):
            return str(item["source_url"])
    for name in ("jetpack_featured_media_url",):
        if isinstance(post.get(name), str) and post[name]:
            return str(post[name])
    return None


def _record(post: Mapping[str, Any]) -> dict[str, Any]:
    categories, tags = _terms(post)
    body = _rendered(post, "content") or _rendered(post, "excerpt")
    status = _text(post, "status") or _PUBLISHED
    return {
        "url": _text(post, "link"),
        "title": _rendered(post, "title"),
        "body": body,
        "categories": categories,
        "tags": tags,
        "published_at": _gmt(post, "date_gmt") or _text(post, "date"),
        "modified_at": _gmt(post, "modified_gmt") or _text(post, "modified"),
        "image_url": _image(post),
        "status": "published" if status == _PUBLISHED else "unpublished",
    }


def _document_problem(source: str, reason: str) -> Problem:
    return Problem(source, 0, "(document)", "", reason)


def read_wordpress(
    document: Document,
    site: SiteContext,
    *,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> LoadResult:
    """Articles of one page of WordPress posts (see module docs); ``row`` is the
    post's position in the page."""
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    source = document.source

    def finish(
        records: list[dict[str, Any]], rows: list[int], problems: list[Problem], unparsed: int = 0
    ) -> LoadResult:
        return finish_articles(
            records,
            rows,
            source=source,
            site=site,
            limits=limits,
            now=now,
            base_url=document.url,
            problems=problems,
            n_unparsed=unparsed,
        )

    try:
        posts = json.loads(document.content)
    except UnicodeDecodeError as error:
        return finish([], [], [_document_problem(source, f"not UTF-8 JSON: {error}")])
    except json.JSONDecodeError as error:
        reason = f"invalid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        return finish([], [], [_document_problem(source, f"{reason} (char {error.pos})")])
    except RecursionError:
        return finish([], [], [_document_problem(source, "invalid JSON: nested too deeply")])
    if isinstance(posts, Mapping) and "code" in posts:
        message = f"WordPress API error {posts.get('code')!s}: {posts.get('message', '')!s}"
        return finish([], [], [_document_problem(source, message)])
    if not isinstance(posts, list):
        return finish(
            [], [], [_document_problem(source, "expected a JSON array of posts (/wp/v2/posts)")]
        )

    records: list[dict[str, Any]] = []
    rows: list[int] = []
    problems: list[Problem] = []
    ids_only = 0
    for row, post in enumerate(posts, start=1):
        if not isinstance(post, Mapping):
            problems.append(
                Problem(source, row, "(record)", "", f"expected a post object, got {post!r:.40}")
            )
            continue
        try:
            record = _record(post)
        except _PostError as error:
            problems.append(Problem(source, row, error.field, "", f"wrong type: {error}"))
            continue
        if not record["categories"] and post.get("categories"):
            ids_only += 1
        records.append(record)
        rows.append(row)
    if ids_only:
        problems.append(
            Problem(
                source,
                0,
                "category",
                "",
                f"{ids_only} post(s) carry category ids only: request the API with "
                "_embed=1 to get category names and featured images",
                "cleared",
            )
        )
    return finish(records, rows, problems, unparsed=len(posts) - len(records))
