from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender.ingest import read_events
from recommender.schema import validate_articles
from recommender.simulate import TrafficParams, simulate_pageviews, write_events
from recommender.trending import trend_scores
from tests.conftest import NOW


def many_articles(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return validate_articles(
        pd.DataFrame(
            {
                "article_id": [f"a{i}" for i in range(n)],
                "site": rng.choice(["alpha", "beta"], n),
                "url": [f"https://x.example/{i}" for i in range(n)],
                "title": [f"Title {i}" for i in range(n)],
                "published_at": [
                    NOW - pd.Timedelta(hours=int(h)) for h in rng.integers(1, 60 * 24, n)
                ],
            }
        )
    ).valid


PARAMS = TrafficParams(end=NOW.isoformat(), days=60, total_views=60_000, n_trending=3, seed=7)


def test_same_seed_same_log_other_seed_other_log() -> None:
    articles = many_articles()
    first, spikes = simulate_pageviews(articles, PARAMS)
    again, spikes_again = simulate_pageviews(articles, PARAMS)
    pd.testing.assert_frame_equal(first, again)
    assert spikes == spikes_again and len(spikes) == 3
    other, _ = simulate_pageviews(articles, TrafficParams(**{**PARAMS.__dict__, "seed": 8}))
    assert not first.equals(other)
    assert abs(len(first) - 60_000) < 60_000 * 0.05


def test_no_view_before_publication_or_after_the_end() -> None:
    articles = many_articles()
    events, _ = simulate_pageviews(articles, PARAMS)
    published = events["article_id"].map(articles.set_index("article_id")["published_at"])
    assert (events["ts"] >= published.dt.floor("h")).all()
    assert events["ts"].max() < NOW
    assert events["ts"].is_monotonic_increasing


def test_popularity_is_long_tailed() -> None:
    events, _ = simulate_pageviews(many_articles(), PARAMS)
    counts = events["article_id"].value_counts()
    top_tenth = counts.head(len(counts) // 10).sum()
    assert top_tenth / counts.sum() > 0.35  # a uniform log would give 0.10


def test_time_of_day_cycle_in_japan_time() -> None:
    events, _ = simulate_pageviews(many_articles(), PARAMS)
    hour = events["ts"].dt.tz_convert("Asia/Tokyo").dt.hour
    night = hour.isin([3, 4]).sum()
    evening = hour.isin([20, 21]).sum()
    assert evening > 5 * night


def test_spiking_articles_trend_at_the_end() -> None:
    articles = many_articles()
    events, spikes = simulate_pageviews(articles, PARAMS)
    scores = trend_scores(events, articles, NOW)
    top = set(scores["trend"].nlargest(6).index)
    assert set(spikes) <= top
    # ...and were not trending a week earlier.
    earlier = trend_scores(events, articles, NOW - pd.Timedelta(days=7))
    assert not set(spikes) & set(earlier["trend"].nlargest(3).index)


def test_written_logs_read_back(tmp_path: Path) -> None:
    events, _ = simulate_pageviews(
        many_articles(30), TrafficParams(end=NOW.isoformat(), days=5, total_views=500, n_trending=1)
    )
    for name in ("v.csv.gz", "v.parquet"):
        back = read_events(write_events(events, tmp_path / name))
        assert back.n_rejected == 0
        pd.testing.assert_series_equal(
            back.valid["ts"], events["ts"].astype("datetime64[ns, UTC]"), check_names=False
        )
