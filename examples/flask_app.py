"""A Flask site that shows the block under its articles, read in-process.

The backend imports the library: one :class:`Recommendations` per process,
one ``get`` per page render (microseconds once cached; never raises), and
:func:`render_widget` for the block's HTML. With ``RECOMMENDER_SERVICE_URL``
set, the page also loads the service's ``widget.js``, which reports
impressions and clicks to that service's ``POST /v1/events``.

::

    pip install 'recommender[web]' flask
    RECOMMENDER_STORE=sqlite:////srv/recommender/lists.sqlite \\
        flask --app examples/flask_app.py run
"""

from __future__ import annotations

import os

from flask import Flask, render_template_string
from markupsafe import Markup

from recommender.serving import Recommendations
from recommender.web.widget import render_widget

STORE = os.environ.get("RECOMMENDER_STORE", "sqlite:///var/sample-store.sqlite")
SERVICE_URL = os.environ.get("RECOMMENDER_SERVICE_URL", "").rstrip("/")
SITE = os.environ.get("RECOMMENDER_SITE", "japantoday")

app = Flask(__name__)
recs = Recommendations(STORE)  # once per process; picks up new runs by itself

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ article_id }}</title>
{% if service_url %}<link rel="stylesheet" href="{{ service_url }}/widget.css">{% endif %}
</head><body>
<article><h1>Article {{ article_id }}</h1></article>
{{ block }}
{% if service_url %}<script src="{{ service_url }}/widget.js" async></script>{% endif %}
</body></html>
"""


@app.get("/articles/<article_id>")
def article(article_id: str) -> str:
    block = recs.get(article_id, k=6, site=SITE)
    events_url = f"{SERVICE_URL}/v1/events" if SERVICE_URL else None
    # render_widget escapes every value itself: its output is safe markup.
    fragment = Markup(render_widget(block, events_url=events_url))
    return render_template_string(
        PAGE, article_id=article_id, block=fragment, service_url=SERVICE_URL
    )
