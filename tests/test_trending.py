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


# -- impressions, clicks and freshness -------------------------------------------


def _widget_log(rows: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    """Events from (article_id, impressions, clicks, hours before NOW) rows."""
    events = []
    for article_id, shown, clicked, hours in rows:
        ts = (NOW - pd.Timedelta(hours=hours)).isoformat()
        events += [{"ts": ts, "article_id": article_id, "kind": "impression"}] * shown
        events += [{"ts": ts, "article_id": article_id, "kind": "click"}] * clicked
    return validate_events(pd.DataFrame(events)).valid


def test_a_views_only_log_scores_exactly_as_before() -> None:
    articles, events = frames({"b-baby": 300, "c-fuji": 40, "a-sake": 10})
    scores = trend_scores(events, articles, NOW)
    rate = scores["rate"].to_numpy()
    live = scores["exposure_hours"].to_numpy() > 0
    mu = scores["decayed_views"].sum() / scores["exposure_hours"].sum()
    expected = np.where(live, np.log1p(rate / mu) / np.log1p(rate.max() / mu), 0.0)
    np.testing.assert_allclose(scores["trend"].to_numpy(), expected)
    assert (scores["impressions"] == 0).all() and (scores["ctr"] == 0).all()


def test_impressions_without_clicks_count_against_an_article() -> None:
    articles = validate_articles(tiny_articles()).valid
    events = _widget_log([("a-sake", 50, 5, 2), ("b-fuji", 500, 5, 2), ("c-baby", 200, 4, 2)])
    scores = trend_scores(events, articles, NOW, freshness=False)
    assert scores.loc["a-sake", "trend"] > scores.loc["c-baby", "trend"]
    assert scores.loc["c-baby", "trend"] > scores.loc["b-fuji", "trend"]
    assert scores.loc["a-sake", "impressions"] == 50 and scores.loc["a-sake", "clicks"] == 5
    assert list(trending_articles(scores, articles, 2)) == ["a-sake", "c-baby"]


def test_few_lucky_clicks_are_smoothed_toward_the_network_ctr() -> None:
    articles = validate_articles(tiny_articles()).valid
    events = _widget_log([("a-sake", 1, 1, 1), ("b-fuji", 500, 50, 1), ("c-baby", 1000, 0, 1)])
    scores = trend_scores(events, articles, NOW, freshness=False, prior_impressions=100)
    assert scores.loc["b-fuji", "trend"] > scores.loc["a-sake", "trend"]
    c0 = 51 / 1501
    w = 0.5 ** (1 / 24)  # every event is an hour old
    assert scores.loc["a-sake", "ctr"] == pytest.approx((w + 100 * c0) / (w + 100))
    # With a weak prior the lucky article would win: the prior is what stops it.
    weak = trend_scores(events, articles, NOW, freshness=False, prior_impressions=0.1)
    assert weak.loc["a-sake", "trend"] > weak.loc["b-fuji", "trend"]


def test_smoothing_pulls_toward_the_current_ctr_not_the_all_time_one() -> None:
    articles = validate_articles(tiny_articles()).valid
    # A week ago the network had a 50% CTR; in the last hour 2%.
    events = _widget_log([("a-sake", 1000, 500, 24 * 7), ("b-fuji", 1000, 20, 1)])
    scores = trend_scores(events, articles, NOW, freshness=False, half_life_hours=6)
    w_old = 0.5 ** (24 * 7 / 6)
    w_new = 0.5 ** (1 / 6)
    current = (500 * w_old + 20 * w_new) / (1000 * w_old + 1000 * w_new)
    assert current < 0.03
    # An article never shown starts at the current CTR.
    assert scores.loc["c-baby", "ctr"] == pytest.approx(current)


def test_freshness_starts_new_articles_where_new_articles_stand() -> None:
    articles = validate_articles(tiny_articles()).valid
    published = articles.set_index("article_id")["published_at"]
    # Shown within their first hour, articles draw 20% CTR; a week old, 1%.
    young = NOW - published["b-baby"] - pd.Timedelta(minutes=30)
    rows = [
        ("b-baby", 500, 100, young / pd.Timedelta(hours=1)),
        ("a-baby", 2000, 20, 1),
    ]
    events = _widget_log(rows)
    articles.loc[articles["article_id"] == "c-sake", "published_at"] = NOW - pd.Timedelta(minutes=5)
    fresh = trend_scores(events, articles, NOW, freshness=True)
    flat = trend_scores(events, articles, NOW, freshness=False)
    # c-sake (5 minutes old, never shown) vs c-baby (9 days old, never shown):
    assert fresh.loc["c-sake", "ctr"] > 3 * fresh.loc["c-baby", "ctr"]
    assert flat.loc["c-sake", "ctr"] == pytest.approx(flat.loc["c-baby", "ctr"])
    assert fresh["trend"].between(0, 1).all()


def test_the_accumulator_advanced_in_batches_equals_one_pass() -> None:
    from recommender.trending import TrafficAccumulator, encode_events, score_traffic

    articles = validate_articles(tiny_articles()).valid
    rng = np.random.default_rng(5)
    ids = list(articles["article_id"])
    events = validate_events(
        pd.DataFrame(
            {
                "ts": [NOW - pd.Timedelta(minutes=int(m)) for m in rng.integers(0, 5000, 400)],
                "article_id": rng.choice(ids, 400),
                "kind": rng.choice(["view", "impression", "click"], 400),
            }
        )
    ).valid.sort_values("ts", kind="stable")
    index = pd.Index(ids)
    rows, ts, kinds = encode_events(events, index)
    batched = TrafficAccumulator(articles["published_at"], 12.0)
    for cut in (NOW - pd.Timedelta(hours=50), NOW - pd.Timedelta(hours=3), NOW):
        done = int(np.searchsorted(ts, batched.at.value, side="right")) if batched.at else 0
        upto = int(np.searchsorted(ts, cut.value, side="right"))
        batched.advance(cut, rows[done:upto], ts[done:upto], kinds[done:upto])
    once = trend_scores(events, articles, NOW, half_life_hours=12.0)
    again = score_traffic(batched, index.rename("article_id"), NOW)
    pd.testing.assert_frame_equal(once, again, check_exact=False, rtol=1e-9)
    with pytest.raises(ValueError, match="backwards"):
        batched.advance(NOW - pd.Timedelta(hours=1))
