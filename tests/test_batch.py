from __future__ import annotations

import pandas as pd
import pytest

from recommender.batch import run_batch
from recommender.errors import InputError, SchemaError
from recommender.progress import StageTimer
from recommender.serving import Recommendations
from recommender.store import open_store
from tests.conftest import tiny_articles


def test_run_publishes_every_list_and_reports(tiny_network) -> None:
    config, folder = tiny_network
    summary, model = run_batch(config)
    assert summary.articles == 9 and summary.articles_rejected == 0
    assert summary.events_read == 350 and summary.views == 350
    assert summary.lists == 9 + 3 + 1  # articles, site pages, network
    assert summary.coverage["full_lists"] == 1.0
    assert list(summary.timings) == [
        "load",
        "features",
        "similarity",
        "trending",
        "dedupe",
        "mix",
        "publish",
        "save model",
    ]
    store = open_store(config.store.url)
    assert store.current_run_id() == summary.run_id
    assert store.current_run().summary["articles"] == 9
    published = store.get("a-sake")
    expected = next(
        lst for lst in model.recommendation_lists(summary.run_id) if lst.source_id == "a-sake"
    )
    assert [i.article_id for i in published.items] == [i.article_id for i in expected.items]
    assert (folder / "model.rec").exists()


def test_bad_rows_are_reported_and_the_good_ones_published(tiny_network, tmp_path) -> None:
    config, folder = tiny_network
    raw = tiny_articles()
    raw.loc[8, "url"] = "not a url"
    raw.to_csv(folder / "articles.csv", index=False)
    rejects = tmp_path / "rejects.csv"
    summary, _ = run_batch(config, rejects_path=rejects)
    assert summary.articles == 8 and summary.articles_rejected == 1
    assert any("row 9 field 'url'" in line for line in summary.problems)
    assert pd.read_csv(rejects)[["row", "field"]].values.tolist() == [[9, "url"]]


def test_a_failed_run_leaves_the_last_good_lists_in_place(tiny_network) -> None:
    config, folder = tiny_network
    first, _ = run_batch(config)
    before = open_store(config.store.url).get("a-sake")

    (folder / "articles.csv").write_text("article_id,site\n")  # a broken export
    with pytest.raises(SchemaError, match="missing required column"):
        run_batch(config)

    raw = tiny_articles()
    raw["url"] = "nonsense"  # every row bad
    raw.to_csv(folder / "articles.csv", index=False)
    rejects = folder / "rejects.csv"
    with pytest.raises(InputError, match="9 of 9 article rows rejected"):
        run_batch(config, rejects_path=rejects)
    assert len(pd.read_csv(rejects)) == 9  # written even though the run failed

    store = open_store(config.store.url)
    assert store.current_run_id() == first.run_id
    assert store.get("a-sake") == before
    assert Recommendations(config.store.url).get("a-sake").run_id == first.run_id


def test_a_second_run_replaces_the_first(tiny_network) -> None:
    config, _ = tiny_network
    first, _ = run_batch(config)
    second, _ = run_batch(config, now=pd.Timestamp("2021-03-09T00:00:00Z"), progress=StageTimer())
    store = open_store(config.store.url)
    assert store.current_run_id() == second.run_id != first.run_id
    assert [r.run_id for r in store.runs()] == [second.run_id, first.run_id]
    assert second.now.startswith("2021-03-09")


def test_no_article_files(tiny_network) -> None:
    config, _ = tiny_network
    config = config.model_copy(update={"data": config.data.model_copy(update={"articles": []})})
    with pytest.raises(InputError, match="names no article files"):
        run_batch(config)


def test_events_for_unknown_articles_are_counted(tiny_network) -> None:
    config, folder = tiny_network
    events = pd.read_csv(folder / "events.csv")
    extra = pd.DataFrame(
        {
            "ts": [events["ts"][0]] * 3,
            "article_id": ["ghost", None, None],
            "url": [None, "https://alpha.example/a-sake/?utm=x", "https://alpha.example/unknown"],
            "kind": "view",
        }
    )
    pd.concat([events, extra]).to_csv(folder / "events.csv", index=False)
    summary, _ = run_batch(config)
    assert summary.events_unmatched == 2
    assert summary.views == 351  # the URL one matched a-sake after normalising


def test_failed_runs_are_recorded_with_their_error(tiny_network) -> None:
    config, folder = tiny_network
    first, _ = run_batch(config)
    (folder / "articles.csv").write_text("article_id,site\n")
    with pytest.raises(SchemaError):
        run_batch(config)
    store = open_store(config.store.url)
    failed, current = store.runs()
    assert current.run_id == first.run_id and current.status == "current"
    assert failed.status == "failed" and "missing required column" in failed.error
    assert failed.summary["timings"]["load"] >= 0


def test_run_records_carry_counts_timings_and_coverage(tiny_network) -> None:
    config, _ = tiny_network
    summary, _ = run_batch(config)
    run = open_store(config.store.url).run(summary.run_id)
    assert run.config_hash == config.config_hash() and run.model_version == summary.model_version
    assert run.summary["articles_read"] == 9 and run.summary["events_read"] == 350
    assert set(run.summary["timings"]) >= {"load", "features", "similarity", "mix"}
    assert run.summary["coverage"]["full_lists"] == 1.0
    assert run.n_lists == summary.lists and run.published_at
