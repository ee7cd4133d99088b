"""A reader that may only read a SQLite store: the web server's user, with read
access to the store file and its folder and nothing else.

SQLite can read a WAL-mode file only when its ``-shm`` file exists or can be
created; in a folder the reader cannot write, it could not be, so the reader
got "attempt to write a readonly database" (and empty lists) whenever no writer
had the file open. The batch now leaves the file in the rollback-journal mode
when it closes (see recommender.store.sqlite), and the reader opens it
read-only. These tests run the reader as the unprivileged user ``nobody`` on a
store written by root in a folder only root can write, and skip with the
reason when that cannot be arranged (not root, no user nobody).

The reader is a process forked from this one that then gives up root for
nobody (``setgid``/``setuid``): it needs no interpreter of its own that nobody
may run (a Python installed under root's home is not), and every module it
uses was imported before the fork (:func:`_warm_up` runs the same reads once
as root on a copy, so that nothing is imported lazily from a folder nobody
cannot read).
"""

from __future__ import annotations

import multiprocessing
import os
import pwd
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.serving import Recommendations
from recommender.store import open_store
from tests.store_contract import make_list, make_run

_FORK = multiprocessing.get_context("fork")


def _become_nobody() -> None:
    user = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def _serve_reads(conn: Connection, path: str) -> None:
    """The reader: answers ("get", article_id, site) and ("cli", args) messages."""
    recs: Recommendations | None = None
    conn.send(
        {
            "can_write_folder": os.access(os.path.dirname(path), os.W_OK),
            "can_write_file": os.access(path, os.W_OK),
        }
    )
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        if message[0] == "get":
            if recs is None:
                recs = Recommendations(path, refresh_seconds=0)
            block = recs.get(message[1], site=message[2])
            health = recs.health()
            conn.send(
                {
                    "items": [item.article_id for item in block.items],
                    "fallback_source": block.fallback_source,
                    "run_id": block.run_id,
                    "store_available": health.store_available,
                    "error": health.error,
                }
            )
        else:
            os.chdir(os.path.dirname(path))
            done = CliRunner().invoke(cli, message[1])
            conn.send({"exit_code": done.exit_code, "stdout": done.stdout, "stderr": done.stderr})
    if recs is not None:
        recs.close()


def _child(conn: Connection, parent_end: Connection, path: str, as_nobody: bool) -> None:
    parent_end.close()  # else the child never sees the parent close its end
    try:
        if as_nobody:
            _become_nobody()
        _serve_reads(conn, path)
    except BaseException as error:  # reported to the test, not lost in a child
        conn.send({"died": repr(error)})
    finally:
        conn.close()
        os._exit(0)


class Reader:
    """A reader process (as nobody by default), asked for lists one at a time."""

    def __init__(self, store: Path, *, as_nobody: bool = True) -> None:
        self.conn, child = _FORK.Pipe()
        self.process = _FORK.Process(target=_child, args=(child, self.conn, str(store), as_nobody))
        self.process.start()
        child.close()
        self.access = self._answer()

    def _answer(self) -> dict[str, Any]:
        if not self.conn.poll(60):
            raise AssertionError("the reader did not answer within 60 s")
        answer = self.conn.recv()
        assert "died" not in answer, f"reader died: {answer['died']}"
        return answer

    def get(self, article_id: str, site: str | None = None) -> dict[str, Any]:
        self.conn.send(("get", article_id, site))
        return self._answer()

    def command(self, *args: str) -> dict[str, Any]:
        self.conn.send(("cli", list(args)))
        return self._answer()

    def close(self) -> None:
        self.conn.close()
        self.process.join(timeout=30)


#: The command lines the tests run as nobody (a store path is appended).
COMMANDS = (
    (["recommend", "s1", "--json", "--store"], '"run-01/s1-0"'),
    (["runs", "list", "--store"], "run-01\tcurrent"),
    (["runs", "show", "run-01", "--store"], '"n_lists": 7'),
)


def _warm_up(publish_into: Callable[[Path, str], None]) -> None:
    """The reads and commands once as root, on a store of their own, so that
    every module they import lazily is imported before a reader forks."""
    folder = Path(tempfile.mkdtemp(prefix="recommender-warm-up-"))
    try:
        path = folder / "lists.sqlite"
        publish_into(path, "run-01")
        reader = Reader(path, as_nobody=False)  # imports happen in the child ...
        reader.close()
        with Recommendations(path, refresh_seconds=0) as recs:  # ... so here too
            recs.get("s1", site="alpha")
            recs.get("unknown", site="alpha")
            recs.health()
        cwd = os.getcwd()
        try:
            os.chdir(folder)
            for args, _ in COMMANDS:
                CliRunner().invoke(cli, [*args, str(path)])
        finally:
            os.chdir(cwd)
    finally:
        shutil.rmtree(folder)


@cache
def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root, to run the reader as the unprivileged user nobody"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "needs a user named nobody"
    probe = _FORK.Process(target=_probe)
    probe.start()
    probe.join(timeout=60)
    if probe.exitcode != 0:
        return f"a forked process cannot become nobody here (exit {probe.exitcode})"
    _warm_up(publish)
    return None


def _probe() -> None:
    _become_nobody()
    os._exit(0 if os.getuid() != 0 else 1)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A temporary folder root owns and others may only read (not under
    pytest's tmp_path, whose parents nobody may not enter)."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    path = Path(tempfile.mkdtemp(prefix="recommender-readonly-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def publish(path: Path, run_id: str) -> None:
    """Publish ``run_id`` (lists s0..s4, alpha's page list, the network's) as
    the batch does: open, publish, close."""
    store = open_store(path)
    lists, run = make_run(run_id, n_lists=5)
    lists += [make_list(site_page_id("alpha"), run_id, 4), make_list(NETWORK_PAGE, run_id, 5)]
    store.publish(lists, run)
    store.close()


def test_a_reader_that_may_only_read_serves_real_lists(folder: Path) -> None:
    path = folder / "lists.sqlite"
    publish(path, "run-01")
    reader = Reader(path)
    try:
        assert reader.access == {"can_write_folder": False, "can_write_file": False}
        own = reader.get("s1", "alpha")
        assert own["items"] == [f"run-01/s1-{j}" for j in range(3)]
        assert own["fallback_source"] == "" and own["store_available"], own
        fallback = reader.get("unknown", "alpha")
        assert fallback["fallback_source"] == "site" and fallback["items"][0].startswith("run-01/")
    finally:
        reader.close()
    assert sorted(os.listdir(folder)) == ["lists.sqlite"]  # the reader created nothing


def test_readers_follow_every_run_whoever_has_the_file_open(folder: Path) -> None:
    path = folder / "lists.sqlite"
    publish(path, "run-01")
    first = Reader(path)
    try:
        assert first.get("s1")["run_id"] == "run-01"
        # A run published while a reader has the file open: the file stays in
        # WAL mode (with -wal and -shm) as long as the reader keeps it open ...
        publish(path, "run-02")
        assert first.get("s2")["run_id"] == "run-02"
        # ... and a reader starting meanwhile opens it too.
        second = Reader(path)
        try:
            assert second.get("s1")["items"] == [f"run-02/s1-{j}" for j in range(3)]
        finally:
            second.close()
    finally:
        first.close()
    # Every reader gone, the -wal and -shm stay (readers cannot remove them).
    third = Reader(path)
    try:
        assert third.get("s3")["run_id"] == "run-02"
    finally:
        third.close()
    # A run published with no reader around leaves the file readable on its own.
    publish(path, "run-03")
    assert sorted(os.listdir(folder)) == ["lists.sqlite"]
    fourth = Reader(path)
    try:
        answer = fourth.get("s4", "alpha")
        assert answer["run_id"] == "run-03" and answer["store_available"], answer
    finally:
        fourth.close()


def test_the_command_line_reads_as_nobody(folder: Path) -> None:
    path = folder / "lists.sqlite"
    publish(path, "run-01")
    reader = Reader(path)
    try:
        assert reader.access == {"can_write_folder": False, "can_write_file": False}
        for args, expected in COMMANDS:
            done = reader.command(*args, str(path))
            assert done["exit_code"] == 0, (args, done["stderr"])
            assert expected in done["stdout"], (args, done["stdout"])
    finally:
        reader.close()
    assert sorted(os.listdir(folder)) == ["lists.sqlite"]


def test_a_file_left_in_wal_mode_says_what_to_do(folder: Path) -> None:
    """A file another tool (the sqlite3 shell, an older version) closed in WAL
    mode cannot be read by a user who cannot create its -shm: the health says
    why and how to fix it, and the next publish fixes it."""
    path = folder / "lists.sqlite"
    publish(path, "run-01")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    reader = Reader(path)
    try:
        answer = reader.get("s1")
        assert answer["items"] == [] and not answer["store_available"]
        assert "left in WAL mode without its lists.sqlite-shm file" in answer["error"]
        assert "`recommender run`" in answer["error"]
    finally:
        reader.close()
    publish(path, "run-02")
    reader = Reader(path)
    try:
        assert reader.get("s1")["run_id"] == "run-02"
    finally:
        reader.close()
