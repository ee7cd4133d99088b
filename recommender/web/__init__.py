"""The HTTP service, the widget and click tracking (the ``web`` extra).

- :func:`create_app` / :class:`ServiceSettings`: the FastAPI service that
  ``recommender serve`` runs (see :mod:`recommender.web.app`).
- :func:`render_widget`: the block as an HTML fragment, for a Flask or Django
  backend that renders it itself (:mod:`recommender.web.widget`, Jinja2 only).
- :mod:`recommender.web.events`: validation, rate limiting and the spool of
  impressions and clicks.

The core package never imports this one.
"""

from recommender.web.app import create_app
from recommender.web.settings import ServiceSettings
from recommender.web.widget import HEADING, render_widget, tracked_url

__all__ = ["HEADING", "ServiceSettings", "create_app", "render_widget", "tracked_url"]
