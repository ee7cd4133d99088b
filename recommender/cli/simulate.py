"""``recommender simulate-traffic``: the sample's pageview simulator."""

from __future__ import annotations

import click

from recommender.cli._app import (
    cli,
    errors_to_exit_codes,
    out,
)
from recommender.errors import (
    InputError,
)


@cli.command("simulate-traffic")
@click.option(
    "--articles",
    "articles_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Article file (CSV, JSONL or Parquet).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Pageview log to write (.csv, .csv.gz or .parquet).",
)
@click.option(
    "--end",
    required=True,
    metavar="ISO-TIME",
    help="End of the simulated period (the sample's reference time).",
)
@click.option("--days", type=click.IntRange(min=1), default=66, show_default=True)
@click.option(
    "--views",
    type=click.IntRange(min=1),
    default=120_000,
    show_default=True,
    help="Approximate number of pageviews.",
)
@click.option(
    "--trending",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Articles that trend sharply in the last days.",
)
@click.option("--seed", type=int, default=20210308, show_default=True)
def simulate_traffic(
    articles_path: str, out_path: str, end: str, days: int, views: int, trending: int, seed: int
) -> None:
    """Write a simulated pageview log for an article file (see data/README.md)."""
    from recommender.ingest import read_articles
    from recommender.simulate import TrafficParams, simulate_pageviews, write_events

    with errors_to_exit_codes():
        articles = read_articles(articles_path)
        if articles.n_rejected:
            raise InputError("\n".join(articles.describe_problems()))
        params = TrafficParams(
            end=end, days=days, total_views=views, n_trending=trending, seed=seed
        )
        events, spikes = simulate_pageviews(articles.valid, params)
        write_events(events, out_path)
        out.print(
            f"wrote {len(events)} pageviews of {events['article_id'].nunique()} articles "
            f"to {out_path}; trending: {', '.join(spikes)}",
            soft_wrap=True,  # a path stays whole in a pipe or log
            highlight=False,
            markup=False,
        )
