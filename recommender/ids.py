"""What an id may be: one rule for every boundary (HTTP, ``Recommendations.get``,
the batch's input, the event collector).

An id is free text in the Article and Event contracts, but it travels through
URLs, SQL parameters, CSV spools and log lines. A NUL byte makes PostgreSQL
raise; other control characters, line and paragraph separators and lone
surrogates corrupt logs and spreadsheets or cannot be encoded at all. So an id
is a ``str`` of 1 to :data:`MAX_ID_LENGTH` characters with none of:

- the C0 controls U+0000-U+001F and DEL U+007F,
- the C1 controls U+0080-U+009F (U+0085 is a line break to many readers),
- U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR,
- surrogates U+D800-U+DFFF (not encodable as UTF-8),
- leading or trailing whitespace.

Standard library only: the serving path imports it.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 256

# The characters no id may hold (see the module docstring).
FORBIDDEN_ID_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
_FORBIDDEN = re.compile(f"[{FORBIDDEN_ID_CHARACTERS}]")


def id_problem(value: object, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why ``value`` is not a valid id, or ``None`` when it is one."""
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__}"
    if not value:
        return "empty"
    if len(value) > max_length:
        return f"longer than {max_length} characters ({len(value)})"
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        return f"control or separator character U+{ord(bad.group()):04X} at position {bad.start()}"
    if value != value.strip():
        return "leading or trailing whitespace"
    return None


def is_valid_id(value: object, max_length: int = MAX_ID_LENGTH) -> bool:
    """True when ``value`` may be used as an article, site or event id."""
    return id_problem(value, max_length) is None
