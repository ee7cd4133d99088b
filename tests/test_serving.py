from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.serving import Recommendations
from recommender.store import open_store
from tests.store_contract import make_list, make_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "lists.sqlite"
    store = open_store(path)
    lists, run = make_run("run-01", n_lists=3)
    lists += [
        make_list(site_page_id("alpha"), "run-01", 4),
        make_list(NETWORK_PAGE, "run-01", 5),
        make_list("empty-one", "run-01", 0),
    ]
    store.publish(lists, run)
    store.close()
    return path


def test_get_returns_the_published_list(store_path: Path) -> None:
    recs = Recommendations(f"sqlite:///{store_path}")
    block = recs.get("s1", k=2)
    assert block.source_id == "s1" and not block.fallback and len(block.items) == 2
    assert recs.run_id == "run-01"


@pytest.mark.parametrize(
    "article_id, site, expected",
    [
        ("unknown", "alpha", site_page_id("alpha")),
        ("unknown", "beta", NETWORK_PAGE),  # no page list for beta: network mix
        ("unknown", None, NETWORK_PAGE),
        ("empty-one", "alpha", site_page_id("alpha")),
    ],
)
def test_fallbacks(store_path: Path, article_id: str, site: str | None, expected: str) -> None:
    block = Recommendations(store_path).get(article_id, site=site)
    assert block.fallback and block.source_id == article_id
    assert block.items[0].article_id.startswith(f"run-01/{expected}-")


def test_unreachable_or_broken_store_gives_an_empty_list(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_text("not a database" * 100)
    for target in (broken, "postgresql://nowhere/db", tmp_path / "empty.sqlite"):
        block = Recommendations(target).get("s1", k=3, site="alpha")
        assert block.items == () and block.fallback


def test_keeps_serving_cached_lists_when_the_store_goes_away(store_path: Path) -> None:
    recs = Recommendations(store_path, refresh_seconds=0)
    assert recs.get("s1").items
    store_path.unlink()
    Path(f"{store_path}-wal").unlink(missing_ok=True)
    store_path.mkdir()  # the path is now a folder: every read fails
    assert recs.get("s1").items


def test_a_new_run_is_picked_up_without_restart(store_path: Path) -> None:
    recs = Recommendations(store_path, refresh_seconds=0)
    assert recs.get("s1").run_id == "run-01"
    store = open_store(store_path)
    store.publish(*make_run("run-02", n_lists=3))
    assert recs.get("s1").run_id == "run-02"


def test_serving_imports_no_scientific_stack(store_path: Path) -> None:
    code = f"""
import sys, json
from recommender.serving import Recommendations
block = Recommendations({str(store_path)!r}).get("s1", k=2)
heavy = sorted(m for m in ("sklearn", "scipy", "pandas", "numpy", "joblib") if m in sys.modules)
print(json.dumps({{"heavy": heavy, "items": len(block.items)}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout) == {"heavy": [], "items": 2}
