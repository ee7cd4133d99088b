"""The Store contract, as a reusable test class.

Every backend's test module subclasses :class:`StoreContract` and provides a
``store`` fixture (a fresh, empty store), ``reopen`` (a second handle on the
same store, as another process would have) and ``read_only`` (a function
opening a read-only handle on it, as a web server's reader does).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from recommender.errors import StoreError
from recommender.lists import Item, RecommendationList, RunInfo, SerializedList


def make_list(source_id: str, run_id: str, n_items: int = 3) -> RecommendationList:
    items = tuple(
        Item(
            article_id=f"{run_id}/{source_id}-{j}",
            site="beta",
            site_name="Beta Life",
            category="Food",
            title=f"Item {j} <b>&</b> 'quoted'",
            url=f"https://b.example/{j}",
            image_url=None,
            score=1.0 - j / 10,
            relevance=0.5,
            trend=0.2,
            freshness=0.1,
            reason="related",
        )
        for j in range(n_items)
    )
    return RecommendationList(source_id, "alpha", items, run_id, "2021-03-08T00:00:00+00:00")


def make_run(run_id: str, n_lists: int = 20) -> tuple[list[RecommendationList], RunInfo]:
    lists = [make_list(f"s{i}", run_id) for i in range(n_lists)]
    return lists, RunInfo(
        run_id, f"2021-03-08T00:00:{run_id[-2:]}+00:00", "hash", "v1", {"articles": n_lists}
    )


class StoreContract:
    @pytest.fixture
    def store(self):
        raise NotImplementedError

    @pytest.fixture
    def reopen(self, store):
        raise NotImplementedError

    @pytest.fixture
    def read_only(self, store):
        raise NotImplementedError

    def test_empty_store_serves_nothing(self, store) -> None:
        assert store.current_run() is None and store.current_run_id() is None
        assert store.get("s1") is None and store.runs() == []

    def test_publish_then_get_round_trips(self, store) -> None:
        lists, run = make_run("run-01")
        recorded = store.publish(iter(lists), run)
        assert recorded.run_id == "run-01" and recorded.n_lists == 20
        assert recorded.summary == {"articles": 20}
        assert store.get("s3") == lists[3]
        assert store.get("unknown") is None

    def test_a_new_run_replaces_the_old_as_a_whole(self, store) -> None:
        store.publish(make_run("run-01")[0], make_run("run-01")[1])
        lists, run = make_run("run-02", n_lists=5)
        store.publish(lists, run)
        assert store.current_run_id() == "run-02"
        assert store.get("s4").run_id == "run-02"
        assert store.get("s10") is None  # only in the old run

    def test_keeps_the_last_runs_and_rolls_back(self, store) -> None:
        for i in range(1, 8):
            store.publish(*make_run(f"run-0{i}", n_lists=2))
        kept = [r.run_id for r in store.runs()]
        assert kept == [f"run-0{i}" for i in range(7, 7 - store.keep_runs, -1)]
        assert [r.status for r in store.runs()][:2] == ["current", "kept"]
        store.rollback("run-05")
        assert store.current_run_id() == "run-05" and store.get("s1").run_id == "run-05"
        with pytest.raises(StoreError, match="no kept run"):
            store.rollback("run-01")
        assert store.run("run-07").status == "kept"
        assert store.run("run-05").status == "current"

    def test_a_failing_publish_leaves_the_previous_run_served(self, store, reopen) -> None:
        store.publish(*make_run("run-01"))
        lists, run = make_run("run-02")

        def broken():
            yield from lists[:10]
            raise RuntimeError("scoring crashed half way")

        with pytest.raises(RuntimeError, match="half way"):
            store.publish(broken(), run)
        for handle in (store, reopen):
            assert handle.current_run_id() == "run-01"
            assert handle.get("s1").run_id == "run-01"
            assert [r.run_id for r in handle.runs()] == ["run-01"]

    def test_empty_and_repeated_runs_are_refused(self, store) -> None:
        store.publish(*make_run("run-01"))
        with pytest.raises(StoreError, match="no lists"):
            store.publish([], make_run("run-02")[1])
        with pytest.raises(StoreError, match="already recorded"):
            store.publish(*make_run("run-01"))
        assert store.current_run_id() == "run-01"

    def test_readers_never_see_a_mix_of_runs(self, store, reopen) -> None:
        store.publish(*make_run("run-00", n_lists=200))
        seen: list[str] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def read() -> None:
            try:
                while not stop.is_set():
                    for i in range(0, 200, 40):
                        lst = reopen.get(f"s{i}")
                        # A list is whole and of one run: every item names its run.
                        assert len(lst.items) == 3
                        assert {item.article_id.split("/")[0] for item in lst.items} == {lst.run_id}
                        seen.append(lst.run_id)
            except BaseException as error:
                errors.append(error)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for i in range(1, 6):
                store.publish(*make_run(f"run-0{i}", n_lists=200))
        finally:
            stop.set()
            reader.join()
        assert not errors, errors[0]
        assert seen[-1] == "run-05" or reopen.get("s0").run_id == "run-05"
        # Runs switch atomically and in order: once a reader saw a run, it never
        # sees an older one again.
        assert seen == sorted(seen)

    def test_failed_runs_are_recorded_but_never_served(self, store) -> None:
        store.publish(*make_run("run-01"))
        failed = RunInfo("run-02", "2021-03-08T00:00:02+00:00", "hash", "", {"articles": 0})
        store.record_failure(failed, "input error: articles.csv: file not found")
        assert store.current_run_id() == "run-01"
        recorded = store.run("run-02")
        assert recorded.status == "failed" and "file not found" in recorded.error
        assert [r.status for r in store.runs()] == ["failed", "current"]
        with pytest.raises(StoreError, match="no kept run"):
            store.rollback("run-02")

    def test_runs_record_what_the_batch_says(self, store) -> None:
        lists, run = make_run("run-01")
        recorded = store.publish(lists, run)
        assert recorded.config_hash == "hash" and recorded.model_version == "v1"
        assert recorded.created_at == run.created_at and recorded.published_at
        assert recorded.n_lists == len(lists) and recorded.error == ""

    # -- ids the database must never see (tests/test_store_*.py run both backends) --

    def test_an_invalid_id_is_not_found_and_leaves_the_store_working(self, store) -> None:
        store.publish(*make_run("run-01"))
        for bad in INVALID_IDS:
            assert store.get(bad) is None, repr(bad)
            assert store.get_payload(bad) is None, repr(bad)
            assert store.run(bad) is None, repr(bad)
        # Nothing reached the database: the same handle still reads.
        assert store.get("s1").run_id == "run-01" and store.current_run_id() == "run-01"
        with pytest.raises(StoreError, match="no kept run"):
            store.rollback("run\x00-01")
        assert store.current_run_id() == "run-01"

    @pytest.mark.parametrize("serialized", [False, True], ids=["objects", "json"])
    def test_a_list_with_an_invalid_source_id_is_refused(self, store, serialized) -> None:
        store.publish(*make_run("run-01"))
        lists, run = make_run("run-02")
        lists[7] = replace(lists[7], source_id="s\x007")
        with pytest.raises(StoreError, match=r"run run-02: source id 's\\x007' is not a valid id"):
            store.publish(as_json(lists) if serialized else lists, run)
        assert store.current_run_id() == "run-01" and store.run("run-02") is None

    @pytest.mark.parametrize("serialized", [False, True], ids=["objects", "json"])
    @pytest.mark.parametrize(
        "bad, problem",
        [
            ("x\x00y", "U+0000"),
            ("x\u2028y", "U+2028"),
            (" x", "whitespace"),
            ("", "empty"),
            ('q"\\\x1f', "U+001F"),
        ],
    )
    def test_a_list_with_an_invalid_item_id_is_refused(
        self, store, serialized, bad, problem
    ) -> None:
        store.publish(*make_run("run-01"))
        lists, run = make_run("run-02")
        items = list(lists[3].items)
        items[1] = replace(items[1], article_id=bad)
        lists[3] = replace(lists[3], items=tuple(items))
        with pytest.raises(StoreError) as info:
            store.publish(as_json(lists) if serialized else lists, run)
        message = str(info.value)
        assert f"list 's3': item article_id {bad!r} is not a valid id" in message
        assert problem in message and "the current run stays served" in message
        assert store.current_run_id() == "run-01" and store.run("run-02") is None

    def test_changes_with_invalid_ids(self, store) -> None:
        store.publish(*make_run("run-01"))
        lists, run = make_run("run-02", n_lists=2)
        bad = [replace(lists[0], source_id="s\x000")]
        with pytest.raises(StoreError, match="is not a valid id"):
            store.publish_changes(bad, run)
        # An invalid id among the removed names no list: ignored.
        store.publish_changes(lists[1:], run, removed=["s5", "s\x006", 7])
        assert store.current_run().n_lists == 19 and store.get("s5") is None
        with pytest.raises(StoreError, match="run id 'run\\\\x00-03' is not a valid id"):
            store.publish(*make_run("run\x00-03"))

    def test_a_failed_run_is_recorded_whatever_its_error_says(self, store) -> None:
        """An error message may quote bad input: a NUL byte (refused by
        PostgreSQL, in text and in JSON alike) or a lone surrogate (not
        UTF-8) is replaced, on every backend alike."""
        store.publish(*make_run("run-01"))
        failed = RunInfo(
            "run-02",
            "2021-03-08T00:00:02+00:00",
            summary={"problems": ["row 3: article_id 'a\x00b'", "\ud800"], "n": 1},
        )
        store.record_failure(failed, "input error: 'a\x00b' and '\udcff'")
        recorded = store.run("run-02")
        assert recorded.status == "failed" and store.current_run_id() == "run-01"
        assert recorded.error == "input error: 'a\ufffdb' and '?'"
        assert recorded.summary == {"problems": ["row 3: article_id 'a\ufffdb'", "?"], "n": 1}

    # -- read-only handles --------------------------------------------------------

    def test_a_read_only_handle_reads_and_never_writes(self, store, read_only) -> None:
        store.publish(*make_run("run-01"))
        reader = read_only()
        assert reader.read_only and reader.current_run_id() == "run-01"
        assert reader.get("s1") == store.get("s1")
        assert [r.run_id for r in reader.runs()] == ["run-01"]
        for write in (
            lambda: reader.publish(*make_run("run-02")),
            lambda: reader.publish_changes(*make_run("run-02")),
            lambda: reader.record_failure(make_run("run-02")[1], "boom"),
            lambda: reader.rollback("run-01"),
        ):
            with pytest.raises(StoreError, match="opened read-only"):
                write()
        store.publish(*make_run("run-02"))
        assert reader.current_run_id() == "run-02" and reader.get("s1").run_id == "run-02"
        assert [r.run_id for r in store.runs()] == ["run-02", "run-01"]


#: Ids no list can have (see recommender.ids), each of which once reached the
#: database: PostgreSQL raises on a NUL and on a non-text parameter.
INVALID_IDS = [
    "a\x00b",
    "\x00",
    123,
    None,
    ["s1"],
    "",
    " s1",
    "s1\n",
    "s\u20281",
    "x" * 300,
    "\ud800",
]


def as_json(lists: list[RecommendationList]) -> list[SerializedList]:
    """The lists as the batch hands them to a store: already JSON."""
    return [SerializedList(lst.source_id, lst.to_json()) for lst in lists]
