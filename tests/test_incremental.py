"""Incremental runs and cold start: the same lists as a full computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.config import load_config
from recommender.ingest import read_articles, read_events
from recommender.kernels import available_kernels
from recommender.model import Recommender

DATA = Path(__file__).resolve().parents[1] / "data"
NOW = pd.Timestamp("2021-03-08T00:00:00Z")


@pytest.fixture(scope="module")
def sample():
    config = load_config(DATA / "sample.toml")
    articles = read_articles(config.data.articles, sites=list(config.sites)).valid
    events = read_events(config.data.events).valid
    return config, articles, events


def with_kernel(config, kernel: str, **mix):
    similarity = config.similarity.model_copy(update={"kernel": kernel})
    return config.model_copy(
        update={"similarity": similarity, "mix": config.mix.model_copy(update=mix)}
    )


def a_day_later(articles: pd.DataFrame) -> pd.DataFrame:
    """New articles, an edited one, a removed one, an unpublished one."""
    later = articles.copy()
    later.loc[later["article_id"] == "st-010", "body"] += " Now with a sake pairing guide."
    later.loc[later["article_id"] == "gpb-020", "status"] = "unpublished"
    later = later[later["article_id"] != "jt-005"]
    fresh = articles[articles["site"] != "japantoday"].head(4).copy()
    fresh["article_id"] = [f"new-{i}" for i in range(4)]
    fresh["url"] = [f"https://example.org/new-{i}" for i in range(4)]
    fresh["title"] = fresh["title"] + " (a new take)"
    fresh["published_at"] = NOW + pd.Timedelta(hours=6)
    return pd.concat([later, fresh], ignore_index=True)


@pytest.mark.parametrize("kernel", available_kernels())
def test_an_incremental_update_equals_a_full_run_on_the_same_vocabulary(sample, kernel) -> None:
    config, articles, events = sample
    # A short freshness window, so that the day also ages articles out of the candidates.
    config = with_kernel(config, kernel, max_age_days=30)
    first = Recommender(config).fit(articles, events, now=NOW)
    later = a_day_later(articles)
    now = NOW + pd.Timedelta(days=1)

    incremental = first.update(later, events, now=now)
    full = first.update(later, events, now=now, incremental=False)

    stats = incremental.update_stats_
    assert stats["incremental"] and stats["new"] == 4 and stats["changed"] == 1
    assert stats["removed"] == 1
    assert 5 <= stats["rows_recomputed"] < len(later) / 2
    assert incremental.vectorizer_ is first.vectorizer_
    np.testing.assert_array_equal(incremental.neighbors_.indices, full.neighbors_.indices)
    np.testing.assert_array_equal(incremental.neighbors_.scores, full.neighbors_.scores)
    assert list(incremental.recommendation_lists("r", "t")) == list(
        full.recommendation_lists("r", "t")
    )


def test_a_changed_order_falls_back_to_the_full_computation(sample) -> None:
    config, articles, events = sample
    first = Recommender(with_kernel(config, "scipy")).fit(articles, events, now=NOW)
    shuffled = articles.sample(frac=1, random_state=1)
    again = first.update(shuffled, events, now=NOW)
    assert not again.update_stats_["incremental"]
    reference = first.update(shuffled, events, now=NOW, incremental=False)
    np.testing.assert_array_equal(again.neighbors_.indices, reference.neighbors_.indices)


def test_an_unseen_article_gets_the_list_its_text_earns(sample) -> None:
    config, articles, events = sample
    model = Recommender(with_kernel(config, "scipy")).fit(articles, events, now=NOW)
    groups = pd.Series(model.groups_).value_counts()
    row = next(
        i
        for i, g in enumerate(model.groups_)
        if groups[g] == 1 and model.articles_["site"][i] == "japantoday"
    )
    known = model.articles_.iloc[row]
    batch = model.recommend(known["article_id"])
    unseen = model.recommend_unseen(
        {
            "article_id": "brand-new",
            "site": known["site"],
            "title": known["title"],
            "body": known["body"],
            "category": known["category"],
        }
    )
    assert unseen.source_id == "brand-new"
    assert [i.article_id for i in unseen.items] == [i.article_id for i in batch.items]
    assert [i.score for i in unseen.items] == [i.score for i in batch.items]
    with pytest.raises(ValueError, match="unknown site"):
        model.recommend_unseen({"article_id": "x", "site": "nowhere", "title": "t"})
