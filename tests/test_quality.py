"""Lint, format and type checks, so that the one test command runs them all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


SOURCES = [p for p in ("recommender", "tests", "benchmarks", "notebooks") if (REPO / p).is_dir()]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format() -> None:
    # Through this interpreter: the test extra's ruff, whether or not its
    # scripts folder is on PATH (a virtual environment not activated).
    pytest.importorskip("ruff", reason="ruff is in the test extra")
    lint = run(sys.executable, "-m", "ruff", "check", *SOURCES)
    assert lint.returncode == 0, lint.stdout
    fmt = run(sys.executable, "-m", "ruff", "format", "--check", *SOURCES)
    assert fmt.returncode == 0, fmt.stdout


def test_mypy() -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    done = run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout
