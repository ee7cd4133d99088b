"""The events spool's file format, shared by its writer (``recommender.web``)
and the batch's reader (``recommender.ingest``). Standard library only.

The spool is CSV with the Event contract's columns (:data:`SPOOL_COLUMNS`).
It is also opened in spreadsheets, which run a cell starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return as a formula: such a cell is
written with one leading ``'`` (the usual neutralisation, which spreadsheets
show as text), and so is a cell that itself starts with ``'``, so that
:func:`unescape_cell` gives back exactly what was accepted.
"""

from __future__ import annotations

#: Columns of the spool files, in order (the Event contract's).
SPOOL_COLUMNS = (
    "ts",
    "kind",
    "article_id",
    "source_article_id",
    "placement",
    "session",
    "run_id",
    "variant",
    "position",
    "propensity",
)
#: The columns of spool files written before ``run_id``, ``variant``,
#: ``position`` and ``propensity`` were logged (still read: those are missing).
LEGACY_SPOOL_COLUMNS = SPOOL_COLUMNS[:6]

#: What a ``variant`` may be (and a placement, in the widget's events): a token
#: of 1 to 64 letters, digits or ``_ . : -``.
TOKEN_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: The highest slot an event's ``position`` may name (1 = the first; a block
#: holds far fewer).
MAX_POSITION = 10_000

#: A spool cell starting with one of these is a formula to a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: What neutralises such a cell, at its start.
_ESCAPE = "'"


def escape_cell(value: str) -> str:
    """``value`` as written to the spool: with a leading ``'`` when it starts
    a formula (or with ``'`` itself, so that the escape can be undone)."""
    if value.startswith((*FORMULA_PREFIXES, _ESCAPE)):
        return _ESCAPE + value
    return value


def unescape_cell(value: str) -> str:
    """A spool cell's value as it was accepted (undoes :func:`escape_cell`:
    exactly one leading ``'`` before a formula character or another ``'``)."""
    if value.startswith(_ESCAPE) and value[1:].startswith((*FORMULA_PREFIXES, _ESCAPE)):
        return value[1:]
    return value


def is_spool_header(columns: object) -> bool:
    """Whether a table with these columns is a spool file, of today's columns
    or the legacy ones (whose cells are escaped, see :func:`unescape_cell`)."""
    try:
        found = tuple(str(column) for column in columns)  # type: ignore[attr-defined]
    except TypeError:
        return False
    return found in (SPOOL_COLUMNS, LEGACY_SPOOL_COLUMNS)
