"""``recommender ingest``: feeds, WordPress, sitemaps, pages and traffic into the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from recommender.cli._app import (
    DEFAULT_CONFIG,
    EXIT_INPUT,
    cli,
    err,
    errors_to_exit_codes,
    print_table,
    require_extra,
    resolve_config_path,
)
from recommender.errors import ConfigError
from recommender.lists import HEADING

_FORMATS = (
    "auto",
    "feed",
    "wordpress",
    "sitemap",
    "page",
    "text-page",
    "access-log",
    "analytics",
    "table",
)


def _default_path(paths: list[Path], what: str, option: str) -> Path:
    """The first Parquet file of the config's ``[data]`` list: where the batch job reads."""
    for path in paths:
        if path.suffix == ".parquet" and not any(ch in str(path) for ch in "*?["):
            return path
    raise ConfigError(
        f"no {what} file: give {option} PATH, or list a .parquet file in the config's "
        f"[data] {what} (the batch job then reads what ingest writes)"
    )


def _print_report(report: Any, quiet: bool) -> None:
    counts = report.counts
    if not quiet:
        table = Table(
            title=f"ingest into {report.corpus_path} (site {report.site})",
            title_justify="left",
            show_header=False,
            box=None,
            padding=(0, 2),
        )
        table.add_column(style="bold")
        table.add_column()
        documents = f"{report.documents} read, {report.documents_failed} failed"
        if report.not_modified:
            documents += f", {report.not_modified} not modified since the last run"
        table.add_row("documents", documents)
        table.add_row(
            "articles",
            f"{counts.new} new, {counts.updated} updated, {counts.unpublished} unpublished, "
            f"{counts.unchanged} unchanged, {report.rejected} rejected "
            f"(of {report.articles_read} read; corpus: {report.corpus_size})",
        )
        if report.events_read or report.bots or report.skipped_hits:
            table.add_row(
                "events",
                f"{report.events_added} new, {report.events_repeated} already stored, "
                f"{report.events_rejected} rejected, "
                f"{report.events_unmatched} for pages not in the corpus; "
                f"{report.bots} bot hits and {report.skipped_hits} other hits left out",
            )
        if len(report.block):
            table.add_row("block items", str(len(report.block)))
        print_table(table)
        if len(report.block):
            block = Table(title=HEADING, box=None)
            for column in ("category", "title", "site"):
                block.add_column(column)
            for item in report.block.itertuples():
                block.add_row(
                    escape(str(item.category)), escape(str(item.title)), escape(str(item.site_name))
                )
            print_table(block)
    for note in report.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    if len(report.problems):
        err.print(
            f"[bold yellow]{len(report.problems)} input problem(s)[/] "
            "(first ones; --rejects FILE writes all):"
        )
        for p in report.problems.head(10).itertuples():
            err.print(
                f"  {p.file} row {p.row} field {p.field!r}: {p.reason} [{p.action}]",
                highlight=False,
                markup=False,
            )


@cli.command()
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--site", required=True, metavar="KEY", help="Site key (from the config) of the sources."
)
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    help=f"TOML config (default: $RECOMMENDER_CONFIG or ./{DEFAULT_CONFIG}).",
)
@click.option(
    "--corpus",
    "corpus_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Corpus Parquet file (default: the first .parquet in the config's [data] articles).",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Events Parquet file for traffic (default: the first .parquet in [data] events).",
)
@click.option(
    "--format",
    "source_format",
    type=click.Choice(_FORMATS),
    default="auto",
    show_default=True,
    help="Format of every source (auto: told from each source's content).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Fetch the pages of new or changed feed items and sitemap entries.",
)
@click.option(
    "--complete",
    is_flag=True,
    help="The sources list the site's whole catalogue: unpublish stored articles they lack.",
)
@click.option("--url", "page_url", metavar="URL", help="URL of a text page (its text has none).")
@click.option("--published-at", metavar="ISO-TIME", help="Publication date of a text page.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    metavar="CSV",
    help="Write every problem (file, row, field, value, reason, action) to this CSV.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a server's next bytes.",
)
@click.option("--retries", type=click.IntRange(min=0, max=10), default=3, show_default=True)
@click.option(
    "--per-host",
    type=click.IntRange(min=1, max=16),
    default=2,
    show_default=True,
    help="Requests in flight to one host.",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary (problems still go to stderr).")
def ingest(
    sources: tuple[str, ...],
    site: str,
    config_path: str | None,
    corpus_path: Path | None,
    events_path: Path | None,
    source_format: str,
    follow: bool,
    complete: bool,
    page_url: str | None,
    published_at: str | None,
    rejects: str | None,
    timeout: float,
    retries: int,
    per_host: int,
    quiet: bool,
) -> None:
    """Upsert articles (feeds, WordPress JSON, sitemaps, HTML or text pages,
    article tables) and traffic (access logs, analytics exports) into the corpus.

    SOURCE is a file, a glob pattern or an http(s) URL. Prints new / updated /
    unpublished / unchanged / rejected counts; the same ingest run twice
    changes nothing. Exit code 3 when no source could be read at all.
    """
    require_extra("ingest", command="ingest")
    from recommender.config import load_config
    from recommender.ingest.fetch import FetchPolicy
    from recommender.ingest.pipeline import IngestOptions
    from recommender.ingest.pipeline import ingest as run_ingest

    with errors_to_exit_codes():
        config = load_config(resolve_config_path(config_path))
        corpus = corpus_path or _default_path(config.data.articles, "articles", "--corpus")
        events = events_path
        if events is None and any(p.suffix == ".parquet" for p in config.data.events):
            events = _default_path(config.data.events, "events", "--events")
        options = IngestOptions(
            site=site,
            format=source_format,
            follow=follow,
            complete=complete,
            page_url=page_url,
            published_at=published_at,
            fetch=FetchPolicy(read_timeout=timeout, retries=retries, per_host=per_host),
        )
        report = run_ingest(
            list(sources), config, corpus_path=corpus, events_path=events, options=options
        )
        if rejects is not None:
            report.problems.to_csv(rejects, index=False)
        _print_report(report, quiet)
        if report.documents == 0 and report.not_modified == 0:
            err.print("[bold red]input error:[/] no source could be read", markup=True)
            raise SystemExit(EXIT_INPUT)
