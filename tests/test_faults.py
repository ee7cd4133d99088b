"""Faults a data engineer meets, for every store backend: the store keeps
serving the last good run and the next run succeeds."""

from __future__ import annotations

import os
import shutil
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


# -- the batch's model file: a full disk, and a kill after the commit ---------------
# A batch run in a subprocess; "fill" fills the disk at FOLDER and "kill" kills
# the process, both right after the publish's commit (publish_model returns).
BATCH = """
import os, signal, sys
import recommender.batch as batch

mode, folder = sys.argv[1], sys.argv[2]
publish = batch.publish_model

def fill(folder):
    with open(os.path.join(folder, "filler"), "ab") as out:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(out.fileno(), b"x" * size)
            except OSError:
                pass

def publish_then(*args, **kwargs):
    written = publish(*args, **kwargs)  # committed: the store serves the run
    if mode == "fill":
        fill(folder)
    elif mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return written

batch.publish_model = publish_then
sys.argv = ["recommender", *sys.argv[3:]]
from recommender.cli import main
main()
"""
DATA = REPO / "data"


def sample_config(folder: Path, where: Path, *, refit_after_hours: int | None = None) -> Path:
    """The sample network's config with its store and model file in ``where``."""
    text = (DATA / "sample.toml").read_text()
    for name in ("articles.csv", "late-additions.jsonl", "pageviews.csv.gz"):
        text = text.replace(f'"{name}"', f'"{DATA / name}"')
    text = text.replace("../var/", f"{where}/")
    if refit_after_hours is not None:
        text = text.replace("# refit_after_hours = 24", f"refit_after_hours = {refit_after_hours}")
    path = folder / "network.toml"
    path.write_text(text)
    return path


def batch_run(config: Path, mode: str = "plain", folder: Path | None = None):
    args = ["run", "-q", "--config", str(config)]
    command = ["-m", "recommender.cli", *args]
    if mode != "plain":
        command = ["-c", BATCH, mode, str(folder), *args]
    return subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def state(where: Path) -> tuple[list[tuple[str, str]], str | None, list[str]]:
    """(run id and status of each recorded run, newest first; the run the
    model file was written for; temporary files left)."""
    from recommender.model import Recommender

    store = open_store(f"sqlite:///{where / 'sample-store.sqlite'}")
    try:
        runs = [(r.run_id, r.status) for r in store.runs()]
    finally:
        store.close()
    model = where / "sample-model.rec"
    written_for = Recommender.load(model).published_run_id_ if model.exists() else None
    return runs, written_for, sorted(p.name for p in where.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 16 MiB tmpfs, to be filled: the sample's store and model fit in it
    several times over."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.slow
def test_a_disk_filling_up_after_the_commit_does_not_fail_a_published_run(
    small_disk: Path, tmp_path: Path
) -> None:
    """The disk fills right after the publish's commit: the run is published
    and its model saved (written before the commit; only a rename is left),
    so the exit code, the run record and the model file say the same."""
    config = sample_config(tmp_path, small_disk)
    assert batch_run(config).returncode == 0

    done = batch_run(config, "fill", small_disk)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "could not record" not in done.stderr
    (small_disk / "filler").unlink()
    runs, written_for, temporary = state(small_disk)
    assert [status for _, status in runs] == ["current", "kept"]
    assert written_for == runs[0][0]
    assert temporary == []


@pytest.mark.slow
def test_a_full_disk_fails_the_run_before_it_publishes(small_disk: Path, tmp_path: Path) -> None:
    """No room for the model file: the run fails before anything is served
    (exit 4, a store error, no traceback), its record says failed, and the
    model file is still the one of the run served."""
    config = sample_config(tmp_path, small_disk)
    assert batch_run(config).returncode == 0
    (first, _), *_ = state(small_disk)[0]
    model_size = (small_disk / "sample-model.rec").stat().st_size
    # Fill the disk to half a model file short of full (room for a failure record).
    with open(small_disk / "filler", "wb") as out:
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        out.write(b"x" * (free - model_size // 2))

    done = batch_run(config)

    assert done.returncode == 4, done.stderr
    assert "cannot write the model file" in done.stderr and "nothing published" in done.stderr
    assert "Traceback" not in done.stderr
    runs, written_for, temporary = state(small_disk)
    assert [status for _, status in runs] == ["failed", "current"] and runs[1][0] == first
    assert written_for == first
    assert temporary == []
    failed = open_store(f"sqlite:///{small_disk / 'sample-store.sqlite'}").runs()[0]
    assert "No space left on device" in failed.error

    # With room again, the next run publishes and saves as usual.
    (small_disk / "filler").unlink()
    assert batch_run(config).returncode == 0
    runs, written_for, temporary = state(small_disk)
    assert runs[0][1] == "current" and written_for == runs[0][0] and temporary == []


@pytest.mark.slow
def test_a_kill_after_the_commit_is_settled_by_the_next_run(tmp_path: Path) -> None:
    """SIGKILL right after the publish's commit: the store serves the run,
    whose model was written (and fsynced) but not yet renamed into place.
    The next run puts it in place, builds on it (an update of the run the
    store serves: only the changed lists written), and leaves everything
    agreeing."""
    where = tmp_path / "var"
    where.mkdir()
    config = sample_config(tmp_path, where, refit_after_hours=24)
    assert batch_run(config).returncode == 0
    (first, _), *_ = state(where)[0]

    killed = batch_run(config, "kill", where)

    assert killed.returncode == -signal.SIGKILL
    runs, written_for, temporary = state(where)
    assert [status for _, status in runs] == ["current", "kept"]
    second = runs[0][0]
    assert written_for == first and len(temporary) == 1  # its model: not yet in place

    done = batch_run(config)

    assert done.returncode == 0, done.stderr
    assert f"put in place the model of run {second}" in " ".join(done.stderr.split())
    runs, written_for, temporary = state(where)
    third = runs[0][0]
    assert [status for _, status in runs] == ["current", "kept", "kept"]
    assert written_for == third and temporary == []
    record = open_store(f"sqlite:///{where / 'sample-store.sqlite'}").run(third)
    assert record.summary["mode"] == "update"
    assert record.summary["lists_written"] < record.n_lists  # built on the served run
