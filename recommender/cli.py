"""The ``recommender`` command.

Exit codes: 0 success; 2 bad configuration or usage; 3 bad input data;
4 store unavailable; 1 any other (internal) failure. A failed run publishes
nothing: the previous lists stay served.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from recommender.errors import (
    ArtifactError,
    ConfigError,
    InputError,
    RecommenderError,
    SchemaError,
    StoreError,
)
from recommender.lists import RecommendationList
from recommender.progress import StageTimer

EXIT_INTERNAL, EXIT_CONFIG, EXIT_INPUT, EXIT_STORE = 1, 2, 3, 4
HEADING = "A mix of what's trending on our other sites"
DEFAULT_CONFIG = "recommender.toml"

out = Console()
err = Console(stderr=True, soft_wrap=True)


class RichStages(StageTimer):
    """Stage timings plus a progress bar for stages that report a total."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress
        self._task: TaskID | None = None

    def _start(self, name: str, total: int | None) -> Callable[[int], None]:
        self._task = self._progress.add_task(name, total=total)
        task = self._task
        return lambda n: self._progress.advance(task, n)

    def _finish(self, name: str) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, completed=task.total or 1, total=task.total or 1)
            self._task = None


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    try:
        yield
    except ConfigError as error:
        err.print(f"[bold red]config error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_CONFIG)
    except (SchemaError, InputError) as error:
        err.print(f"[bold red]input error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_INPUT)
    except StoreError as error:
        err.print(f"[bold red]store error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_STORE)
    except ArtifactError as error:
        err.print(f"[bold red]model error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_INPUT)
    except RecommenderError as error:
        err.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_INTERNAL)


def _config_path(config: str | None) -> Path:
    return Path(config or os.environ.get("RECOMMENDER_CONFIG") or DEFAULT_CONFIG)


def render_block(lst: RecommendationList, console: Console, title: str = HEADING) -> None:
    """Print a list the way the page shows it: category label, title, site name."""
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column("category", style="cyan", no_wrap=True)
    table.add_column("title")
    table.add_column("site", style="green", no_wrap=True)
    for item in lst.items:
        table.add_row(item.category or "[dim](none)[/]", item.title, item.site_name)
    if not lst.items:
        table.add_row("", "[dim](no recommendations)[/]", "")
    console.print(table)


def _print_summary(summary: Any, console: Console) -> None:
    table = Table(
        title=f"run {summary.run_id}",
        title_justify="left",
        show_header=False,
        box=None,
        padding=(0, 2),
    )
    table.add_column(style="bold")
    table.add_column()
    cov = summary.coverage
    rows = [
        ("reference time", summary.now),
        (
            "articles",
            f"{summary.articles} valid of {summary.articles_read} read "
            f"({summary.articles_rejected} rejected), {summary.eligible} eligible",
        ),
        (
            "events",
            f"{summary.events_read} read, {summary.events_rejected} rejected, "
            f"{summary.events_unmatched} for unknown articles; {summary.views} views",
        ),
        ("lists", f"{summary.lists} published to {summary.store_url}"),
        (
            "coverage",
            f"{cov.get('full_lists', 0):.1%} of articles have a full list; "
            f"{cov.get('catalogue', 0):.1%} of eligible articles shown somewhere; "
            f"{cov.get('related_items', 0):.1%} of items related to their page",
        ),
        (
            "time",
            ", ".join(f"{k} {v:.2f}s" for k, v in summary.timings.items())
            + f"; total {sum(summary.timings.values()):.2f}s",
        ),
    ]
    if summary.model_path:
        rows.append(("model", f"{summary.model_path} ({summary.model_version})"))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if summary.problems:
        console.print("[bold yellow]input problems[/] (first ones; --rejects FILE writes all):")
        for line in summary.problems[:10]:
            console.print(f"  {line}", highlight=False, markup=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Cross-site recommendations: 'A mix of what's trending on our other sites'."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)]
    )


@cli.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    help=f"TOML config (default: $RECOMMENDER_CONFIG or ./{DEFAULT_CONFIG}).",
)
@click.option(
    "--now",
    metavar="ISO-TIME",
    help="Reference time, e.g. 2021-03-08T00:00:00Z "
    "(default: the config's run.now, else the current time).",
)
@click.option(
    "--show",
    metavar="ARTICLE_ID",
    help="Article whose block is printed "
    "(default: the top trending article of the first site in the config).",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    metavar="CSV",
    help="Write every rejected input row (file, row, field, reason) to this CSV.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, summary or block.")
def run(
    config_path: str | None, now: str | None, show: str | None, rejects: str | None, quiet: bool
) -> None:
    """Load articles and traffic, fit, score every article, publish all lists."""
    from recommender.batch import run_batch
    from recommender.config import load_config

    with _errors_to_exit_codes():
        config = load_config(_config_path(config_path))
        reference = None
        if now:
            try:
                reference = datetime.fromisoformat(now.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(
                    f"--now {now!r}: expected ISO 8601, e.g. 2021-03-08T00:00Z"
                ) from None
            if reference.tzinfo is None:
                raise ConfigError(f"--now {now!r}: needs a UTC offset, e.g. ...T00:00Z")
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=quiet,
        ) as bars:
            summary, model = run_batch(
                config, now=reference, progress=RichStages(bars), rejects_path=rejects
            )
        if quiet:
            return
        _print_summary(summary, out)
        source = show or _default_show(model, config)
        if source:
            _print_page(model, config, source)


def _print_page(model: Any, config: Any, source: str) -> None:
    """The page's title line, then its block as the page shows it."""
    try:
        block = model.recommend(source)
    except KeyError:
        err.print(f"[yellow]--show {source!r}: no such page in this run[/]")
        return
    articles = model.articles_.set_index("article_id")
    out.print()
    if source in articles.index:
        article = articles.loc[source]
        site_name = config.sites[str(article["site"])].display_name
        out.print(f"[bold]{article['title']}[/]  [dim]{source} · {site_name}[/]", highlight=False)
    else:
        out.print(f"[bold]{source}[/]", highlight=False)
    render_block(block, out)


def _default_show(model: Any, config: Any) -> str | None:
    """The top trending article of the first site in the config (the news site)."""
    on_site = (model.articles_["site"] == next(iter(config.sites))).to_numpy()
    if not on_site.any():
        return None
    return str(model.trend_["trend"][on_site].idxmax())


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

    with _errors_to_exit_codes():
        if store_url is None:
            from recommender.config import load_config

            store_url = load_config(_config_path(config_path)).store.url
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

    with _errors_to_exit_codes():
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
            f"to {out_path}; trending: {', '.join(spikes)}"
        )


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SystemExit:
        raise
    except Exception:
        err.print_exception()
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
