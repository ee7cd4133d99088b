"""Tie events to articles: by article_id, else by URL.

Analytics exports and access logs name pages by URL; URLs are compared in a
normal form (lower-case scheme and host, no query string or fragment, no
trailing slash) so ``https://Site.com/a/?utm_source=x`` finds ``https://site.com/a``.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

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


# Query parameters that only say where a visitor came from: dropped from the
# canonical form, so ``?utm_source=rss`` does not make a second article.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    name = name.lower()
    return name.startswith("utm_") or name in _TRACKING_PARAMS


def canonical_url(url: str, base: str | None = None) -> str:
    """The form in which an article's URL is stored.

    ``url`` is resolved against ``base`` when relative; scheme and host are
    lower-cased, a default port and the fragment are dropped, tracking
    parameters (``utm_*``, ``fbclid``, ...) are removed and the remaining
    query parameters keep their order. The path is kept as published (a
    trailing slash may matter to the server). A value that is not an http(s)
    URL is returned stripped, for validation to reject.
    """
    url = url.strip()
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return url
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def url_key(url: str) -> str:
    """The identity of an article's URL: its :func:`canonical_url` without a
    trailing slash and with the query parameters sorted, so that
    ``https://site.com/a/`` and ``https://site.com/a`` are one article while
    ``/?p=1`` and ``/?p=2`` (WordPress's plain permalinks) stay two."""
    parts = urlsplit(canonical_url(url))
    path = parts.path.rstrip("/") or "/"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def article_ids_for_urls(urls: pd.Series, articles: pd.DataFrame) -> pd.Series:
    """The article id of each URL, ``<NA>`` where no article has it.

    A URL matches an article with the same :func:`url_key` (query strings
    that identify a page, such as ``?p=123``, kept), else one with the same
    :func:`normalize_url` (every query string ignored).
    """
    ids = articles["article_id"].astype(str).to_numpy()
    known = articles["url"].astype(str)
    by_key = pd.Series(ids, index=known.map(url_key))
    by_normal = pd.Series(ids, index=known.map(normalize_url))
    by_key = by_key[~by_key.index.duplicated()]
    by_normal = by_normal[~by_normal.index.duplicated()]
    text = urls.astype("string")
    present = text.notna()
    found = pd.Series(pd.NA, index=urls.index, dtype="string")
    if not present.any():
        return found
    values = text[present].astype(str)
    unique = pd.Series(values.unique())
    exact = unique.map(_safe(url_key)).map(by_key)
    loose = unique.map(_safe(normalize_url)).map(by_normal)
    mapping = pd.Series(exact.fillna(loose).to_numpy(), index=unique.to_numpy())
    found[present] = values.map(mapping).astype("string")
    return found


def _safe(normal: Callable[[str], str]) -> Callable[[str], str]:
    """``normal`` with unparsable URLs (a bad port, a broken IPv6 host) mapped to ''."""

    def apply(url: str) -> str:
        try:
            return normal(url)
        except ValueError:
            return ""

    return apply
