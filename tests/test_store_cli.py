"""The commands that read and roll back the store: ``recommender runs`` and
``recommender recommend``, through click's runner (whose output is not a
terminal, like a cron log's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.lists import NETWORK_PAGE, RunInfo, site_page_id
from recommender.store import open_store
from tests.store_contract import make_list, make_run

LONG_ERROR = (
    "InputError: 500 of 900 article rows rejected (more than run.max_rejected_fraction = 20%); "
    "nothing published, the previous run stays served. First problems:\n"
    "  articles.csv row 3: title: empty\n\tarticles.csv row 9: url: not http(s)"
)


def run_id(i: int) -> str:
    return f"20210308T0000{i:02d}Z-abc{i:03d}"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Ten runs, newest first: every third failed with a long, multi-line
    error; the newest serves alpha's page list and the network's."""
    path = tmp_path / "lists.sqlite"
    store = open_store(path, keep_runs=10)
    for i in range(10):
        if i % 3 == 2:
            store.record_failure(RunInfo(run_id(i), "2021-03-08T00:00:00+00:00"), LONG_ERROR)
            continue
        lists, run = make_run(run_id(i), n_lists=4)
        lists += [make_list(site_page_id("alpha"), run.run_id), make_list(NETWORK_PAGE, run.run_id)]
        store.publish(lists, RunInfo(run.run_id, run.created_at, summary={"timings": {"a": 1.5}}))
    store.close()
    return path


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


# -- runs list -----------------------------------------------------------------------


@pytest.mark.parametrize("columns", [None, "40", "80"])
def test_runs_list_to_a_pipe_is_one_line_per_run(store_path: Path, columns: str | None) -> None:
    done = invoke("runs", "list", "--store", str(store_path), env={"COLUMNS": columns})
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert len(lines) == 11  # a header and ten runs, whatever the width
    header, *rows = [line.split("\t") for line in lines]
    assert header == ["run", "status", "created_utc", "lists", "full", "time", "kind", "error"]
    assert all(len(row) == len(header) for row in rows)
    assert [row[0] for row in rows] == [run_id(i) for i in range(9, -1, -1)]
    assert [row[1] for row in rows[:3]] == ["current", "failed", "kept"]
    assert rows[0][3:7] == ["6", "", "1.5s", "full"]
    # The error whole, on its one line.
    assert rows[1][7] == " ".join(LONG_ERROR.split())


def test_runs_list_of_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "lists.sqlite"
    open_store(path).close()
    done = invoke("runs", "list", "--store", str(path))
    assert done.exit_code == 0 and done.output == "no runs recorded yet\n"


# -- unknown run ids: a usage error, not a store failure --------------------------------


def test_runs_show_of_a_mistyped_run_id_exits_2(store_path: Path) -> None:
    done = invoke("runs", "show", "nope", "--store", str(store_path))
    assert done.exit_code == 2, done.output
    assert "no run named 'nope'" in done.output
    assert f"newest first: {run_id(9)}, {run_id(8)}, {run_id(7)}" in done.output
    near = invoke("runs", "show", run_id(4)[:-1] + "x", "--store", str(store_path))
    assert near.exit_code == 2 and f"nearest recorded: {run_id(4)}" in near.output


def test_runs_rollback_of_a_mistyped_or_failed_run_exits_2(store_path: Path) -> None:
    done = invoke("runs", "rollback", "nope", "--store", str(store_path))
    assert done.exit_code == 2, done.output
    assert "no run named 'nope'" in done.output
    failed = invoke("runs", "rollback", run_id(8), "--store", str(store_path))
    assert failed.exit_code == 2, failed.output
    assert "failed and was never served; only a kept run" in failed.output
    assert "nearest kept: " in failed.output and run_id(7) in failed.output
    assert open_store(store_path).current_run_id() == run_id(9)
    rolled = invoke("runs", "rollback", run_id(7), "--store", str(store_path))
    assert rolled.exit_code == 0 and f"now serving {run_id(7)}" in rolled.output


# -- a mistyped store path: refused, never created ---------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["recommend", "s1"],
        ["recommend", "s1", "--json"],
        ["runs", "list"],
        ["runs", "show", "x"],
        ["runs", "rollback", "x"],
    ],
)
def test_a_mistyped_store_path_is_refused_and_not_created(tmp_path: Path, args) -> None:
    for path in (tmp_path / "typo.sqlite", tmp_path / "no-such-folder" / "lists.sqlite"):
        done = invoke(*args, "--store", str(path))
        assert done.exit_code == 4, done.output
        assert "no store there (nothing published yet)" in done.output
        assert "check the path" in done.output
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_recommend_at_a_store_path_of_a_config_that_does_not_exist(tmp_path: Path) -> None:
    toml = tmp_path / "net.toml"
    toml.write_text(
        '[store]\nurl = "sqlite:///var/typo.sqlite"\n[data]\narticles = ["a.csv"]\n'
        "[sites.alpha]\ndisplay_name = 'A'\n[sites.beta]\ndisplay_name = 'B'\n"
    )
    done = invoke("recommend", "s1", "--config", str(toml))
    assert done.exit_code == 4 and "no store there" in done.output, done.output
    assert not (tmp_path / "var").exists()


# -- which fallback, and which sites ----------------------------------------------------


def test_recommend_says_which_fallback_it_shows(store_path: Path) -> None:
    store = ["--store", str(store_path)]
    own = invoke("recommend", "s1", *store)
    assert own.exit_code == 0 and "fallback" not in own.output
    site = invoke("recommend", "unknown", "--site", "alpha", *store)
    assert site.exit_code == 0, site.output
    assert "fallback: the site's trending mix (site:alpha)" in site.stdout
    assert "'unknown' has no list of its own" in site.stderr
    network = invoke("recommend", "unknown", *store)
    assert "fallback: the network's trending mix (network)" in network.stdout
    as_json = json.loads(invoke("recommend", "unknown", "--site", "alpha", "--json", *store).stdout)
    assert as_json["fallback"] and as_json["fallback_source"] == "site"
    assert json.loads(invoke("recommend", "s1", "--json", *store).stdout)["fallback_source"] == ""


def test_recommend_says_when_there_is_nothing_to_show(tmp_path: Path) -> None:
    path = tmp_path / "lists.sqlite"
    store = open_store(path)
    store.publish(*make_run("run-01", n_lists=2))
    store.close()
    done = invoke("recommend", "unknown", "--store", str(path))
    assert done.exit_code == 0, done.output
    assert "fallback: nothing to show" in done.stdout
    as_json = json.loads(invoke("recommend", "x", "--store", str(path), "--json").stdout)
    assert as_json["fallback_source"] == "empty" and as_json["items"] == []


def test_recommend_refuses_a_site_the_store_does_not_know(store_path: Path) -> None:
    done = invoke("recommend", "s1", "--site", "nosuchsite", "--store", str(store_path))
    assert done.exit_code == 2, done.output
    assert "no site 'nosuchsite'" in done.output and "alpha" in done.output
    bad = invoke("recommend", "s1", "--site", "al\x01pha", "--store", str(store_path))
    assert bad.exit_code == 2


def test_recommend_refuses_a_site_the_config_does_not_know(tiny_network) -> None:
    from recommender.batch import run_batch

    config, folder = tiny_network
    run_batch(config)
    toml = folder / "net.toml"
    toml.write_text(
        '[data]\narticles = ["articles.csv"]\n[store]\nurl = "sqlite:///store.sqlite"\n'
        "[sites.alpha]\ndisplay_name = 'A'\n[sites.beta]\ndisplay_name = 'B'\n"
        "[sites.gamma]\ndisplay_name = 'C'\n"
    )
    done = invoke("recommend", "a-sake", "--site", "nosuchsite", "--config", str(toml))
    assert done.exit_code == 2, done.output
    assert "no site 'nosuchsite'; the sites in the config: alpha, beta, gamma" in done.output
    fine = invoke("recommend", "a-sake", "--site", "beta", "--config", str(toml))
    assert fine.exit_code == 0, fine.output
