"""The block in a Django site, read in-process (a snippet for your app's
``views.py``; not runnable on its own).

settings.py::

    RECOMMENDER_STORE = "sqlite:////srv/recommender/lists.sqlite"

templates/article.html::

    <article>...</article>
    {{ recommendations }}
    <script src="https://recs.example.com/widget.js" async></script>   {# optional: tracking #}
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe

from recommender.serving import Recommendations
from recommender.web.widget import render_widget

from .models import Article  # your model

recs = Recommendations(settings.RECOMMENDER_STORE)  # once per process


def article(request: HttpRequest, article_id: str) -> HttpResponse:
    page = get_object_or_404(Article, pk=article_id)
    block = recs.get(article_id, k=6, site="japantoday")
    # render_widget escapes every value itself, so its output may be marked safe.
    fragment = render_widget(block, events_url="https://recs.example.com/v1/events")
    return render(
        request, "article.html", {"article": page, "recommendations": mark_safe(fragment)}
    )
