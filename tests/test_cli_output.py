"""What the commands print and where they write: tables readable at any width
when sent to a file or a pipe, the block as the page shows it, and the
evaluation report in the folder the user (or the config) names."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from recommender.cli import cli
from recommender.cli._app import render_block
from recommender.evaluate.lists import LIST_METRICS
from recommender.lists import HEADING, Item, RecommendationList
from tests.conftest import write_network_config

MIND = Path(__file__).parent / "fixtures" / "mind"
REPLAY_HEADERS = ["setting", "method", "AUC", "MRR", "nDCG@5", "nDCG@10"]


@pytest.fixture
def network(tiny_network) -> Path:
    """The tiny network's config file; its SQLite store is in the same folder."""
    _, folder = tiny_network
    path = write_network_config(folder, "url = 'sqlite:///var/store.sqlite'")
    return path


def table_lines(output: str, title: str) -> list[str]:
    """The lines of the table titled ``title``, up to its bottom border."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
    return lines[start : end + 1]


@pytest.mark.parametrize("columns", ["40", "80"])
def test_evaluate_tables_keep_every_header_whole_in_a_pipe(
    columns: str, network: Path, tmp_path: Path
) -> None:
    runner = CliRunner(env={"COLUMNS": columns})
    report = tmp_path / "report" / "net.html"
    lists = runner.invoke(cli, ["evaluate", "-c", str(network), "-o", str(report)])
    assert lists.exit_code == 0, lists.output
    assert "…" not in lists.output
    header = table_lines(lists.output, "Lists")[2]
    for name in ["lists", *LIST_METRICS]:
        assert f" {name} " in header, (name, header)
    assert "trending only (w_relevance = 0)" in lists.output  # a row label, on one line

    replay = runner.invoke(
        cli,
        [
            *["evaluate", "--mind-dir", str(MIND), "--refresh", "60", "--bootstrap", "20"],
            *["--no-lists", "-o", str(tmp_path / "mind.html")],
        ],
    )
    assert replay.exit_code == 0, replay.output
    assert "…" not in replay.output
    for title in ("Trending replay", "Blend"):
        header = table_lines(replay.output, title)[2]
        for name in REPLAY_HEADERS:
            assert f" {name} " in header, (title, name, header)


def test_on_a_narrow_terminal_cells_fold_instead_of_ending_in_an_ellipsis() -> None:
    from recommender.cli._app import print_table

    console = Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None)
    table = Table(title="Lists")
    for name in ["lists", *LIST_METRICS]:
        table.add_column(name, justify="right")
    table.add_row("as configured", *["0.500"] * len(LIST_METRICS))
    print_table(table, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 40


def item(category: str, title: str) -> Item:
    return Item(
        article_id="b-1",
        site="beta",
        site_name="Beta Life",
        category=category,
        title=title,
        url="https://beta.example/b-1",
        image_url=None,
        score=0.5,
        relevance=0.5,
        trend=0.5,
        freshness=0.5,
        reason="trending",
    )


def test_the_block_shows_no_label_for_an_item_without_a_category() -> None:
    block = RecommendationList(
        source_id="a-1",
        site="alpha",
        items=(
            item("Travel", "Itsukushima Shrine"),
            item("", "Hakone"),
            item("Food", "[PR] Mochi"),
        ),
        run_id="r",
        generated_at="2021-03-08T00:00:00+00:00",
    )
    console = Console(file=io.StringIO(), width=30, color_system=None)
    render_block(block, console)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[0].startswith(HEADING)
    assert "(none)" not in "\n".join(lines)
    hakone = next(line for line in lines if "Hakone" in line)
    assert hakone.split() == ["Hakone", "Beta", "Life"]  # no label in the category column
    assert hakone.index("Hakone") == lines[1].index("Itsukushima")  # the title column
    assert any("[PR] Mochi" in line for line in lines)  # titles are text, not markup


def test_evaluate_writes_its_report_beside_the_store_not_in_the_current_folder(
    network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "somewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    done = CliRunner().invoke(cli, ["evaluate", "-c", str(network)])
    assert done.exit_code == 0, done.output
    assert list(here.iterdir()) == []
    folder = network.parent / "var" / "evaluation"
    assert (folder / "evaluation.html").is_file()
    assert (folder / "evaluation_files" / "list_metrics.png").is_file()
    assert f"report: {folder / 'evaluation.html'}\n" in done.output  # a path stays whole


@pytest.mark.parametrize("option", ["--output", "-o", "--report"])
def test_evaluate_writes_its_report_where_the_user_says(
    option: str, network: Path, tmp_path: Path
) -> None:
    report = tmp_path / "reports" / "march.html"
    done = CliRunner().invoke(cli, ["evaluate", "-c", str(network), option, str(report)])
    assert done.exit_code == 0, done.output
    assert report.is_file() and (tmp_path / "reports" / "march_files").is_dir()


def test_without_a_sqlite_store_the_report_goes_under_var() -> None:
    from recommender.cli.evaluate import default_report_path

    assert default_report_path(None) == Path("var") / "evaluation" / "evaluation.html"
