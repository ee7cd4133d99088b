"""Lint, format and type checks, so that the one test command runs them all."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


SOURCES = [p for p in ("recommender", "tests", "benchmarks", "notebooks") if (REPO / p).is_dir()]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the test extra")
def test_ruff_lint_and_format() -> None:
    lint = run("ruff", "check", *SOURCES)
    assert lint.returncode == 0, lint.stdout
    fmt = run("ruff", "format", "--check", *SOURCES)
    assert fmt.returncode == 0, fmt.stdout


def test_mypy() -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    done = run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout
