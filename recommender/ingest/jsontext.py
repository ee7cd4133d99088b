"""JSON text under bad input: records nested too deep, and lone surrogates.

**Depth.** Python's parser recurses once per level and gives up
(``RecursionError``) somewhere under a thousand levels, for the whole
document. Nothing a publisher exports nests more than a few dozen levels, so
a record nested deeper than :data:`MAX_JSON_DEPTH` is rejected, named by its
position, before it is parsed; it is found without recursion, so that one
deep record is rejected alone and the others are kept. A record's own object
or array is level 1.

**Surrogates.** A ``"\\ud800"`` escape decodes to a lone surrogate, which no
UTF-8 (hence no Arrow string, Parquet file or database) can hold:
:func:`without_surrogates` replaces them by U+FFFD, for the reader to report.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

#: Deepest nesting a record may have (its own object or array is level 1).
MAX_JSON_DEPTH = 256

# A string (skipped whole: brackets inside it do not count) or a structural character.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


class Element(NamedTuple):
    """One element of a JSON array: ``text[start:end]``; ``too_deep_at``: where
    its nesting first goes past the limit, or None."""

    start: int
    end: int
    too_deep_at: int | None


def too_deep(text: str, limit: int = MAX_JSON_DEPTH, start: int = 0) -> int | None:
    """Where the nesting of the JSON value in ``text[start:]`` first goes past
    ``limit`` levels, or None. Fast when the text has few brackets at all."""
    if text.count("[", start) + text.count("{", start) <= limit:
        return None
    depth = 0
    for token in _TOKEN.finditer(text, start):
        char = text[token.start()]
        if char in "[{":
            depth += 1
            if depth > limit:
                return token.start()
        elif char in "]}":
            depth -= 1
    return None


def array_elements(text: str, limit: int = MAX_JSON_DEPTH) -> list[Element] | None:
    """The elements of the top-level JSON array in ``text``, each with its
    nesting checked against ``limit``; None when the text is not an array.

    The split follows the brackets and strings only; whether each element is
    valid JSON is for the parser to say. An array cut short ends at the text's end.
    """
    begin = len(text) - len(text.lstrip())
    if not text.startswith("[", begin):
        return None
    elements: list[Element] = []
    depth = 0
    element_start = begin + 1
    deep_at: int | None = None

    def close(end: int) -> None:
        if text[element_start:end].strip():
            elements.append(Element(element_start, end, deep_at))

    for token in _TOKEN.finditer(text, begin):
        at = token.start()
        char = text[at]
        if char in "[{":
            depth += 1
            if depth - 1 > limit and deep_at is None:
                deep_at = at
        elif char in "]}":
            depth -= 1
            if depth == 0:
                close(at)
                return elements
        elif char == "," and depth == 1:
            close(at)
            element_start, deep_at = at + 1, None
    close(len(text))
    return elements


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def may_hold_surrogates(text: str) -> bool:
    """Whether JSON ``text`` has a surrogate escape (a pair or a lone one): only
    then can its values hold a lone surrogate."""
    return _SURROGATE_ESCAPE.search(text) is not None


def without_surrogates(value: Any) -> tuple[Any, int]:
    """A parsed JSON value with every lone surrogate in its strings (keys too)
    replaced by U+FFFD, and how many there were."""
    if isinstance(value, str):
        return _SURROGATE.subn("\ufffd", value)
    if isinstance(value, list):
        items = [without_surrogates(item) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    if isinstance(value, dict):
        found = 0
        cleaned = {}
        for key, item in value.items():
            key, n_key = without_surrogates(key)
            item, n_item = without_surrogates(item)
            cleaned[key] = item
            found += n_key + n_item
        return cleaned, found
    return value, 0
