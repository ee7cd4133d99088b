"""The plain-text form of an article page, as a browser's "save as text" or a
text-mode scrape gives it (``../shared/seed-page.txt`` is one).

The form, line by line (blank lines are ignored)::

    <page chrome: newsletter, login...>
    politics                                  section
    Blinken, Austin to visit Japan from ...   title
    0 Comments                                comment count: marks the title
    TOKYO                                     dateline (optional, upper case)
    <body paragraphs>
    © Thomson Reuters 2021.                   the first "©" line ends the body
    <page chrome>
    A mix of what's trending on our other sites
    Families                                  an item: category label (optional),
    Five Of Our Favorite Japanese Baby ...    title,
    Savvy Tokyo                               site display name
    ...

The page gives neither the article's URL nor its date: the caller passes
them (``url``, ``published_at``), else the article is rejected saying so.
The block's items are returned apart: each is the lines up to a line that
is a site's display name (from the config); one line before it is a title,
two are a category label and a title.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from recommender.ingest.documents import Document, IngestLimits, Problem, decode_text
from recommender.ingest.records import SiteContext, finish_articles
from recommender.lists import HEADING
from recommender.schema import LoadResult

BLOCK_HEADING = HEADING
BLOCK_COLUMNS = ["position", "category", "title", "site_name", "site", "line"]

_COMMENTS = re.compile(r"^(\d[\d,]*|no)\s+comments?$", re.IGNORECASE)
_MAX_DATELINE = 40


def _fold(line: str) -> str:
    """A line as compared: apostrophes straightened, spaces collapsed, case folded."""
    return " ".join(line.replace("’", "'").replace("‘", "'").split()).casefold()


@dataclass
class TextPage:
    """The article of a text page and the items of its block.

    ``block``: one row per item, columns ``position`` (1-based), ``category``
    (the partner's label, '' when the item shows none), ``title``,
    ``site_name`` (as shown), ``site`` (its registry key) and ``line`` (of the
    title in the text). Problems of both parts are in ``article.problems``.
    """

    article: LoadResult
    block: pd.DataFrame


def _block(
    lines: list[tuple[int, str]], site_names: Mapping[str, str], source: str
) -> tuple[pd.DataFrame, list[Problem]]:
    names = {_fold(name): (name, key) for name, key in site_names.items()}
    items: list[tuple[int, str, str, str, str, int]] = []
    problems: list[Problem] = []
    pending: list[tuple[int, str]] = []
    for number, line in lines:
        if _fold(line) not in names:
            pending.append((number, line))
            continue
        name, key = names[_fold(line)]
        if len(pending) in (1, 2):
            category = pending[0][1] if len(pending) == 2 else ""
            title_line, title = pending[-1]
            items.append((len(items) + 1, category, title, name, key, title_line))
        else:
            where = pending[0][0] if pending else number
            found = "none" if not pending else f"{len(pending)} lines"
            problems.append(
                Problem(
                    source,
                    where,
                    "(block item)",
                    " / ".join(text for _, text in pending)[:200],
                    f"expected a title, optionally after a category label, before the site "
                    f"name {name!r} at line {number}; found {found}",
                )
            )
        pending = []
    if pending:
        problems.append(
            Problem(
                source,
                pending[0][0],
                "(block item)",
                " / ".join(text for _, text in pending)[:200],
                "lines after the last item end with no site name from the config",
            )
        )
    return pd.DataFrame(items, columns=BLOCK_COLUMNS), problems


def _article(
    lines: list[tuple[int, str]],
    source: str,
    url: str | None,
    published_at: str | None,
) -> tuple[dict[str, object] | None, int, list[Problem]]:
    """The article record, the line of its title, and what is missing."""
    marker = next((i for i, (_, line) in enumerate(lines) if _COMMENTS.match(line)), None)
    if marker is None or marker == 0:
        reason = (
            "no comment-count line (such as '0 Comments') after a title: not the text page form"
        )
        return None, 0, [Problem(source, 0, "(document)", "", reason)]
    title_line, title = lines[marker - 1]
    section = lines[marker - 2][1] if marker >= 2 else ""
    body_lines = lines[marker + 1 :]
    if body_lines and body_lines[0][1].isupper() and len(body_lines[0][1]) <= _MAX_DATELINE:
        body_lines = body_lines[1:]
    paragraphs = []
    for _, line in body_lines:
        if line.startswith("©"):
            break
        paragraphs.append(line)
    problems = []
    if not url:
        problems.append(
            Problem(
                source,
                title_line,
                "url",
                "",
                "missing: the text page form carries no URL; give the page's URL",
            )
        )
    if not published_at:
        problems.append(
            Problem(
                source,
                title_line,
                "published_at",
                "",
                "missing: the text page form carries no date; give the publication date",
            )
        )
    record: dict[str, object] = {
        "url": url,
        "title": title,
        "body": "\n\n".join(paragraphs),
        "categories": [section] if len(section) <= _MAX_DATELINE else [],
        "published_at": published_at,
    }
    return (None if problems else record), title_line, problems


def read_text_page(
    document: Document,
    site: SiteContext,
    *,
    site_names: Mapping[str, str],
    url: str | None = None,
    published_at: str | None = None,
    limits: IngestLimits | None = None,
    now: pd.Timestamp | None = None,
) -> TextPage:
    """The article and the block of a text page (see module docs).

    ``site_names``: display name → site key of every site in the network,
    which is how block items are told apart. ``row`` in problems is the line.
    """
    limits = limits or IngestLimits()
    now = now or pd.Timestamp.now(tz="UTC")
    text, note = decode_text(document.content, document.charset)
    problems = [Problem(document.source, 0, "(document)", "", note, "repaired")] if note else []
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    heading = next(
        (i for i, (_, line) in enumerate(lines) if _fold(line) == _fold(BLOCK_HEADING)), None
    )
    page_lines = lines if heading is None else lines[:heading]
    block, block_problems = (
        _block(lines[heading + 1 :], site_names, document.source)
        if heading is not None
        else (pd.DataFrame(columns=BLOCK_COLUMNS), [])
    )
    record, title_line, article_problems = _article(page_lines, document.source, url, published_at)
    article = finish_articles(
        [record] if record else [],
        [title_line] if record else [],
        source=document.source,
        site=site,
        limits=limits,
        now=now,
        problems=[*problems, *article_problems, *block_problems],
        n_unparsed=0 if record else 1,
    )
    return TextPage(article, block)
