"""Faults a data engineer meets, for every store backend: the store keeps
serving the last good run and the next run succeeds."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.errors import StoreError
from recommender.store import open_store
from tests.postgres_server import fresh_url, require_postgres
from tests.store_contract import make_list, make_run

REPO = Path(__file__).resolve().parents[1]

SLOW_PUBLISH = """
import sys, time
from recommender.store import open_store
from tests.store_contract import make_list
from recommender.lists import RunInfo

store = open_store(sys.argv[1])
def lists():
    for i in range(1_000_000):
        if i == 2000:
            print("STARTED", flush=True)
        if i % 1000 == 0:
            time.sleep(0.01)
        yield make_list(f"s{i}", "run-killed")
store.publish(lists(), RunInfo("run-killed", "2021-03-08T01:00:00+00:00"))
print("FINISHED", flush=True)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lists.sqlite'}"
        return
    require_postgres()
    url = fresh_url()
    yield url
    open_store(url).drop()


def served(url: str) -> tuple[str | None, str | None]:
    store = open_store(url)
    try:
        lst = store.get("s1")
        return store.current_run_id(), lst.run_id if lst else None
    finally:
        store.close()


def test_sigkill_during_publish_leaves_the_previous_run(store_url: str) -> None:
    store = open_store(store_url)
    store.publish(*make_run("run-01"))
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_PUBLISH, store_url], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "STARTED"
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert served(store_url) == ("run-01", "run-01")
    assert [r.run_id for r in open_store(store_url).runs()] == ["run-01"]
    # The next run succeeds (locks were released with the dead process).
    fresh = open_store(store_url)
    fresh.publish(*make_run("run-02"))
    assert served(store_url) == ("run-02", "run-02")


def test_a_failing_database_mid_publish_gives_a_clear_error(store_url: str) -> None:
    store = open_store(store_url)
    store.publish(*make_run("run-01"))
    lists, run = make_run("run-02", n_lists=50)

    if store_url.startswith("sqlite"):
        # Disk full: SQLite's page limit makes the file unable to grow.
        conn = store._conn()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        big = [make_list(f"s{i}", "run-02", n_items=40) for i in range(200)]
        with pytest.raises(StoreError, match=r"publish of run run-02 failed.*full"):
            store.publish(big, run)
        # The failed publish dropped that connection; a new one has no page limit.
    else:
        # The server drops the connection mid-publish, as a restart does.
        killer = open_store(store_url)
        pid = store._conn().info.backend_pid

        def lists_then_kill():
            yield from lists[:10]
            killer._conn().execute("SELECT pg_terminate_backend(%s)", (pid,))
            yield from lists[10:]

        with pytest.raises(
            StoreError, match="publish of run run-02 failed, the previous run stays served"
        ):
            store.publish(lists_then_kill(), run)
        killer.close()

    assert served(store_url) == ("run-01", "run-01")
    # The same store object recovers: it reconnects and publishes.
    store.publish(lists, run)
    assert served(store_url) == ("run-02", "run-02")


def test_a_locked_sqlite_store_times_out_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lists.sqlite"
    store = open_store(path)
    store.publish(*make_run("run-01"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, and stuck
    store.timeout = 0.2
    store.close()
    try:
        with pytest.raises(StoreError, match="database is locked"):
            store.publish(*make_run("run-02"))
        assert served(f"sqlite:///{path}") == ("run-01", "run-01")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.publish(*make_run("run-02"))
    assert served(f"sqlite:///{path}") == ("run-02", "run-02")


def test_unreachable_postgres_fails_fast_and_clearly() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot connect"):
        open_store("postgresql://postgres@127.0.0.1:1/test")
    assert time.monotonic() - started < 10


def test_readers_in_other_processes_see_whole_runs(store_url: str) -> None:
    store = open_store(store_url)
    store.publish(*make_run("run-000", n_lists=300))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, store_url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    published = 0
    while reader.poll() is None and published < 500:  # publish while the reader reads
        published += 1
        store.publish(*make_run(f"run-{published:03d}", n_lists=300))
    out, errors = reader.communicate(timeout=60)
    assert reader.returncode == 0, errors
    seen = out.split()
    assert len(set(seen)) >= 2, "the reader saw no publish happen"
    assert seen == sorted(seen)


READER = """
import sys, time
from recommender.store import open_store
store = open_store(sys.argv[1])
changes = []  # the run ids seen, each time the served run changed
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    for i in range(0, 300, 60):
        lst = store.get(f"s{i}")
        assert len(lst.items) == 3, lst
        assert {item.article_id.split("/")[0] for item in lst.items} == {lst.run_id}
        if not changes or changes[-1] != lst.run_id:
            changes.append(lst.run_id)
print(" ".join(changes))
"""
