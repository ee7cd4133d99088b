"""A FastAPI site that shows the block under its articles, read in-process.

The same pattern as the Flask example: one :class:`Recommendations` per
process, ``get`` per request, :func:`render_widget` for the HTML. (To run
the bundled HTTP service instead, for backends in other languages, use
``recommender serve``.)

::

    pip install 'recommender[web]'
    RECOMMENDER_STORE=sqlite:////srv/recommender/lists.sqlite \\
        uvicorn --app-dir examples fastapi_app:app
"""

from __future__ import annotations

import html
import os

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from recommender.serving import Recommendations
from recommender.web.widget import render_widget

STORE = os.environ.get("RECOMMENDER_STORE", "sqlite:///var/sample-store.sqlite")
SERVICE_URL = os.environ.get("RECOMMENDER_SERVICE_URL", "").rstrip("/")
SITE = os.environ.get("RECOMMENDER_SITE", "japantoday")

app = FastAPI(title="a publisher's site")
recs = Recommendations(STORE)  # once per process; picks up new runs by itself


@app.get("/articles/{article_id}", response_class=HTMLResponse)
def article(article_id: str) -> str:
    block = recs.get(article_id, k=6, site=SITE)
    events_url = f"{SERVICE_URL}/v1/events" if SERVICE_URL else None
    script = (
        f'<script src="{html.escape(SERVICE_URL)}/widget.js" async></script>' if SERVICE_URL else ""
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(article_id)}</title></head><body>"
        f"<article><h1>Article {html.escape(article_id)}</h1></article>"
        f"{render_widget(block, events_url=events_url)}{script}</body></html>"
    )


@app.get("/api/articles/{article_id}/recommendations")
def recommendations(article_id: str, k: int = 6) -> list[dict[str, str]]:
    """The block as data, for a front end that renders it itself."""
    block = recs.get(article_id, k=k, site=SITE)
    return [
        {"category": i.category, "title": i.title, "site": i.site_name, "url": i.url}
        for i in block.items
    ]
