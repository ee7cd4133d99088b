"""Tuning, the report and the `evaluate` / `tune` commands."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.config import load_config
from recommender.datasets import read_mind
from recommender.datasets.synthetic import SyntheticMindParams, write_synthetic_mind
from recommender.evaluate.replay import SmallSampleWarning
from recommender.evaluate.tuning import Setting, capped_ranking, tune, write_tuned_config

FIXTURE = Path(__file__).parent / "fixtures" / "mind"


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small-mind")
    params = SyntheticMindParams(days=3, news_per_day=60, impressions_per_day=500, n_users=300)
    write_synthetic_mind(folder, params)
    return folder


def test_capped_ranking_fills_like_the_mix() -> None:
    frame = pd.DataFrame(
        {
            "impression_id": [1] * 5 + [2] * 2,
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.2, 0.1],
            "site": ["a", "a", "a", "b", "b", "a", "a"],
            "category": ["x", "y", "z", "x", "x", "x", "x"],
        }
    )
    ranked = capped_ranking(frame, "score", max_per_site=2, max_per_category=1, k=3)
    order = frame.assign(r=ranked).sort_values(["impression_id", "r"], ascending=[True, False])
    # a/x, a/y accepted; a/z over the site cap; b/x over the category cap; b/x the same;
    # the skipped ones follow in score order.
    assert list(order.index[:5]) == [0, 1, 2, 3, 4]
    assert ranked[2] < ranked[1] and ranked[3] < ranked[2]
    capped = capped_ranking(frame, "score", max_per_site=1, max_per_category=5, k=3)
    first = frame.assign(r=capped)[frame["impression_id"] == 1].sort_values("r", ascending=False)
    assert list(first.index) == [0, 3, 1, 2, 4]  # one per site first


def test_an_empty_category_is_its_sites_own_bucket_as_in_the_mix() -> None:
    # Articles without news (site "unknown", no category) share one bucket; an
    # uncategorised article of another site does not share it.
    frame = pd.DataFrame(
        {
            "impression_id": [1, 1, 1],
            "score": [0.9, 0.8, 0.7],
            "site": ["unknown", "news", "unknown"],
            "category": ["", "", "x"],
        }
    )
    ranked = capped_ranking(frame, "score", max_per_site=5, max_per_category=1, k=2)
    assert list(np.argsort(-ranked, kind="stable")) == [0, 1, 2]


def test_tune_writes_a_config_that_loads(small_log: Path, tmp_path: Path) -> None:
    data = read_mind(small_log)
    with pytest.warns(SmallSampleWarning):  # under 200 clicked impressions with a history a day
        result = tune(
            data,
            weights=[(0.45, 0.4, 0.15), (0.2, 0.8, 0.0)],
            half_lives=[12.0, 24.0],
            caps=[(5, 3), (10, 10)],
        )
    assert len(result.warnings) == 2
    assert len(result.grid) == 8
    assert result.grid["ndcg@10"].is_monotonic_decreasing
    assert result.validation_start == result.test_start - pd.Timedelta(days=1)
    assert set(result.test["setting"]) == {"shipped", "tuned"}
    assert result.shipped == Setting(0.45, 0.4, 0.15, 24.0, 5, 3)
    path = write_tuned_config(
        tmp_path / "tuned.toml", result.best, sites={"news": "News", "travel": "Travel"}
    )
    config = load_config(path)
    assert config.trending.half_life_hours == result.best.half_life_hours
    assert config.mix.weights.trend == result.best.w_trend
    assert config.mix.max_per_site == result.best.max_per_site


def test_tuning_needs_two_days() -> None:
    one_day = read_mind(FIXTURE)
    one_day = type(one_day)(
        one_day.articles,
        one_day.behaviors[one_day.behaviors["ts"] >= "2019-11-14"],
        one_day.candidates[one_day.candidates["ts"] >= "2019-11-14"],
    )
    with pytest.raises(ValueError, match="two days"):
        tune(one_day, weights=[(0.4, 0.4, 0.2)], half_lives=[24.0], caps=[(5, 3)])


def test_tuned_config_keeps_the_base_file(tiny_network, tmp_path: Path) -> None:
    _, folder = tiny_network
    base = folder / "network.toml"
    base.write_text(
        '[sites.alpha]\ndisplay_name = "Alpha"\n[sites.beta]\ndisplay_name = "Beta"\n'
        '[data]\narticles = ["articles.csv"]\n[features]\nmax_df = 1.0\n'
    )
    out = tmp_path / "elsewhere" / "tuned.toml"
    write_tuned_config(out, Setting(0.2, 0.7, 0.1, 12.0, 4, 2), base_path=base, comment="hi")
    text = out.read_text()
    assert text.startswith("# hi\n")
    data = tomllib.loads(text)
    assert data["features"]["max_df"] == 1.0
    assert data["data"]["articles"] == [str((folder / "articles.csv").resolve())]
    assert data["mix"]["weights"] == {"relevance": 0.2, "trend": 0.7, "freshness": 0.1}


def test_evaluate_command_prints_the_table_and_writes_the_report(
    small_log: Path, tmp_path: Path
) -> None:
    report = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--mind-dir",
            str(small_log),
            "--refresh",
            "60",
            "--bootstrap",
            "50",
            "--report",
            str(report),
            "--json",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Trending replay" in result.output and "engine" in result.output
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 4
    for name in ("replay_metrics", "top_ctr", "blend_metrics", "list_metrics"):
        assert (tmp_path / "out" / "report_files" / f"{name}.png").stat().st_size > 1000
    assert "static split" in page and "<script" not in page


def test_evaluate_command_on_a_configured_network(tiny_network, tmp_path: Path) -> None:
    _, folder = tiny_network
    path = folder / "network.toml"
    path.write_text(
        "[sites.alpha]\ndisplay_name = 'Alpha News'\n[sites.beta]\ndisplay_name = 'Beta'\n"
        "[sites.gamma]\ndisplay_name = 'Gamma'\n"
        "[data]\narticles = ['articles.csv']\nevents = ['events.csv']\n"
        "[run]\nnow = '2021-03-08T00:00:00Z'\n[features]\nmax_df = 1.0\n"
        "[mix]\nk = 4\n"
    )
    report = tmp_path / "net.html"
    result = CliRunner().invoke(cli, ["evaluate", "-c", str(path), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "Lists" in result.output and report.exists()


def test_evaluate_without_data_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["evaluate"])
    assert result.exit_code == 2
    assert "--mind-dir" in result.output


def test_tune_command_writes_the_best_setting(small_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "best.toml"
    result = CliRunner().invoke(
        cli,
        [
            "tune",
            "--mind-dir",
            str(small_log),
            "--weights",
            "0.45:0.4:0.15,0.2:0.8:0",
            "--half-life",
            "24",
            "--caps",
            "5:3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    config = load_config(out)
    assert set(config.sites) >= {"news", "lifestyle"}
    assert config.trending.half_life_hours == 24.0
    assert np.isclose(config.mix.weights.relevance + config.mix.weights.trend, 0.85) or np.isclose(
        config.mix.weights.trend, 0.8
    )
    bad = CliRunner().invoke(cli, ["tune", "--mind-dir", str(small_log), "--caps", "5"])
    assert bad.exit_code == 2
