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
post whose fields have the wrong type is rejected with the field named. A
post nested more than :data:`~recommender.ingest.jsontext.MAX_JSON_DEPTH`
levels deep is rejected alone, with its line and column, and the other
posts of the page are kept. A lone surrogate (a ``"\\ud800"`` escape) is
replaced by U+FFFD and the post kept (``repaired``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from recommender.ingest.charsets import line_column
from recommender.ingest.documents import Document, IngestLimits, Problem, utf8_document
from recommender.ingest.htmltext import html_to_text
from recommender.ingest.jsontext import (
    MAX_JSON_DEPTH,
    array_elements,
    may_hold_surrogates,
    too_deep,
    without_surrogates,
)
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


def _too_deep(text: str, at: int) -> str:
    line, column = line_column(text, at)
    return (
        f"invalid JSON: nested more than {MAX_JSON_DEPTH} levels deep "
        f"(at line {line}, column {column})"
    )


def _posts(text: str, source: str) -> tuple[list[tuple[int, Any]], list[Problem]]:
    """The top-level array's elements one by one, (position, value), for a page
    too deep to parse whole: an element nested too deep, or not JSON, is a
    problem of its own and the others are parsed."""
    elements = array_elements(text)
    if elements is None:
        deep = too_deep(text)
        return [], [_document_problem(source, _too_deep(text, deep or 0))]
    posts: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    for row, element in enumerate(elements, start=1):
        if element.too_deep_at is not None:
            problems.append(
                Problem(source, row, "(record)", "", _too_deep(text, element.too_deep_at))
            )
            continue
        try:
            posts.append((row, json.loads(text[element.start : element.end])))
        except json.JSONDecodeError as error:
            line, column = line_column(text, element.start + error.pos)
            reason = f"invalid JSON: {error.msg} at line {line}, column {column}"
            problems.append(Problem(source, row, "(record)", "", reason))
    return posts, problems


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

    document, repaired = utf8_document(document)
    problems: list[Problem] = [repaired] if repaired else []
    text = document.content.decode("utf-8")
    data: Any = None
    try:
        data = json.loads(text)
        deep = too_deep(text, MAX_JSON_DEPTH + 1)  # the page's array is a level of its own
    except json.JSONDecodeError as error:
        reason = f"invalid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        problems.append(_document_problem(source, f"{reason} (char {error.pos})"))
        return finish([], [], problems)
    except RecursionError:
        deep = 0
    surrogates = may_hold_surrogates(text)
    if surrogates and not isinstance(data, list):
        data, _ = without_surrogates(data)  # an error object, shown in a reason
    if deep is not None:
        posts, found = _posts(text, source)
        problems += found
        n_posts = len(posts) + sum(p.row > 0 for p in found)
    elif isinstance(data, Mapping) and "code" in data:
        message = f"WordPress API error {data.get('code')!s}: {data.get('message', '')!s}"
        return finish([], [], [*problems, _document_problem(source, message)])
    elif not isinstance(data, list):
        reason = "expected a JSON array of posts (/wp/v2/posts)"
        return finish([], [], [*problems, _document_problem(source, reason)])
    else:
        posts = list(enumerate(data, start=1))
        n_posts = len(posts)

    if surrogates:
        cleaned = [(row, *without_surrogates(post)) for row, post in posts]
        posts = [(row, post) for row, post, _ in cleaned]
        problems += [
            Problem(
                source, row, "(record)", "", f"{n} lone surrogate(s) replaced by U+FFFD", "repaired"
            )
            for row, _, n in cleaned
            if n
        ]

    records: list[dict[str, Any]] = []
    rows: list[int] = []
    ids_only = 0
    for row, post in posts:
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
    return finish(records, rows, problems, unparsed=n_posts - len(records))
