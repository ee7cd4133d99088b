"""A network that mixes English and Japanese: real HuffPost and livedoor text.

:func:`mixed_language_sample` takes 300 HuffPost articles (75 of each of
:data:`EN_CATEGORIES`) onto two English sites and 300 livedoor articles (75
of each publisher of :data:`JA_SITES`, the publisher being the label) onto
two Japanese sites, each article put on a site by a hash of its id. The
``label`` column is the truth (``en:<category>`` or ``ja:<publisher>``),
``lang`` the language; the features get no category. Livedoor's site stamps
(``【Sports Watch】``), which name the label, are removed. Deterministic.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pandas as pd

from recommender.datasets.huffpost import read_huffpost
from recommender.datasets.livedoor import read_livedoor

EN_CATEGORIES = ["POLITICS", "ENTERTAINMENT", "SPORTS", "STYLE & BEAUTY"]
JA_SITES = ["sports-watch", "it-life-hack", "movie-enter", "dokujo-tsushin"]
_STAMP = re.compile(r"【[^】]*】")


def mixed_language_sample(
    huffpost: str | Path, livedoor: str | Path, *, row_language: bool = True, per_label: int = 75
) -> pd.DataFrame:
    """The mixed sample (see the module docs): sites ``en0``/``en1`` and
    ``ja0``/``ja1``. ``row_language``: each row names its language (else the
    column is empty, and the sites' configured language applies)."""

    def pick(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        frame = frame.sort_values("article_id")
        return frame.groupby(column, group_keys=False).sample(per_label, random_state=0)

    def hashed(ids: pd.Series, prefix: str) -> list[str]:
        return [f"{prefix}{zlib.crc32(str(a).encode()) % 2}" for a in ids]

    hp = read_huffpost(huffpost, n_sites=2).valid
    en = pick(hp[hp["category"].isin(EN_CATEGORIES)], "category")
    en = en.assign(
        label="en:" + en["category"].astype(str),
        lang="en",
        site=hashed(en["article_id"], "en"),
        language="en" if row_language else "",
    )
    ja = pick(read_livedoor(livedoor, sites=JA_SITES).valid, "site")
    ja = ja.assign(
        label="ja:" + ja["site"].astype(str),
        lang="ja",
        site=hashed(ja["article_id"], "ja"),
        language="ja" if row_language else "",
        title=ja["title"].astype(str).str.replace(_STAMP, " ", regex=True),
        body=ja["body"].astype(str).str.replace(_STAMP, " ", regex=True),
    )
    return pd.concat([en, ja], ignore_index=True).assign(category="")


__all__ = ["EN_CATEGORIES", "JA_SITES", "mixed_language_sample"]
