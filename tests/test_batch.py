from __future__ import annotations

import pandas as pd
import pytest

from recommender.batch import run_batch
from recommender.errors import InputError, SchemaError
from recommender.model import Recommender
from recommender.progress import StageTimer
from recommender.serving import Recommendations
from recommender.store import open_store
from tests.conftest import NOW, tiny_articles


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


# -- updates: the saved model's vocabulary reused, only changed lists written ----------
def updating(config, hours: float = 24.0):
    return config.model_copy(
        update={"run": config.run.model_copy(update={"refit_after_hours": hours})}
    )


def assert_store_serves(config, model, run_id: str) -> None:
    """The store's current run holds exactly the model's lists."""
    store = open_store(config.store.url)
    assert store.current_run_id() == run_id
    expected = {lst.source_id: lst for lst in model.recommendation_lists(run_id)}
    assert sorted(store.source_ids()) == sorted(expected)
    for source_id, lst in expected.items():
        served = store.get(source_id)
        assert [(i.article_id, i.score, i.url) for i in served.items] == [
            (i.article_id, i.score, i.url) for i in lst.items
        ]


def test_runs_update_the_saved_model_and_write_only_the_changed_lists(tiny_network) -> None:
    config, folder = tiny_network
    config = updating(config)
    # A tiny network: most lists change; write them as changes all the same.
    config = config.model_copy(
        update={"store": config.store.model_copy(update={"compact_fraction": 1.0})}
    )
    first, _ = run_batch(config)
    assert first.mode == "fit" and first.lists_written == first.lists

    again, model = run_batch(config)
    assert again.mode == "update" and again.lists_written == 0
    assert_store_serves(config, model, again.run_id)

    raw = tiny_articles()
    raw.loc[raw["article_id"] == "c-fuji", "url"] = "https://gamma.example/fuji-fixed"
    raw = raw[raw["article_id"] != "b-fuji"]
    extra = raw[raw["article_id"] == "a-sake"].assign(
        article_id="a-sake-2", url="https://alpha.example/sake-2", title="Sake breweries, again"
    )
    pd.concat([raw, extra]).to_csv(folder / "articles.csv", index=False)
    changed, model = run_batch(config)

    assert changed.mode == "update" and 0 < changed.lists_written < changed.lists
    assert_store_serves(config, model, changed.run_id)
    assert open_store(config.store.url).current_run().is_delta
    assert open_store(config.store.url).get("b-fuji") is None
    assert (
        model.vectorizer_.vocabulary_
        == Recommender.load(folder / "model.rec").vectorizer_.vocabulary_
    )


def test_an_update_after_a_rollback_writes_every_list(tiny_network) -> None:
    config, _ = tiny_network
    config = updating(config)
    first, _ = run_batch(config)
    run_batch(config)
    open_store(config.store.url).rollback(first.run_id)

    summary, model = run_batch(config)

    # The store no longer serves what the saved model published: no changes to build on.
    assert summary.mode == "update" and summary.lists_written == summary.lists
    assert_store_serves(config, model, summary.run_id)


def test_a_refit_comes_when_due_or_when_the_config_changed(tiny_network) -> None:
    config, _ = tiny_network
    run_batch(updating(config, hours=1))
    late, _ = run_batch(updating(config, hours=1), now=NOW + pd.Timedelta(hours=2))
    assert late.mode == "fit" and "refit due" in late.mode_reason
    soon, _ = run_batch(updating(config, hours=1), now=NOW + pd.Timedelta(hours=2, minutes=30))
    assert soon.mode == "update"
    other = updating(config, hours=1)
    other = other.model_copy(update={"mix": other.mix.model_copy(update={"k": 3})})
    changed, _ = run_batch(other, now=NOW + pd.Timedelta(hours=2, minutes=30))
    assert changed.mode == "fit" and "configuration changed" in changed.mode_reason


def test_an_update_that_moves_most_lists_publishes_a_full_run(tiny_network) -> None:
    config, _ = tiny_network
    config = updating(config)
    run_batch(config)

    # An hour later every freshness score moved: every list changed.
    summary, model = run_batch(config, now=NOW + pd.Timedelta(hours=1))

    assert summary.mode == "update" and summary.lists_written == summary.lists
    served = open_store(config.store.url).current_run()
    assert served.run_id == summary.run_id and not served.is_delta
    assert_store_serves(config, model, summary.run_id)
