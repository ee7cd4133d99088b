"""Sources of articles and traffic. Every reader returns the same validated
Article or Event frame (see :mod:`recommender.schema`)."""

from recommender.ingest.tables import read_articles, read_events, read_raw

__all__ = ["read_articles", "read_events", "read_raw"]
