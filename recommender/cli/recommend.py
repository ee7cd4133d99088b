"""``recommender recommend``: a published list, as a web backend reads it."""

from __future__ import annotations

import click
from rich.markup import escape

from recommender.cli._app import (
    cli,
    err,
    errors_to_exit_codes,
    open_existing_store,
    out,
    render_block,
    store_options,
)
from recommender.errors import StoreError
from recommender.ids import is_valid_id
from recommender.lists import (
    FALLBACK_EMPTY,
    FALLBACK_NETWORK,
    FALLBACK_SITE,
    NETWORK_PAGE,
    RecommendationList,
    site_page_id,
)
from recommender.store import Store


def describe_fallback(block: RecommendationList) -> str:
    """Which list is shown in place of the page's own, in words."""
    if block.fallback_source == FALLBACK_SITE:
        page = site_page_id(block.site) if block.site else "a site's page"
        return f"the site's trending mix ({page})"
    if block.fallback_source == FALLBACK_NETWORK:
        return f"the network's trending mix ({NETWORK_PAGE})"
    if block.fallback_source == FALLBACK_EMPTY:
        return "nothing to show (no list for the page, its site or the network)"
    return "another list"


def _check_site(site: str, config_sites: list[str] | None, store: Store) -> None:
    """Refuse (exit 2) a ``--site`` the config, or else the store's current
    run, does not know; accept any when neither can tell."""
    if config_sites is not None:
        known, where = config_sites, "in the config"
    else:
        page_sites = getattr(store, "page_sites", None)
        known = page_sites() if page_sites is not None else []
        where = "with a page list in the current run"
    if is_valid_id(site) and (not known or site in known):
        return
    raise click.BadParameter(
        f"no site {site!r}; the sites {where}: {', '.join(known) or 'none'}",
        param_hint="'--site'",
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
    """Print the published list of ARTICLE_ID (as a web backend would read it).

    The store is only read (a path where there is none is refused, not
    created). A page without a list of its own shows its fallback, and says
    which: the site's trending mix (with --site), the network's, or nothing.
    """
    from recommender.serving import Recommendations

    with errors_to_exit_codes():
        store, sites = open_existing_store(config_path, store_url)
        try:
            if site is not None:
                _check_site(site, sites, store)
            if store.current_run_id() is None:
                raise StoreError(f"{store!r}: nothing published yet; run `recommender run` first")
            block = Recommendations(store).get(article_id, k, site=site)
        finally:
            store.close()
        if as_json:
            click.echo(block.to_json())
            return
        if block.fallback:
            err.print(
                f"[yellow]{escape(repr(article_id))} has no list of its own in run "
                f"{escape(block.run_id)}[/]",
                highlight=False,
            )
            click.echo(f"fallback: {describe_fallback(block)}")
        render_block(block, out)
