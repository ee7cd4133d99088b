"""What ``recommender serve`` can set, in one validated, serialisable object."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.errors import ConfigError

#: Same rule as the config's site keys.
SITE_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: Placements and other tracking tokens.
TOKEN_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: Shortest dashboard token accepted.
MIN_DASHBOARD_TOKEN = 16


@dataclass(frozen=True)
class ServiceSettings:
    """Settings of the HTTP service.

    Parameters
    ----------
    store_url : the published store to serve (``sqlite:///path``, ``postgresql://...``).
    events_dir : folder the accepted impressions and clicks are written to,
        as CSV files for the batch job's ``[data] events`` glob.
    sites : the network's registry, site key -> display name; a ``site``
        parameter outside it is refused. Empty: any well-formed key is accepted.
    site_images : site key -> the site's ``default_image_url`` (thumbnail
        fallback when an article has no image).
    placements : placement -> ``{"layout", "k", "columns"}`` (the config's
        ``[placements]``); an unknown placement gets the text layout.
    experiments : experiment -> ``{"placement", "variants", "control"}``
        (the config's ``[experiments]``): a page view of the placement gets
        the variant its bucket is assigned to (see :meth:`Service.variant_for`).
    public_url : the service's address as browsers reach it (e.g.
        ``https://recs.example.com``), used for the events URL in widget
        fragments; empty: taken from each request (set it behind a proxy).
    refresh_seconds : a newly published run is served within this delay.
    cache_size : lists held decoded in memory (about 10 KB each).
    max_age_seconds : ``Cache-Control: max-age`` of list and widget responses.
    max_k : largest ``k`` a request may ask for.
    response_cache_size : encoded JSON and HTML responses kept per run.
    events_max_body_bytes : largest ``POST /v1/events`` body accepted.
    events_rate_per_second, events_burst : per-client limit on ``POST
        /v1/events`` requests (token bucket: average rate, and burst size).
    events_flush_seconds : buffered events are written at least this often.
    events_flush_size : ... and as soon as this many are buffered.
    events_max_buffered : events held in memory at most while the folder
        cannot be written (then requests get 503).
    header_timeout_seconds : a request's head (request line and headers) must
        arrive within this delay of the connection's start (or, on a
        kept-alive connection, of the request's first byte); else 408 and the
        connection is closed (see :mod:`recommender.web.server`).
    body_timeout_seconds : a request's body must arrive within this delay of
        its head; else 408 (or, once answered, the connection is closed).
    keep_alive_seconds : an idle kept-alive connection is closed after this
        delay (uvicorn's ``timeout_keep_alive``).
    dashboard_token : the operator's page ``/dashboard`` is served only when
        set, to requests that present it (see
        :mod:`recommender.web.routes_dashboard`); at least
        :data:`MIN_DASHBOARD_TOKEN` printable ASCII characters, no spaces.
        Empty (the default): no dashboard. Left out of ``repr``.
    """

    store_url: str
    events_dir: Path
    sites: dict[str, str] = field(default_factory=dict)
    public_url: str = ""
    site_images: dict[str, str] = field(default_factory=dict)
    placements: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_seconds: float = 2.0
    cache_size: int = 20_000
    max_age_seconds: int = 60
    max_k: int = 100
    response_cache_size: int = 10_000
    events_max_body_bytes: int = 16_384
    events_rate_per_second: float = 5.0
    events_burst: int = 20
    events_flush_seconds: float = 2.0
    events_flush_size: int = 1_000
    events_max_buffered: int = 100_000
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    keep_alive_seconds: int = 5
    dashboard_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "cache_size",
            "max_k",
            "response_cache_size",
            "events_max_body_bytes",
            "events_burst",
            "events_flush_size",
            "events_max_buffered",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "events_rate_per_second",
            "events_flush_seconds",
            "header_timeout_seconds",
            "body_timeout_seconds",
            "keep_alive_seconds",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        for name in ("refresh_seconds", "max_age_seconds"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 seconds, got {getattr(self, name)}")
        if self.public_url and not re.match(r"^https?://[^/\s]+(/\S*)?$", self.public_url):
            problems.append(f"public_url must be an http(s) URL, got {self.public_url!r}")
        bad_keys = [key for key in self.sites if not re.match(SITE_KEY_PATTERN, key)]
        if bad_keys:
            problems.append(f"site keys must match {SITE_KEY_PATTERN}, got {bad_keys}")
        if self.dashboard_token:
            # Never quote the token itself in the message.
            if len(self.dashboard_token) < MIN_DASHBOARD_TOKEN:
                problems.append(
                    f"dashboard_token must be at least {MIN_DASHBOARD_TOKEN} characters, "
                    f"got {len(self.dashboard_token)}"
                )
            if not re.fullmatch(r"[\x21-\x7e]+", self.dashboard_token):
                problems.append(
                    "dashboard_token must be printable ASCII without spaces "
                    "(it is sent in an HTTP header)"
                )
        from recommender.experiments import Experiment

        for name, e in self.experiments.items():
            try:
                Experiment(name, str(e["placement"]), dict(e["variants"]), control=e.get("control"))
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"experiments.{name}: {error}")
        if problems:
            raise ConfigError("invalid service settings: " + "; ".join(problems))

    def to_json(self) -> str:
        """The settings as JSON (for handing them to worker processes)."""
        data: dict[str, Any] = dataclasses.asdict(self)
        data["events_dir"] = str(self.events_dir)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        """Settings from :meth:`to_json`'s output; ConfigError when malformed."""
        try:
            data = json.loads(text)
            data["events_dir"] = Path(data["events_dir"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"malformed service settings: {error}") from None
