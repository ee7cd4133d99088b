"""The HTTP service through its HTTP interface (in-process ASGI client)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from recommender.ids import is_valid_id
from recommender.ingest import read_events
from recommender.lists import site_page_id
from recommender.store import open_store
from recommender.web import ServiceSettings, create_app
from recommender.web.assets import FRAGMENT_HEADER
from tests.web.conftest import SEED_BLOCK, SITES, make_client, publish
from tests.web.test_widget import Block

REPO = Path(__file__).resolve().parents[2]


def stored(store_url: str, source_id: str) -> dict:
    store = open_store(store_url)
    try:
        block = store.get(source_id)
    finally:
        store.close()
    assert block is not None
    return as_served(block.to_dict())


def as_served(data: dict, placement: str = "widget") -> dict:
    """A published list as the JSON endpoints answer it for a placement
    with the defaults and no site default images: the text layout, and each
    item's image its own http(s) image (else none)."""
    items = []
    for item in data["items"]:
        image = item["image_url"]
        image = image if image and image.startswith(("http://", "https://")) else None
        items.append(
            {
                **item,
                "image_url": image,
                "image": image,
                "image_source": "article" if image else None,
                "image_fallback": None,
            }
        )
    return {**data, "placement": placement, "layout": "text", "columns": 3, "items": items}


# -- lists -------------------------------------------------------------------------


def test_a_page_list_is_the_published_one_with_cache_headers(client, store_url) -> None:
    response = client.get(
        "/v1/recommendations/jt-1",
        params={"k": 3, "site": "japantoday"},
        headers={"Origin": "https://japantoday.com"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = stored(store_url, "jt-1")
    expected["items"] = expected["items"][:3]
    assert response.json() == expected
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["etag"].startswith('"')
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "path, params, source",
    [
        ("/v1/recommendations/jt-404", {"site": "japantoday"}, site_page_id("japantoday")),
        ("/v1/recommendations/jt-404", {}, "network"),
        ("/v1/recommendations/a/b%20c", {"site": "savvytokyo"}, "network"),
    ],
)
def test_unknown_pages_get_the_fallback(client, store_url, path, params, source) -> None:
    body = client.get(path, params=params).json()
    assert body["fallback"] is True
    assert body["source_id"] == path.removeprefix("/v1/recommendations/").replace("%20", " ")
    assert body["items"] == stored(store_url, source)["items"]


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"site": "nowhere"}, "query.site: Input should be 'gaijinpot-blog', 'gaijinpot-travel'"),
        ({"k": 0}, "greater than or equal to 1"),
        ({"k": 101}, "less than or equal to 100"),
        ({"k": "six"}, "valid integer"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(client, params, problem) -> None:
    response = client.get("/v1/recommendations/jt-1", params=params)
    assert response.status_code == 422
    assert problem in json.dumps(response.json())


def test_trending_of_a_site_and_of_the_network(client, store_url) -> None:
    site = client.get("/v1/trending", params={"site": "japantoday", "k": 2}).json()
    expected = stored(store_url, site_page_id("japantoday"))
    assert site["items"] == expected["items"][:2] and not site["fallback"]
    assert client.get("/v1/trending").json() == stored(store_url, "network")
    missing = client.get("/v1/trending", params={"site": "nowhere"})
    assert missing.status_code == 422 and "'japantoday' or 'savvytokyo'" in missing.json()["detail"]


def test_without_a_registry_any_well_formed_site_key_is_taken(settings) -> None:
    open_registry = dataclasses.replace(settings, sites={})
    with make_client(create_app(open_registry)) as client:
        assert client.get("/v1/trending", params={"site": "elsewhere"}).json()["fallback"]
        bad = client.get("/v1/trending", params={"site": "Bad Site"})
        assert bad.status_code == 422 and "should match pattern" in bad.json()["detail"]


def test_if_none_match_gives_304_until_a_new_run(client, store_url) -> None:
    first = client.get("/v1/recommendations/jt-1")
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/v1/recommendations/jt-1", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    assert client.get("/v1/recommendations/jt-1?k=2").headers["etag"] != etag
    publish(store_url, "run-02")
    fresh = client.get("/v1/recommendations/jt-1", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.json()["run_id"] == "run-02"
    assert {i["article_id"].split("/")[0] for i in fresh.json()["items"]} == {"run-02"}


def test_nothing_to_serve_is_never_cached(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(empty).close()
    settings = ServiceSettings(store_url=empty, events_dir=tmp_path / "events", refresh_seconds=0)
    with make_client(create_app(settings)) as client:
        response = client.get("/v1/recommendations/jt-1")
        assert response.status_code == 200 and response.json()["items"] == []
        assert response.headers["cache-control"] == "no-cache" and "etag" not in response.headers
        widget = client.get("/widget/jt-1")
        assert widget.status_code == 200 and widget.text == ""
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        publish(empty, "run-01")
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["run_id"] == "run-01"


def test_an_unreachable_store_degrades_without_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_text("not a database" * 100)
    settings = ServiceSettings(store_url=f"sqlite:///{broken}", events_dir=tmp_path / "ev")
    with make_client(create_app(settings)) as client:
        assert client.get("/v1/recommendations/jt-1").json()["items"] == []
        health = client.get("/healthz").json()
        assert health["store_available"] is False and "not a database" in health["error"]


# -- widget ------------------------------------------------------------------------


def test_the_widget_fragment_shows_the_block(client) -> None:
    response = client.get("/widget/jt-1", params={"placement": "below-article"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    block = Block(response.text)
    assert block.heading == "A mix of what's trending on our other sites"
    assert [(r["category"], r["title"], r["site"]) for r in block.rows] == [
        (category, title, SITES[site]) for category, title, site in SEED_BLOCK
    ]
    attributes = dict(block.attributes)
    assert attributes["data-rec-events"] == "v1/events"
    assert attributes["data-rec-placement"] == "below-article"
    assert all("utm_campaign=below-article" in r["href"] for r in block.rows)
    etag = response.headers["etag"]
    again = client.get(
        "/widget/jt-1", params={"placement": "below-article"}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert client.get("/widget/jt-1", params={"placement": "<b>"}).status_code == 422


def test_hostile_data_is_escaped_and_unsafe_links_dropped(client) -> None:
    html = client.get("/widget/evil").text
    assert "<script" not in html and "<img" not in html
    assert "javascript:" not in html and "data:text" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    titles = [r["title"] for r in Block(html).rows]
    assert titles == ["<script>window.pwned=1</script>", "Fish & Chips \"quoted\" 'single'"]
    body = client.get("/v1/recommendations/evil").json()
    assert [i["title"] for i in body["items"]] == titles  # the JSON API drops them too


def test_public_url_names_the_events_endpoint(settings) -> None:
    public = dataclasses.replace(settings, public_url="https://recs.example.com/")
    with make_client(create_app(public)) as client:
        attributes = dict(Block(client.get("/widget/jt-1").text).attributes)
    assert attributes["data-rec-events"] == "https://recs.example.com/v1/events"


def test_script_and_styles_are_served_with_long_cache(client) -> None:
    script = client.get("/widget.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "sendBeacon" in script.text and "data-recommender-article" in script.text
    assert f'response.headers.get("{FRAGMENT_HEADER}") === "1"' in script.text
    assert script.headers["cache-control"] == "public, max-age=3600"
    assert (
        client.get("/widget.js", headers={"If-None-Match": script.headers["etag"]}).status_code
        == 304
    )
    assert client.get("/widget.css").headers["content-type"] == "text/css; charset=utf-8"


# -- events ------------------------------------------------------------------------

CLICK = {"kind": "click", "article_id": "st-001", "source_article_id": "jt-1", "session": "p1"}


def test_events_are_accepted_and_reach_the_spool(settings) -> None:
    with make_client(create_app(settings)) as client:
        impressions = {"events": [{**CLICK, "kind": "impression"}, {**CLICK, "article_id": "x"}]}
        response = client.post("/v1/events", json=impressions)
        assert response.status_code == 202 and response.json() == {"accepted": 2}
        beacon = client.post(
            "/v1/events",
            content=json.dumps({"events": [CLICK]}),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )
        assert beacon.status_code == 202
    # Shutting down wrote what was buffered; the batch job reads it.
    loaded = read_events(settings.events_dir / "*.csv")
    assert loaded.n_rejected == 0
    assert loaded.valid["kind"].tolist() == ["impression", "click", "click"]
    assert loaded.valid["source_article_id"].tolist() == ["jt-1"] * 3


def test_a_full_buffer_is_written_without_waiting(settings) -> None:
    eager = dataclasses.replace(settings, events_flush_size=2, events_flush_seconds=3600)
    with make_client(create_app(eager)) as client:
        client.post("/v1/events", json={"events": [CLICK, CLICK]})
        deadline = time.monotonic() + 10
        while not list(eager.events_dir.glob("*.csv")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(read_events(eager.events_dir / "*.csv").valid) == 2


@pytest.mark.parametrize(
    "content, content_type, status, reason",
    [
        ('{"events": [{"kind": "view", "article_id": "a"}]}', "application/json", 422, "kind"),
        ('{"events": [', "application/json", 422, "Invalid JSON"),
        ('{"events": []}', "text/plain", 422, "at least 1 item"),
        ("kind=click", "application/x-www-form-urlencoded", 415, "send application/json"),
        ("{}", "", 415, "(none)"),
    ],
)
def test_bad_events_are_refused_and_never_stored(
    settings, content: str, content_type: str, status: int, reason: str
) -> None:
    with make_client(create_app(settings)) as client:
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post("/v1/events", content=content, headers=headers)
        assert response.status_code == status and reason in response.json()["detail"]
        if status == 422:
            assert response.json()["detail"].startswith("events refused, none stored")
        valid = client.post("/v1/events", json={"events": [CLICK]})
        assert valid.status_code == 202
    assert read_events(settings.events_dir / "*.csv").valid["kind"].tolist() == ["click"]


def test_request_size_is_limited_with_or_without_content_length(settings) -> None:
    small = dataclasses.replace(settings, events_max_body_bytes=200)
    with make_client(create_app(small)) as client:
        big = json.dumps({"events": [CLICK] * 5})
        declared = client.post("/v1/events", content=big, headers={"Content-Type": "text/plain"})
        assert declared.status_code == 413 and "at most 200 accepted" in declared.json()["detail"]

        def chunks():
            yield big[:150].encode()
            yield big[150:].encode()

        streamed = client.post(
            "/v1/events", content=chunks(), headers={"Content-Type": "text/plain"}
        )
        assert streamed.status_code == 413 and "larger than 200" in streamed.json()["detail"]
    assert not list(small.events_dir.glob("*.csv"))


def test_each_client_is_rate_limited(settings) -> None:
    strict = dataclasses.replace(settings, events_rate_per_second=0.01, events_burst=3)
    with make_client(create_app(strict)) as client:
        statuses = [
            client.post("/v1/events", json={"events": [CLICK]}).status_code for _ in range(5)
        ]
        assert statuses == [202, 202, 202, 429, 429]
        limited = client.post("/v1/events", json={"events": [CLICK]})
        assert int(limited.headers["retry-after"]) > 0
        assert "limit 0.01/s, burst 3" in limited.json()["detail"]
        assert client.get("/v1/recommendations/jt-1").status_code == 200  # lists are not limited
    assert len(read_events(strict.events_dir / "*.csv").valid) == 3


# -- the service as a whole ------------------------------------------------------------


def test_openapi_documents_every_endpoint(client) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/v1/recommendations/{article_id}",
        "/v1/trending",
        "/v1/section",
        "/widget",
        "/widget/{article_id}",
        "/widget.js",
        "/widget.css",
        "/v1/events",
        "/healthz",
    }
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/EventBatch"}
    assert "WidgetEvent" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_the_service_loads_no_pickle_and_no_scientific_stack(store_url, tmp_path) -> None:
    (tmp_path / "model.rec").write_bytes(b"not to be opened")
    code = f"""
import json, pickle, sys, warnings
opened = []
def audit(event, args):
    if event == "open" and str(args[0]).endswith((".rec", ".pkl", ".pickle", ".joblib")):
        opened.append(str(args[0]))
    if event == "pickle.find_class":
        opened.append("pickle:" + repr(args))
sys.addaudithook(audit)
def refuse(*args, **kwargs):
    raise AssertionError("the service unpickled something")
pickle.load = pickle.loads = refuse
from pathlib import Path
from recommender.web import ServiceSettings, create_app
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
settings = ServiceSettings(store_url={store_url!r}, events_dir=Path({str(tmp_path)!r}) / "ev")
with TestClient(create_app(settings)) as client:
    statuses = [
        client.get("/v1/recommendations/jt-1").status_code,
        client.get("/widget/jt-1").status_code,
        client.get("/v1/trending").status_code,
        client.post("/v1/events", json={{"events": [{{"kind": "click", "article_id": "a"}}]}})
        .status_code,
        client.get("/healthz").status_code,
    ]
heavy = sorted(m for m in ("sklearn", "scipy", "pandas", "numpy", "joblib") if m in sys.modules)
print(json.dumps({{"statuses": statuses, "heavy": heavy, "opened": opened}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "statuses": [200, 200, 200, 202, 200],
        "heavy": [],
        "opened": [],
    }


# -- untrusted ids, hosts and the documentation ---------------------------------------

#: Ids no page can have (recommender.ids): NUL, C1 controls, line and paragraph
#: separators, DEL, leading or trailing whitespace, and ids far over the limit.
INVALID_IDS = [
    "a\x00b",
    "a\nb",
    "\r",
    "a\x85b",
    "a\x9fb",
    "a\u2028b",
    "a\u2029b",
    "\x7f",
    " jt-1",
    "jt-1\t",
    "a" * 257,
    "j" * 5000,
]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest) -> str:
    """The published run in SQLite, then in PostgreSQL (skipped without a server)."""
    if request.param == "sqlite":
        return request.getfixturevalue("store_url")
    return request.getfixturevalue("postgres_store_url")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every source id the service asks a store (SQLite or PostgreSQL) for."""
    from recommender.store._sql import SQLStore

    seen: list[str] = []
    original = SQLStore.get

    def spy(self: SQLStore, source_id: str):  # type: ignore[no-untyped-def]
        seen.append(source_id)
        return original(self, source_id)

    monkeypatch.setattr(SQLStore, "get", spy)
    return seen


def id_requests(article_id: str, site: str | None) -> list[tuple[str, dict[str, str]]]:
    """The same page asked through each route that takes an article id."""
    params = {"site": site} if site else {}
    path_id = quote(article_id, safe="")
    return [
        (f"/v1/recommendations/{path_id}", params),
        (f"/widget/{path_id}", params),
        ("/widget", {"article": article_id, **params}),
    ]


@pytest.mark.parametrize("site", ["japantoday", None])
@pytest.mark.parametrize("article_id", INVALID_IDS, ids=lambda a: repr(a[:12]))
def test_an_invalid_id_is_an_unknown_page(
    backend_url: str, tmp_path: Path, asked: list[str], article_id: str, site: str | None
) -> None:
    # A long refresh delay: a store marked unavailable by a failed read stays
    # so, and /healthz would show it.
    settings = ServiceSettings(
        store_url=backend_url,
        events_dir=tmp_path / "events",
        sites=SITES,
        refresh_seconds=3600,
    )
    fallback = stored(backend_url, site_page_id(site) if site else "network")
    titles = [item["title"] for item in fallback["items"]]
    with make_client(create_app(settings)) as client:
        for path, params in id_requests(article_id, site):
            response = client.get(path, params=params)
            assert response.status_code == 200, (path, response.text[:200])
            if path.startswith("/v1/"):
                body = response.json()
                assert body["fallback"] is True
                assert body["fallback_source"] == ("site" if site else "network")
                assert body["items"] == fallback["items"]
                assert body["source_id"] == article_id
            else:
                block = Block(response.text)
                assert [row["title"] for row in block.rows] == titles
                # The block names no source the events endpoint would refuse.
                assert "data-rec-source" not in dict(block.attributes)
                assert all("utm_content" not in row["href"] for row in block.rows)
        health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["store_available"] is True, health
    assert asked and all(is_valid_id(source) for source in asked), asked


def test_the_widget_takes_the_id_as_a_query_parameter(client) -> None:
    by_query = client.get("/widget", params={"article": "jt-1", "placement": "below-article"})
    by_path = client.get("/widget/jt-1", params={"placement": "below-article"})
    assert by_query.status_code == by_path.status_code == 200
    assert by_query.text == by_path.text and Block(by_query.text).rows
    assert by_query.headers["content-type"] == "text/html; charset=utf-8"
    assert by_query.headers["x-recommender-fragment"] == "1"
    assert by_query.headers["etag"] == by_path.headers["etag"]
    # Ids that would change a path are only ids here: an unknown page's fallback.
    for article_id in ("../v1/recommendations/jt-1", "%2e%2e/v1/trending", "a?b=c#d", "/"):
        response = client.get("/widget", params={"article": article_id, "site": "japantoday"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert [r["title"] for r in Block(response.text).rows] == [t for _, t, _ in SEED_BLOCK[2:]]
    # Without an article, the page is a home page: its site's block, else the network's.
    home = client.get("/widget", params={"site": "japantoday"})
    assert [r["title"] for r in Block(home.text).rows] == [t for _, t, _ in SEED_BLOCK[2:]]
    network = client.get("/widget")
    assert network.status_code == 200 and Block(network.text).rows


@pytest.mark.parametrize(
    "path",
    ["/widget/jt-1", "/widget?article=jt-1", "/widget/jt-404", "/v1/recommendations/jt-1"],
)
def test_the_host_header_never_steers_an_answer(client, path: str) -> None:
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    response = client.get(path, headers=headers)
    assert response.status_code == 200 and response.headers["cache-control"].startswith("public")
    assert "evil.example" not in response.text
    assert all("evil.example" not in value for value in response.headers.values())
    if path.startswith("/widget"):
        # Relative: widget.js resolves it against its own address.
        assert dict(Block(response.text).attributes)["data-rec-events"] == "v1/events"
        plain = client.get(path)
        assert plain.text == response.text and plain.headers["etag"] == response.headers["etag"]


def test_the_json_says_which_fallback_was_served(client, tmp_path: Path) -> None:
    cases = {
        "/v1/recommendations/jt-1": (False, ""),
        "/v1/recommendations/jt-404?site=japantoday": (True, "site"),
        "/v1/recommendations/jt-404": (True, "network"),
        "/v1/trending?site=japantoday": (False, ""),
    }
    for path, (fallback, source) in cases.items():
        body = client.get(path).json()
        assert (body["fallback"], body["fallback_source"]) == (fallback, source), path
    spec = client.get("/openapi.json").json()["components"]["schemas"]["ListOut"]
    assert "fallback_source" in spec["required"]
    assert spec["properties"]["fallback_source"]["enum"] == ["site", "network", "empty", ""]
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(empty).close()
    nothing = ServiceSettings(store_url=empty, events_dir=tmp_path / "ev", refresh_seconds=0)
    with make_client(create_app(nothing)) as bare:
        body = bare.get("/v1/recommendations/jt-1").json()
    assert (body["fallback"], body["fallback_source"]) == (True, "empty")


def test_the_docs_need_nothing_from_the_internet(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert not re.search(r"https?://", page.text), "an absolute URL in /docs"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    assert len(assets) == 3  # the script, the stylesheet, the icon
    types = {client.get(url).headers["content-type"].split(";")[0] for url in assets}
    for url in assets:
        assert client.get(url).status_code == 200, url
    assert types == {"text/javascript", "text/css", "image/png"}
    script = next(url for url in assets if url.endswith(".js"))
    assert "SwaggerUIBundle" in client.get(script).text
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN
