"""Sources of articles and traffic. Every reader returns the same validated
Article or Event frame (see :mod:`recommender.schema`).

Tidy tables (CSV, JSON Lines, Parquet) are read by :mod:`.tables`; what
publishers really have (feeds, WordPress, sitemaps, article pages, the text
page form, access logs, analytics exports) by one module each, fetched over
HTTP by :mod:`.fetch` and kept in one incremental corpus by :mod:`.corpus`;
:mod:`.pipeline` wires them for ``recommender ingest``. Those modules import
parsing libraries (feedparser, lxml, trafilatura, httpx) and are imported by
name, not from here.
"""

from recommender.ingest.tables import read_articles, read_events, read_raw

__all__ = ["read_articles", "read_events", "read_raw"]
