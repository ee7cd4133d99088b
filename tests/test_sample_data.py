"""The bundled sample network is what data/README.md says it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.config import load_config
from recommender.ingest import read_articles, read_events
from recommender.model import Recommender
from recommender.similarity import near_duplicate_groups
from recommender.simulate import TrafficParams, simulate_pageviews

DATA = Path(__file__).resolve().parents[1] / "data"
SEED_LABELS = {"Families", "Food & Drink", "Shrines & Temples", "Travel", "What's Happening"}
# The parameters data/README.md gives for the committed pageview log.
TRAFFIC = TrafficParams(
    end="2021-03-08T00:00:00Z", days=66, total_views=100_000, n_trending=5, seed=20210308
)


@pytest.fixture(scope="module")
def config():
    return load_config(DATA / "sample.toml")


@pytest.fixture(scope="module")
def articles(config):
    return read_articles(config.data.articles, sites=list(config.sites))


@pytest.fixture(scope="module")
def model(config, articles):
    events = read_events(config.data.events).valid
    return Recommender(config).fit(articles.valid, events)


def test_the_network_has_the_seed_pages_sites_and_labels(config, articles) -> None:
    valid = articles.valid
    assert len(valid) >= 240
    assert set(valid["site"]) == {"japantoday", "savvytokyo", "gaijinpot-blog", "gaijinpot-travel"}
    assert config.sites["gaijinpot-travel"].display_name == "GaijinPot Travel"
    assert set(valid["category"]) >= SEED_LABELS
    assert (valid["category"] == "").sum() >= 3
    span = valid["published_at"].max() - valid["published_at"].min()
    assert span >= pd.Timedelta(days=60)
    for site, labels in valid.groupby("site")["category"]:
        assert set(labels) - {""} <= set(config.sites[site].categories), site


def test_the_sample_shows_rejected_rows(articles) -> None:
    # data/late-additions.jsonl carries a few broken rows on purpose.
    assert articles.n_rejected == 3
    assert set(articles.rejected["field"]) == {"title", "url", "article_id"}
    assert set(Path(f).name for f in articles.rejected["file"]) == {"late-additions.jsonl"}


def test_shared_topics_span_sites_and_near_duplicates_exist(articles) -> None:
    valid = articles.valid
    tagged = valid[valid["tags"] != ""]
    sites_per_topic = tagged.groupby("tags")["site"].nunique()
    assert (sites_per_topic >= 3).sum() >= 10
    groups = near_duplicate_groups(valid["title"].tolist(), 0.7)
    sizes = np.bincount(groups)
    assert (sizes >= 2).sum() >= 4


def test_neighbours_find_the_shared_topic(model) -> None:
    """Relevance is testable: the nearest cross-site neighbour of a tagged
    article mostly carries the same topic tag (the tag is not a feature)."""
    a = model.articles_
    tags = a["tags"].to_numpy()
    first = model.neighbors_.indices[:, 0]
    tagged = (tags != "") & (first >= 0)
    hits = (tags[first[tagged]] == tags[tagged]).mean()
    assert hits >= 0.6, hits


def test_pageviews_are_the_simulators_output(config, articles) -> None:
    committed = read_events(config.data.events).valid
    good = articles.valid[
        articles.valid["article_id"].isin(
            pd.read_csv(DATA / "articles.csv", dtype=str)["article_id"]
        )
    ]
    regenerated, _ = simulate_pageviews(good, TRAFFIC)
    assert len(committed) == len(regenerated)
    assert (committed["article_id"].to_numpy() == regenerated["article_id"].to_numpy()).all()
    assert (committed["ts"].to_numpy() == regenerated["ts"].to_numpy()).all()
