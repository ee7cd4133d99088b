"""Self-tuning trending (recommender.autotune) on logs whose right answer is known
by construction (recommender.simulate_logs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.autotune import (
    ALL_TIME_HALF_LIFE,
    FALLBACK_HALF_LIFE,
    MAX_STRENGTH,
    autotune,
    fit_beta,
)
from recommender.config import TrendingConfig
from recommender.datasets.mind import MindData
from recommender.simulate_logs import (
    LogShape,
    bursty_log,
    position_bias_log,
    steady_appeal_log,
)

SMALL = LogShape(days=3, impressions_per_day=1500)


@pytest.fixture(scope="module")
def steady():
    return steady_appeal_log(shape=SMALL)


@pytest.fixture(scope="module")
def fast_decay():
    # Appeal halves every ~4 h of age; candidates up to a day old.
    shape = LogShape(days=3, impressions_per_day=1500, max_candidate_age_hours=24.0)
    return steady_appeal_log(shape=shape, decay_half_life_hours=4.0, mean_ctr=0.2)


# --- fit_beta -------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "beta"), [(2.0, 38.0), (5.0, 95.0), (1.0, 9.0)])
def test_fit_beta_recovers_a_known_prior(alpha: float, beta: float) -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(20, 400, size=4000)
    p = rng.beta(alpha, beta, size=len(n))
    k = rng.binomial(n, p)
    a, b = fit_beta(k, n)
    assert a / (a + b) == pytest.approx(alpha / (alpha + beta), rel=0.03)
    assert a + b == pytest.approx(alpha + beta, rel=0.15)


def test_fit_beta_without_spread_beyond_noise_pulls_fully_to_the_mean() -> None:
    rng = np.random.default_rng(4)
    n = np.full(2000, 100)
    k = rng.binomial(n, 0.05)  # one CTR for all: the spread is binomial noise only
    a, b = fit_beta(k, n)
    assert a + b > 1000  # a strong prior (the estimate of the spread is ~0)
    assert a / (a + b) == pytest.approx(k.sum() / n.sum())


def test_fit_beta_with_one_article_uses_the_strongest_prior() -> None:
    a, b = fit_beta([3], [50])
    assert a + b == pytest.approx(MAX_STRENGTH)
    assert a / (a + b) == pytest.approx(3 / 50)


@pytest.mark.parametrize(
    ("clicks", "impressions", "message"),
    [
        ([0, 0], [10, 5], "cannot fit"),
        ([10, 5], [10, 5], "cannot fit"),
        ([], [], "cannot fit"),
        ([3, 1], [2, 5], "row 0: more clicks"),
        ([1], [2, 3], "differ in length"),
        ([-1, 1], [2, 3], ">= 0"),
    ],
)
def test_fit_beta_refuses_degenerate_input(clicks, impressions, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit_beta(clicks, impressions)


@st.composite
def counts(draw):
    n = draw(st.lists(st.integers(0, 500), min_size=1, max_size=40))
    k = [draw(st.integers(0, v)) for v in n]
    total, clicked = sum(n), sum(k)
    if clicked == 0 or clicked == total:
        # make it non-degenerate: one click and one non-click somewhere
        n = [*n, 2]
        k = [*k, 1]
    return np.array(k), np.array(n), draw(st.randoms(use_true_random=False))


@settings(max_examples=150, deadline=None)
@given(counts())
def test_fit_beta_is_positive_and_order_invariant(sample) -> None:
    k, n, random = sample
    a, b = fit_beta(k, n)
    assert a > 0 and b > 0 and np.isfinite(a) and np.isfinite(b)
    order = list(range(len(k)))
    random.shuffle(order)
    a2, b2 = fit_beta(k[order], n[order])
    assert (a2, b2) == (a, b)


# --- autotune ---------------------------------------------------------------


def test_autotune_is_deterministic(steady) -> None:
    first = autotune(steady.data)
    second = autotune(steady.data)
    one, two = first.to_dict(), second.to_dict()
    one.pop("seconds")
    two.pop("seconds")
    assert one == two
    pd.testing.assert_frame_equal(first.grid, second.grid)
    json.dumps(one)  # a run record can hold it


def test_autotune_measures_the_grid_and_the_baselines(steady) -> None:
    result = autotune(steady.data, half_lives=(12, 48), freshness=(True, False))
    grid = result.grid
    engine = grid[grid["method"] == "engine"]
    assert sorted(zip(engine["half_life"], engine["freshness"], strict=True)) == [
        (12.0, False),
        (12.0, True),
        (48.0, False),
        (48.0, True),
    ]
    assert {"ctr", "decayed_ctr", "clicks", "decayed_views", "engine_ctr_like"} <= set(
        grid["method"]
    )
    assert grid[["auc", "mrr", "ndcg10"]].notna().all().all()
    # The prior was fitted before the holdout and is what the chosen setting uses.
    assert result.config.prior_impressions == pytest.approx(result.alpha + result.beta)
    assert result.window_end - result.window_start == pd.Timedelta(hours=24)
    assert not result.fallback
    # Freshness off and an all-time half-life rank as the all-time smoothed CTR.
    assert result.ctr_like_reproduces_ctr
    ctr = float(grid.loc[grid["method"] == "ctr", "auc"].iloc[0])
    like = float(grid.loc[grid["method"] == "engine_ctr_like", "auc"].iloc[0])
    assert like == pytest.approx(ctr, abs=1e-3)


def test_the_choice_never_loses_to_the_grid(steady) -> None:
    result = autotune(steady.data)
    row = result.chosen_row()
    assert row is not None
    engine = result.grid[result.grid["method"].isin(["engine", "engine_ctr_like"])]
    grid_best = float(result.grid.loc[result.grid["method"] == "engine", "auc"].max())
    assert row["auc"] >= grid_best - 1e-4
    assert row["auc"] <= float(engine["auc"].max())


def test_autotune_falls_back_under_the_threshold(steady) -> None:
    result = autotune(steady.data, min_clicked_impressions=10**6)
    assert result.fallback
    assert "fewer than 1,000,000" in result.reason
    assert len(result.grid) == 0
    assert result.config.freshness is False
    assert result.config.half_life_hours == FALLBACK_HALF_LIFE
    assert result.config.prior_impressions == pytest.approx(result.alpha + result.beta)
    assert result.to_dict()["fallback"] is True


def test_a_tiny_holdout_falls_back_with_the_count() -> None:
    log = steady_appeal_log(shape=LogShape(days=2, impressions_per_day=150))
    result = autotune(log.data)
    assert result.fallback and result.n_clicked_impressions < 200
    assert f"only {result.n_clicked_impressions:,} impressions" in result.reason


def test_steady_appeal_picks_a_long_half_life(steady) -> None:
    # Appeal never decays: all-time CTR is the right trending.
    result = autotune(steady.data)
    assert result.config.half_life_hours >= 48
    assert result.config.freshness is False or result.config.half_life_hours == ALL_TIME_HALF_LIFE


def test_fast_decay_picks_a_short_half_life(fast_decay) -> None:
    result = autotune(fast_decay.data)
    assert not result.fallback
    assert result.config.half_life_hours <= 12
    assert result.config.freshness is True


def test_the_default_wins_a_tie(steady) -> None:
    only_default = autotune(steady.data, half_lives=(24,), freshness=(True,))
    assert only_default.config.half_life_hours in (24.0, ALL_TIME_HALF_LIFE)
    base = TrendingConfig(half_life_hours=24.0, freshness=True)
    # The same half-life listed twice is measured once.
    twice = autotune(steady.data, half_lives=(24, 24), freshness=(True,), base=base)
    assert (twice.grid["method"] == "engine").sum() == 1


@pytest.mark.parametrize("make", [position_bias_log, bursty_log])
def test_generators_are_seeded(make) -> None:
    shape = LogShape(days=2, impressions_per_day=300)
    one, two = make(shape=shape), make(shape=shape)
    pd.testing.assert_frame_equal(one.data.candidates, two.data.candidates)
    other = make(shape=shape, seed=99)
    assert not one.data.candidates["label"].equals(other.data.candidates["label"])


def test_position_bias_log_lists_better_articles_higher() -> None:
    log = position_bias_log(shape=LogShape(days=2, impressions_per_day=400))
    c = log.data.candidates
    appeal = log.truth.set_index("article_id")["appeal"]
    top = appeal.reindex(c.loc[c["position"] == 0, "article_id"].astype(str)).mean()
    low = appeal.reindex(c.loc[c["position"] >= 7, "article_id"].astype(str)).mean()
    assert top > 1.5 * low
    # And the top position is clicked far more often than a low one.
    ctr_top = c.loc[c["position"] == 0, "label"].astype(float).mean()
    ctr_low = c.loc[c["position"] >= 7, "label"].astype(float).mean()
    assert ctr_top > 4 * ctr_low


def test_ties_prefer_the_default_then_the_longer_half_life() -> None:
    from recommender.autotune import _choose

    base = TrendingConfig()  # 24 h, freshness on
    grid = pd.DataFrame(
        {
            "half_life": [6.0, 24.0, 48.0, 96.0],
            "freshness": [True, True, False, True],
            "auc": [0.70, 0.70, 0.70, 0.69],
        }
    )
    assert _choose(grid, base) == 1  # the default, tied with 6 h and 48 h
    assert _choose(grid.drop(index=1), base) == 2  # then the longest tied half-life
    grid.loc[0, "auc"] = 0.71
    assert _choose(grid, base) == 0  # a clear winner beats the default


def test_nothing_after_at_is_used(steady) -> None:
    data = steady.data
    at = data.end.normalize()  # the start of the last day
    keep_c = (data.candidates["ts"] < at).to_numpy()
    keep_b = (data.behaviors["ts"] < at).to_numpy()
    truncated = MindData(
        articles=data.articles,
        behaviors=data.behaviors[keep_b].reset_index(drop=True),
        candidates=data.candidates[keep_c].reset_index(drop=True),
    )
    full, cut = autotune(data, at=at), autotune(truncated, at=at)
    assert full.config == cut.config
    assert (full.alpha, full.beta) == (cut.alpha, cut.beta)
    pd.testing.assert_frame_equal(full.grid, cut.grid)
