from __future__ import annotations

import pandas as pd
import pytest

from recommender import artifact
from recommender.batch import run_batch
from recommender.errors import InputError, SchemaError, StoreError
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
    # Articles, site pages, the network, and a section page per site and label (9).
    assert summary.lists == 9 + 3 + 1 + 9
    assert summary.coverage["full_lists"] == 1.0
    assert summary.editorial == []  # no rules: nothing for the editors
    assert list(summary.timings) == [
        "load",
        "features",
        "similarity",
        "trending",
        "dedupe",
        "mix",
        "save model",  # written (under a temporary name) before anything is published
        "publish",
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
    assert any("row 10 field 'url'" in line for line in summary.problems)
    assert pd.read_csv(rejects)[["row", "field"]].values.tolist() == [[10, "url"]]


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


# -- the model file: no code runs on load; it always agrees with the served run -----
def test_a_model_file_crafted_to_run_code_is_refused_and_the_run_refits(
    tiny_network, tmp_path
) -> None:
    from tests.test_artifact import forge_pickle_model

    config, folder = tiny_network
    config = updating(config)
    run_batch(config)
    marker = tmp_path / "ran"
    forge_pickle_model(folder / "model.rec", marker)  # its checksum recomputed

    summary, _ = run_batch(config)

    assert not marker.exists()
    assert summary.mode == "fit" and "model file format 1" in summary.mode_reason
    assert Recommender.load(folder / "model.rec").published_run_id_ == summary.run_id


def temporary_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_failed_publish_leaves_the_saved_model_as_it_was(tiny_network, monkeypatch) -> None:
    config, folder = tiny_network
    first, _ = run_batch(config)

    def lost_connection(*args, **kwargs):
        raise StoreError("the database went away")

    monkeypatch.setattr("recommender.batch.publish_model", lost_connection)
    with pytest.raises(StoreError):
        run_batch(config)

    store = open_store(config.store.url)
    failed, current = store.runs()
    assert current.run_id == first.run_id and failed.status == "failed"
    assert Recommender.load(folder / "model.rec").published_run_id_ == first.run_id
    assert temporary_files(folder) == []


def test_a_rename_failing_after_the_commit_leaves_the_run_published(
    tiny_network, monkeypatch
) -> None:
    """Only the rename is left after the commit: should it fail (the folder
    made read-only meanwhile), the run is published all the same, and says
    that its model was not saved."""
    config, folder = tiny_network
    first, _ = run_batch(config)

    def read_only(self):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(artifact.PendingArtifact, "commit", read_only)
    summary, _ = run_batch(config)

    assert summary.model_path is None
    assert "not saved" in summary.model_error and "Read-only file system" in summary.model_error
    run = open_store(config.store.url).current_run()
    assert run.run_id == summary.run_id and run.status == "current"
    assert Recommender.load(folder / "model.rec").published_run_id_ == first.run_id
    assert temporary_files(folder) == []


def test_an_error_the_store_reports_after_its_commit_does_not_fail_the_run(
    tiny_network, monkeypatch
) -> None:
    """The store answers with an error although it committed (a connection
    lost before the commit's answer, pruning old runs failed): the store
    serving the run decides, so the run is published, recorded once, and
    its model saved."""
    import recommender.batch as batch

    config, folder = tiny_network
    publish = batch.publish_model

    def committed_then_lost(*args, **kwargs):
        publish(*args, **kwargs)
        raise StoreError("server closed the connection unexpectedly")

    monkeypatch.setattr(batch, "publish_model", committed_then_lost)
    summary, _ = run_batch(config)

    store = open_store(config.store.url)
    assert [(r.run_id, r.status) for r in store.runs()] == [(summary.run_id, "current")]
    assert summary.lists_written == summary.lists
    assert Recommender.load(folder / "model.rec").published_run_id_ == summary.run_id


def test_a_model_left_unrenamed_by_a_killed_run_is_put_in_place_or_removed(
    tiny_network,
) -> None:
    """What a kill between the publish's commit and the rename leaves (the
    model under its temporary name), the next run settles: put in place when
    the store serves that run, removed otherwise (tests/test_faults.py kills
    a real run)."""
    config, folder = tiny_network
    config = updating(config)
    _, model = run_batch(config)
    model.published_run_id_ = "a-run-never-published"
    model.save_pending(folder / "model.rec")
    assert len(temporary_files(folder)) == 1
    second, _ = run_batch(config)
    assert temporary_files(folder) == []
    assert Recommender.load(folder / "model.rec").published_run_id_ == second.run_id

    # As if killed after the commit: the store serves the run, the file is not in place.
    store = open_store(config.store.url)
    served = store.current_run_id()
    model.published_run_id_ = served
    model.save_pending(folder / "model.rec")
    (folder / "model.rec").unlink()
    third, _ = run_batch(config)
    assert third.mode == "update"  # it built on the model it put in place
    assert temporary_files(folder) == []
    assert Recommender.load(folder / "model.rec").published_run_id_ == third.run_id


# -- events after the reference time; missing data files ----------------------------
def test_events_dated_after_the_reference_time_are_counted(tiny_network) -> None:
    config, folder = tiny_network
    events = pd.read_csv(folder / "events.csv")
    later = pd.DataFrame(
        {
            "ts": [(NOW + pd.Timedelta(hours=h)).isoformat() for h in (1, 2, 30)],
            "article_id": ["a-sake", "b-baby", "c-fuji"],
            "kind": "view",
        }
    )
    pd.concat([events, later]).to_csv(folder / "events.csv", index=False)

    summary, model = run_batch(config)

    assert summary.events_read == 353 and summary.events_after_now == 3
    assert summary.views == 350 == int(model.trend_["views"].sum())  # not counted
    run = open_store(config.store.url).run(summary.run_id)
    assert run.summary["events_after_now"] == 3


@pytest.mark.parametrize("key", ["articles", "events"])
def test_a_missing_data_file_names_its_config_key(tiny_network, key) -> None:
    config, folder = tiny_network
    data = config.data.model_copy(update={key: [folder / "var" / "nope.csv"]})
    config = config.model_copy(update={"data": data})
    with pytest.raises(SchemaError) as info:
        run_batch(config, config_source="network.toml")
    assert str(info.value) == (
        f"data.{key}: {folder / 'var' / 'nope.csv'}: file not found "
        f"(set [data] {key} in network.toml)"
    )
    # A glob pattern may match nothing (an empty spool folder): not an error.
    data = config.data.model_copy(
        update={"articles": [folder / "articles.csv"], "events": [folder / "spool" / "*.csv"]}
    )
    summary, _ = run_batch(config.model_copy(update={"data": data}))
    assert summary.events_read == 0


def test_settings_that_change_no_list_keep_the_saved_model(tiny_network, tmp_path) -> None:
    config, _ = tiny_network
    config = updating(config)
    first, model = run_batch(config)
    elsewhere = tmp_path / "other-store.sqlite"
    how = config.model_copy(
        update={
            "similarity": config.similarity.model_copy(
                update={"n_jobs": 1, "kernel": "scipy", "max_block_mb": 1.0}
            ),
            "store": config.store.model_copy(update={"url": f"sqlite:///{elsewhere}"}),
            "run": config.run.model_copy(
                update={"cluster": "local:2", "max_rejected_fraction": 0.9}
            ),
        }
    )
    assert how.config_hash() != config.config_hash()
    assert how.model_hash() == config.model_hash()
    # The cluster itself is not what this test is about: run in process.
    how_here = how.model_copy(update={"run": how.run.model_copy(update={"cluster": None})})
    again, updated = run_batch(how_here)
    assert again.mode == "update", again.mode_reason
    assert again.model_version == first.model_version
    assert updated.config.store.url == f"sqlite:///{elsewhere}"  # this run's own settings
    expected = {lst.source_id: lst.items for lst in model.recommendation_lists("r")}
    got = {lst.source_id: lst.items for lst in updated.recommendation_lists("r")}
    assert got == expected
    served = open_store(f"sqlite:///{elsewhere}")
    assert served.current_run_id() == again.run_id

    # A setting that changes lists does refit.
    other = how_here.model_copy(update={"mix": how_here.mix.model_copy(update={"k": 3})})
    assert other.model_hash() != config.model_hash()
    changed, _ = run_batch(other)
    assert changed.mode == "fit" and "configuration changed" in changed.mode_reason


def test_a_model_saved_under_other_list_rules_is_refitted(tiny_network, monkeypatch) -> None:
    """After an upgrade that changes the lists the same settings give, the
    saved model is not updated: the run refits and says why."""
    import recommender.config

    config, _ = tiny_network
    run_batch(updating(config))
    monkeypatch.setattr(recommender.config, "LIST_RULES", recommender.config.LIST_RULES + 1)
    summary, _ = run_batch(updating(config), now=NOW + pd.Timedelta(minutes=10))
    assert summary.mode == "fit" and "other list rules" in summary.mode_reason
