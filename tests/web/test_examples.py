"""The integration examples a web developer copies: Flask and FastAPI sites
that import the library and show the block under their articles."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.web.conftest import SEED_BLOCK, SITES, make_client
from tests.web.test_widget import Block

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str, store_url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("RECOMMENDER_STORE", store_url)
    monkeypatch.setenv("RECOMMENDER_SERVICE_URL", "https://recs.example.com/")
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_article_page(html: str) -> None:
    block = Block(html)
    assert block.heading == "A mix of what's trending on our other sites"
    assert [(r["category"], r["title"], r["site"]) for r in block.rows] == [
        (category, title, SITES[site]) for category, title, site in SEED_BLOCK
    ]
    assert ("data-rec-events", "https://recs.example.com/v1/events") in block.attributes
    assert '<script src="https://recs.example.com/widget.js" async></script>' in html


def check_hostile_page(html: str) -> None:
    block = Block(html)
    assert "<script>window" not in html and "javascript:" not in html
    assert block.rows[0]["title"] == "<script>window.pwned=1</script>"


def test_the_flask_example_shows_the_block(store_url, monkeypatch) -> None:
    pytest.importorskip("flask", reason="the Flask example needs flask (test extra)")
    example = load_example("flask_app", store_url, monkeypatch)
    client = example.app.test_client()
    response = client.get("/articles/jt-1")
    assert response.status_code == 200
    check_article_page(response.get_data(as_text=True))
    check_hostile_page(client.get("/articles/evil").get_data(as_text=True))
    # An article the store does not know: the site's trending mix, no error.
    unknown = Block(client.get("/articles/jt-999").get_data(as_text=True))
    assert [r["title"] for r in unknown.rows] == [title for _, title, _ in SEED_BLOCK[2:]]


def test_the_fastapi_example_shows_the_block(store_url, monkeypatch) -> None:
    example = load_example("fastapi_app", store_url, monkeypatch)
    with make_client(example.app) as client:
        check_article_page(client.get("/articles/jt-1").text)
        check_hostile_page(client.get("/articles/evil").text)
        data = client.get("/api/articles/jt-1/recommendations", params={"k": 2}).json()
    assert data == [
        {
            "category": category,
            "title": title,
            "site": SITES[site],
            "url": f"https://{site}.example/articles/{n}?ref=feed",
        }
        for n, (category, title, site) in enumerate(SEED_BLOCK[:2])
    ]


def test_the_embed_snippet_names_the_page_and_the_script() -> None:
    html = (EXAMPLES / "embed.html").read_text()
    assert re.search(r'<div data-recommender-article="jt-070"[^>]*data-recommender-site=', html)
    assert '<script src="https://recs.example.com/widget.js" async></script>' in html
