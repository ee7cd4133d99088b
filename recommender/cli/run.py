"""``recommender run``: the batch job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from recommender.cli._app import (
    DEFAULT_CONFIG,
    RichStages,
    cli,
    err,
    errors_to_exit_codes,
    out,
    render_block,
    require_config_extras,
    resolve_config_path,
)
from recommender.errors import (
    ConfigError,
)


class StageCount(ProgressColumn):
    """``done/total`` for a stage that reports a total; a spinner while one
    that does not (loading, saving the model) runs; ``done`` once a stage
    is finished (never ``0/None``)."""

    def __init__(self) -> None:
        super().__init__()
        self._spinner = SpinnerColumn()

    def render(self, task: Task) -> RenderableType:
        if task.finished:
            return Text("done", style="progress.elapsed")
        if task.total is None:
            return self._spinner.render(task)
        return Text(f"{int(task.completed)}/{int(task.total)}", style="progress.download")


def progress_columns() -> tuple[ProgressColumn, ...]:
    """The columns of ``recommender run``'s progress bars, one row per stage."""
    return (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        StageCount(),
        TimeElapsedColumn(),
    )


def trending_line(trending: dict[str, Any]) -> str:
    """One line on the trending settings used and how they were chosen."""
    if not trending:
        return "settings as configured"
    used = (
        f"half-life {trending['half_life_hours']:g} h, freshness "
        f"{'on' if trending['freshness'] else 'off'}, CTR prior "
        f"{trending['prior_impressions']:.3g} impressions"
    )
    how = "tuned" if trending.get("tuned") else "not tuned"
    if trending.get("kept_from_refit"):
        how += " (kept from the last refit)"
    chosen, best = trending.get("chosen"), trending.get("best_baseline")
    if chosen and best:
        how += (
            f": back-test AUC {chosen['auc']:.4f}, best baseline {best['method']} {best['auc']:.4f}"
        )
    elif trending.get("reason"):
        how += f": {trending['reason']}"
    return f"{used}; {how}"


def print_summary(summary: Any, console: Console) -> None:
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
            f"{summary.events_unmatched} for unknown articles, "
            f"{summary.events_after_now} dated after the reference time (not counted); "
            f"{summary.views} views",
        ),
        (
            "lists",
            f"{summary.lists} published to {summary.store_url}"
            + (
                f" ({summary.lists_written} changed lists written)"
                if summary.mode == "update"
                else ""
            ),
        ),
        ("model", f"{summary.mode}: {summary.mode_reason}"),
        ("trending", trending_line(summary.trending)),
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
        rows.append(("saved model", f"{summary.model_path} ({summary.model_version})"))
    elif summary.model_error:
        rows.append(("saved model", summary.model_error))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in summary.editorial:
        console.print(f"[bold yellow]editorial:[/] {escape(line)}", highlight=False)
    if summary.problems:
        console.print("[bold yellow]input problems[/] (first ones; --rejects FILE writes all):")
        for line in summary.problems[:10]:
            console.print(f"  {line}", highlight=False, markup=False)


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
    help="Article whose block is printed, or site:KEY for a site's page, or network "
    "(default: the top trending article of the first site in the config).",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    metavar="CSV",
    help="Write every rejected input row (file, row, field, reason) to this CSV.",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Score on a Dask cluster: a scheduler's address (tcp://host:8786) or local:N "
    "for N worker processes on this machine (default: the config's run.cluster, else "
    "this process).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, summary or block.")
def run(
    config_path: str | None,
    now: str | None,
    show: str | None,
    rejects: str | None,
    cluster: str | None,
    quiet: bool,
) -> None:
    """Load articles and traffic, fit, score every article, publish all lists."""
    from recommender.batch import run_batch
    from recommender.config import load_config, validate_cluster_address

    with errors_to_exit_codes():
        config = load_config(resolve_config_path(config_path))
        if cluster is not None:
            try:
                address = validate_cluster_address(cluster)
            except ValueError as error:
                raise ConfigError(f"--cluster: {error}") from None
            run_section = config.run.model_copy(update={"cluster": address})
            config = config.model_copy(update={"run": run_section})
        require_config_extras(config)  # postgres store, Dask cluster: before any work
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
        if show is not None and show.startswith("site:"):
            # Refused before the run: a site page is known from the config alone.
            site = show[len("site:") :]
            if site not in config.sites:
                raise ConfigError(
                    f"--show {show!r}: no site {site!r} in the config; known sites: "
                    + ", ".join(f"site:{key}" for key in config.sites)
                )
        with Progress(
            *progress_columns(),
            console=err,
            transient=True,
            disable=quiet,
        ) as bars:
            summary, model = run_batch(
                config,
                now=reference,
                progress=RichStages(bars),
                rejects_path=rejects,
                config_source=resolve_config_path(config_path),
            )
        if quiet:
            return
        print_summary(summary, out)
        source = show or _default_show(model, config)
        if source:
            _print_page(model, config, source)


# `recommender batch`: the batch job under the name a scheduler's entry (cron,
# Airflow, a Kubernetes CronJob) reads best; the same options as `run`.
cli.add_command(
    click.Command(
        "batch",
        params=run.params,
        callback=run.callback,
        help="The batch job: the same as `recommender run` (same options).",
        short_help="The batch job (the same as run).",
    )
)


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
