from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.schema import validate_articles, validate_events
from recommender.trending import trend_scores, trending_articles
from tests.conftest import NOW, tiny_articles, tiny_events


def frames(views: dict[str, int]):
    articles = validate_articles(tiny_articles()).valid
    events = validate_events(tiny_events(views)).valid
    return articles, events


def test_the_obviously_trending_article_is_first() -> None:
    articles, events = frames({"b-baby": 300, "c-fuji": 40, "a-sake": 10})
    scores = trend_scores(events, articles, NOW)
    assert scores["trend"].idxmax() == "b-baby"
    assert scores.loc["b-baby", "trend"] == pytest.approx(1.0)
    assert scores["views"].to_dict()["c-fuji"] == 40
    assert list(trending_articles(scores, articles, 3)) == ["b-baby", "c-fuji", "a-sake"]
    assert list(trending_articles(scores, articles, 3, site="gamma")) == ["c-fuji"]


def test_half_life_halves_a_view() -> None:
    articles = validate_articles(tiny_articles()).valid
    events = validate_events(
        pd.DataFrame(
            {
                "ts": [NOW, NOW - pd.Timedelta(hours=24), NOW - pd.Timedelta(hours=48)],
                "article_id": ["a-sake"] * 3,
            }
        )
    ).valid
    scores = trend_scores(events, articles, NOW, half_life_hours=24)
    assert scores.loc["a-sake", "decayed_views"] == pytest.approx(1 + 0.5 + 0.25)


def test_few_views_in_a_minute_do_not_outrank_thousands_in_a_day() -> None:
    articles = validate_articles(tiny_articles()).valid
    articles.loc[articles["article_id"] == "c-baby", "published_at"] = NOW - pd.Timedelta(minutes=1)
    old_hit = [NOW - pd.Timedelta(seconds=43 * i) for i in range(2000)]  # 2,000 in a day
    newcomer = [NOW - pd.Timedelta(seconds=20), NOW - pd.Timedelta(seconds=10)]
    events = validate_events(
        pd.DataFrame({"ts": old_hit + newcomer, "article_id": ["b-fuji"] * 2000 + ["c-baby"] * 2})
    ).valid
    scores = trend_scores(events, articles, NOW)
    assert scores.loc["b-fuji", "trend"] > scores.loc["c-baby", "trend"]
    # Unsmoothed, the newcomer's rate per hour of exposure would be far higher:
    raw = scores["decayed_views"] / scores["exposure_hours"]
    assert raw["c-baby"] > raw["b-fuji"]


def test_a_new_article_drawing_views_fast_rises_within_hours() -> None:
    articles = validate_articles(tiny_articles()).valid
    articles.loc[articles["article_id"] == "c-baby", "published_at"] = NOW - pd.Timedelta(hours=3)
    steady = [NOW - pd.Timedelta(minutes=30 * i) for i in range(200)]  # 200 over 4 days
    burst = [NOW - pd.Timedelta(minutes=i) for i in range(150)]  # 150 in 2.5 hours
    events = validate_events(
        pd.DataFrame({"ts": steady + burst, "article_id": ["b-fuji"] * 200 + ["c-baby"] * 150})
    ).valid
    scores = trend_scores(events, articles, NOW)
    assert scores["trend"].idxmax() == "c-baby"


def test_only_views_up_to_now_count_and_future_articles_score_zero() -> None:
    articles = validate_articles(tiny_articles()).valid
    articles.loc[articles["article_id"] == "a-fuji", "published_at"] = NOW + pd.Timedelta(days=1)
    events = validate_events(
        pd.DataFrame(
            {
                "ts": [
                    NOW - pd.Timedelta(hours=1),
                    NOW + pd.Timedelta(hours=1),
                    NOW - pd.Timedelta(hours=1),
                    NOW - pd.Timedelta(hours=1),
                ],
                "article_id": ["a-sake", "a-sake", "a-sake", "a-fuji"],
                "kind": ["view", "view", "click", "view"],
            }
        )
    ).valid
    scores = trend_scores(events, articles, NOW)
    assert scores.loc["a-sake", "views"] == 1
    assert scores.loc["a-fuji", "trend"] == 0 and scores.loc["a-fuji", "decayed_views"] == 0


def test_no_views_at_all_gives_zero_trend() -> None:
    articles, events = frames({})
    scores = trend_scores(events.iloc[:0], articles, NOW)
    assert (scores["trend"] == 0).all()
    assert list(trending_articles(scores, articles, 5)) == []


def test_parameters_are_checked() -> None:
    articles, events = frames({"a-sake": 1})
    with pytest.raises(ValueError):
        trend_scores(events, articles, NOW, half_life_hours=0)
    with pytest.raises(ValueError, match="tz-aware"):
        trend_scores(events, articles, NOW.tz_localize(None))


@given(
    st.dictionaries(
        st.sampled_from(list(tiny_articles()["article_id"])), st.integers(1, 60), min_size=1
    ),
    st.sampled_from(list(tiny_articles()["article_id"])),
)
@settings(max_examples=40, deadline=None)
def test_trend_is_bounded_and_a_new_view_never_lowers_rank(views, extra) -> None:
    articles, events = frames(views)
    before = trend_scores(events, articles, NOW)
    assert before["trend"].between(0, 1).all()
    more = pd.concat(
        [events, validate_events(pd.DataFrame({"ts": [NOW], "article_id": [extra]})).valid],
        ignore_index=True,
    )
    after = trend_scores(more, articles, NOW)
    # The article that got the extra view keeps or improves its standing.
    rank_before = before["rate"].rank(ascending=False, method="min")[extra]
    rank_after = after["rate"].rank(ascending=False, method="min")[extra]
    assert rank_after <= rank_before
    assert np.isfinite(after["rate"]).all()
