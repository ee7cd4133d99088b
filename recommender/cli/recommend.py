"""``recommender recommend``: a published list, as a web backend reads it."""

from __future__ import annotations

from pathlib import Path

import click

from recommender.cli._app import (
    cli,
    err,
    errors_to_exit_codes,
    out,
    render_block,
    resolve_config_path,
)
from recommender.errors import (
    StoreError,
)


@cli.command()
@click.argument("article_id")
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    help="Config whose store to read (default as for `run`).",
)
@click.option("--store", "store_url", metavar="URL", help="Store URL (overrides the config's).")
@click.option("-k", type=click.IntRange(min=1), default=None, help="At most this many items.")
@click.option("--site", metavar="KEY", help="Site of the page, for the fallback.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def recommend(
    article_id: str,
    config_path: str | None,
    store_url: str | None,
    k: int | None,
    site: str | None,
    as_json: bool,
) -> None:
    """Print the published list of ARTICLE_ID (as a web backend would read it)."""
    from recommender.serving import Recommendations

    with errors_to_exit_codes():
        if store_url is None:
            from recommender.config import load_config

            store_url = load_config(resolve_config_path(config_path)).store.url
        elif "://" not in store_url:
            store_url = f"sqlite:///{Path(store_url).resolve()}"
        from recommender.store import open_store

        store = open_store(store_url)
        if store.current_run_id() is None:
            raise StoreError(f"{store_url}: nothing published yet; run `recommender run` first")
        block = Recommendations(store).get(article_id, k, site=site)
        if as_json:
            click.echo(block.to_json())
            return
        if block.fallback:
            err.print(
                f"[yellow]{article_id!r} has no list of its own in run "
                f"{block.run_id}; showing the fallback[/]"
            )
        render_block(block, out)
