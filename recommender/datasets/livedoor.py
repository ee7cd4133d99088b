"""The livedoor news corpus (RONDHUIT, ldcc-20140209) as an Article frame.

The corpus has one folder per real publisher site syndicated on livedoor news
(``sports-watch``, ``it-life-hack``, ...). Each article is one UTF-8 file:
line 1 the URL, line 2 the date (ISO 8601 with ``+0900``), line 3 the title,
then the body. Each folder also holds a ``LICENSE.txt``, which is skipped.

Columns: ``article_id`` = the file name without ``.txt``
(``sports-watch-4597641``), ``site`` = the folder name, ``url``, ``title``,
``body`` (lines 4 on, joined by newlines), ``published_at`` (converted to
UTC), ``category`` empty (the site is the label), ``language`` = ``ja``.

The texts are Japanese, written without spaces between words: use
character n-grams (``analyzer="char_wb"``, ``ngram_range=(2, 3)``) or a
Japanese tokenizer for features. The corpus is licensed CC BY-ND 2.1 JP per
article: read it in place, never ship a modified copy.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recommender.errors import SchemaError
from recommender.schema import LoadResult, validate_articles

#: Folder (site key) -> the site's display name, from the corpus README.
LIVEDOOR_SITES: dict[str, str] = {
    "topic-news": "トピックニュース",
    "sports-watch": "Sports Watch",
    "it-life-hack": "ITライフハック",
    "kaden-channel": "家電チャンネル",
    "movie-enter": "MOVIE ENTER",
    "dokujo-tsushin": "独女通信",
    "smax": "エスマックス",
    "livedoor-homme": "livedoor HOMME",
    "peachy": "Peachy",
}


def read_livedoor(folder: str | Path, *, sites: list[str] | None = None) -> LoadResult:
    """Read every article of the corpus folder (or of the given ``sites``).

    Sites are the sub-folders that hold article files; files whose first
    three lines are missing are rejected with their path.
    """
    root = Path(folder)
    if not root.is_dir():
        raise SchemaError(f"{root}: not a folder (expected the livedoor corpus, one folder a site)")
    chosen = sorted(p for p in root.iterdir() if p.is_dir() and (sites is None or p.name in sites))
    if not chosen:
        raise SchemaError(f"{root}: no site folders found")
    records: list[dict[str, object]] = []
    for site_dir in chosen:
        for path in sorted(site_dir.glob("*.txt")):
            if path.name == "LICENSE.txt":
                continue
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as error:
                raise SchemaError(f"{path}: cannot read: {error}") from None
            lines += [""] * max(0, 3 - len(lines))
            records.append(
                {
                    "article_id": path.stem,
                    "site": site_dir.name,
                    "url": lines[0].strip() or None,
                    "published_at": lines[1].strip() or None,
                    "title": lines[2].strip() or None,
                    "body": "\n".join(line.strip() for line in lines[3:]).strip(),
                    "language": "ja",
                    "_file": str(path),
                    "_row": 1,
                }
            )
    return validate_articles(pd.DataFrame(records), source=str(root))


__all__ = ["LIVEDOOR_SITES", "read_livedoor"]
