"""End to end, as a newcomer runs it: the README's main command in a subprocess."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_the_readme_main_command_publishes_the_sample() -> None:
    main = readme_commands()[0].split(" && ")[1].split()
    assert main[0] == "recommender"
    done = run(*main[1:])
    assert done.returncode == 0, done.stderr
    assert "A mix of what's trending on our other sites" in done.stdout
    assert "GaijinPot Travel" in done.stdout or "Savvy Tokyo" in done.stdout

    config = load_config(REPO / "data" / "sample.toml")
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
    shown = run("recommend", "jt-070", "--config", "data/sample.toml", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [i["article_id"] for i in json.loads(shown.stdout)["items"]] == [
        i.article_id for i in block.items
    ]


def test_exit_codes_tell_config_input_and_store_errors_apart(tmp_path: Path) -> None:
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

    done = run("run", "--config", str(REPO / "data" / "sample.toml"), "--now", "tomorrow")
    assert done.returncode == 2 and "--now" in done.stderr
