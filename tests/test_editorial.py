"""Editorial rules: the rules file, pins and blocks in the lists, the
page-dependent rules (languages, brand safety) and serving's blocks."""

from __future__ import annotations

import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.editorial import (
    Block,
    EditorialRules,
    Pin,
    RulesError,
    dumps_rules,
    load_rules,
    parse_rules,
    save_rules,
)
from recommender.lists import NETWORK_PAGE, site_page_id
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from tests.conftest import NOW, tiny_articles, tiny_config, tiny_events, write_network_config

T0 = NOW.to_pydatetime()


def fit(tmp_path: Path, rules: str = "", articles: pd.DataFrame | None = None, **sections):
    path = tmp_path / "editorial.toml"
    path.write_text(rules)
    config = tiny_config(tmp_path, editorial={"rules": str(path)}, **sections)
    articles = tiny_articles() if articles is None else articles
    return Recommender(config).fit(
        validate_articles(articles).valid, validate_events(tiny_events()).valid
    )


def lists(model: Recommender) -> dict:
    return {
        lst.source_id: lst for lst in model.recommendation_lists("run", "2021-03-08T00:00:00+00:00")
    }


def ids(lst) -> list[str]:
    return [item.article_id for item in lst.items]


# -- the file ------------------------------------------------------------------
ident = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30)
when = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))


@st.composite
def rule_sets(draw) -> EditorialRules:
    pins = []
    for n in range(draw(st.integers(0, 3))):
        start = draw(st.none() | when)
        pins.append(
            Pin(
                f"pin-{n}",
                draw(ident),
                draw(st.integers(1, 12)),
                site=draw(st.none() | ident),
                start=start,
                end=None if start is None else start + timedelta(days=draw(st.integers(1, 9))),
                label=draw(st.none() | text.filter(lambda t: len(t) <= 40)),
            )
        )
    blocks = []
    for n in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(["article", "url", "tag", "category"]))
        blocks.append(
            Block(
                f"block-{n}",
                **{target: draw(ident if target == "article" else text)},
                site=draw(st.none() | ident),
                reason=draw(st.just("") | text),
            )
        )
    return EditorialRules(tuple(pins), tuple(blocks))


@settings(max_examples=60, deadline=None)
@given(rule_sets())
def test_the_rules_file_reads_back_what_was_written(rules: EditorialRules) -> None:
    again = parse_rules(tomllib.loads(dumps_rules(rules)))
    assert again == rules
    assert again.fingerprint() == rules.fingerprint()


def test_save_writes_the_file_whole_and_a_missing_file_is_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    assert not load_rules(path)
    rules = EditorialRules().with_rule(Pin("pin-1", "b-sake", 1, site="alpha", label="Sponsored"))
    save_rules(rules, path)
    assert load_rules(path) == rules
    assert [p.name for p in tmp_path.iterdir()] == ["rules.toml"]  # no temporary left
    with pytest.raises(RulesError, match="exists"):
        rules.with_rule(Block("pin-1", article="x"))
    assert not rules.without("pin-1")
    with pytest.raises(RulesError, match="no rule with id 'nope'"):
        rules.without("nope")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[pin]]\nid = "p"\narticle = "a"\n', r"pin #1 \(p\): slot: missing"),
        ('[[pin]]\nid = "p"\narticle = "a"\nslot = 0\n', r"pin #1 \(p\): slot: must be"),
        ('[[pin]]\nid = "p"\narticle = "a"\nslot = 1\nsite = "x"\npage = "y"\n', "not both"),
        ('[[block]]\nid = "b"\narticle = "a"\nurl = "u"\n', r"block #1 \(b\): give exactly one"),
        ('[[block]]\nid = "b"\n', "got none"),
        ('[[block]]\nid = "b"\narticle = "a"\ncolour = 1\n', r"unknown field\(s\) \['colour'\]"),
        ('[[block]]\nid = "b"\narticle = "a"\nstart = 2026-01-01T00:00:00\n', "time zone"),
        (
            '[[block]]\nid = "b"\narticle = "a"\nstart = 2026-01-02T00:00:00Z\n'
            "end = 2026-01-01T00:00:00Z\n",
            "end: must be after start",
        ),
        (
            '[[pin]]\nid = "x"\narticle = "a"\nslot = 1\n[[block]]\nid = "x"\narticle = "a"\n',
            "used twice",
        ),
        ("[[pin]\n", "not valid TOML"),
        ('[pins]\nid = "x"\n', "unknown table"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_file_the_rule_and_the_field(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "editorial.toml"
    path.write_text(body)
    with pytest.raises(RulesError, match=message) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)


def test_a_rule_for_an_unknown_site_stops_the_fit(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"pin 'p': site: unknown site 'delta'"):
        fit(tmp_path, '[[pin]]\nid = "p"\narticle = "b-sake"\nslot = 1\nsite = "delta"\n')


# -- pins ----------------------------------------------------------------------
def test_a_pin_takes_its_slot_on_every_page_of_its_site_and_is_marked(tmp_path: Path) -> None:
    plain = lists(fit(tmp_path))
    model = fit(
        tmp_path,
        '[[pin]]\nid = "p"\narticle = "b-baby"\nslot = 2\nsite = "alpha"\nlabel = "Sponsored"\n',
    )
    pinned = lists(model)
    for source_id, lst in pinned.items():
        if lst.site != "alpha":
            assert lst == plain[source_id]  # other sites' lists are as without the pin
            continue
        assert ids(lst)[1] == "b-baby", source_id
        item = lst.items[1]
        assert (item.reason, item.pinned, item.label) == ("pinned", True, "Sponsored")
        assert ids(lst).count("b-baby") == 1
        others = [a for a in ids(plain[source_id]) if a != "b-baby"]
        # The rest keeps its order around the pin.
        assert [a for a in ids(lst) if a != "b-baby"] == others[: len(lst.items) - 1]
        assert Counter(i.site for i in lst.items).most_common(1)[0][1] <= 2  # max_per_site
    # The JSON the store publishes says the same as the objects.
    payloads = {p.source_id: p.json for p in model.list_payloads("run")}
    page = payloads[site_page_id("alpha")]
    assert '"reason":"pinned","label":"Sponsored","pinned":true' in page
    import json

    decoded = json.loads(page)
    assert decoded["items"] == [i.to_dict() for i in pinned[site_page_id("alpha")].items]


def test_pins_obey_the_page_rules_and_count_in_the_caps(tmp_path: Path) -> None:
    # Own site (alpha on alpha's pages) and a blocked article never show;
    # two pins of beta fill beta's cap of 2, so no other beta item is taken.
    model = fit(
        tmp_path,
        '[[pin]]\nid = "own"\narticle = "a-fuji"\nslot = 1\nsite = "alpha"\n'
        '[[pin]]\nid = "p1"\narticle = "b-sake"\nslot = 1\nsite = "alpha"\n'
        '[[pin]]\nid = "p2"\narticle = "b-fuji"\nslot = 3\nsite = "alpha"\n'
        '[[pin]]\nid = "gone"\narticle = "c-kids"\nslot = 1\n'
        '[[block]]\nid = "b"\narticle = "c-baby"\n'
        '[[pin]]\nid = "blocked"\narticle = "c-baby"\nslot = 2\nsite = "alpha"\n',
    )
    for lst in lists(model).values():
        assert "c-baby" not in ids(lst)
        if lst.site == "alpha":
            assert ids(lst)[0] == "b-sake" and ids(lst)[2] == "b-fuji", ids(lst)
            assert [i.site for i in lst.items].count("beta") == 2
            assert "a-fuji" not in ids(lst)


def test_pins_that_alone_break_a_cap_are_all_shown_and_said(tmp_path: Path) -> None:
    # Three of beta's articles pinned on alpha's pages, with max_per_site 2, and
    # two more beta pins on one page of gamma, with its site's pin: the run says so.
    model = fit(
        tmp_path,
        '[[pin]]\nid = "p1"\narticle = "b-sake"\nslot = 1\nsite = "alpha"\n'
        '[[pin]]\nid = "p2"\narticle = "b-fuji"\nslot = 2\nsite = "alpha"\n'
        '[[pin]]\nid = "p3"\narticle = "b-baby"\nslot = 3\nsite = "alpha"\n'
        '[[pin]]\nid = "g1"\narticle = "a-sake"\nslot = 1\nsite = "gamma"\n'
        '[[pin]]\nid = "g2"\narticle = "a-fuji"\nslot = 2\npage = "c-fuji"\n'
        '[[pin]]\nid = "g3"\narticle = "a-baby"\nslot = 3\npage = "c-fuji"\n'
        '[[pin]]\nid = "gone"\narticle = "no-such"\nslot = 4\n',
    )
    for lst in lists(model).values():
        if lst.site == "alpha":
            assert ids(lst)[:3] == ["b-sake", "b-fuji", "b-baby"]
    assert ids(lists(model)["c-fuji"])[:3] == ["a-sake", "a-fuji", "a-baby"]
    report = model.editorial_report()
    assert report == [
        "pin gone: its article is not in the corpus: not shown",
        "pins on alpha's pages: 3 pinned items from beta exceed max_per_site = 2 "
        "(pins p1, p2, p3): all are shown",
        "pins on page c-fuji: 3 pinned items from alpha exceed max_per_site = 2 "
        "(pins g1, g2, g3): all are shown",
    ]
    # Within the caps, nothing to say.
    assert (
        fit(tmp_path, '[[pin]]\nid = "p1"\narticle = "b-sake"\nslot = 1\n').editorial_report() == []
    )


def test_a_page_pin_wins_over_its_sites_and_a_window_that_has_passed_is_off(
    tmp_path: Path,
) -> None:
    past = (T0 - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    model = fit(
        tmp_path,
        '[[pin]]\nid = "site"\narticle = "b-sake"\nslot = 1\nsite = "alpha"\n'
        '[[pin]]\nid = "page"\narticle = "c-fuji"\nslot = 1\npage = "a-baby"\n'
        f'[[pin]]\nid = "old"\narticle = "c-baby"\nslot = 1\nsite = "beta"\nend = {past}\n',
    )
    found = lists(model)
    assert ids(found["a-baby"])[:2] == ["c-fuji", "b-sake"]
    assert ids(found["a-sake"])[0] == "b-sake"
    assert not any(i.pinned for i in found["b-sake"].items)


# -- blocks ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "rule",
    [
        'article = "b-baby"',
        'url = "https://beta.example/b-ba*"',
        'category = "Parenting"',
        'tag = "sponsored"',
    ],
)
def test_a_block_removes_what_it_matches_from_every_list(tmp_path: Path, rule: str) -> None:
    articles = tiny_articles().assign(tags=["", "", "", "", "", "sponsored|kids", "", "", ""])
    assert any("b-baby" in ids(lst) for lst in lists(fit(tmp_path, articles=articles)).values())
    blocked = fit(tmp_path, f'[[block]]\nid = "b"\n{rule}\n', articles=articles)
    assert not any("b-baby" in ids(lst) for lst in lists(blocked).values())
    assert "b-baby" in lists(blocked)  # its own page still has a list


def test_a_block_for_one_site_leaves_the_other_sites_lists(tmp_path: Path) -> None:
    plain = lists(fit(tmp_path))
    model = fit(tmp_path, '[[block]]\nid = "b"\narticle = "b-baby"\nsite = "alpha"\n')
    for source_id, lst in lists(model).items():
        if lst.site == "alpha":
            assert "b-baby" not in ids(lst)
        elif lst.site is not None:
            assert lst == plain[source_id]
    assert "b-baby" in ids(plain[site_page_id("alpha")])


def test_an_update_with_new_rules_equals_a_fit_with_them(tmp_path: Path) -> None:
    rules = tmp_path / "editorial.toml"
    config = tiny_config(tmp_path, editorial={"rules": str(rules)})
    articles = validate_articles(tiny_articles()).valid
    events = validate_events(tiny_events()).valid
    old = Recommender(config).fit(articles, events)
    save_rules(
        EditorialRules(
            (Pin("p", "c-sake", 1, site="beta", label="Ours"),),
            (Block("b", article="b-baby", site="gamma"),),
        ),
        rules,
    )
    updated = old.update(articles, events)
    fresh = Recommender(config).fit(articles, events)
    assert lists(updated) == lists(fresh)
    assert updated.changed_lists_.all()  # labels may differ in lists of equal items
    assert lists(updated) != lists(old)
    again = updated.update(articles, events)  # same rules: lists copied where they can be
    assert lists(again) == lists(fresh)


# -- languages and brand safety ---------------------------------------------------
def test_a_site_shows_only_the_languages_its_readers_read(tmp_path: Path) -> None:
    articles = tiny_articles()
    articles["language"] = ["en"] * 6 + ["ja"] * 3  # gamma writes in Japanese
    gamma = {"display_name": "Gamma", "language": "ja"}
    model = fit(tmp_path, articles=articles, sites={"gamma": gamma})
    for lst in lists(model).values():
        if lst.site in ("alpha", "beta"):
            assert all(i.site != "gamma" for i in lst.items), lst.source_id
        if lst.site == "gamma":  # gamma's readers read Japanese only: no English items
            assert not lst.items or lst.fallback
    both = fit(
        tmp_path,
        articles=articles,
        sites={"gamma": {**gamma, "languages": ["ja", "en"]}},
    )
    assert any(lst.items for lst in lists(both).values() if lst.site == "gamma")
    # The network's page (no reader's site) may show every language.
    assert any(i.site == "gamma" for i in lists(model)[NETWORK_PAGE].items)


def test_a_site_that_avoids_a_category_never_appears_on_its_pages(tmp_path: Path) -> None:
    plain = lists(fit(tmp_path))
    assert any(i.site == "beta" for i in plain["a-baby"].items)
    model = fit(tmp_path, sites={"beta": {"display_name": "Beta", "avoid_categories": ["Family"]}})
    found = lists(model)
    assert not any(i.site == "beta" for i in found["a-baby"].items)  # a Family page
    assert any(i.site == "beta" for i in found["a-sake"].items)  # elsewhere, as before


# -- the commands and serving ------------------------------------------------------
def test_the_commands_keep_the_file_and_a_block_is_served_at_once(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from recommender.cli import cli
    from recommender.serving import Recommendations

    tiny_articles().to_csv(tmp_path / "articles.csv", index=False)
    tiny_events().to_csv(tmp_path / "events.csv", index=False)
    config = write_network_config(tmp_path)
    config.write_text(config.read_text() + '[editorial]\nrules = "editorial.toml"\n')

    def invoke(*args: str) -> str:
        done = CliRunner().invoke(cli, [*args, "-c", str(config)])
        assert done.exit_code == 0, done.output
        return done.output

    invoke("run")
    store = f"sqlite:///{tmp_path / 'recommendations.sqlite'}"
    recs = Recommendations(store, refresh_seconds=0)
    shown = lambda aid: any(  # noqa: E731
        aid in ids(recs.get(a)) for a in ("a-sake", "a-fuji", "a-baby", "c-sake")
    )
    assert shown("b-baby")
    assert "block-1: article b-baby blocked" in invoke("block", "add", "--article", "b-baby")
    assert not shown("b-baby")  # served at once, before any run
    invoke("pins", "add", "c-fuji", "--slot", "1", "--site", "alpha", "--label", "Partner")
    assert "pin-1: article=c-fuji, slot=1, site=alpha, label=Partner" in invoke("pins", "list")
    invoke("run")
    first = recs.get("a-sake").items[0]
    assert (first.article_id, first.label, first.pinned) == ("c-fuji", "Partner", True)
    assert not shown("b-baby")  # now in the lists themselves
    invoke("block", "remove", "block-1")
    invoke("run")
    assert shown("b-baby")
    done = CliRunner().invoke(cli, ["pins", "remove", "pin-9", "-c", str(config)])
    assert done.exit_code == 2 and "no rule with id 'pin-9'" in done.output
    done = CliRunner().invoke(
        cli, ["block", "add", "--article", "x", "--url", "y", "-c", str(config)]
    )
    assert done.exit_code == 2 and "give exactly one of" in done.output


def test_a_store_of_its_own_without_blocks_is_still_served(tmp_path: Path) -> None:
    """The blocks' copy is optional for a Store: one that keeps none (written
    before them) is served as before, not reported unavailable."""
    from recommender.batch import publish_model
    from recommender.lists import RunInfo
    from recommender.serving import Recommendations
    from recommender.store import Store, open_store

    inner = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")

    class Plain:  # the Store protocol's methods, nothing more
        def __getattr__(self, name: str):
            if name in ("editorial_blocks", "set_editorial_blocks"):
                raise AttributeError(name)
            return getattr(inner, name)

        publish = lambda self, *a, **k: inner.publish(*a, **k)  # noqa: E731
        publish_changes = lambda self, *a, **k: inner.publish_changes(*a, **k)  # noqa: E731
        get = lambda self, *a: inner.get(*a)  # noqa: E731
        current_run = lambda self: inner.current_run()  # noqa: E731
        current_run_id = lambda self: inner.current_run_id()  # noqa: E731
        run = lambda self, *a: inner.run(*a)  # noqa: E731
        runs = lambda self: inner.runs()  # noqa: E731
        record_failure = lambda self, *a: inner.record_failure(*a)  # noqa: E731
        rollback = lambda self, *a: inner.rollback(*a)  # noqa: E731
        close = lambda self: None  # noqa: E731

    store = Plain()
    assert isinstance(store, Store)
    model = fit(tmp_path)
    publish_model(store, model, RunInfo("run-01", "2021-03-08T00:00:00+00:00"))
    recs = Recommendations(store, refresh_seconds=0)
    assert recs.get("a-sake").items and recs.health().store_available
