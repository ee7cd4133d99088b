"""``recommender recommend``: a published list, as a web backend reads it."""

from __future__ import annotations

import click

from recommender.cli._app import (
    cli,
    err,
    errors_to_exit_codes,
    open_configured_store,
    out,
    render_block,
    store_options,
)
from recommender.errors import (
    StoreError,
)


@cli.command()
@click.argument("article_id")
@store_options
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
        store = open_configured_store(config_path, store_url)
        if store.current_run_id() is None:
            raise StoreError(f"{store!r}: nothing published yet; run `recommender run` first")
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
