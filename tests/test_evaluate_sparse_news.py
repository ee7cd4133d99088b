"""A MIND-format log whose news.tsv lacks rows for most candidates.

The issue: the loader dropped every candidate without a news row (97% of
them in the reporter's log), the evaluation ran on the few impressions left
and printed inflated metrics with no more than a yellow "rows rejected".
Here such a log is written by the test: 40 articles, news rows for 2 of
them; day 1 (2019-11-13) has 30 impressions, the test day (2019-11-14) 27,
each of 5 candidates with one click. Every candidate must be kept, every
impression of the test day evaluated, and metrics on 27 impressions must
come with a loud warning, which a large enough sample must not get.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.datasets import read_mind
from recommender.datasets.mind import MIND_UNKNOWN_SITE
from recommender.datasets.synthetic import SyntheticMindParams, write_synthetic_mind
from recommender.evaluate.blend import article_features, blend_scores, history_relevance
from recommender.evaluate.evaluation import evaluate_mind
from recommender.evaluate.replay import (
    METHODS,
    MIN_IMPRESSIONS,
    SmallSampleWarning,
    metric_table,
    replay,
)
from recommender.evaluate.report import write_report
from recommender.evaluate.tuning import tune

N_ARTICLES = 40
WITH_NEWS = ("N1", "N2")
DAY1_IMPRESSIONS = 30
TEST_DAY_IMPRESSIONS = 27  # the count
CANDIDATES_PER_IMPRESSION = 5
TEST_DAY = pd.Timestamp("2019-11-14T00:00:00Z")


def write_sparse_mind(folder: Path) -> Path:
    """news.tsv with rows for N1 and N2 only; behaviors.tsv over N1..N40."""
    folder.mkdir(parents=True, exist_ok=True)
    news = [
        "N1\tnews\tnewsus\tSenate passes the budget bill\tLawmakers vote on spending.\t\t[]\t[]",
        "N2\tsports\tfootball\tQuarterback injured\tThe team lost its quarterback.\t\t[]\t[]",
    ]
    (folder / "news.tsv").write_text("\n".join(news) + "\n")
    lines = []
    number = 0
    days = (("11/13/2019", DAY1_IMPRESSIONS, 3), ("11/14/2019", TEST_DAY_IMPRESSIONS, 5))
    for day, count, step in days:
        for i in range(count):
            number += 1
            hour, minute = 8 + i // 12, (i % 12) * 5
            time = f"{day} {(hour - 1) % 12 + 1}:{minute:02d}:00 {'AM' if hour < 12 else 'PM'}"
            ids = [f"N{(i * step + j) % N_ARTICLES + 1}" for j in range(CANDIDATES_PER_IMPRESSION)]
            clicked = i % CANDIDATES_PER_IMPRESSION
            tokens = " ".join(f"{a}-{int(j == clicked)}" for j, a in enumerate(ids))
            history = "N1 N2 N77" if i % 2 == 0 else "N78"  # N77, N78: no news row anywhere
            lines.append(f"{number}\tU{i % 7}\t{time}\t{history}\t{tokens}")
    (folder / "behaviors.tsv").write_text("\n".join(lines) + "\n")
    return folder


def behaviors_on(folder: Path, day: str) -> int:
    """Lines of behaviors.tsv on ``day`` (MM/DD/YYYY): what the loader must keep."""
    text = (folder / "behaviors.tsv").read_text()
    return sum(line.split("\t")[2].startswith(day) for line in text.splitlines())


def tokens_in(folder: Path) -> list[str]:
    text = (folder / "behaviors.tsv").read_text()
    return [t for line in text.splitlines() for t in line.split("\t")[4].split()]


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sparse_mind(tmp_path_factory.mktemp("sparse-news") / "log")


@pytest.fixture(scope="module")
def large_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated log with every news row and well over 200 clicked impressions
    on each of its two days."""
    folder = tmp_path_factory.mktemp("large-mind")
    params = SyntheticMindParams(days=2, news_per_day=60, impressions_per_day=900, n_users=400)
    write_synthetic_mind(folder, params)
    return folder


def test_the_written_log_lacks_news_rows_for_most_candidates(sparse: Path) -> None:
    tokens = tokens_in(sparse)
    missing = [t for t in tokens if t.split("-")[0] not in WITH_NEWS]
    assert len(tokens) == (DAY1_IMPRESSIONS + TEST_DAY_IMPRESSIONS) * CANDIDATES_PER_IMPRESSION
    assert len(missing) / len(tokens) > 0.9


def test_the_loader_keeps_every_candidate_and_counts_the_ones_without_news(sparse: Path) -> None:
    data = read_mind(sparse)
    tokens = tokens_in(sparse)
    missing = [t for t in tokens if t.split("-")[0] not in WITH_NEWS]
    assert len(data.candidates) == len(tokens)
    assert int(data.candidates["label"].sum()) == DAY1_IMPRESSIONS + TEST_DAY_IMPRESSIONS
    assert data.candidates_without_news == len(missing)
    assert len(data.articles_without_news) == N_ARTICLES - len(WITH_NEWS)
    assert data.history_without_news == 2  # N77, N78
    # Nothing was bad, so nothing is rejected: a missing news row is not a rejection.
    assert data.problems.empty
    summary = data.summary()
    assert f"{len(missing):,} of {len(tokens):,} candidates" in summary
    assert "rejected" not in summary


def test_an_article_without_news_has_no_text_and_its_first_shown_time(sparse: Path) -> None:
    data = read_mind(sparse)
    articles = data.articles.set_index("article_id")
    assert len(articles) == N_ARTICLES
    n3 = articles.loc["N3"]
    assert n3["title"] == n3["body"] == n3["category"] == ""
    assert n3["site"] == MIND_UNKNOWN_SITE
    assert n3["url"] == "https://mind.invalid/N3"
    shown = data.candidates[data.candidates["article_id"] == "N3"]["ts"].min()
    assert n3["published_at"] == shown
    assert articles.loc["N1", "site"] == "news" and articles.loc["N1", "title"] != ""
    assert list(data.articles_with_text["article_id"]) == list(WITH_NEWS)


def test_the_replay_ranks_every_impression_of_the_test_day(sparse: Path) -> None:
    data = read_mind(sparse)
    on_test_day = behaviors_on(sparse, "11/14/2019")
    assert on_test_day == TEST_DAY_IMPRESSIONS
    result = replay(data, refresh_minutes=60)
    assert result.candidates["impression_id"].nunique() == on_test_day
    assert len(result.candidates) == on_test_day * CANDIDATES_PER_IMPRESSION
    table = metric_table(result.candidates, list(METHODS), n_boot=20)
    assert (table["n_impressions"] == on_test_day).all()
    # Trending scores an article without news from its traffic, like any other: in the
    # static split each article's all-time clicks are its day-1 clicks.
    static = replay(data, refresh_minutes=None).candidates
    clicks = static.groupby("article_id")["clicks"].first()
    day1 = data.candidates[data.candidates["ts"] < TEST_DAY]
    expected = day1.groupby("article_id")["label"].sum()
    for article in clicks.index:
        assert clicks[article] == expected.get(article, 0), article
    assert clicks.max() > 0 and set(clicks[clicks > 0].index) - set(WITH_NEWS)
    engine = static.groupby("article_id")["engine"].first()
    assert np.isfinite(engine).all() and engine.nunique() > 1


def test_content_relevance_is_zero_without_text(sparse: Path) -> None:
    data = read_mind(sparse)
    ids = pd.Index(data.articles["article_id"].astype(str))
    X = article_features(data.articles)
    assert X.shape[0] == len(ids)
    without = ids.isin(data.articles_without_news)
    assert X[np.flatnonzero(without)].nnz == 0 and X[np.flatnonzero(~without)].nnz > 0
    result = replay(data, refresh_minutes=60)
    histories = data.behaviors.set_index("impression_id")["history"]
    relevance, has_history = history_relevance(X, ids, result.candidates, histories)
    no_text = result.candidates["article_id"].isin(data.articles_without_news).to_numpy()
    assert (relevance[no_text] == 0).all()
    assert (relevance[~no_text & has_history] > 0).all()
    # Impressions whose history names only ids without news have no profile.
    assert has_history.any() and not has_history.all()
    published = data.articles.set_index("article_id")["published_at"]
    scored = blend_scores(result.candidates, relevance, published)
    assert scored["blend"].notna().all()


def test_evaluate_mind_counts_every_impression_and_warns(sparse: Path, tmp_path: Path) -> None:
    data = read_mind(sparse)
    with pytest.warns(SmallSampleWarning) as caught:
        evaluation = evaluate_mind(data, refresh_minutes=(60.0,), n_boot=20)
    issued = [str(w.message) for w in caught]
    assert issued == evaluation.facts["warnings"] and len(issued) == 2
    facts = evaluation.facts
    assert facts["window_impressions"] == TEST_DAY_IMPRESSIONS
    assert facts["window_impressions_clicked"] == TEST_DAY_IMPRESSIONS
    assert facts["candidates_without_news"] == data.candidates_without_news
    assert facts["min_impressions"] == MIN_IMPRESSIONS
    assert (evaluation.replay["n_impressions"] == TEST_DAY_IMPRESSIONS).all()
    # The metrics are still there, with the warning beside them.
    assert evaluation.replay["mean"].notna().all()
    replay_warning = facts["warnings"][0]
    assert "SMALL SAMPLE" in replay_warning and "27 impressions" in replay_warning
    assert "not reliable" in replay_warning and str(MIN_IMPRESSIONS) in replay_warning
    assert any("history" in w for w in facts["warnings"][1:])  # the blend's sample too
    # The list metrics are of the articles with text.
    assert not evaluation.lists.empty
    # The report opens with the warning, above every table.
    page = write_report(evaluation, tmp_path / "report.html").read_text()
    warning_at = page.index('class="warning"')
    assert warning_at < page.index("<table") and warning_at < page.index("Trending replay")
    assert "27 impressions with a click" in page
    # With a threshold below the sample, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        quiet = evaluate_mind(
            data, refresh_minutes=(60.0,), n_boot=0, lists=False, min_impressions=5
        )
    assert quiet.facts["warnings"] == []
    assert 'class="warning"' not in write_report(quiet, tmp_path / "quiet.html").read_text()


def test_the_evaluate_command_warns_in_red_on_a_small_sample(sparse: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    args = ["evaluate", "--mind-dir", str(sparse), "--refresh", "60", "--bootstrap", "20"]
    done = CliRunner().invoke(cli, [*args, "-o", str(report), "--json", str(tmp_path / "e.json")])
    assert done.exit_code == 0, done.output
    text = done.output
    warning_lines = [line for line in text.splitlines() if line.startswith("WARNING: SMALL SAMPLE")]
    assert warning_lines, text
    assert f"only {TEST_DAY_IMPRESSIONS} impressions with a click" in warning_lines[0]
    assert "not reliable" in warning_lines[0]
    # Before the tables, and again after them.
    assert text.index("WARNING: SMALL SAMPLE") < text.index("Trending replay")
    assert text.rindex("WARNING: SMALL SAMPLE") > text.index("Trending replay")
    # The loader's summary: a plain count of the candidates without news, not a rejection.
    data = read_mind(sparse)
    assert f"{data.candidates_without_news:,} of {len(data.candidates):,} candidates" in text
    assert "rejected" not in text
    assert "SMALL SAMPLE" in report.read_text()
    facts = json.loads((tmp_path / "e.json").read_text())["facts"]
    assert facts["warnings"] and facts["window_impressions"] == TEST_DAY_IMPRESSIONS
    # --min-impressions sets the threshold.
    low = CliRunner().invoke(
        cli, [*args, "--no-lists", "--min-impressions", "20", "-o", str(tmp_path / "low.html")]
    )
    assert low.exit_code == 0, low.output
    # 27 clicked impressions on the test day reach 20; the blend's 14 (with a history) do not.
    assert "the trending replay of" not in low.output
    assert "WARNING: SMALL SAMPLE: content vs trending vs blend" in low.output


def test_the_warning_is_bold_red(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import recommender.cli.evaluate as command

    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=200)
    monkeypatch.setattr(command, "out", console)
    command.print_sample_warnings(["SMALL SAMPLE: 27 impressions"])
    assert "\x1b[1;31mWARNING: SMALL SAMPLE: 27 impressions" in console.file.getvalue()  # type: ignore[attr-defined]


def test_the_tune_command_warns_on_a_small_sample(sparse: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned.toml"
    done = CliRunner().invoke(
        cli,
        [
            *["tune", "--mind-dir", str(sparse), "--weights", "0.45:0.4:0.15,0.2:0.8:0"],
            *["--half-life", "24", "--caps", "5:3", "--out", str(out)],
        ],
    )
    assert done.exit_code == 0, done.output
    lines = [line for line in done.output.splitlines() if line.startswith("WARNING: SMALL SAMPLE")]
    assert any("validation day 2019-11-13" in line for line in lines), done.output
    assert any("test day 2019-11-14" in line for line in lines), done.output
    assert all("not reliable" in line for line in lines)
    assert "# WARNING: SMALL SAMPLE" in out.read_text()  # the tuned config says so too


def test_tune_records_the_warning(sparse: Path) -> None:
    data = read_mind(sparse)
    with pytest.warns(SmallSampleWarning):
        result = tune(data, weights=[(0.45, 0.4, 0.15)], half_lives=[24.0], caps=[(5, 3)])
    assert len(result.warnings) == 2
    assert int(result.test["n_impressions"].min()) < MIN_IMPRESSIONS


def test_a_large_enough_sample_gets_no_warning(large_log: Path, tmp_path: Path) -> None:
    data = read_mind(large_log)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        evaluation = evaluate_mind(data, refresh_minutes=(60.0,), n_boot=0, lists=False)
        result = tune(data, weights=[(0.45, 0.4, 0.15)], half_lives=[24.0], caps=[(5, 3)])
    assert evaluation.facts["warnings"] == [] and result.warnings == []
    assert evaluation.facts["window_impressions_clicked"] >= MIN_IMPRESSIONS
    assert int(evaluation.replay["n_impressions"].min()) >= MIN_IMPRESSIONS
    done = CliRunner().invoke(
        cli,
        [
            *["evaluate", "--mind-dir", str(large_log), "--refresh", "60", "--bootstrap", "20"],
            *["--no-static", "--no-lists", "-o", str(tmp_path / "large.html")],
        ],
    )
    assert done.exit_code == 0, done.output
    assert "Trending replay" in done.output
    assert "WARNING" not in done.output and "SMALL SAMPLE" not in done.output
    assert 'class="warning"' not in (tmp_path / "large.html").read_text()
