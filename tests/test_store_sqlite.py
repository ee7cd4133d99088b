from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from recommender.errors import StoreError
from recommender.store import open_store
from recommender.store.sqlite import MIGRATIONS, SQLiteStore
from tests.store_contract import StoreContract, make_run


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path):
        store = open_store(f"sqlite:///{tmp_path / 'lists.sqlite'}", keep_runs=3)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, store):
        other = SQLiteStore(store.path, keep_runs=store.keep_runs)
        yield other
        other.close()

    @pytest.fixture
    def read_only(self, store):
        opened = []
        yield lambda: opened.append(open_store(store.path, read_only=True)) or opened[-1]
        for handle in opened:
            handle.close()


def test_plain_paths_and_urls_open_sqlite(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "a.sqlite"), SQLiteStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/b.sqlite"), SQLiteStore)


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis://localhost/0", "unsupported store scheme"),
        ("sqlite://", "needs a path"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match="not a database"):
        open_store(path)


def test_a_store_of_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99 was written by a newer"):
        open_store(path)


def test_readers_share_a_store_across_threads(tmp_path: Path) -> None:
    import threading

    store = open_store(tmp_path / "s.sqlite")
    store.publish(*make_run("run-01"))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.get("s1").run_id)) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["run-01"] * 4


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0][1])
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO runs VALUES ('run-00', '2021-01-01', 'published', '', '', 1, '{}')"
        )
        conn.execute(
            "INSERT INTO lists VALUES ('run-00', 's0', ?)", (make_run("run-00", 1)[0][0].to_json(),)
        )
        conn.execute("INSERT INTO meta VALUES ('current_run', 'run-00')")
    store = open_store(path, compact_fraction=5)  # 2 new lists on 1: still a delta
    assert store.get("s0").run_id == "run-00"
    assert store.current_run().published_at == ""
    assert store.current_run().base_run_id == "" and not store.current_run().is_delta
    # The old full run is a base for a delta run.
    lists, run = make_run("run-01", 3)
    store.publish_changes(lists[1:], run)
    assert store.current_run().base_run_id == "run-00" and store.current_run().n_lists == 3
    assert list(store.source_ids()) == ["s0", "s1", "s2"]
    store.publish(*make_run("run-02"))
    assert [r.run_id for r in store.runs()] == ["run-02", "run-01", "run-00"]


def test_a_read_only_open_creates_and_changes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "lists.sqlite"
    for options in ({"read_only": True}, {"create": False}):
        with pytest.raises(StoreError, match=r"no store there \(nothing published yet\)"):
            open_store(missing, **options)
    assert not missing.parent.exists()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(StoreError, match="not a recommendation store yet"):
        open_store(empty, read_only=True)
    assert empty.stat().st_size == 0


def test_a_read_only_open_reads_an_older_schema_and_refuses_a_newer(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0][1])
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO lists VALUES ('run-00', 's0', ?)", (make_run("run-00", 1)[0][0].to_json(),)
        )
        conn.execute("INSERT INTO meta VALUES ('current_run', 'run-00')")
    conn.close()
    reader = open_store(path, read_only=True)
    assert reader.current_run_id() == "run-00" and reader.get("s0").run_id == "run-00"
    with pytest.raises(StoreError, match=r"schema is version 1.*`recommender run` migrates it"):
        reader.runs()
    reader.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "1",
        )
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99 was written by a newer"):
        open_store(path, read_only=True)


def journal_mode(path: Path) -> str:
    """The journal mode the file's header says (WAL or the rollback journal)."""
    with open(path, "rb") as file:
        header = file.read(20)
    return "wal" if header[18:20] == b"\x02\x02" else "rollback"


def test_a_writer_leaves_the_file_readable_without_its_wal(tmp_path: Path) -> None:
    """See recommender.store.sqlite: a writer works in WAL mode, and its close
    leaves the file whole in the rollback-journal mode when nobody else has it
    open; with a reader connected, the WAL mode (and its files) stay, the WAL
    checkpointed to nothing."""
    path = tmp_path / "lists.sqlite"
    writer = open_store(path)
    writer.publish(*make_run("run-01"))
    assert journal_mode(path) == "wal"
    writer.close()
    assert journal_mode(path) == "rollback" and sorted(os.listdir(tmp_path)) == ["lists.sqlite"]
    reader = open_store(path, read_only=True)
    assert reader.get("s1").run_id == "run-01"
    writer = open_store(path)
    writer.publish(*make_run("run-02", n_lists=500))
    assert reader.get("s1").run_id == "run-02"  # a reader follows the switch to WAL
    writer.close()
    assert journal_mode(path) == "wal" and Path(f"{path}-wal").stat().st_size == 0
    assert reader.get("s2").run_id == "run-02"
    reader.close()
    writer = open_store(path)
    writer.close()
    assert journal_mode(path) == "rollback" and sorted(os.listdir(tmp_path)) == ["lists.sqlite"]


def test_a_writer_without_write_access_says_how_to_read(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "lists.sqlite"
    open_store(path).close()
    real_connect = sqlite3.connect

    def read_only_connect(database, *args, **kwargs):  # as for a user that may only read it
        uri = f"{Path(database).absolute().as_uri()}?mode=ro"
        return real_connect(uri, *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only_connect)
    with pytest.raises(StoreError, match=r"cannot write the store .*read_only=True"):
        open_store(path)
    assert sorted(os.listdir(tmp_path)) == ["lists.sqlite"]
