"""Ids no page can have, asked of ``Recommendations`` on every store backend.

One request with a NUL byte in the article id once made PostgreSQL raise; the
reader took that for "store unavailable", so every uncached lookup answered
empty until the next check and the health went "degraded". An invalid id is an
unknown page: its fallbacks, the store never asked, the health untouched. The
PostgreSQL cases skip with the reason when no server is reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.ids import is_valid_id
from recommender.lists import FALLBACK_NETWORK, FALLBACK_SITE, NETWORK_PAGE, site_page_id
from recommender.serving import Recommendations
from recommender.store import open_store
from tests.postgres_server import fresh_url, require_postgres
from tests.store_contract import make_list, make_run


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path: Path) -> Iterator[str]:
    """A store of each backend with run-01: lists s0..s4, alpha's page list
    and the network's."""
    if request.param == "postgres":
        require_postgres()
        url = fresh_url()
    else:
        url = f"sqlite:///{tmp_path / 'lists.sqlite'}"
    store = open_store(url)
    lists, run = make_run("run-01", n_lists=5)
    lists += [make_list(site_page_id("alpha"), "run-01", 4), make_list(NETWORK_PAGE, "run-01", 5)]
    store.publish(lists, run)
    store.close()
    yield url
    if request.param == "postgres":
        open_store(url).drop()


class Spy:
    """Records the source ids a Recommendations asks its store for."""

    def __init__(self, recs: Recommendations) -> None:
        recs.health()  # opens the store
        store = recs._store
        assert store is not None
        self.asked: list[object] = []
        original = store.get

        def get(source_id):
            self.asked.append(source_id)
            return original(source_id)

        store.get = get  # type: ignore[method-assign]


def test_a_nul_id_gets_the_fallback_and_the_store_stays_healthy(store_url: str) -> None:
    recs = Recommendations(store_url, refresh_seconds=0)
    spy = Spy(recs)
    block = recs.get("a\x00b", k=3, site="alpha")
    assert block.fallback and block.fallback_source == FALLBACK_SITE
    assert block.source_id == "a\x00b" and len(block.items) == 3
    assert [i.article_id for i in block.items] == [f"run-01/site:alpha-{j}" for j in range(3)]
    health = recs.health()
    assert health.store_available and health.error == "" and not health.damaged
    # The next uncached lookups still answer from the store, at once.
    assert [i.article_id for i in recs.get("s2").items] == [f"run-01/s2-{j}" for j in range(3)]
    assert not recs.get("s3", site="alpha").fallback
    assert "a\x00b" not in spy.asked and recs.health().store_available


@pytest.mark.parametrize(
    "bad", ["a\x00b", 123, None, ["s1"], "", " s1", "s1\r\n", "x" * 300, "\ud800", "s\x851"]
)
def test_any_invalid_id_is_an_unknown_page_never_sent_to_the_store(store_url: str, bad) -> None:
    recs = Recommendations(store_url, refresh_seconds=3600)
    spy = Spy(recs)
    for _ in range(2):  # a second time: from what is cached, still no store read for it
        block = recs.get(bad, 2)
        assert block.fallback and block.fallback_source == FALLBACK_NETWORK
        assert [i.article_id for i in block.items] == ["run-01/network-0", "run-01/network-1"]
        assert isinstance(block.source_id, str)
    assert spy.asked == [NETWORK_PAGE]
    assert recs.get("s1").items and recs.health().store_available
    # An invalid site is no site: the network's mix, and its page is never read either.
    block = recs.get("s-unknown", site=bad if isinstance(bad, str) else "a\x00b")
    assert block.fallback_source == FALLBACK_NETWORK
    assert recs.site_page(bad).fallback_source == FALLBACK_NETWORK
    assert all(is_valid_id(asked) for asked in spy.asked), spy.asked
    assert recs.health().store_available


def test_invalid_ids_do_not_fill_the_cache(store_url: str) -> None:
    recs = Recommendations(store_url, cache_size=10)
    warm = recs.get("s1", site="alpha")
    for n in range(50):
        assert recs.get(f"bad\x00{n}", site="alpha").fallback_source == FALLBACK_SITE
    assert recs.get("s1", site="alpha") is warm  # not evicted by them
