"""A command whose extra is not installed says so in one line and exits 2,
before doing any work (not a traceback from deep inside it, after the work).

The extra's modules are hidden by putting None into ``sys.modules``: an
import of them then fails, and ``importlib.util.find_spec`` finds nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from recommender.cli import cli
from tests.conftest import write_network_config

FIXTURES = Path(__file__).parent / "fixtures"


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def assert_names_the_extra(done: Result, extra: str, module: str) -> None:
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert done.exit_code == 2, done.output
    assert len(lines) == 1, done.output
    assert "Traceback" not in done.output
    assert f"pip install 'recommender[{extra}]'" in lines[0]
    assert module in lines[0]


@pytest.fixture
def network(tiny_network) -> Path:
    """The tiny network's config file (SQLite store in the same folder)."""
    _, folder = tiny_network
    path = write_network_config(folder)
    return path


def test_evaluate_without_matplotlib_stops_before_the_tables(
    network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "matplotlib")
    report = tmp_path / "out" / "report.html"
    done = CliRunner().invoke(cli, ["evaluate", "-c", str(network), "--output", str(report)])
    assert_names_the_extra(done, "evaluate", "matplotlib")
    assert "Lists" not in done.output and not report.exists()


def test_tune_without_tomli_w_stops_before_the_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "tomli_w")
    out = tmp_path / "tuned.toml"
    args = ["tune", "--mind-dir", str(FIXTURES / "mind"), "--out", str(out)]
    done = CliRunner().invoke(cli, [*args, "--weights", "0.45:0.4:0.15", "--half-life", "24"])
    assert_names_the_extra(done, "evaluate", "tomli_w")
    assert "Grid" not in done.output and not out.exists()


@pytest.mark.parametrize("module", ["httpx", "feedparser", "trafilatura", "lxml", "protego"])
def test_ingest_without_its_parsers_stops_before_reading(
    module: str, network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, module)
    corpus = tmp_path / "corpus.parquet"
    feed = FIXTURES / "ingest" / "savvytokyo-feed.rss"
    done = CliRunner().invoke(
        cli, ["ingest", str(feed), "--site", "alpha", "-c", str(network), "--corpus", str(corpus)]
    )
    assert_names_the_extra(done, "ingest", module)
    assert not corpus.exists()


def test_a_postgres_store_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "psycopg")
    # Imported by an earlier test, the store module would still hold psycopg.
    monkeypatch.delitem(sys.modules, "recommender.store.postgres", raising=False)
    url = "postgresql://postgres@127.0.0.1:1/test"
    for args in (["runs", "list", "--store", url], ["recommend", "a-sake", "--store", url]):
        assert_names_the_extra(CliRunner().invoke(cli, args), "postgres", "psycopg")


def test_run_with_a_postgres_store_without_psycopg_stops_before_reading(
    network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "psycopg")
    monkeypatch.delitem(sys.modules, "recommender.store.postgres", raising=False)
    text = network.read_text() + "[store]\nurl = 'postgresql://postgres@127.0.0.1:1/test'\n"
    network.write_text(text)
    rejects = tmp_path / "rejects.csv"
    done = CliRunner().invoke(cli, ["run", "-q", "-c", str(network), "--rejects", str(rejects)])
    assert_names_the_extra(done, "postgres", "psycopg")
    assert not rejects.exists()  # the inputs were never read


def test_serve_without_the_web_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_network
) -> None:
    hide(monkeypatch, "uvicorn")
    config, _ = tiny_network
    done = CliRunner().invoke(cli, ["serve", "--store", config.store.url, "--port", "0"])
    assert_names_the_extra(done, "web", "uvicorn")
