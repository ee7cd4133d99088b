"""Tie events to articles: by article_id, else by URL.

Analytics exports and access logs name pages by URL; URLs are compared in a
normal form (lower-case scheme and host, no query string or fragment, no
trailing slash) so ``https://Site.com/a/?utm_source=x`` finds ``https://site.com/a``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pandas as pd


def normalize_url(url: str) -> str:
    """The form in which URLs are compared (see module docs)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def match_events(events: pd.DataFrame, articles: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Fill each event's article_id from its URL where missing.

    Returns the events that belong to a known article and the number of
    events that do not (unknown id or URL). Those are not schema errors: a
    log often holds pages that are not articles.
    """
    known = set(articles["article_id"].astype(str))
    article_id = events["article_id"].astype("string")
    missing = article_id.isna() & events["url"].notna()
    if missing.any():
        by_url = pd.Series(
            articles["article_id"].astype(str).to_numpy(),
            index=articles["url"].astype(str).map(normalize_url),
        )
        by_url = by_url[~by_url.index.duplicated()]
        article_id[missing] = (
            events.loc[missing, "url"].astype(str).map(normalize_url).map(by_url).astype("string")
        )
    found = article_id.isin(known).fillna(False).astype(bool)
    matched = events.assign(article_id=article_id)[found].reset_index(drop=True)
    return matched, int((~found).sum())
