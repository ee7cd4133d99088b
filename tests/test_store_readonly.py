"""A reader that may only read a SQLite store: the web server's user, with read
access to the store file and its folder and nothing else.

SQLite can read a WAL-mode file only when its ``-shm`` file exists or can be
created; in a folder the reader cannot write, it could not be, so the reader
got "attempt to write a readonly database" (and empty lists) whenever no writer
had the file open. The batch now leaves the file in the rollback-journal mode
when it closes (see recommender.store.sqlite), and the reader opens it
read-only. These tests run the reader as the unprivileged user ``nobody`` on a
store written by root in a folder only root can write, and skip with the
reason when that cannot be arranged (not root, no ``setpriv``, ``nobody`` cannot
run this Python).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.store import open_store
from tests.store_contract import make_list, make_run

# Reads "ARTICLE_ID SITE" lines (SITE "-" for none); answers one JSON line each.
READER = r"""
import json, os, sys
from recommender.serving import Recommendations

path = sys.argv[1]
print(json.dumps({"can_write_folder": os.access(os.path.dirname(path), os.W_OK),
                  "can_write_file": os.access(path, os.W_OK)}), flush=True)
recs = Recommendations(path, refresh_seconds=0)
for line in sys.stdin:
    article_id, site = line.split()
    block = recs.get(article_id, site=None if site == "-" else site)
    health = recs.health()
    print(json.dumps({
        "items": [item.article_id for item in block.items],
        "fallback_source": block.fallback_source,
        "run_id": block.run_id,
        "store_available": health.store_available,
        "error": health.error,
    }), flush=True)
"""


@cache
def _as_nobody() -> list[str] | None:
    """The command prefix that runs a program as ``nobody``, or None."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]


@cache
def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root, to run the reader as the unprivileged user nobody"
    prefix = _as_nobody()
    if prefix is None:
        return "needs setpriv (util-linux) and a user named nobody"
    done = subprocess.run(
        [*prefix, sys.executable, "-c", "import recommender.serving"],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    if done.returncode != 0:
        return f"nobody cannot run {sys.executable} with recommender: {done.stderr.strip()}"
    return None


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


class Reader:
    """A reader process run as nobody, asked for lists one line at a time."""

    def __init__(self, store: Path) -> None:
        prefix = _as_nobody()
        assert prefix is not None
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-c", READER, str(store)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=store.parent,
        )
        self.access = self._answer()

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"reader died: {self.process.communicate()[1]}")
        return json.loads(line)

    def get(self, article_id: str, site: str | None = None) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{article_id} {site or '-'}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


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
    prefix = _as_nobody()
    assert prefix is not None
    for args, expected in (
        (["recommend", "s1", "--store", str(path), "--json"], '"run-01/s1-0"'),
        (["runs", "list", "--store", str(path)], "run-01\tcurrent"),
        (["runs", "show", "run-01", "--store", str(path)], '"n_lists": 7'),
    ):
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "recommender.cli", *args],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
        )
        assert done.returncode == 0, (args, done.stderr)
        assert expected in done.stdout, (args, done.stdout)
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
