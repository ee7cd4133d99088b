"""End to end, as a newcomer runs it: the README's main command in a subprocess.

The sample's commands run in a copy of it (the ``sample_network`` fixture), so
that the runs land in a temporary ``var/``, never in the user's own store.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import recommender
from recommender.cli import cli
from recommender.config import load_config
from recommender.store import open_store

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "recommender.cli"]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", quick, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_gives_exactly_two_commands_and_ci_runs_the_second() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].split(" && ")[1].startswith("recommender run")
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1] in ci


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_the_readme_main_command_publishes_the_sample(sample_network: Path) -> None:
    main = readme_commands()[0].split(" && ")[1].split()
    assert main[0] == "recommender"
    done = run(*main[1:], cwd=sample_network)
    assert done.returncode == 0, done.stderr
    assert "A mix of what's trending on our other sites" in done.stdout
    assert "GaijinPot Travel" in done.stdout or "Savvy Tokyo" in done.stdout

    config = load_config(sample_network / "data" / "sample.toml")
    assert config.store.url == f"sqlite:///{sample_network / 'var' / 'sample-store.sqlite'}"
    store = open_store(config.store.url)
    run_info = store.current_run()
    assert run_info is not None and run_info.run_id in done.stdout
    assert run_info.summary["articles"] >= 240
    lists = list(store.source_ids())
    assert len(lists) == run_info.n_lists >= 240
    block = store.get("jt-070")
    assert block is not None and len(block.items) == config.mix.k
    assert "japantoday" not in {item.site for item in block.items}

    # `recommender recommend` prints the same list as the store holds.
    shown = run("recommend", "jt-070", "--config", "data/sample.toml", "--json", cwd=sample_network)
    assert shown.returncode == 0, shown.stderr
    assert [i["article_id"] for i in json.loads(shown.stdout)["items"]] == [
        i.article_id for i in block.items
    ]


def test_exit_codes_tell_config_input_and_store_errors_apart(
    tmp_path: Path, sample_network: Path
) -> None:
    (tmp_path / "bad.toml").write_text("[sites.a]\ndisplay_name = 'A'\n")
    done = run("run", "--config", str(tmp_path / "bad.toml"))
    assert done.returncode == 2 and "at least 2 sites" in done.stderr

    config = (
        (REPO / "data" / "sample.toml")
        .read_text()
        .replace('"articles.csv"', '"missing.csv"')
        .replace("../var/", f"{tmp_path}/")
    )
    (tmp_path / "net.toml").write_text(config)
    for name in ("pageviews.csv.gz",):
        shutil.copy(REPO / "data" / name, tmp_path / name)
    done = run("run", "--config", str(tmp_path / "net.toml"))
    assert done.returncode == 3 and "missing.csv: file not found" in done.stderr

    done = run("recommend", "x", "--store", str(tmp_path / "nothing.sqlite"))
    assert done.returncode == 4 and "nothing published yet" in done.stderr

    done = run("run", "--config", str(sample_network / "data" / "sample.toml"), "--now", "tomorrow")
    assert done.returncode == 2 and "--now" in done.stderr


def test_runs_list_show_and_rollback(tiny_network) -> None:
    from recommender.batch import run_batch

    config, _ = tiny_network
    first, _ = run_batch(config)
    second, _ = run_batch(config)
    store = ["--store", config.store.url]

    listed = run("runs", "list", *store, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["run_id"], r["status"]) for r in rows] == [
        (second.run_id, "current"),
        (first.run_id, "kept"),
    ]
    assert run("runs", "list", *store).stdout.count("kept") == 1

    shown = run("runs", "show", first.run_id, *store)
    assert json.loads(shown.stdout)["summary"]["articles"] == 9

    rolled = run("runs", "rollback", first.run_id, *store)
    assert rolled.returncode == 0 and f"now serving {first.run_id}" in rolled.stdout
    assert open_store(config.store.url).current_run_id() == first.run_id

    missing = run("runs", "rollback", "nope", *store)
    # An unknown run id is a usage error naming the recorded ones (cli/runs.py).
    assert missing.returncode == 2 and "no run named 'nope'" in missing.stderr


def test_an_unreachable_store_exits_4_and_keeps_nothing_half_done(tiny_network) -> None:
    _, folder = tiny_network
    text = folder / "net.toml"
    text.write_text(
        '[data]\narticles = ["articles.csv"]\n'
        '[store]\nurl = "postgresql://postgres@127.0.0.1:1/test"\n'
        "[sites.alpha]\ndisplay_name = 'A'\n[sites.beta]\ndisplay_name = 'B'\n"
        "[sites.gamma]\ndisplay_name = 'C'\n[features]\nmax_df = 1.0\n"
    )
    done = run("run", "--config", str(text))
    assert done.returncode == 4 and "cannot connect" in done.stderr


def test_version_from_the_command_and_as_a_module() -> None:
    """`recommender --version` and `python -m recommender --version` print the
    installed version, which is the package's own."""
    version = importlib.metadata.version("recommender")
    assert recommender.__version__ == version
    done = CliRunner().invoke(cli, ["--version"])
    assert done.exit_code == 0, done.output
    assert done.output == f"recommender, version {version}\n"
    module = subprocess.run(
        [sys.executable, "-m", "recommender", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout == f"recommender, version {version}\n"


def test_python_m_recommender_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "recommender", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for command in ("run", "recommend", "serve", "runs", "evaluate", "ingest"):
        assert re.search(rf"^  {command}\b", done.stdout, re.M), command
