"""Delta publishes (``Store.publish_changes``), for every store backend.

A run published as changes must read exactly like a full run of the same
lists: through ``get``/``get_payload``/``source_ids``/``n_lists``, after
deltas on deltas, compaction, rollbacks and pruning. The PostgreSQL cases skip
with the reason when no server is reachable.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.errors import StoreError
from recommender.lists import RecommendationList, RunInfo
from recommender.serving import Recommendations
from recommender.store import open_store
from recommender.store.sqlite import SQLiteStore
from tests.postgres_server import fresh_url, require_postgres
from tests.store_contract import make_list

OpenStore = Callable[..., object]
Lists = dict[str, str]  # source id -> payload JSON


@pytest.fixture(params=["sqlite", "postgres"])
def open_backend(request, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens handles on one fresh store of the backend (as many as asked, as
    other processes would), with the given ``keep_runs``/``compact_fraction``."""
    if request.param == "postgres":
        require_postgres()
        url = fresh_url()
    else:
        url = f"sqlite:///{tmp_path / 'lists.sqlite'}"
    opened = []

    def open_(**options):
        store = open_store(url, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    if request.param == "postgres":
        open_store(url).drop()


def run_info(run_id: str) -> RunInfo:
    return RunInfo(run_id, "2021-03-08T00:00:00+00:00", "hash", "v1", {"articles": 1})


def lists_of(run_id: str, sources) -> list[RecommendationList]:
    return [make_list(source, run_id) for source in sources]


def payloads(lists: list[RecommendationList]) -> Lists:
    return {lst.source_id: lst.to_json() for lst in lists}


def full(store, run_id: str, sources) -> Lists:
    lists = lists_of(run_id, sources)
    store.publish(lists, run_info(run_id))
    return payloads(lists)


def changes(store, run_id: str, before: Lists, changed=(), removed=()) -> Lists:
    """Publish ``changed`` (re-computed by ``run_id``) and ``removed``; the
    lists the run should serve."""
    lists = lists_of(run_id, changed)
    store.publish_changes(iter(lists), run_info(run_id), removed=iter(removed))
    after = {s: p for s, p in before.items() if s not in set(removed)}
    return after | payloads(lists)


def assert_serves(store, expected: Lists, universe=()) -> None:
    """``store``'s current run serves exactly ``expected``."""
    current = store.current_run()
    assert current is not None and current.n_lists == len(expected)
    assert list(store.source_ids()) == sorted(expected)
    for source_id in sorted(set(universe) | set(expected) | {"nope"}):
        assert store.get_payload(source_id) == expected.get(source_id), source_id
        got = store.get(source_id)
        if source_id not in expected:
            assert got is None, source_id
            continue
        # The list as computed, except that it is reported as the served run's.
        own = RecommendationList.from_json(expected[source_id])
        assert got == replace(own, run_id=current.run_id), source_id


def count_rows(store, run_id: str) -> tuple[int, int]:
    """(rows stored for ``run_id``, of which tombstones)."""
    ((rows, tombstones),) = store._fetch(
        "SELECT count(*), coalesce(sum(CASE WHEN payload = '' THEN 1 ELSE 0 END), 0) "
        "FROM lists WHERE run_id = %s",
        (run_id,),
    )
    return int(rows), int(tombstones)


SOURCES = [f"s{i:02d}" for i in range(20)]
UNIVERSE = [*SOURCES, "s20", "s21"]


def test_changes_replace_add_and_remove_lists(open_backend: OpenStore) -> None:
    store = open_backend()
    base = full(store, "run-01", SOURCES)
    expected = changes(
        store, "run-02", base, changed=["s01", "s02", "s20"], removed=["s03", "s04", "nope"]
    )
    assert_serves(store, expected, UNIVERSE)
    assert store.get_payload("s05") == base["s05"]  # carried over: the JSON as computed
    assert store.get("s05").run_id == "run-02" and store.get("s01").run_id == "run-02"
    run = store.current_run()
    assert run.run_id == "run-02" and run.status == "current" and run.is_delta
    assert (run.base_run_id, run.n_lists, run.delta_rows) == ("run-01", 19, 5)
    assert count_rows(store, "run-02") == (5, 2)  # 2 changed, 1 added, 2 tombstones
    assert store.run("run-01").status == "kept" and not store.run("run-01").is_delta
    assert_serves(open_backend(), expected, UNIVERSE)  # another process reads the same


def test_a_delta_on_a_delta_accumulates_on_the_same_base(open_backend: OpenStore) -> None:
    store = open_backend(keep_runs=10, compact_fraction=0.5)
    run1 = full(store, "run-01", SOURCES)
    run2 = changes(store, "run-02", run1, changed=["s01", "s02", "s20"], removed=["s03", "s04"])
    # s01 changed again, s05 changed, s03 back, s20 (an addition) and s06 removed.
    run3 = changes(store, "run-03", run2, changed=["s01", "s05", "s03"], removed=["s20", "s06"])
    assert_serves(store, run3, UNIVERSE)
    assert store.get_payload("s02") == run2["s02"]  # run-02's change persists
    assert store.get_payload("s07") == run1["s07"]
    run = store.current_run()
    assert (run.base_run_id, run.n_lists, run.delta_rows) == ("run-01", 18, 6)
    # s01, s02, s03, s05 and the tombstones of s04 and s06: one layer, no s20.
    assert count_rows(store, "run-03") == (6, 2)
    run4 = changes(store, "run-04", run3)  # nothing changed: the same lists
    assert run4 == run3 and store.current_run().n_lists == 18
    assert_serves(store, run4, UNIVERSE)
    assert store.current_run().base_run_id == "run-01"


def test_rollback_to_the_full_run_and_back_to_a_delta(open_backend: OpenStore) -> None:
    store = open_backend(keep_runs=10)
    run1 = full(store, "run-01", SOURCES)
    run2 = changes(store, "run-02", run1, changed=["s01", "s20"], removed=["s03"])
    run3 = changes(store, "run-03", run2, changed=["s02"], removed=["s01"])
    store.rollback("run-01")
    assert_serves(store, run1, UNIVERSE)
    assert store.run("run-02").status == "kept"
    rolled = store.rollback("run-02")
    assert rolled.status == "current" and rolled.base_run_id == "run-01"
    assert_serves(store, run2, UNIVERSE)
    assert_serves(open_backend(), run2, UNIVERSE)
    # Changes now build on run-02, not on run-03.
    run4 = changes(store, "run-04", run2, changed=["s09"])
    assert_serves(store, run4, UNIVERSE)
    store.rollback("run-03")
    assert_serves(store, run3, UNIVERSE)
    # A full publish after a delta: no base any more.
    run5 = full(store, "run-05", SOURCES[:4])
    assert_serves(store, run5, UNIVERSE)
    assert store.current_run().base_run_id == ""


def kept_runs(store) -> list[str]:
    return [r.run_id for r in store.runs() if r.status in ("current", "kept")]


def assert_every_kept_run_reads(store, model: dict[str, Lists]) -> None:
    """Every kept run, rolled back to, serves its exact lists (then the
    current run is served again)."""
    current = store.current_run_id()
    for run_id in kept_runs(store):
        store.rollback(run_id)
        assert_serves(store, model[run_id], UNIVERSE)
    store.rollback(current)


def test_pruning_keeps_the_base_of_every_kept_delta(open_backend: OpenStore) -> None:
    store = open_backend(keep_runs=2)
    model = {"run-01": full(store, "run-01", SOURCES)}
    for i in range(2, 6):
        model[f"run-0{i}"] = changes(
            store, f"run-0{i}", model[f"run-0{i - 1}"], changed=[f"s{i:02d}"], removed=[]
        )
        # The current delta, the newest other run, and run-01: their base.
        assert kept_runs(store) == [f"run-0{i}", f"run-0{i - 1}"] + (["run-01"] if i > 2 else [])
        assert_every_kept_run_reads(store, model)
    assert kept_runs(store) == ["run-05", "run-04", "run-01"]
    # Rolled back to an old run's base, the deltas stay (they are the newest).
    store.rollback("run-01")
    model["run-06"] = full(store, "run-06", SOURCES[:5])
    assert kept_runs(store) == ["run-06", "run-05", "run-01"]
    assert_every_kept_run_reads(store, model)
    model["run-07"] = changes(store, "run-07", model["run-06"], changed=["s01"])
    assert kept_runs(store) == ["run-07", "run-06"]  # run-01 no longer needed
    assert count_rows(store, "run-01") == (0, 0) and count_rows(store, "run-05") == (0, 0)
    assert_every_kept_run_reads(store, model)


def test_keep_runs_1_keeps_the_current_delta_and_its_base(open_backend: OpenStore) -> None:
    store = open_backend(keep_runs=1)
    run1 = full(store, "run-01", SOURCES)
    run2 = changes(store, "run-02", run1, changed=["s01"])
    run3 = changes(store, "run-03", run2, removed=["s02"])
    assert kept_runs(store) == ["run-03", "run-01"]
    assert_serves(store, run3, UNIVERSE)
    store.rollback("run-01")
    assert_serves(store, run1, UNIVERSE)
    with pytest.raises(StoreError, match="no kept run 'run-02'"):
        store.rollback("run-02")


def test_a_large_delta_is_compacted_into_a_full_run(open_backend: OpenStore) -> None:
    store = open_backend(keep_runs=10)  # compact_fraction 0.25: 5 of the 20 lists
    assert store.compact_fraction == 0.25
    run1 = full(store, "run-01", SOURCES)
    run2 = changes(store, "run-02", run1, changed=["s01", "s02", "s03"], removed=["s04"])
    assert store.current_run().is_delta and count_rows(store, "run-02") == (4, 1)
    # Cumulative: 4 rows carried + 2 new = 6 > 5: written as a full run.
    run3 = changes(store, "run-03", run2, changed=["s05", "s21"])
    run = store.current_run()
    assert not run.is_delta and (run.base_run_id, run.n_lists, run.delta_rows) == ("", 20, 0)
    assert count_rows(store, "run-03") == (20, 0)  # every list, no tombstone
    assert_serves(store, run3, UNIVERSE)
    assert_serves(open_backend(), run3, UNIVERSE)
    # The next delta builds on the compacted run.
    run4 = changes(store, "run-04", run3, changed=["s06"])
    assert store.current_run().base_run_id == "run-03"
    assert_serves(store, run4, UNIVERSE)
    assert_every_kept_run_reads(
        store, {"run-01": run1, "run-02": run2, "run-03": run3, "run-04": run4}
    )


def test_compact_fraction_0_always_writes_full_runs(open_backend: OpenStore) -> None:
    store = open_backend(compact_fraction=0)
    run1 = full(store, "run-01", SOURCES)
    run2 = changes(store, "run-02", run1, changed=["s01"], removed=["s02"])
    assert not store.current_run().is_delta and count_rows(store, "run-02") == (19, 0)
    assert_serves(store, run2, UNIVERSE)
    # ... except for a run with no change at all: an empty delta.
    changes(store, "run-03", run2)
    assert store.current_run().is_delta and count_rows(store, "run-03") == (0, 0)
    assert_serves(store, run2, UNIVERSE)


@pytest.mark.parametrize("on_a_delta", [False, True])
def test_a_failing_publish_of_changes_leaves_the_previous_run(
    open_backend: OpenStore, on_a_delta: bool
) -> None:
    store = open_backend()
    served = full(store, "run-01", SOURCES)
    if on_a_delta:
        served = changes(store, "run-02", served, changed=["s01"], removed=["s02"])
    before = [(r.run_id, r.status) for r in store.runs()]

    def broken():
        yield from lists_of("run-03", ["s03", "s04"])
        raise RuntimeError("scoring crashed half way")

    with pytest.raises(RuntimeError, match="half way"):
        store.publish_changes(broken(), run_info("run-03"), removed=["s05"])
    for handle in (store, open_backend()):
        assert [(r.run_id, r.status) for r in handle.runs()] == before
        assert_serves(handle, served, UNIVERSE)
    # A database failure (here: a source id twice) names the store and the run.
    twice = lists_of("run-03", ["s03", "s03"])
    with pytest.raises(StoreError, match="publish of run run-03 failed") as info:
        store.publish_changes(twice, run_info("run-03"))
    assert store._describe() in str(info.value)
    assert_serves(store, served, UNIVERSE)
    # The same run id then publishes.
    expected = changes(store, "run-03", served, changed=["s03"])
    assert_serves(store, expected, UNIVERSE)


def test_changes_are_refused_with_a_clear_error(open_backend: OpenStore) -> None:
    store = open_backend()
    with pytest.raises(StoreError, match="no run is current to build on"):
        store.publish_changes(lists_of("run-01", ["s01"]), run_info("run-01"))
    assert store.runs() == [] and store.current_run_id() is None
    run1 = full(store, "run-01", SOURCES[:3])
    with pytest.raises(StoreError, match="already recorded"):
        store.publish_changes(lists_of("run-01", ["s01"]), run_info("run-01"))
    with pytest.raises(StoreError, match="'s01' is both changed and removed"):
        store.publish_changes(lists_of("run-02", ["s01"]), run_info("run-02"), removed=["s01"])
    with pytest.raises(StoreError, match="remove every list"):
        store.publish_changes([], run_info("run-02"), removed=SOURCES[:3])
    # Changes computed against another run than the one served (a rollback in between).
    with pytest.raises(StoreError, match="changes to run run-00: the store now serves run run-01"):
        store.publish_changes(lists_of("run-02", ["s01"]), run_info("run-02"), based_on="run-00")
    assert [r.run_id for r in store.runs()] == ["run-01"]
    assert_serves(store, run1, UNIVERSE)
    store.publish_changes(lists_of("run-02", ["s01"]), run_info("run-02"), based_on="run-01")
    assert store.current_run_id() == "run-02"


def test_runs_report_deltas_and_their_base(open_backend: OpenStore) -> None:
    store = open_backend()
    full(store, "run-01", SOURCES)
    recorded = store.publish_changes(
        lists_of("run-02", ["s01"]), run_info("run-02"), removed=["s02"]
    )
    assert recorded.run_id == "run-02" and recorded.status == "current"
    assert (recorded.base_run_id, recorded.n_lists, recorded.delta_rows) == ("run-01", 19, 2)
    assert recorded.summary == {"articles": 1} and recorded.published_at
    assert [(r.run_id, r.status, r.base_run_id) for r in store.runs()] == [
        ("run-02", "current", "run-01"),
        ("run-01", "kept", ""),
    ]
    assert store.run("run-02") == recorded


def test_readers_see_whole_runs_while_deltas_are_published(open_backend: OpenStore) -> None:
    store = open_backend(keep_runs=3)
    reader = open_backend()
    watched = [f"s{i:02d}" for i in range(0, 20, 4)]
    full(store, "run-00", SOURCES)
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                for source_id in watched:
                    lst = reader.get(source_id)
                    # Every delta changes the watched lists: a list is of the
                    # run it is served in, never of the base under it.
                    assert {i.article_id.split("/")[0] for i in lst.items} == {lst.run_id}
                    seen.append(lst.run_id)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(1, 8):
            store.publish_changes(lists_of(f"run-0{i}", watched), run_info(f"run-0{i}"))
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[0]
    assert seen == sorted(seen) and store.current_run().is_delta


def test_serving_caches_the_lists_a_delta_carries_over(tmp_path: Path) -> None:
    class CountingStore(SQLiteStore):
        gets = 0

        def get(self, source_id: str) -> RecommendationList | None:
            self.gets += 1
            return super().get(source_id)

    store = CountingStore(tmp_path / "lists.sqlite")
    full(store, "run-01", SOURCES)
    changes(store, "run-02", {}, changed=["s01"])
    recs = Recommendations(store, refresh_seconds=3600)
    assert recs.get("s05").run_id == "run-02" and recs.get("s01").run_id == "run-02"
    assert recs.get("s05", 2).run_id == "run-02"
    assert store.gets == 2  # s05 and s01 once each; then from the cache


# -- property: any sequence of publishes, changes and rollbacks ------------------

_IDS = ["a", "b", "c", "d", "site:x", "network", "é", "a'b"]

_step = st.one_of(
    st.tuples(st.just("full"), st.sets(st.sampled_from(_IDS), min_size=1)),
    st.tuples(st.just("changes"), st.sets(st.sampled_from(_IDS)), st.sets(st.sampled_from(_IDS))),
    st.tuples(st.just("broken"), st.sets(st.sampled_from(_IDS))),
    st.tuples(st.just("rollback"), st.integers(min_value=0, max_value=10)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_step, min_size=1, max_size=12),
    keep_runs=st.integers(min_value=1, max_value=4),
    compact_fraction=st.sampled_from([0.0, 0.25, 0.5, 10.0]),
)
def test_any_sequence_of_runs_reads_like_the_model(steps, keep_runs, compact_fraction) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(
            Path(folder) / "lists.sqlite", keep_runs=keep_runs, compact_fraction=compact_fraction
        )
        try:
            _check_steps(store, steps, keep_runs)
        finally:
            store.close()


def _check_steps(store, steps, keep_runs: int) -> None:
    model: dict[str, Lists] = {}  # run -> {source: payload JSON}
    published: list[str] = []  # in publish order
    current: str | None = None
    for n, step in enumerate(steps):
        run_id = f"r{n:03d}"
        kept_before = kept_runs(store)
        if step[0] == "full":
            lists = lists_of(run_id, sorted(step[1]))
            store.publish(lists, run_info(run_id))
            model[run_id] = payloads(lists)
        elif step[0] == "broken":
            lists = lists_of(run_id, sorted(step[1]))

            def broken(lists=lists):
                yield from lists
                raise RuntimeError("crashed")

            with pytest.raises((RuntimeError, StoreError)):
                store.publish_changes(broken(), run_info(run_id), removed=["a"])
        elif step[0] == "changes":
            removed = sorted(step[2])
            lists = lists_of(run_id, sorted(step[1] - step[2]))
            after = {
                s: p for s, p in model.get(current or "", {}).items() if s not in step[2]
            } | payloads(lists)
            if current is None or not after:
                with pytest.raises(StoreError, match=r"no run is current|remove every list"):
                    store.publish_changes(lists, run_info(run_id), removed=removed)
            else:
                store.publish_changes(lists, run_info(run_id), removed=removed)
                model[run_id] = after
        elif kept_before:
            store.rollback(kept_before[step[1] % len(kept_before)])
        if run_id in model:  # published: the runs beyond keep_runs are pruned
            current = run_id
            published.append(run_id)
            # Kept: the current run, the newest keep_runs - 1 others, and the
            # base of each of them.
            window = {current, *[r for r in reversed(published) if r != current][: keep_runs - 1]}
            bases = {store.run(r).base_run_id for r in window} - {""}
            assert set(kept_runs(store)) == window | bases
        else:  # nothing published, nothing pruned
            current = store.current_run_id()
            assert kept_runs(store) == kept_before
        if current is None:
            assert store.current_run_id() is None and store.get("a") is None
            continue
        assert store.current_run_id() == current
        assert_serves(store, model[current], _IDS)
        for run_id in kept_runs(store):
            store.rollback(run_id)
            assert_serves(store, model[run_id], _IDS)
        store.rollback(current)
