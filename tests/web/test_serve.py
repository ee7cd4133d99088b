"""``recommender serve`` as an operator runs it, and the load test with a run
published half way (three processes on 127.0.0.1)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.ingest import read_events
from tests.web.conftest import publish

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "recommender.cli"]


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*CLI, "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
            return process, found.group(1)
    process.wait(timeout=10)
    raise AssertionError("serve did not start:\n" + "".join(seen))


def get(url: str, timeout: float = 10) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.slow
def test_serve_answers_and_picks_up_a_new_run(tmp_path: Path) -> None:
    store = tmp_path / "lists.sqlite"
    publish(f"sqlite:///{store}", "run-01")
    process, url = start("--store", str(store), "--refresh-seconds", "0.1")
    try:
        status, health = get(f"{url}/healthz")
        assert status == 200 and health["run_id"] == "run-01"
        status, body = get(f"{url}/v1/recommendations/jt-1?k=2")
        assert status == 200 and body["run_id"] == "run-01" and len(body["items"]) == 2
        publish(f"sqlite:///{store}", "run-02")
        time.sleep(0.3)
        assert get(f"{url}/v1/recommendations/jt-1?k=2")[1]["run_id"] == "run-02"
        click = json.dumps({"events": [{"kind": "click", "article_id": "st-1"}]}).encode()
        request = urllib.request.Request(
            f"{url}/v1/events", data=click, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
    finally:
        process.terminate()  # uvicorn exits by re-raising SIGTERM after a clean shutdown
        assert process.wait(timeout=20) in (0, -15)
    # The shutdown wrote the buffered click to the default spool, beside the store.
    assert read_events(tmp_path / "events" / "*.csv").valid["article_id"].tolist() == ["st-1"]


def test_serve_refuses_a_store_that_is_not_there(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "serve", "--store", str(tmp_path / "typo.sqlite")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 4
    assert "typo.sqlite: no store there; run `recommender run` first" in done.stderr
    assert not (tmp_path / "typo.sqlite").exists()


@pytest.mark.slow
def test_load_with_a_run_published_half_way(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "loadtest.py"),
            "run",
            "--lists",
            "2000",
            "--duration",
            "6",
            "--publish-after",
            "1.5",
            "--connections",
            "8",
            "--max-requests",
            "50000",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.stdout, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["errors"] == 0 and result["mixed"] == 0 and result["went_back"] == 0, result
    assert result["problems"] == []
    old, new = result["per_run"].get("load-run-a", 0), result["per_run"].get("load-run-b", 0)
    assert old > 0 and new > 0, result["per_run"]  # both runs served, the switch seen
    assert old + new == result["requests"] > 500
    assert done.returncode == 0


@pytest.mark.parametrize("module", ["uvicorn", "fastapi", "jinja2"])
def test_serve_without_the_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    # A store that is not there: were the check missing, serve would stop at it (exit 4).
    result = CliRunner().invoke(cli, ["serve", "--store", str(tmp_path / "none.sqlite")])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "`recommender serve` needs the web extra" in lines[0]
    assert f"{module} not installed" in lines[0]
    assert "pip install 'recommender[web]'" in lines[0]


def test_serve_help_documents_the_time_limits() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option, default in [
        ("--header-timeout", "10"),
        ("--body-timeout", "10"),
        ("--keep-alive-timeout", "5"),
    ]:
        assert re.search(rf"{option} SECONDS .*?\[default: {default}(\.0)?[;\]]", text), option
