"""Loaders of public data sets into the project's Article and Event frames.

Each loader is library code with its own tests, not a notebook cell:

- :mod:`recommender.datasets.mind` — the MIND news-recommendation format
  (``news.tsv``, ``behaviors.tsv``): articles, impressions and clicks.
- :mod:`recommender.datasets.huffpost` — the HuffPost News Category JSONL.
- :mod:`recommender.datasets.livedoor` — the livedoor news corpus (one folder
  per real publisher site).
- :mod:`recommender.datasets.mixed` — a network mixing English (HuffPost) and
  Japanese (livedoor) articles, for the per-language features.
- :mod:`recommender.datasets.synthetic` — a simulated click log written in the
  MIND format, for demos, tests and benchmarks where no real log may be shipped.

Every loader returns validated frames (see :mod:`recommender.schema`) and the
site of each article by a documented, deterministic rule.
"""

from recommender.datasets.huffpost import read_huffpost
from recommender.datasets.livedoor import LIVEDOOR_SITES, read_livedoor
from recommender.datasets.mind import (
    MIND_SITE_NAMES,
    MIND_SITES,
    MindData,
    mind_events,
    mind_site,
    read_mind,
    read_mind_behaviors,
    read_mind_news,
)
from recommender.datasets.sites import network_config

__all__ = [
    "LIVEDOOR_SITES",
    "MIND_SITES",
    "MIND_SITE_NAMES",
    "MindData",
    "mind_events",
    "mind_site",
    "network_config",
    "read_huffpost",
    "read_livedoor",
    "read_mind",
    "read_mind_behaviors",
    "read_mind_news",
]
