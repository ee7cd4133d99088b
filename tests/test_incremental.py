"""Incremental runs and cold start: the same lists as a full computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.config import load_config
from recommender.errors import UnknownSiteError
from recommender.ingest import read_articles, read_events
from recommender.kernels import available_kernels
from recommender.model import Recommender

DATA = Path(__file__).resolve().parents[1] / "data"
NOW = pd.Timestamp("2021-03-08T00:00:00Z")


@pytest.fixture(scope="module")
def sample():
    config = load_config(DATA / "sample.toml")
    articles = read_articles(config.data.articles, sites=list(config.sites)).valid
    events = read_events(config.data.events).valid
    return config, articles, events


def with_kernel(config, kernel: str, **mix):
    similarity = config.similarity.model_copy(update={"kernel": kernel})
    return config.model_copy(
        update={"similarity": similarity, "mix": config.mix.model_copy(update=mix)}
    )


def a_day_later(articles: pd.DataFrame) -> pd.DataFrame:
    """New articles, an edited one, a removed one, an unpublished one."""
    later = articles.copy()
    later.loc[later["article_id"] == "st-010", "body"] += " Now with a sake pairing guide."
    later.loc[later["article_id"] == "gpb-020", "status"] = "unpublished"
    later = later[later["article_id"] != "jt-005"]
    fresh = articles[articles["site"] != "japantoday"].head(4).copy()
    fresh["article_id"] = [f"new-{i}" for i in range(4)]
    fresh["url"] = [f"https://example.org/new-{i}" for i in range(4)]
    fresh["title"] = fresh["title"] + " (a new take)"
    fresh["published_at"] = NOW + pd.Timedelta(hours=6)
    return pd.concat([later, fresh], ignore_index=True)


@pytest.mark.parametrize("kernel", available_kernels())
def test_an_incremental_update_equals_a_full_run_on_the_same_vocabulary(sample, kernel) -> None:
    config, articles, events = sample
    # A short freshness window, so that the day also ages articles out of the candidates.
    config = with_kernel(config, kernel, max_age_days=30)
    first = Recommender(config).fit(articles, events, now=NOW)
    later = a_day_later(articles)
    now = NOW + pd.Timedelta(days=1)

    incremental = first.update(later, events, now=now)
    full = first.update(later, events, now=now, incremental=False)

    stats = incremental.update_stats_
    assert stats["incremental"] and stats["new"] == 4 and stats["changed"] == 1
    assert stats["removed"] == 1
    assert 5 <= stats["rows_recomputed"] < len(later) / 2
    assert incremental.vectorizer_ is first.vectorizer_
    np.testing.assert_array_equal(incremental.neighbors_.indices, full.neighbors_.indices)
    np.testing.assert_array_equal(incremental.neighbors_.scores, full.neighbors_.scores)
    assert list(incremental.recommendation_lists("r", "t")) == list(
        full.recommendation_lists("r", "t")
    )


def test_a_changed_order_falls_back_to_the_full_computation(sample) -> None:
    config, articles, events = sample
    first = Recommender(with_kernel(config, "scipy")).fit(articles, events, now=NOW)
    shuffled = articles.sample(frac=1, random_state=1)
    again = first.update(shuffled, events, now=NOW)
    assert not again.update_stats_["incremental"]
    reference = first.update(shuffled, events, now=NOW, incremental=False)
    np.testing.assert_array_equal(again.neighbors_.indices, reference.neighbors_.indices)


def test_an_unseen_article_gets_the_list_its_text_earns(sample) -> None:
    config, articles, events = sample
    model = Recommender(with_kernel(config, "scipy")).fit(articles, events, now=NOW)
    groups = pd.Series(model.groups_).value_counts()
    row = next(
        i
        for i, g in enumerate(model.groups_)
        if groups[g] == 1 and model.articles_["site"][i] == "japantoday"
    )
    known = model.articles_.iloc[row]
    batch = model.recommend(known["article_id"])
    unseen = model.recommend_unseen(
        {
            "article_id": "brand-new",
            "site": known["site"],
            "title": known["title"],
            "body": known["body"],
            "category": known["category"],
        }
    )
    assert unseen.source_id == "brand-new"
    assert [i.article_id for i in unseen.items] == [i.article_id for i in batch.items]
    assert [i.score for i in unseen.items] == [i.score for i in batch.items]
    with pytest.raises(UnknownSiteError, match="unknown site") as raised:
        model.recommend_unseen({"article_id": "x", "site": "nowhere", "title": "t"})
    assert isinstance(raised.value, ValueError)  # what callers caught before


def payloads(model: Recommender) -> dict[str, str]:
    """Every published list as JSON, with one run id and time for all models."""
    return {lst.source_id: lst.json for lst in model.list_payloads("r", "t")}


def assert_same_lists(model: Recommender, reference: Recommender) -> None:
    for name in ("source_ids", "source_sites", "items", "score", "relevance", "trend"):
        np.testing.assert_array_equal(getattr(model.lists_, name), getattr(reference.lists_, name))
    np.testing.assert_array_equal(model.lists_.freshness, reference.lists_.freshness)


def quiet_changes(first: Recommender, articles: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Changes that leave the sites' trending pools alone: four new articles
    (copies, never viewed: one published 20 days ago, so a candidate, three
    too old to be shown), an edited and a removed article too old to be
    shown, and a fixed link of one of the least shown articles (its text
    unchanged).
    Returns the articles and that article's id."""
    ids = first.articles_["article_id"].to_numpy()
    pooled = set(np.concatenate(list(first._mixer().pools.values())).tolist())
    shown_rows = np.flatnonzero(first.eligible_)
    fresh_rows = [i for i in shown_rows if i not in pooled][:4]
    old_ids = ids[~first.eligible_]
    later = articles.copy()
    later.loc[later["article_id"] == old_ids[0], "body"] += " Now with a sake pairing guide."
    later = later[later["article_id"] != old_ids[1]]
    fresh = articles[articles["article_id"].isin(ids[fresh_rows])].copy()
    fresh["article_id"] = [f"new-{i}" for i in range(len(fresh))]
    fresh["url"] = [f"https://example.org/new-{i}" for i in range(len(fresh))]
    fresh["title"] = fresh["title"] + " (a new take)"
    fresh["published_at"] = [NOW - pd.Timedelta(days=days) for days in (20, 40, 45, 50)]
    counts = np.bincount(first.lists_.items[first.lists_.items >= 0], minlength=len(ids))
    fixed = str(ids[np.flatnonzero(counts == counts[counts > 0].min())[0]])
    later.loc[later["article_id"] == fixed, "url"] = "https://example.org/fixed-link"
    return pd.concat([later, fresh], ignore_index=True), fixed


def test_lists_whose_inputs_did_not_change_are_copied_and_only_changes_published(sample) -> None:
    config, articles, events = sample
    config = with_kernel(config, "scipy", max_age_days=30)
    first = Recommender(config).fit(articles, events, now=NOW)
    # The same traffic and reference time: only the articles' changes move lists.
    later, fixed = quiet_changes(first, articles)

    incremental = first.update(later, events, now=NOW)
    full = first.update(later, events, now=NOW, incremental=False)

    stats = incremental.update_stats_
    assert stats["new"] == 4 and stats["changed"] == 1 and stats["removed"] == 1
    assert 0 < stats["lists_mixed"] < len(later) / 2  # most lists were copied
    assert full.update_stats_["lists_mixed"] == len(later)
    assert_same_lists(incremental, full)
    before, after = payloads(first), payloads(incremental)
    assert after == payloads(full)
    # Flagged as changed: exactly the lists whose payload is new or differs.
    differs = [source not in before or before[source] != after[source] for source in after]
    np.testing.assert_array_equal(incremental.changed_lists_, differs)
    np.testing.assert_array_equal(full.changed_lists_, differs)
    assert 0 < stats["lists_changed"] < len(after) / 2
    changed_sources = np.array(list(after))[differs]
    assert any("fixed-link" in after[source] for source in changed_sources)
    shows_fixed = f'"article_id":"{fixed}"'
    unchanged = np.array(list(after))[~np.array(differs)]
    assert all(shows_fixed not in after[source] for source in unchanged)
    assert {f"new-{i}" for i in range(4)} <= set(changed_sources)
    assert incremental.removed_sources_ == full.removed_sources_
    assert sorted(incremental.removed_sources_) == sorted(set(before) - set(after))
    # Only the changes: the previous lists with these replaced and those removed.
    changed = {
        lst.source_id: lst.json
        for lst in incremental.list_payloads("r", "t", rows=incremental.changed_lists_)
    }
    published = {s: p for s, p in before.items() if s not in incremental.removed_sources_}
    assert {**published, **changed} == after


step = st.fixed_dictionaries(
    {
        "edits": st.lists(st.integers(0, 400), max_size=6),
        "removals": st.lists(st.integers(0, 400), max_size=4),
        "copies": st.lists(st.integers(0, 400), max_size=4),
        "views": st.integers(0, 3),
        "hours": st.sampled_from([0, 0, 6]),
    }
)


def changed(articles: pd.DataFrame, events: pd.DataFrame, change: dict, tag: str):
    """``articles`` and ``events`` after one step of changes."""
    ids = articles["article_id"].to_numpy()
    later = articles.copy()
    for i in change["edits"]:
        later.loc[later["article_id"] == ids[i % len(ids)], "title"] += " (updated)"
    copies = articles.iloc[[i % len(ids) for i in change["copies"]]].copy()
    copies["article_id"] = [f"{tag}-{j}" for j in range(len(copies))]
    copies["url"] = [f"https://example.org/{tag}-{j}" for j in range(len(copies))]
    copies["published_at"] = NOW - pd.Timedelta(hours=3)
    later = later[~later["article_id"].isin([ids[i % len(ids)] for i in change["removals"]])]
    later = pd.concat([later, copies], ignore_index=True)
    if change["views"]:
        top = events["article_id"].value_counts().index[-change["views"] :]
        events = pd.concat([events, events[events["article_id"].isin(top)]], ignore_index=True)
    return later, events


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=3), reserve=st.sampled_from([0, 2, 10]))
def test_an_update_always_equals_the_full_computation(sample, steps, reserve) -> None:
    """Whatever changed (texts, new and removed articles, traffic, time), over
    successive updates, each reusing update gives the full computation's
    neighbours, near-duplicates and lists, and flags exactly the changed lists."""
    config, articles, events = sample
    config = with_kernel(config, "scipy", max_age_days=30)
    config = config.model_copy(
        update={"similarity": config.similarity.model_copy(update={"reserve": reserve})}
    )
    model = first_fit(config, articles, events, reserve)
    for number, change in enumerate(steps):
        articles, events = changed(articles, events, change, f"step{number}")
        now = NOW + pd.Timedelta(hours=change["hours"])

        incremental = model.update(articles, events, now=now)
        full = model.update(articles, events, now=now, incremental=False)

        np.testing.assert_array_equal(incremental.neighbors_.indices, full.neighbors_.indices)
        np.testing.assert_array_equal(incremental.neighbors_.scores, full.neighbors_.scores)
        assert_same_lists(incremental, full)
        np.testing.assert_array_equal(incremental.title_links_.pairs, full.title_links_.pairs)
        np.testing.assert_array_equal(incremental.groups_, full.groups_)
        before, after = payloads(model), payloads(incremental)
        differs = [source not in before or before[source] != after[source] for source in after]
        np.testing.assert_array_equal(incremental.changed_lists_, differs)
        assert sorted(incremental.removed_sources_) == sorted(set(before) - set(after))
        model = incremental


_FIRST: dict[tuple[int, int], Recommender] = {}


def first_fit(config, articles, events, reserve: int) -> Recommender:
    """The first run, fitted once per reserve for every example."""
    key = (id(articles), reserve)
    if key not in _FIRST:
        _FIRST[key] = Recommender(config).fit(articles, events, now=NOW)
    return _FIRST[key]


@pytest.mark.parametrize("change", ["removed", "edited", "unpublished"])
def test_a_trending_item_that_leaves_the_pool_leaves_the_lists_it_was_in(sample, change) -> None:
    """The lists that show an article only from their site's trending pool
    (not as a neighbour) must change when it leaves the pool."""
    config, articles, events = sample
    config = with_kernel(config, "scipy", max_age_days=30)
    first = Recommender(config).fit(articles, events, now=NOW)
    lists = first.lists_
    n = len(first.articles_)
    items = lists.items[:n]
    neighbour_of = np.zeros(items.shape, dtype=bool)
    for slot in range(items.shape[1]):
        neighbour_of[:, slot] = (first.neighbors_.indices == items[:, [slot]]).any(axis=1)
    pool_only = items[(items >= 0) & ~neighbour_of]
    target = str(first.articles_["article_id"].to_numpy()[np.bincount(pool_only).argmax()])
    later = articles.copy()
    if change == "removed":
        later = later[later["article_id"] != target]
    elif change == "edited":
        later.loc[later["article_id"] == target, "body"] = "Completely different words now."
    else:
        later.loc[later["article_id"] == target, "status"] = "unpublished"

    incremental = first.update(later, events, now=NOW)
    full = first.update(later, events, now=NOW, incremental=False)

    assert_same_lists(incremental, full)
    assert incremental.update_stats_["lists_mixed"] < n  # some lists were copied


def test_prepare_cold_start_indexes_every_site_and_changes_no_list(sample) -> None:
    config, articles, events = sample
    model = Recommender(with_kernel(config, "scipy")).fit(articles, events, now=NOW)
    known = model.articles_.iloc[0]
    article = {"article_id": "brand-new", **known[["site", "title", "body"]].to_dict()}
    before = model.recommend_unseen(article)
    model.__dict__.pop("_cold_start_cache", None)

    model.prepare_cold_start()

    assert set(model.__dict__["_cold_start_cache"]) == set(config.sites)
    assert model.recommend_unseen(article).items == before.items


def test_a_saved_and_loaded_model_recommends_and_updates_as_the_original(sample, tmp_path) -> None:
    """The model file holds the fitted state exactly: the same lists, the
    same list for an unseen article, and an update gives what the original's
    update gives (the same vocabulary, neighbours, lists and changes)."""
    config, articles, events = sample
    config = with_kernel(config, "auto", max_age_days=30)
    first = Recommender(config).fit(articles, events, now=NOW)
    loaded = Recommender.load(first.save(tmp_path / "model.rec"))

    assert list(loaded.recommendation_lists("r", "t")) == list(first.recommendation_lists("r", "t"))
    assert list(loaded.list_payloads("r", "t")) == list(first.list_payloads("r", "t"))
    unseen = {"article_id": "x-1", "site": "savvytokyo", "title": "Hanami picnic spots"}
    assert loaded.recommend_unseen(unseen).items == first.recommend_unseen(unseen).items

    later, now = a_day_later(articles), NOW + pd.Timedelta(days=1)
    expected = first.update(later, events, now=now)
    got = loaded.update(later, events, now=now)
    assert got.update_stats_ == expected.update_stats_ and got.update_stats_["incremental"]
    assert got.vectorizer_ is loaded.vectorizer_
    for part in ("indices", "scores"):
        np.testing.assert_array_equal(
            getattr(got.neighbors_, part), getattr(expected.neighbors_, part)
        )
    np.testing.assert_array_equal(got.changed_lists_, expected.changed_lists_)
    assert got.removed_sources_ == expected.removed_sources_
    assert list(got.recommendation_lists("r", "t")) == list(expected.recommendation_lists("r", "t"))
    # And once more through a file: an updated model saves and loads the same way.
    again = Recommender.load(got.save(tmp_path / "model.rec"))
    assert list(again.list_payloads("r", "t")) == list(got.list_payloads("r", "t"))
