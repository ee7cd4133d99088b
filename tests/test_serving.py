from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.errors import StoreError
from recommender.lists import NETWORK_PAGE, RecommendationList, RunInfo, site_page_id
from recommender.serving import Recommendations, is_http_url, only_http_links
from recommender.store import open_store
from recommender.store.sqlite import SQLiteStore
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


class CountingStore(SQLiteStore):
    """A real SQLite store that counts reads and can be switched off."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gets = 0
        self.run_checks = 0
        self.down = False
        self.damaged: set[str] = set()

    def get(self, source_id: str) -> RecommendationList | None:
        self.gets += 1
        if self.down:
            raise StoreError(f"{self.path}: read failed: database is locked")
        if source_id in self.damaged:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        return super().get(source_id)

    def current_run_id(self) -> str | None:
        self.run_checks += 1
        if self.down:
            raise StoreError(f"{self.path}: read failed: database is locked")
        return super().current_run_id()


def test_get_returns_the_published_list(store_path: Path) -> None:
    recs = Recommendations(f"sqlite:///{store_path}")
    block = recs.get("s1", k=2)
    assert block.source_id == "s1" and not block.fallback and len(block.items) == 2
    assert block.items == open_store(store_path).get("s1").items[:2]
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


def test_site_and_network_pages(store_path: Path) -> None:
    recs = Recommendations(store_path)
    assert [i.article_id for i in recs.site_page("alpha", 2).items] == [
        f"run-01/{site_page_id('alpha')}-{j}" for j in range(2)
    ]
    assert not recs.site_page("alpha").fallback
    assert recs.site_page("beta").fallback  # no page of its own: the network's
    assert len(recs.network_page().items) == 5


def test_k_cuts_the_list_and_must_not_be_negative(store_path: Path) -> None:
    recs = Recommendations(store_path)
    assert len(recs.get("s1", 0).items) == 0
    assert len(recs.get("s1", 99).items) == 3
    with pytest.raises(ValueError, match="k must be >= 0"):
        recs.get("s1", -1)


def test_unreachable_or_broken_store_gives_an_empty_list(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_text("not a database" * 100)
    for target in (broken, "redis://nowhere/0", tmp_path / "empty.sqlite"):
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


def test_a_warm_lookup_is_a_cache_hit_returning_the_same_object(store_path: Path) -> None:
    store = CountingStore(store_path)
    recs = Recommendations(store, refresh_seconds=3600)
    first = recs.get("unknown", 2, site="alpha")
    reads = store.gets
    assert reads == 2  # the article (absent), then the site's page
    for _ in range(100):
        assert recs.get("unknown", 2, site="alpha") is first
    assert store.gets == reads and store.run_checks == 1
    recs.get("s1", 2, site="alpha")
    assert store.gets == reads + 1  # the site page's list is shared, only s1 is read


def test_the_run_is_checked_at_most_once_per_refresh_interval(store_path: Path) -> None:
    store = CountingStore(store_path)
    recs = Recommendations(store, refresh_seconds=0.2)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        recs.get("s1")
    assert 2 <= store.run_checks <= 4


def test_a_list_of_a_newer_run_switches_the_whole_cache(store_path: Path) -> None:
    recs = Recommendations(store_path, refresh_seconds=3600)  # no timed check in this test
    assert recs.get("s1").run_id == "run-01"
    open_store(store_path).publish(*make_run("run-02", n_lists=3))
    # s1 is cached: still run-01 until a check or a miss shows the new run ...
    assert recs.get("s1").run_id == "run-01"
    # ... a miss reads a run-02 list: the cache is replaced as a whole.
    assert recs.get("s2").run_id == "run-02"
    assert recs.get("s1").run_id == "run-02"
    assert recs.run_id == "run-02"
    assert recs.get("unknown").run_id == "run-02"  # nothing in run-02 for it: empty


def test_a_store_outage_answers_at_once_and_recovers(store_path: Path) -> None:
    store = CountingStore(store_path)
    recs = Recommendations(store, refresh_seconds=0)
    assert recs.get("s1").items
    store.down = True
    assert recs.get("s1").items  # cached
    assert recs.get("s2").items == ()  # a miss: empty, not an exception
    reads = store.gets
    for _ in range(20):
        assert recs.get("s2", site="alpha").items == ()
    assert store.gets == reads  # no read is tried while the store is known down
    health = recs.health()
    assert not health.store_available
    assert health.error.endswith("lists.sqlite: read failed: database is locked")
    assert health.run_id == "run-01"
    store.down = False
    assert recs.get("s2").items and recs.health().store_available


def test_a_damaged_list_falls_back_without_failing_the_store(store_path: Path) -> None:
    store = CountingStore(store_path)
    store.damaged.add("s1")
    recs = Recommendations(store, refresh_seconds=0)
    block = recs.get("s1", site="alpha")
    assert block.fallback and block.items[0].article_id.startswith("run-01/site:alpha-")
    # The other lists are still read from the store ...
    reads = store.gets
    assert recs.get("s2").items and store.gets == reads + 1
    # ... and the health says a list could not be read (the store holds only
    # lists it encoded: one that does not decode is damage).
    health = recs.health()
    assert health.damaged and not health.store_available and health.run_id == "run-01"
    assert "list 's1' in the store is unreadable (ValueError: Expecting value" in health.error
    # Until another run is served.
    open_store(store_path).publish(*make_run("run-02", n_lists=3))
    assert recs.get("s2").run_id == "run-02"
    assert recs.health().store_available and not recs.health().damaged


def test_close_leaves_a_given_store_open(store_path: Path) -> None:
    store = open_store(store_path)
    with Recommendations(store) as recs:
        recs.get("s1")
    assert store.current_run_id() == "run-01"


# -- untrusted links ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url, safe",
    [
        ("https://b.example/a?x=1#top", True),
        ("HTTP://B.EXAMPLE/", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("java\tscript:alert(1)", False),
        (" https://b.example/", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//b.example/protocol-relative", False),
        ("/relative/path", False),
        ("https://", False),
        ("https://b.example:99999/", False),
        ("ftp://b.example/file", False),
        ("", False),
        (None, False),
    ],
)
def test_only_absolute_http_urls_are_links(url: str | None, safe: bool) -> None:
    assert is_http_url(url) is safe


def test_items_with_unsafe_links_are_dropped_before_caching(tmp_path: Path) -> None:
    base = make_list("evil", "run-01", 4)
    items = list(base.items)
    items[1] = replace(items[1], url="javascript:alert(document.cookie)")
    items[2] = replace(items[2], image_url="javascript:alert(1)")
    items[3] = replace(items[3], url="java\nscript:alert(1)")
    store = open_store(tmp_path / "lists.sqlite")
    store.publish([replace(base, items=tuple(items))], RunInfo("run-01", "2021-03-08"))
    block = Recommendations(store).get("evil")
    assert [i.article_id for i in block.items] == ["run-01/evil-0", "run-01/evil-2"]
    assert block.items[1].image_url is None
    assert only_http_links(block) is block  # already safe: returned as is


# -- properties --------------------------------------------------------------------

_SOURCES = ["a1", "a2", "a3", site_page_id("x"), site_page_id("y"), NETWORK_PAGE]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    published=st.dictionaries(st.sampled_from(_SOURCES), st.integers(0, 4), min_size=1),
    queries=st.lists(
        st.tuples(
            st.sampled_from(["a1", "a2", "a3", "zz"]),
            st.sampled_from([None, "x", "y", "z"]),
            st.one_of(st.none(), st.integers(0, 5)),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_get_follows_the_fallback_chain(
    published: dict[str, int], queries: list[tuple[str, str | None, int | None]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "lists.sqlite")
        lists = {s: make_list(s, "run-01", n) for s, n in published.items()}
        store.publish(lists.values(), RunInfo("run-01", "2021-03-08T00:00:00+00:00"))
        recs = Recommendations(store)
        for article_id, site, k in queries * 2:  # twice: from the store, then the cache
            block = recs.get(article_id, k, site=site)
            chain = [article_id, *([site_page_id(site)] if site else []), NETWORK_PAGE]
            own = next((s for s in chain if s in lists and lists[s].items), None)
            expected = lists[own].items if own else ()
            assert block.items == expected[:k] if k is not None else block.items == expected
            assert block.source_id == article_id
            assert block.fallback == (own != article_id)
            assert block.run_id == "run-01"
        store.close()


def test_readers_never_mix_runs_while_runs_are_published(tmp_path: Path) -> None:
    path = tmp_path / "lists.sqlite"
    writer = open_store(path)
    writer.publish(*make_run("run-00", n_lists=50))
    recs = Recommendations(path, refresh_seconds=0)
    errors: list[BaseException] = []
    seen: dict[int, list[str]] = {}
    stop = threading.Event()

    def read(reader: int) -> None:
        runs = seen.setdefault(reader, [])
        try:
            while not stop.is_set():
                for i in range(0, 50, 7):
                    block = recs.get(f"s{i}", site="alpha")
                    assert {item.article_id.split("/")[0] for item in block.items} == {block.run_id}
                    runs.append(block.run_id)
        except BaseException as error:
            errors.append(error)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(3)]
    for thread in readers:
        thread.start()
    try:
        for i in range(1, 6):
            writer.publish(*make_run(f"run-0{i}", n_lists=50))
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert not errors, errors[0]
    for runs in seen.values():
        assert runs == sorted(runs)  # a reader never goes back to an older run
    assert recs.get("s0").run_id == "run-05"


def test_a_warm_lookup_is_a_cache_hit_that_never_reads_the_store(store_path: Path) -> None:
    """Why warm lookups take microseconds (measured in benchmarks/serving.py):
    the answer is the same immutable object, and the store is not asked."""
    store = open_store(store_path)
    reads: list[str] = []
    original_get = store.get
    store.get = lambda source_id: reads.append(source_id) or original_get(source_id)
    recs = Recommendations(store, refresh_seconds=3600)
    pages = [("s0", "alpha"), ("s1", None), ("unknown", "alpha"), ("s2", "beta")]
    first = [recs.get(article_id, 2, site=site) for article_id, site in pages]
    assert reads  # the first lookups read the store
    reads.clear()
    again = [recs.get(article_id, 2, site=site) for article_id, site in pages]
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert reads == []


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


# -- which fallback was served -----------------------------------------------------


def test_fallback_source_says_which_list_was_served(store_path: Path) -> None:
    recs = Recommendations(store_path)
    own = recs.get("s1", 2, site="alpha")
    assert not own.fallback and own.fallback_source == ""
    cases = [
        (("unknown", "alpha"), "site"),
        (("empty-one", "alpha"), "site"),  # its own list is empty
        (("unknown", "beta"), "network"),  # beta has no page list
        (("unknown", None), "network"),
    ]
    for (article_id, site), source in cases:
        for k in (None, 2):  # cut to k, and from the cache
            for _ in range(2):
                block = recs.get(article_id, k, site=site)
                assert block.fallback and block.fallback_source == source, (article_id, site)
                assert json.loads(block.to_json())["fallback_source"] == source
                assert RecommendationList.from_json(block.to_json()) == block
    assert recs.site_page("alpha").fallback_source == ""
    assert recs.site_page("beta").fallback_source == "network"


def test_nothing_to_fall_back_on_is_the_empty_fallback(tmp_path: Path) -> None:
    store = open_store(tmp_path / "lists.sqlite")
    store.publish([make_list("s1", "run-01")], RunInfo("run-01", "2021-03-08"))
    recs = Recommendations(store)
    block = recs.get("unknown", 3, site="alpha")
    assert block.items == () and block.fallback and block.fallback_source == "empty"
    assert block.to_dict()["fallback_source"] == "empty" and block.run_id == "run-01"
    # An unreachable store: empty as well.
    down = Recommendations(tmp_path / "missing.sqlite").get("s1", site="alpha")
    assert down.fallback_source == "empty" and down.site == "alpha"
    assert not (tmp_path / "missing.sqlite").exists()  # a reader creates nothing


def test_the_reader_opens_the_store_read_only(store_path: Path) -> None:
    recs = Recommendations(f"sqlite:///{store_path}")
    assert recs.get("s1").items
    assert recs._store is not None and recs._store.read_only
