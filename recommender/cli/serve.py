"""``recommender serve``: the HTTP service (lists, widget, events)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from recommender.cli._app import (
    cli,
    err,
    errors_to_exit_codes,
    require_extra,
    resolve_config_path,
    store_options,
)
from recommender.errors import ConfigError, StoreError


@cli.command()
@store_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each with its own cache and event buffer).",
)
@click.option(
    "--events-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for impression and click files "
    "(default: 'events' beside a SQLite store). Add 'DIR/*.csv' to the config's [data] events.",
)
@click.option(
    "--public-url",
    default="",
    metavar="URL",
    help="The service's address as browsers reach it, for the events URL in widget "
    "fragments (default: a URL relative to widget.js's own address; never the request's "
    "Host header, which a client chooses).",
)
@click.option(
    "--refresh-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="A newly published run is served within this delay.",
)
@click.option(
    "--max-age",
    type=click.IntRange(min=0),
    default=60,
    show_default=True,
    help="Cache-Control max-age of list and widget responses, in seconds.",
)
@click.option(
    "--events-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Event requests per second allowed per client, on average.",
)
@click.option(
    "--events-burst",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Event requests a client may send at once.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="A request's head (request line and headers) must arrive within this delay of "
    "the connection's start, or of its first byte on a kept-alive connection; else 408 "
    "and the connection is closed (slow or idle clients cannot hold connections).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="A request's body must arrive within this delay of its head; else 408 and the "
    "connection is closed.",
)
@click.option(
    "--keep-alive-timeout",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    metavar="SECONDS",
    help="An idle kept-alive connection is closed after this delay.",
)
@click.option(
    "--dashboard-token-env",
    metavar="NAME",
    default=None,
    help="Serve the operator's page at /dashboard, to requests that present the token "
    "held by the environment variable NAME (at least 16 characters) as 'Authorization: "
    "Bearer <token>' or ?token=. Off by default. The token is never taken from the "
    "command line (other users of the machine can read it there).",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(
    config_path: str | None,
    store_url: str | None,
    host: str,
    port: int,
    workers: int,
    events_dir: Path | None,
    public_url: str,
    refresh_seconds: float,
    max_age: int,
    events_rate: float,
    events_burst: int,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: int,
    dashboard_token_env: str | None,
    access_log: bool,
) -> None:
    """Serve the published lists over HTTP: JSON, the widget, and event collection.

    Endpoints: GET /v1/recommendations/{article_id}, GET /v1/trending, GET
    /widget?article={article_id} (and /widget/{article_id}), GET /widget.js,
    POST /v1/events, GET /healthz; API docs at /docs. The service only reads
    the store: start it once, and each `recommender run` is picked up without
    a restart. Each connection has time limits (--header-timeout,
    --body-timeout, --keep-alive-timeout). With --dashboard-token-env, GET
    /dashboard is the operator's page (CTR over time, trending, the runs).
    """
    require_extra("web", "uvicorn", "fastapi", "jinja2", command="serve")
    with errors_to_exit_codes():
        import uvicorn

        from recommender.store import open_store
        from recommender.web.app import SETTINGS_ENV, create_app
        from recommender.web.server import uvicorn_options
        from recommender.web.settings import ServiceSettings

        sites: dict[str, str] = {}
        site_images: dict[str, str] = {}
        placements: dict[str, dict[str, object]] = {}
        experiments: dict[str, dict[str, object]] = {}
        if store_url is None or config_path is not None:
            from recommender.config import load_config

            config = load_config(resolve_config_path(config_path))
            sites = {key: site.display_name for key, site in config.sites.items()}
            site_images = {
                key: site.default_image_url
                for key, site in config.sites.items()
                if site.default_image_url
            }
            placements = {name: p.model_dump() for name, p in config.placements.items()}
            experiments = {
                name: {"placement": e.placement, "variants": e.variants, "control": e.control}
                for name, e in config.experiments.items()
            }
            store_url = store_url or config.store.url
        store_url = _absolute_store_url(store_url)
        if events_dir is None:
            if not store_url.startswith("sqlite:///"):
                raise ConfigError("--events-dir is needed when the store is not a SQLite file")
            events_dir = Path(store_url.removeprefix("sqlite:///")).parent / "events"
        settings = ServiceSettings(
            store_url=store_url,
            events_dir=events_dir.resolve(),
            sites=sites,
            site_images=site_images,
            placements=placements,
            experiments=experiments,
            public_url=public_url,
            refresh_seconds=refresh_seconds,
            max_age_seconds=max_age,
            events_rate_per_second=events_rate,
            events_burst=events_burst,
            header_timeout_seconds=header_timeout,
            body_timeout_seconds=body_timeout,
            keep_alive_seconds=keep_alive_timeout,
            dashboard_token=_dashboard_token(dashboard_token_env),
        )
        store = open_store(store_url, read_only=True)
        run = store.current_run()
        store.close()
        if workers > 1 and port == 0:
            raise ConfigError("--port 0 (any free port) needs --workers 1")
        # One worker: bind here, so that --port 0 can print the port it got.
        listener = _listen(host, port) if workers == 1 else None
        bound = listener.getsockname()[1] if listener else port
        shown_host = f"[{host}]" if ":" in host else host
        if settings.dashboard_token:
            err.print(f"operator's dashboard at /dashboard (token from ${dashboard_token_env})")
        err.print(
            f"serving run {run.run_id} ({run.n_lists} lists)"
            if run
            else "[yellow]nothing published yet[/]: /healthz answers 503 until a run is",
            f"from {store_url}\nlistening on http://{shown_host}:{bound} (API docs at /docs); "
            f"events to {settings.events_dir}",
            highlight=False,
        )
        log_level = "info" if access_log else "warning"
        if listener is not None:
            server_config = uvicorn.Config(
                create_app(settings),
                log_level=log_level,
                access_log=access_log,
                **uvicorn_options(settings),
            )
            uvicorn.Server(server_config).run(sockets=[listener])
        else:
            os.environ[SETTINGS_ENV] = settings.to_json()
            uvicorn.run(
                "recommender.web.app:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
                access_log=access_log,
                **uvicorn_options(settings),
            )


def _dashboard_token(name: str | None) -> str:
    """The dashboard's token from the environment variable ``name`` ("" without one)."""
    if name is None:
        return ""
    token = os.environ.get(name, "")
    if not token:
        raise ConfigError(
            f"--dashboard-token-env {name}: the environment variable {name} is not set or empty"
        )
    return token


def _absolute_store_url(url: str) -> str:
    """A SQLite store URL with an absolute path that exists (``serve`` never
    creates an empty store: a mistyped path would serve nothing forever)."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    if not url.startswith("sqlite:///"):
        return url
    path = Path(url.removeprefix("sqlite:///")).resolve()
    if not path.is_file():
        raise StoreError(f"{path}: no store there; run `recommender run` first, or check the path")
    return f"sqlite:///{path}"


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say
    # TCP, and without it a keep-alive response waits ~40 ms for a delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    listener.listen(2048)
    return listener
