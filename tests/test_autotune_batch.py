"""Self-tuning trending in the batch: the network's own impressions and
clicks become the back-test's log, a refit scores with the chosen settings,
an update keeps them, and the run record says what was chosen and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from recommender.autotune import autotune, network_log, tune_trending
from recommender.batch import trending_summary
from recommender.cli.run import trending_line
from recommender.datasets.mind import MindData
from recommender.evaluate.evaluation import mind_config
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from recommender.simulate_logs import LogShape, steady_appeal_log
from recommender.trending import trend_scores
from tests.conftest import tiny_articles, tiny_config, tiny_events


def widget_events(data: MindData) -> pd.DataFrame:
    """The log as the widget reports it: one impression per shown item, a
    click per clicked one, each page view its own session, on one page."""
    c = data.candidates
    shown = pd.DataFrame(
        {
            "ts": c["ts"],
            "article_id": c["article_id"].astype(str),
            "kind": "impression",
            "source_article_id": "page-" + c["impression_id"].astype(str),
            "placement": "below-article",
            "session": "s" + c["impression_id"].astype(str),
        }
    )
    clicks = shown[c["label"].fillna(0).to_numpy() == 1].assign(kind="click")
    clicks = clicks.assign(ts=clicks["ts"] + pd.Timedelta(seconds=5))
    return pd.concat([shown, clicks], ignore_index=True).sort_values("ts", kind="stable")


@pytest.fixture(scope="module")
def log():
    return steady_appeal_log(shape=LogShape(days=3, impressions_per_day=1500)).data


def test_the_widget_log_is_the_impression_log_it_came_from(log) -> None:
    events = validate_events(widget_events(log)).valid
    rebuilt = network_log(events, log.articles)
    assert rebuilt is not None
    key = ["ts", "article_id", "label"]
    before = log.candidates[key].astype({"article_id": str, "label": int})
    after = rebuilt.candidates[key].astype({"article_id": str, "label": int})
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True),
        after.sort_values(key).reset_index(drop=True),
    )
    # One block per page view, as many as impressions in the log.
    assert rebuilt.behaviors["impression_id"].nunique() == log.behaviors["impression_id"].nunique()
    at = log.end + pd.Timedelta(seconds=1)
    assert autotune(rebuilt, at=at).config == autotune(log, at=at).config


def test_a_click_counts_for_its_own_page_view_only() -> None:
    t = pd.Timestamp("2021-03-08T00:00:00Z")
    rows = [
        (t, "a", "impression", "p", "w", "s1"),
        (t, "b", "impression", "p", "w", "s1"),
        (t, "a", "impression", "p", "w", "s2"),
        (t, "a", "impression", "p", "w", None),  # no session: a block of its own, never clicked
        (t + pd.Timedelta(seconds=3), "a", "click", "p", "w", "s1"),
        (t + pd.Timedelta(seconds=3), "a", "click", "p", "w", None),
        (t, "zz", "impression", "p", "w", "s1"),  # not in the corpus: left out
    ]
    columns = ["ts", "article_id", "kind", "source_article_id", "placement", "session"]
    events = pd.DataFrame(rows, columns=columns)
    articles = pd.DataFrame({"article_id": ["a", "b"], "published_at": [t, t]})
    found = network_log(events, articles)
    assert found is not None
    c = found.candidates
    assert c.groupby("impression_id").size().sort_values().tolist() == [1, 1, 2]
    assert c["label"].astype(int).tolist() == [1, 0, 0, 0]
    assert network_log(events[events["kind"] != "impression"], articles) is None


def fit_on_log(log: MindData, **trending) -> tuple[Recommender, pd.DataFrame]:
    now = log.end + pd.Timedelta(seconds=1)
    config = mind_config()
    config = config.model_copy(
        update={
            "trending": config.trending.model_copy(update=trending),
            "run": config.run.model_copy(update={"now": now.to_pydatetime()}),
        }
    )
    events = validate_events(widget_events(log)).valid
    articles = validate_articles(log.articles).valid
    return Recommender(config).fit(articles, events, now=now), events


def test_a_refit_scores_trending_with_the_settings_its_back_test_chose(log) -> None:
    model, events = fit_on_log(log)
    expected, record = tune_trending(model.config.trending, events, model.articles_, model.now_)
    assert record["tuned"] and not record["fallback"]
    assert model.trending_ == expected != model.config.trending
    assert model.trending_.half_life_hours >= 48  # appeal that does not decay: a long memory
    again = trend_scores(
        events,
        model.articles_,
        model.now_,
        half_life_hours=expected.half_life_hours,
        prior_views=expected.prior_views,
        prior_impressions=expected.prior_impressions,
        freshness=expected.freshness,
    )
    np.testing.assert_array_equal(model.trend_["trend"], again["trend"])
    summary = trending_summary(model)
    assert summary["half_life_hours"] == expected.half_life_hours and summary["tuned"]
    assert {"grid", "best_baseline", "chosen", "prior"} <= set(summary)
    line = trending_line(summary)
    assert "tuned: back-test AUC" in line and "best baseline" in line
    Console(width=200).print(line)  # printable as the run's summary prints it


def test_off_or_on_a_views_only_log_the_configured_settings_are_used(log, tmp_path) -> None:
    off, _ = fit_on_log(log, autotune=False)
    assert off.trending_ == off.config.trending and not off.tuning_["tuned"]
    config = tiny_config(tmp_path)
    views_only = Recommender(config).fit(
        validate_articles(tiny_articles()).valid, validate_events(tiny_events()).valid
    )
    assert views_only.trending_ == config.trending
    assert "no impressions" in views_only.tuning_["reason"]


def test_too_few_clicks_fall_back_to_a_setting_level_with_a_smoothed_ctr(log) -> None:
    model, _ = fit_on_log(log, autotune_min_clicked_impressions=10**6)
    assert model.tuning_["fallback"] and not model.tuning_["tuned"]
    assert model.trending_.freshness is False and model.trending_.half_life_hours == 96.0
    assert "fallback" in trending_line(trending_summary(model))


def test_an_update_and_a_saved_model_keep_the_refits_choice(log, tmp_path: Path) -> None:
    model, events = fit_on_log(log)
    path = model.save(tmp_path / "model.rec")
    loaded = Recommender.load(path)
    assert loaded.trending_ == model.trending_ and loaded.tuning_ == model.tuning_
    # Other traffic: an update scores it with the refit's settings, not a new tuning.
    fewer = events[events["kind"] != "click"]
    updated = loaded.update(validate_articles(log.articles).valid, fewer)
    assert updated.trending_ == model.trending_
    assert updated.tuning_["kept_from_refit"] and updated.tuning_["tuned"]
    assert "kept from the last refit" in trending_line(trending_summary(updated))


def test_evaluate_replays_the_self_tuned_engine_beside_the_shipped_one(log) -> None:
    from recommender.evaluate.evaluation import evaluate_mind
    from recommender.evaluate.replay import evaluation_start

    evaluation = evaluate_mind(log, refresh_minutes=(60.0,), static=False, n_boot=50, lists=False)
    tuned = autotune(log, at=evaluation_start(log))  # on the days before the window only
    assert evaluation.facts["autotune"]["config"]["half_life_hours"] == tuned.config.half_life_hours
    auc = evaluation.replay[evaluation.replay["metric"] == "auc"].set_index("method")["mean"]
    assert {"engine", "engine_tuned", "ctr"} <= set(auc.index)
    # Steady appeal: the tuned engine is at least level with the all-time smoothed CTR,
    # which the shipped one (24 h, freshness on) is not.
    assert auc["engine_tuned"] >= auc["ctr"] - 0.002 > auc["engine"]


def test_a_logged_position_is_kept_and_order_fills_in_without_one() -> None:
    t = pd.Timestamp("2021-03-08T00:00:00Z")
    events = pd.DataFrame(
        {
            "ts": [t] * 4,
            "article_id": ["a", "b", "c", "a"],
            "kind": "impression",
            "source_article_id": "p",
            "placement": "w",
            "session": ["s1", "s1", "s1", "s2"],
            "position": pd.array([3, 1, 2, None], dtype="Int64"),
        }
    )
    articles = pd.DataFrame({"article_id": ["a", "b", "c"], "published_at": [t] * 3})
    found = network_log(events, articles)
    assert found is not None
    assert found.candidates["position"].tolist() == [2, 0, 1, 0]  # 0-based, as MIND's
