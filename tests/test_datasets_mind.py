from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.datasets import MIND_SITES, mind_site, read_mind, read_mind_behaviors
from recommender.datasets.synthetic import SyntheticMindParams, write_synthetic_mind
from recommender.errors import SchemaError

FIXTURE = Path(__file__).parent / "fixtures" / "mind"


@pytest.fixture(scope="module")
def mind():
    return read_mind(FIXTURE)


def test_articles_get_sites_by_the_documented_rule(mind) -> None:
    a = mind.articles.set_index("article_id")
    assert len(a) == 7 and mind.problems.empty
    assert a.loc["N1", "site"] == "news" and a.loc["N2", "site"] == "news"  # news, sports
    assert a.loc["N3", "site"] == "lifestyle"
    assert a.loc["N5", "site"] == "foodanddrink"
    assert a.loc["N7", "site"] == "entertainment"  # movies
    assert a.loc["N1", "category"] == "news" and a.loc["N1", "tags"] == "newsus"
    assert a.loc["N1", "body"].startswith("Lawmakers vote")
    assert a.loc["N7", "url"] == "https://mind.invalid/N7"  # MIND rows may lack a URL
    assert list(mind_site(pd.Series(["Sports", "kids", "unknown-section"]))) == [
        "news",
        "lifestyle",
        "news",
    ]
    assert set(MIND_SITES.values()) == {
        "news",
        "lifestyle",
        "travel",
        "foodanddrink",
        "health",
        "entertainment",
    }


def test_published_at_is_the_first_time_shown(mind) -> None:
    a = mind.articles.set_index("article_id")["published_at"]
    assert a["N1"] == pd.Timestamp("2019-11-13T08:00:00Z")
    assert a["N4"] == pd.Timestamp("2019-11-13T09:00:00Z")
    assert a["N5"] == pd.Timestamp("2019-11-14T10:00:00Z")
    # Only in histories: dated at the log's start.
    assert a["N6"] == a["N7"] == mind.start == pd.Timestamp("2019-11-13T08:00:00Z")


def test_behaviors_and_candidates(mind) -> None:
    assert len(mind.behaviors) == 11
    assert mind.end == pd.Timestamp("2019-11-14T12:00:00Z")
    first = mind.behaviors.iloc[0]
    assert first["user_id"] == "U1" and first["history"] == "N6 N7" and first["n_candidates"] == 3
    assert mind.behaviors.loc[2, "history"] == ""  # an empty history stays empty
    c = mind.candidates
    assert len(c) == 31 and int(c["label"].sum()) == 10
    nine = c[c["impression_id"] == "9"]
    assert list(nine["article_id"]) == ["N5", "N2", "N1"]
    assert list(nine["position"]) == [0, 1, 2]
    assert list(nine["label"]) == [1, 0, 0]


def test_events_are_impressions_and_clicks(mind) -> None:
    events = mind.events()
    counts = events["kind"].value_counts()
    assert counts["impression"] == 31 and counts["click"] == 10
    assert events["ts"].is_monotonic_increasing
    assert set(events["session"].dropna()) == {"U1", "U2", "U3", "U4", "U5"}
    assert str(events["ts"].dtype) == "datetime64[ns, UTC]"


def test_bad_rows_are_rejected_with_their_line(tmp_path: Path) -> None:
    news = (FIXTURE / "news.tsv").read_text()
    (tmp_path / "news.tsv").write_text(news + "N8\tnews\tnewsus\t\tNo title.\t\t[]\t[]\n")
    lines = [
        "1\tU1\t11/13/2019 8:00:00 AM\tN6\tN1-1 N2-0",
        "2\tU2\tyesterday\tN6\tN1-1",  # bad time
        "3\tU3\t11/13/2019 9:00:00 AM\t\tN1-7",  # bad label
        "4\tU4\t11/13/2019 9:30:00 AM\t",  # missing field
        "5\tU5\t11/13/2019 10:00:00 AM\t\tN2-1 N9-0 N8-0",  # N9: no news row; N8: a bad one
        "6\tU6\t11/13/2019 10:30:00 AM\t\t",  # no candidates
    ]
    (tmp_path / "behaviors.tsv").write_text("\n".join(lines) + "\n")
    data = read_mind(tmp_path)
    assert list(data.behaviors["impression_id"]) == ["1", "5"]
    behaviors = data.problems[data.problems["file"].str.endswith("behaviors.tsv")]
    problems = behaviors.set_index("row")
    assert "unparsable time" in problems.loc[2, "reason"]
    assert "malformed candidate" in problems.loc[3, "reason"]
    assert "wrong number of fields" in problems.loc[4, "reason"]
    assert "no candidates" in problems.loc[6, "reason"]
    # The bad news row is still rejected with its file, line and field...
    bad_news = data.problems[data.problems["file"].str.endswith("news.tsv")]
    assert list(bad_news["row"]) == [8] and list(bad_news["field"]) == ["title"]
    # ...but a missing news row rejects nothing: the candidate is an impression all the same.
    assert not data.problems["reason"].str.contains("unknown news id").any()
    assert len(data.problems) == 5
    assert list(data.candidates["article_id"]) == ["N1", "N2", "N2", "N9", "N8"]
    assert list(data.articles_without_news) == ["N9", "N8"]
    assert data.candidates_without_news == 2


def test_test_split_tokens_have_unknown_labels(tmp_path: Path) -> None:
    path = tmp_path / "behaviors.tsv"
    path.write_text("1\tU1\t11/15/2019 8:00:00 AM\tN1\tN2 N3\n")
    behaviors, candidates, problems = read_mind_behaviors(path)
    assert problems.empty and len(behaviors) == 1
    assert candidates["label"].isna().all()


def test_several_folders_keep_impression_ids_apart(tmp_path: Path) -> None:
    for name in ("train", "dev"):
        folder = tmp_path / name
        folder.mkdir()
        for file in ("news.tsv", "behaviors.tsv"):
            (folder / file).write_text((FIXTURE / file).read_text())
    data = read_mind([tmp_path / "train", tmp_path / "dev"])
    assert len(data.articles) == 7
    assert data.behaviors["impression_id"].is_unique
    assert {"train/1", "dev/1"} <= set(data.behaviors["impression_id"])


def test_missing_folder_or_file_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not a folder"):
        read_mind(tmp_path / "nope")
    with pytest.raises(SchemaError, match=r"behaviors\.tsv: file not found"):
        read_mind(tmp_path)


def test_synthetic_log_is_valid_mind_and_repeatable(tmp_path: Path) -> None:
    params = SyntheticMindParams(days=2, news_per_day=40, impressions_per_day=150, n_users=60)
    first = write_synthetic_mind(tmp_path / "a", params)
    second = write_synthetic_mind(tmp_path / "b", params)
    assert (tmp_path / "a" / "behaviors.tsv").read_text() == (
        tmp_path / "b" / "behaviors.tsv"
    ).read_text()
    data = read_mind(first.folder)
    assert data.problems.empty
    assert len(data.behaviors) == first.n_impressions == second.n_impressions
    assert int(data.candidates["label"].sum()) == first.n_clicks > 0
    assert (data.end - data.start) > pd.Timedelta(hours=36)
