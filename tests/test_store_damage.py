"""Damage in the middle of a SQLite store file.

With pages damaged mid-file, ``/healthz`` once said "ok" while most pages
answered empty, and ``recommender run`` published into the damaged file with
exit 0. Now a reader that meets damage says so in its health (and still serves
every list it can read, the damaged ones with their fallbacks), and a publish
checks the file first and refuses, saying how to recover.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.errors import StoreError
from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.serving import Recommendations
from recommender.store import DamagedStoreError, open_store
from tests.store_contract import make_list, make_run

N_LISTS = 300


def write_store(path: Path, run_id: str = "run-01") -> None:
    """A store with one run: N_LISTS lists of 12 items (each a few KB, so the
    file has a few hundred pages), alpha's page list and the network's."""
    store = open_store(path)
    lists = [make_list(f"s{i}", run_id, 12) for i in range(N_LISTS)]
    lists += [make_list(site_page_id("alpha"), run_id, 4), make_list(NETWORK_PAGE, run_id, 5)]
    store.publish(lists, make_run(run_id)[1])
    store.close()


def damage(path: Path, fraction: float = 0.2) -> None:
    """Overwrite ``fraction`` of the file's pages, in its middle, with garbage."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    pages = path.stat().st_size // page_size
    assert pages > 100, pages
    first, count = pages // 2 - int(pages * fraction / 2), int(pages * fraction)
    with open(path, "r+b") as file:
        file.seek(first * page_size)
        file.write(bytes([0x5A]) * (count * page_size))


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    path = tmp_path / "lists.sqlite"
    write_store(path)
    assert not Path(f"{path}-wal").exists()  # everything is in the file itself
    damage(path)
    return path


def test_a_reader_reports_damage_and_serves_what_it_can(damaged: Path) -> None:
    recs = Recommendations(damaged, refresh_seconds=0)
    assert recs.health().store_available  # nothing read yet: nothing known to be wrong
    answers = [recs.get(f"s{i}", site="alpha") for i in range(N_LISTS)]
    own = [a for a in answers if not a.fallback]
    lost = [a for a in answers if a.fallback]
    assert own and lost, (len(own), len(lost))
    assert all(a.items[0].article_id == f"run-01/{a.source_id}-0" for a in own)
    # The damaged lists answer with their fallback, where it can be read.
    assert {a.fallback_source for a in lost} <= {"site", "network", "empty"}
    health = recs.health()
    assert not health.store_available and health.damaged
    assert "damaged" in health.error and "malformed" in health.error
    assert "recommender run" in health.error  # how to recover
    assert health.run_id == "run-01"
    # Still degraded after the next checks of the run, which read fine.
    assert recs.run_id == "run-01" and recs.health().damaged
    # Lists that can be read are still read from the store (not "store down").
    fresh = Recommendations(damaged, refresh_seconds=0)
    for answer in answers:
        again = fresh.get(answer.source_id, site="alpha")
        assert again.fallback == answer.fallback
    assert fresh.health().damaged


def test_a_publish_into_a_damaged_file_is_refused(damaged: Path) -> None:
    store = open_store(damaged)
    with pytest.raises(DamagedStoreError) as info:
        store.publish(*make_run("run-02"))
    message = str(info.value)
    assert isinstance(info.value, StoreError)  # the CLI's exit 4
    assert "the store file is damaged (quick_check:" in message
    assert "nothing was written, the current run stays served" in message
    assert f"mv {damaged} {damaged}.damaged" in message and "recommender run" in message
    assert "recommender runs list" in message
    for write in (
        lambda: store.publish_changes(*make_run("run-03")),
        lambda: store.rollback("run-01"),
    ):
        with pytest.raises(DamagedStoreError, match="damaged"):
            write()
    store.close()
    assert open_store(damaged, read_only=True).current_run_id() == "run-01"


def test_recommender_run_into_a_damaged_store_exits_4(tiny_network) -> None:
    _, folder = tiny_network
    path = folder / "store.sqlite"
    write_store(path, "run-00")
    damage(path)
    toml = folder / "net.toml"
    toml.write_text(
        '[data]\narticles = ["articles.csv"]\nevents = ["events.csv"]\n'
        '[store]\nurl = "sqlite:///store.sqlite"\n'
        '[run]\nnow = "2021-03-08T00:00:00Z"\n[features]\nmax_df = 1.0\n'
        "[sites.alpha]\ndisplay_name = 'A'\n[sites.beta]\ndisplay_name = 'B'\n"
        "[sites.gamma]\ndisplay_name = 'C'\n"
    )
    done = CliRunner().invoke(cli, ["run", "-q", "--config", str(toml)])
    assert done.exit_code == 4, done.output
    assert "the store file is damaged" in done.output and "mv " in done.output
    done = CliRunner().invoke(cli, ["runs", "rollback", "run-00", "--store", str(path)])
    assert done.exit_code == 4 and "damaged" in done.output


def test_moving_the_damaged_file_aside_recovers_readers_by_themselves(damaged: Path) -> None:
    recs = Recommendations(damaged, refresh_seconds=0)
    for i in range(N_LISTS):
        recs.get(f"s{i}")
    assert recs.health().damaged
    # The recovery the message gives: the file moved aside, a fresh store published.
    shutil.move(damaged, f"{damaged}.damaged")
    assert recs.get("s1").run_id == "run-01"  # the old file is still read meanwhile
    write_store(damaged, "run-02")
    block = recs.get("s1", site="alpha")
    assert block.run_id == "run-02" and not block.fallback
    health = recs.health()
    assert health.store_available and not health.damaged and health.error == ""
    assert all(not recs.get(f"s{i}").fallback for i in range(N_LISTS))
    # The damaged file's record can still be listed.
    done = CliRunner().invoke(cli, ["runs", "list", "--store", f"{damaged}.damaged", "--json"])
    assert done.exit_code == 0 and json.loads(done.output.splitlines()[0])["run_id"] == "run-01"
    assert sorted(os.listdir(damaged.parent)) == ["lists.sqlite", "lists.sqlite.damaged"]
