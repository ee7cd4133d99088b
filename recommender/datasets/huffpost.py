"""The HuffPost News Category data set (Misra, 2022) as an Article frame.

The file is JSON Lines with ``link, headline, category, short_description,
authors, date`` (``YYYY-MM-DD``). HuffPost is one site; to make a *network*
out of it, each article is put on one of ``n_sites`` pseudo-sites by a hash
of its link (``hp0`` .. ``hp{n-1}``: CRC-32 of the UTF-8 link modulo
``n_sites``). The rule is deterministic and knows nothing of the category, so
a cross-site neighbour shares its article's category no more often by
construction than any other article: what the text features find is all
there is.

Columns: ``article_id`` = ``hp-`` + the first 12 hex digits of the SHA-1 of
the link (the file has duplicate links: the first row wins and the others
are reported as duplicates), ``title`` = headline, ``body`` =
short_description, ``category`` as given, ``published_at`` = the date at
00:00 UTC, ``language`` = ``en``. Authors are not used.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import pandas as pd

from recommender.errors import SchemaError
from recommender.schema import LoadResult, validate_articles

HUFFPOST_FIELDS = ("link", "headline", "category", "short_description", "authors", "date")


def huffpost_site(link: str, n_sites: int) -> str:
    """Pseudo-site of one article: ``hp{crc32(link) % n_sites}``."""
    return f"hp{zlib.crc32(link.encode('utf-8')) % n_sites}"


def read_huffpost(path: str | Path, *, n_sites: int = 4) -> LoadResult:
    """Read the HuffPost JSONL file into a validated Article frame.

    ``n_sites`` (>= 2): number of pseudo-sites (see the module docs). Lines
    that are not JSON objects are rejected with their line number.
    """
    if n_sites < 2:
        raise ValueError(f"n_sites must be >= 2 to make a network, got {n_sites}")
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SchemaError(f"{path}: cannot read: {error}") from None
    records: list[dict[str, object]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            record = {}  # validated below: a row without id and title is rejected
        link = str(record.get("link") or "").strip()
        records.append(
            {
                "article_id": "hp-" + hashlib.sha1(link.encode("utf-8")).hexdigest()[:12]
                if link
                else None,
                "site": huffpost_site(link, n_sites) if link else None,
                "url": link or None,
                "title": record.get("headline"),
                "body": record.get("short_description"),
                "category": record.get("category"),
                "published_at": record.get("date"),
                "language": "en",
                "_file": str(path),
                "_row": number,
            }
        )
    return validate_articles(pd.DataFrame(records), source=str(path))


__all__ = ["HUFFPOST_FIELDS", "huffpost_site", "read_huffpost"]
