"""``recommender run`` as a terminal shows it: progress, summary, errors, ``--show``."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.progress import Progress

from recommender.cli import cli
from recommender.store import open_store
from tests.conftest import NOW, write_network_config


@pytest.fixture
def network(tiny_network) -> Path:
    """The tiny network's config file, with its store and model file beside it."""
    _, folder = tiny_network
    path = write_network_config(folder, "url = 'sqlite:///store.sqlite'\nmodel_path = 'model.rec'")
    return path


def run(*args: str):
    return CliRunner().invoke(cli, ["run", *args])


def test_a_stage_without_a_total_shows_a_spinner_not_0_of_none(network, monkeypatch) -> None:
    """Each stage's row as drawn when it starts (a terminal redraws it
    while it runs), and every row once all are done."""
    frames: list[str] = []

    def draw(progress: Progress) -> str:
        console = Console(file=io.StringIO(), width=120, color_system=None)
        console.print(progress.make_tasks_table(progress.tasks))
        return console.file.getvalue()

    class Drawn(Progress):
        def add_task(self, *args, **kwargs):
            task = super().add_task(*args, **kwargs)
            frames.append(draw(self))
            return task

        def stop(self) -> None:
            frames.append(draw(self))
            super().stop()

    monkeypatch.setattr("recommender.cli.run.Progress", Drawn)
    done = run("-c", str(network))
    assert done.exit_code == 0, done.output

    started = {frame.splitlines()[-1].split()[0]: frame.splitlines()[-1] for frame in frames[:-1]}
    assert {"load", "similarity", "save", "publish"} <= set(started)
    assert "None" not in started["save"] and "None" not in started["load"]
    assert "0/9" in started["similarity"]  # a stage with a total shows its count
    assert all("None" not in frame for frame in frames)
    finished = frames[-1].splitlines()
    assert all(" done " in line for line in finished), finished


def test_the_summary_counts_events_dated_after_the_reference_time(network) -> None:
    folder = network.parent
    events = pd.read_csv(folder / "events.csv")
    later = pd.DataFrame(
        {
            "ts": [(NOW + pd.Timedelta(hours=2)).isoformat()] * 2,
            "article_id": "a-sake",
            "kind": "view",
        }
    )
    pd.concat([events, later]).to_csv(folder / "events.csv", index=False)
    done = run("-c", str(network))
    assert done.exit_code == 0, done.output
    text = " ".join(done.stdout.split())  # as one line: the table wraps to the terminal
    assert "2 dated after the reference time (not counted); 350 views" in text


def test_a_missing_data_file_names_its_key_and_the_config(network) -> None:
    text = network.read_text().replace("'articles.csv'", "'var/nope.csv'")
    network.write_text(text)
    done = run("-c", str(network))
    assert done.exit_code == 3
    assert f"data.articles: {network.parent / 'var' / 'nope.csv'}: file not found" in done.stderr
    assert f"articles in {network})" in done.stderr
    assert "Traceback" not in done.output


def test_error_messages_keep_their_square_brackets(network) -> None:
    network.write_text(network.read_text().replace("'articles.csv'", "'var/nope.csv'"))
    done = run("-c", str(network))
    assert f"(set [data] articles in {network})" in done.stderr


def test_show_of_an_unknown_site_is_refused_naming_the_known_ones(network) -> None:
    done = run("-c", str(network), "--show", "site:nosuchsite")
    assert done.exit_code == 2
    assert "no site 'nosuchsite'" in done.stderr
    assert "known sites: site:alpha, site:beta, site:gamma" in done.stderr
    # Refused before the run: nothing was published.
    assert open_store(f"sqlite:///{network.parent / 'store.sqlite'}").current_run_id() is None

    shown = run("-c", str(network), "--show", "site:beta")
    assert shown.exit_code == 0, shown.output
    assert "site:beta" in shown.stdout
