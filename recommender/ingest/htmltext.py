"""HTML fragments (feed descriptions, WordPress ``rendered`` fields) reduced to plain text.

html-text (lxml underneath) drops scripts, styles and comments, decodes
entities and puts a line break between block elements, so paragraphs stay
apart and words do not run together.
"""

from __future__ import annotations

import contextlib
import re

import html_text
from lxml import etree  # type: ignore[import-untyped]

_MARKUP = re.compile(r"[<&]")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: Fragments longer than this many characters are not parsed (see html_to_text).
MAX_FRAGMENT_CHARS = 8_000_000


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment; text without markup is returned with its
    spaces normalised. Paragraphs are separated by one blank line; control
    characters are dropped. A fragment longer than ``MAX_FRAGMENT_CHARS`` is
    returned as it is, unparsed, so that the caller's field limit rejects it
    without spending seconds on it."""
    if not fragment or not fragment.strip():
        return ""
    if len(fragment) > MAX_FRAGMENT_CHARS:
        return fragment
    fragment = _CONTROLS.sub("", fragment)
    if _MARKUP.search(fragment):
        # Not parsable as HTML at all: keep the characters as they are.
        with contextlib.suppress(etree.ParserError, ValueError):
            fragment = html_text.extract_text(fragment, guess_layout=True)
    lines = (_SPACES.sub(" ", line).strip() for line in fragment.replace("\r\n", "\n").split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
