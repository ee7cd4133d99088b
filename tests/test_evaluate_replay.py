"""The replay on a hand-written MIND-format log whose right answers are known
(tests/fixtures/mind/README.md), and on a simulated log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.config import TrendingConfig
from recommender.datasets import read_mind
from recommender.datasets.synthetic import SyntheticMindParams, write_synthetic_mind
from recommender.evaluate.replay import METHODS, evaluation_start, metric_table, replay
from recommender.trending import trend_scores

FIXTURE = Path(__file__).parent / "fixtures" / "mind"
LAST_DAY = pd.Timestamp("2019-11-14T00:00:00Z")


@pytest.fixture(scope="module")
def mind():
    return read_mind(FIXTURE)


def score_of(result, impression: str, article: str, method: str) -> float:
    c = result.candidates
    row = c[(c["impression_id"] == impression) & (c["article_id"] == article)]
    assert len(row) == 1
    return float(row[method].iloc[0])


def test_the_window_is_the_last_day(mind) -> None:
    assert evaluation_start(mind) == LAST_DAY
    result = replay(mind, refresh_minutes=None)
    assert set(result.candidates["impression_id"]) == {"7", "8", "9", "10", "11"}
    assert (result.candidates["refresh"] == LAST_DAY).all() and result.n_refreshes == 1
    assert result.label == "static split"


def test_static_split_counts_only_the_days_before(mind) -> None:
    result = replay(mind, refresh_minutes=None)
    clicks = {a: score_of(result, "8", a, "clicks") for a in ("N1", "N2", "N3", "N4")}
    assert clicks == {"N1": 4, "N2": 0, "N3": 1, "N4": 1}
    assert score_of(result, "11", "N1", "clicks") == 4  # the last day's clicks never count
    all_time_ctr = 6 / 17  # 6 clicks in 17 candidates on the first day
    a = TrendingConfig().prior_impressions
    assert score_of(result, "8", "N2", "ctr") == pytest.approx((0 + a * all_time_ctr) / (6 + a))


def test_a_refresh_sees_only_events_before_it(mind) -> None:
    hourly = replay(mind, refresh_minutes=60)
    minutely = replay(mind, refresh_minutes=1)
    # Impression 8 at 09:07: the 09:05 click on N3 is after the 09:00 refresh...
    assert score_of(hourly, "8", "N3", "clicks") == 1
    assert hourly.candidates.loc[hourly.candidates["impression_id"] == "8", "refresh"].iloc[
        0
    ] == pd.Timestamp("2019-11-14T09:00Z")
    # ...but before the 09:07 one.
    assert score_of(minutely, "8", "N3", "clicks") == 2
    # An impression never informs its own ranking, even with a refresh at its time.
    assert score_of(minutely, "7", "N3", "clicks") == 1


def test_an_article_not_yet_shown_has_no_evidence(mind) -> None:
    result = replay(mind, refresh_minutes=60)
    assert score_of(result, "9", "N5", "clicks") == 0
    assert score_of(result, "9", "N5", "decayed_views") == 0
    # Smoothed CTRs fall back to the prior: the network's CTR before 10:00.
    assert score_of(result, "9", "N5", "ctr") == pytest.approx(8 / 23)
    engine = score_of(result, "9", "N5", "engine")
    assert 0 < engine <= 1


def test_the_engine_in_the_replay_is_the_shipped_trend_scores(mind) -> None:
    result = replay(mind, refresh_minutes=None)
    events = mind.events()
    before = events[events["ts"] < LAST_DAY]
    expected = trend_scores(before, mind.articles, LAST_DAY)["trend"]
    for article in ("N1", "N2", "N3", "N4"):
        assert score_of(result, "8", article, "engine") == pytest.approx(expected[article])


def test_metrics_of_the_known_log(mind) -> None:
    result = replay(mind, refresh_minutes=None)
    table = metric_table(result.candidates, list(METHODS), n_boot=50).set_index(
        ["method", "metric"]
    )
    # Impression 10 has no click: 4 impressions count.
    assert (table["n_impressions"] == 4).all()
    # Clicks: 7 ties N3/N4 (0.5); 8 puts N1 first (1); 9 ties the clicked N5 with N2
    # (no clicks either) below N1 (0.25); 11 puts N1 first (1).
    assert table.loc[("clicks", "auc"), "mean"] == pytest.approx((0.5 + 1 + 0.25 + 1) / 4)
    # The engine puts N1 (4 clicks in 5) above N2 (0 in 6) and N3, N4 (1 in 3).
    c = result.candidates[result.candidates["impression_id"] == "8"].set_index("article_id")
    assert c["engine"].idxmax() == "N1" and c["engine"].idxmin() == "N2"
    row = table.loc[("engine", "ndcg@10")]
    assert row["low"] <= row["mean"] <= row["high"]


def test_refresh_must_be_positive(mind) -> None:
    with pytest.raises(ValueError, match="refresh_minutes"):
        replay(mind, refresh_minutes=0)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic-mind")
    params = SyntheticMindParams(days=3, news_per_day=150, impressions_per_day=2500, n_users=1500)
    write_synthetic_mind(folder, params)
    return read_mind(folder)


@pytest.mark.parametrize("minutes", [60.0, None])
def test_the_shipped_engine_beats_every_simple_baseline(simulated, minutes) -> None:
    result = replay(simulated, refresh_minutes=minutes)
    table = metric_table(result.candidates, list(METHODS), n_boot=0)
    means = table.pivot(index="method", columns="metric", values="mean")
    for metric in ("auc", "mrr", "ndcg@5", "ndcg@10"):
        engine = means.loc["engine", metric]
        others = means.drop(index="engine")[metric]
        assert engine > others.max(), (metric, means)
    assert np.isclose(means.loc["random", "auc"], 0.5, atol=0.03)
    top = result.top_ctr["ctr"]
    assert top["engine"] > top["all"]
