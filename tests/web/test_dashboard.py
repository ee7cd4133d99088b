"""The operator's page ``/dashboard``: off by default, behind its token, and
its charts drawn from a spool and run records whose figures are known."""

from __future__ import annotations

import asyncio
import csv
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import assume, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from recommender.cli import cli
from recommender.errors import ConfigError
from recommender.lists import NETWORK_PAGE, RunInfo
from recommender.store import open_store
from recommender.web import ServiceSettings, create_app, routes_dashboard
from recommender.web import dashboard_svg as svg
from recommender.web.routes_dashboard import (
    NOT_LOOKED_UP,
    DashboardPage,
    PageSites,
    ctr_charts,
    ctr_over_time,
    spool_files,
)
from recommender.web.service import Service
from tests.web.conftest import HOSTILE_BLOCK, SEED_BLOCK, SITES, make_client, network_lists, page

TOKEN = "s3cret-dashboard-token-0123456789"
EVIL = "<script>window.pwned=1</script>"

#: (day, page, placement, impressions, clicks): pages jt-1 (japantoday),
#: st-1 (savvytokyo) and a page the run has no list of.
TRAFFIC = [
    ("2026-11-28", "jt-1", "below-article", 4, 1),
    ("2026-11-28", "st-1", "sidebar", 2, 0),
    ("2026-11-30", "jt-1", "below-article", 2, 1),
    ("2026-11-30", "st-1", "below-article", 5, 2),
    ("2026-11-30", "nowhere-9", "sidebar", 1, 1),
    ("2026-11-30", "jt-1", EVIL, 1, 0),
]
GRID = [
    {"method": "engine", "half_life": h, "freshness": f, "auc": auc, "mrr": 0.3, "ndcg10": 0.4}
    for h, f, auc in [
        (6.0, True, 0.61),
        (6.0, False, 0.62),
        (24.0, True, 0.63),
        (24.0, False, 0.60),
    ]
] + [{"method": "ctr", "half_life": None, "freshness": None, "auc": 0.615, "mrr": 0.3}]
TRENDING_SUMMARY = {
    "half_life_hours": 24.0,
    "freshness": True,
    "tuned": True,
    "reason": f"back-test {EVIL}",
    "chosen": {"method": "engine", "half_life": 24.0, "auc": 0.63, "mrr": 0.31, "ndcg10": 0.41},
    "best_baseline": {"method": "ctr", "half_life": None, "auc": 0.615, "mrr": 0.3, "ndcg10": 0.4},
    "grid": GRID,
}


def write_spool(folder: Path, rows: list[tuple[str, ...]], name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "kind", "article_id", "source_article_id", "placement", "session"])
        writer.writerows(rows)


def traffic_rows() -> list[tuple[str, ...]]:
    rows = []
    for n, (day, source, placement, shows, clicks) in enumerate(TRAFFIC):
        for i in range(shows):
            ts = f"{day}T10:{n:02d}:{i:02d}Z"
            rows.append((ts, "impression", f"a-{i}", source, placement, f"s{n}"))
        for i in range(clicks):
            ts = f"{day}T10:{n:02d}:{30 + i:02d}Z"
            rows.append((ts, "click", f"a-{i}", source, placement, f"s{n}"))
    rows.append(("2026-11-30T11:00:00Z", "view", "jt-1", "", "", "s9"))  # not an impression
    return rows


@pytest.fixture
def dash_store(tmp_path: Path) -> str:
    return make_dash_store(tmp_path)


def make_dash_store(folder: Path) -> str:
    """Three runs: an early one, a failed one, and the current one (with the
    trending back-test and a network page of hostile titles)."""
    url = f"sqlite:///{folder / 'lists.sqlite'}"
    store = open_store(url)
    store.publish(
        network_lists("run-01"),
        RunInfo("run-01", "2026-11-29T00:00:00+00:00", summary={"timings": {"fit": 2.0}}),
    )
    store.record_failure(RunInfo("run-02", "2026-11-29T12:00:00+00:00"), f"boom {EVIL}")
    # The network page replaced by one that starts with hostile titles.
    lists = [lst for lst in network_lists("run-03") if lst.source_id != NETWORK_PAGE]
    lists += [
        page(NETWORK_PAGE, "run-03", HOSTILE_BLOCK + SEED_BLOCK),
        page("st-1", "run-03", SEED_BLOCK, "savvytokyo"),
    ]
    summary = {
        "timings": {"fit": 3.0, "publish": 1.5},
        "coverage": {"full_lists": 0.9},
        "trending": TRENDING_SUMMARY,
        "ranker": {"auc": 0.64, "weights": {"relevance": 0.5, "trend": 1.25}},
    }
    store.publish(lists, RunInfo("run-03", "2026-11-30T00:00:00+00:00", summary=summary))
    store.close()
    return url


@pytest.fixture
def dash_settings(dash_store: str, tmp_path: Path) -> ServiceSettings:
    settings = ServiceSettings(
        store_url=dash_store,
        events_dir=tmp_path / "events",
        sites=SITES,
        refresh_seconds=0,
        dashboard_token=TOKEN,
    )
    write_spool(settings.events_dir, traffic_rows(), "events-20261130T120000000000Z-1-000001.csv")
    return settings


@pytest.fixture
def dash_client(dash_settings: ServiceSettings) -> Iterator[Any]:
    with make_client(create_app(dash_settings)) as client:
        yield client


class Elements(HTMLParser):
    """Every element's tag and attributes, and the text of each <title>."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.titles: list[str] = []
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.append(data)

    def of(self, tag: str, **match: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.found
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in match.items())
        ]

    def inside(self, chart_id: str, tag: str) -> list[dict[str, str]]:
        """Elements ``tag`` of the chart whose svg has id ``chart_id``."""
        inside, found = False, []
        for t, attrs in self.found:
            if t == "svg":
                inside = attrs.get("id") == chart_id
            elif inside and t == tag:
                found.append(attrs)
        return found


def dashboard(client: Any, **headers: str) -> Any:
    return client.get("/dashboard", headers=headers)


# -- access ------------------------------------------------------------------
def test_the_dashboard_is_off_by_default(client) -> None:
    assert client.get("/dashboard").status_code == 404
    assert client.get(f"/dashboard?token={TOKEN}").status_code == 404


@pytest.mark.parametrize(
    "headers, query",
    [
        ({}, ""),
        ({"Authorization": "Bearer wrong-token-wrong-token"}, ""),
        ({"Authorization": f"Basic {TOKEN}"}, ""),
        ({"Authorization": f"Bearer {TOKEN}x"}, ""),
        ({}, "?token=" + TOKEN[:-1]),
        ({}, "?token="),
    ],
)
def test_a_request_without_the_token_gets_401(dash_client, headers, query) -> None:
    answer = dash_client.get("/dashboard" + query, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in answer.text and "<svg" not in answer.text


def test_the_token_opens_it_by_header_or_query(dash_client) -> None:
    by_header = dashboard(dash_client, Authorization=f"Bearer {TOKEN}")
    assert by_header.status_code == 200
    assert by_header.headers["content-type"].startswith("text/html")
    assert by_header.headers["cache-control"] == "no-store"
    assert by_header.headers["content-security-policy"].startswith("default-src 'none'")
    assert dash_client.get(f"/dashboard?token={TOKEN}").status_code == 200
    assert TOKEN not in by_header.text


def test_the_dashboard_is_not_in_the_api_document(dash_client) -> None:
    assert "/dashboard" not in dash_client.get("/openapi.json").json()["paths"]


def test_the_query_token_is_dropped_before_the_access_log(dash_settings) -> None:
    """uvicorn logs the scope's query string after the response: the route
    leaves it without the token."""
    app = create_app(dash_settings)
    seen: list[bytes] = []

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            seen.append(scope["query_string"])

    with make_client(recorded) as client:
        assert client.get(f"/dashboard?token={TOKEN}&x=1").status_code == 200
        assert client.get("/dashboard?token=nope").status_code == 401
        assert client.get(f"/dashboard?%74oken={TOKEN}").status_code == 200  # "t" escaped
    assert seen == [b"x=1", b"", b""]


def test_the_access_log_never_shows_the_token(dash_settings) -> None:
    """The service's own uvicorn protocol, with the access log on."""
    import io
    import logging
    import socket
    import threading
    import time

    import uvicorn

    from recommender.web.server import uvicorn_options

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = uvicorn.Config(
        create_app(dash_settings),
        log_level="info",
        access_log=True,
        **uvicorn_options(dash_settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    access = logging.getLogger("uvicorn.access")
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        access.addHandler(handler)
        with urllib.request.urlopen(f"{url}/dashboard?token={TOKEN}&k=1", timeout=30) as answer:
            assert answer.status == 200
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        access.removeHandler(handler)
        listener.close()
    assert '"GET /dashboard?k=1 HTTP/1.1" 200' in logged.getvalue()
    assert TOKEN not in logged.getvalue()


@pytest.mark.parametrize("token, message", [("short", "at least 16 characters, got 5")])
def test_a_short_token_is_refused_without_quoting_it(tmp_path: Path, token, message) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        ServiceSettings(store_url="sqlite:///x", events_dir=tmp_path, dashboard_token=token)
    assert token not in str(raised.value).replace("at least", "")


def test_a_token_with_spaces_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="printable ASCII without spaces"):
        ServiceSettings(
            store_url="sqlite:///x", events_dir=tmp_path, dashboard_token="with spaces 0123456"
        )


def test_the_token_is_not_in_the_settings_repr(dash_settings) -> None:
    assert TOKEN not in repr(dash_settings)
    assert ServiceSettings.from_json(dash_settings.to_json()) == dash_settings


# -- what it shows -------------------------------------------------------------
def page_of(client: Any) -> tuple[str, Elements]:
    answer = dashboard(client, Authorization=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    return answer.text, Elements(answer.text)


def ctr_points(found: Elements, chart: str) -> dict[tuple[str, str], tuple[int, int, float]]:
    return {
        (p["data-group"], p["data-x"]): (
            int(p["data-clicks"]),
            int(p["data-impressions"]),
            float(p["data-value"]),
        )
        for p in found.inside(chart, "circle")
    }


def test_ctr_per_site_and_placement_per_day_are_the_hand_counted_ones(dash_client) -> None:
    text, found = page_of(dash_client)
    assert len(found.of("svg")) >= 8
    # Per site: the page's site in the served run (nowhere-9 has no list).
    assert ctr_points(found, "ctr-site") == {
        ("japantoday", "2026-11-28"): (1, 4, 0.25),
        ("savvytokyo", "2026-11-28"): (0, 2, 0.0),
        ("japantoday", "2026-11-30"): (1, 3, pytest.approx(1 / 3, abs=1e-5)),
        ("savvytokyo", "2026-11-30"): (2, 5, 0.4),
        ("(unknown page)", "2026-11-30"): (1, 1, 1.0),
    }
    assert ctr_points(found, "ctr-placement") == {
        ("below-article", "2026-11-28"): (1, 4, 0.25),
        ("sidebar", "2026-11-28"): (0, 2, 0.0),
        ("below-article", "2026-11-30"): (3, 7, pytest.approx(3 / 7, abs=1e-5)),
        ("sidebar", "2026-11-30"): (1, 1, 1.0),
        (EVIL, "2026-11-30"): (0, 1, 0.0),
    }
    # The days between are on the axis, with no point: no impressions that day.
    assert "2026-11-29" in text
    totals = {
        b["data-group"]: (int(b["data-clicks"]), int(b["data-impressions"]))
        for b in found.inside("ctr-site-total", "rect")
    }
    assert totals == {"japantoday": (2, 7), "savvytokyo": (2, 7), "(unknown page)": (1, 1)}
    # Sites by their display names, with the figures in each point's tooltip.
    assert "JapanToday, 2026-11-28: 1 clicks / 4 impressions = 25.00%" in found.titles
    assert "Savvy Tokyo" in text and "below-article" in text and "sidebar" in text
    assert "Events: 15 impressions, 5 clicks" in text
    assert not found.of("svg", id="ctr-variant")  # these events carry no variant


def test_trending_runs_and_the_refit_are_plotted(dash_client) -> None:
    _, found = page_of(dash_client)
    trending = found.inside("trending-network", "rect")
    assert trending[0]["data-label"] == f"{EVIL} (Savvy Tokyo)"
    # Ten items, less the two whose links are not http(s) (dropped by the lookup).
    assert len(trending) == 8 and {b["data-site"] for b in trending} <= set(SITES)
    assert found.of("svg", id="trending-japantoday")
    runs = found.inside("runs-seconds", "rect")
    assert [(r["data-run"], r["data-status"], float(r["data-value"])) for r in runs] == [
        ("run-01", "kept", 2.0),
        ("run-02", "failed", 0.0),
        ("run-03", "current", 4.5),
    ]
    lists = found.inside("runs-lists", "rect")
    assert [float(r["data-value"]) for r in lists] == [4.0, 0.0, 5.0]
    points = {
        (p["data-freshness"], p["data-half-life"]): float(p["data-value"])
        for p in found.inside("backtest", "circle")
    }
    assert points == {
        ("true", "6"): 0.61,
        ("false", "6"): 0.62,
        ("true", "24"): 0.63,
        ("false", "24"): 0.6,
    }
    (reference,) = [a for a in found.inside("backtest", "line") if a["class"] == "reference"]
    assert reference["data-series"] == "best baseline: ctr" and reference["data-value"] == "0.615"
    figures = {b["data-figure"]: float(b["data-value"]) for b in found.inside("ranker", "rect")}
    assert figures == {"auc": 0.64, "weights.relevance": 0.5, "weights.trend": 1.25}


def test_hostile_text_is_escaped_everywhere(dash_client) -> None:
    text, found = page_of(dash_client)
    assert "<script" not in text and "<img" not in text
    assert not found.of("script") and not found.of("img") and not found.of("b")
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in text
    # The data still reads back as it was (the tooltips hold the raw text).
    assert any(EVIL in title for title in found.titles)


def test_without_events_or_a_backtest_the_page_says_so(client, settings, tmp_path: Path) -> None:
    bare = ServiceSettings(
        store_url=settings.store_url, events_dir=tmp_path / "none", dashboard_token=TOKEN
    )
    with make_client(create_app(bare)) as other:
        text, found = page_of(other)
    assert "No impressions or clicks in the events spool yet." in text
    assert found.of("svg", id="trending-network")
    assert "No trending back-test recorded in the runs." in text


def test_the_page_is_kept_for_a_while(dash_settings) -> None:
    now = [0.0]
    service = Service(dash_settings)
    cached = DashboardPage(service, ttl=30, clock=lambda: now[0])
    more = [("2026-11-30T12:00:00Z", "impression", "a-1", "jt-1", "late-placement", "s99")]

    async def twice() -> tuple[str, str, str]:
        first = await cached.html()
        write_spool(dash_settings.events_dir, more, "events-20261130T130000000000Z-1-000002.csv")
        now[0] = 29.0
        second = await cached.html()
        now[0] = 30.0
        third = await cached.html()
        return first, second, third

    try:
        first, second, third = asyncio.run(twice())
    finally:
        service.recs.close()
    assert first == second and "late-placement" not in second
    assert "late-placement" in third


# -- the pieces ----------------------------------------------------------------
def test_ctr_per_variant_hourly() -> None:
    events = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2026-12-01T10:05Z", "2026-12-01T10:10Z", "2026-12-01T10:20Z"]
                + ["2026-12-01T12:01Z"] * 4,
                utc=True,
            ),
            "kind": ["impression", "impression", "click"] + ["impression"] * 3 + ["click"],
            "variant": ["control", "b", "b", "control", "control", "b", "control"],
        }
    )
    found = ctr_over_time(events, "variant", what="variant")
    assert found.hourly and found.buckets == ["12-01 10:00", "12-01 11:00", "12-01 12:00"]
    got = {
        (name, p.x): (p.y, dict(p.data)) for name, points in found.points.items() for p in points
    }
    assert got == {
        ("control", 0): (0.0, {"group": "control", "impressions": "1", "clicks": "0"}),
        ("b", 0): (1.0, {"group": "b", "impressions": "1", "clicks": "1"}),
        ("control", 2): (0.5, {"group": "control", "impressions": "2", "clicks": "1"}),
        ("b", 2): (0.0, {"group": "b", "impressions": "1", "clicks": "0"}),
    }
    assert {b.label: b.value for b in found.totals} == {"control": 1 / 3, "b": 0.5}
    # On the page: a chart per variant beside those per site and placement.
    charts = ctr_charts(events.assign(site="japantoday", placement="below"), SITES)
    assert [c["dimension"] for c in charts] == ["site", "placement", "variant"]
    assert 'id="ctr-variant"' in str(charts[2]["line"]) and charts[2]["step"] == "per hour"
    no_variant = events.assign(site="japantoday", placement="below", variant=pd.NA)
    assert [c["dimension"] for c in ctr_charts(no_variant, SITES)] == ["site", "placement"]


def test_the_window_reads_only_recent_spool_files(tmp_path: Path) -> None:
    names = [
        "events-20261101T000000000000Z-1-000001.csv",  # 29 days before the newest
        "events-20261115T000000000000Z-1-000002.csv",
        "events-20261130T000000000000Z-1-000003.csv",
        "export.csv",  # not named by the spool: always read
    ]
    for name in names:
        (tmp_path / name).write_text("ts,kind,article_id\n")  # 20 bytes each
    assert [p.name for p in spool_files(tmp_path).files] == names[1:]
    assert not spool_files(tmp_path).cut_for_size
    # Beyond the size limit, the newest files (in name order) are read.
    cut = spool_files(tmp_path, max_bytes=45)
    assert [p.name for p in cut.files] == names[2:] and cut.cut_for_size
    assert spool_files(tmp_path / "none").files == []


def test_a_pages_site_is_read_once_per_run(
    dash_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(dash_store, read_only=True)
    asked: list[str] = []

    class Counting:
        def get(self, page: str) -> Any:
            asked.append(page)
            return store.get(page)

    sites = PageSites()
    pages = pd.Series(["jt-1", "st-1", "jt-1", "nowhere-9", None])
    try:
        expected = {"jt-1": "japantoday", "st-1": "savvytokyo", "nowhere-9": "(unknown page)"}
        assert sites.sites(Counting(), "run-03", pages) == expected
        assert sites.sites(Counting(), "run-03", pages) == expected
        assert sorted(asked) == ["jt-1", "nowhere-9", "st-1"]  # once each
        sites.sites(Counting(), "run-04", pages)
        assert len(asked) == 6  # a new run: read again
        monkeypatch.setattr(routes_dashboard, "MAX_PAGES", 1)
        capped = PageSites().sites(Counting(), "run-03", pages)
        # The most shown page is read; the others are not looked up.
        assert capped == {"jt-1": "japantoday", "st-1": NOT_LOOKED_UP, "nowhere-9": NOT_LOOKED_UP}
    finally:
        store.close()


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@settings_(max_examples=60, deadline=None)
@given(names=st.lists(TEXT, min_size=1, max_size=4, unique=True), label=TEXT)
def test_any_text_in_a_chart_reads_back_as_text(names: list[str], label: str) -> None:
    """Whatever the names, a chart is its own elements only, and each name
    and tooltip reads back exactly (escaped, never markup)."""
    assume(not label.endswith(": half"))
    series = {name: [svg.Point(0, 0.5, f"{name}: half", {"group": name})] for name in names}
    line = svg.line_chart(series, [label], chart_id="c", label=label)
    bars = svg.bar_chart(
        [svg.Bar(name, 1.0, name, data={"group": name}) for name in names],
        chart_id="b",
        label=label,
    )
    found = Elements(str(line) + str(bars))
    tags = {tag for tag, _ in found.found}
    assert tags <= {"svg", "title", "line", "text", "path", "circle", "rect", "ul", "li", "span"}
    assert [p["data-group"] for p in found.of("circle")] == names
    assert [p["data-series"] for p in found.of("path")] == names
    assert [b["data-label"] for b in found.of("rect")] == names
    assert [f"{name}: half" for name in names] == [t for t in found.titles if t.endswith(": half")][
        : len(names)
    ]
    assert all(svg_["aria-label"] == label for svg_ in found.of("svg"))


# -- the command -------------------------------------------------------------
def test_serve_needs_the_token_variable_to_be_set(tmp_path: Path, store_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--store", store_url, "--dashboard-token-env", "NO_SUCH_VARIABLE_X"],
        env={"NO_SUCH_VARIABLE_X": ""},
    )
    assert result.exit_code != 0
    assert "the environment variable NO_SUCH_VARIABLE_X is not set or empty" in result.output


@pytest.mark.slow
def test_serve_serves_the_dashboard_with_the_token_of_the_environment(
    tmp_path: Path, dash_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.web.test_serve import start

    monkeypatch.setenv("RECS_DASH_TOKEN", TOKEN)
    process, url = start("--store", dash_store, "--dashboard-token-env", "RECS_DASH_TOKEN")
    try:
        request = urllib.request.Request(
            f"{url}/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            assert b'id="runs-seconds"' in response.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/dashboard", timeout=30)
        assert refused.value.code == 401
    finally:
        process.terminate()
        assert process.wait(timeout=20) in (0, -15)
