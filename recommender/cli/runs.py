"""``recommender runs``: the store's record of batch runs; rollback."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.table import Table

from recommender.cli._app import (
    cli,
    errors_to_exit_codes,
    open_configured_store,
    out,
    store_options,
)
from recommender.errors import StoreError
from recommender.lists import RunInfo

STATUS_STYLE = {"current": "bold green", "kept": "default", "failed": "red"}


@cli.group()
def runs() -> None:
    """List, inspect and roll back published runs."""


def _coverage(run: RunInfo) -> str:
    full = run.summary.get("coverage", {}).get("full_lists")
    return f"{full:.0%}" if isinstance(full, int | float) else ""


def _seconds(run: RunInfo) -> str:
    timings = run.summary.get("timings", {})
    return f"{sum(timings.values()):.1f}s" if timings else ""


def _kind(run: RunInfo) -> str:
    if run.status == "failed":
        return ""
    return "delta" if run.is_delta else "full"


@runs.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
def list_runs(config_path: str | None, store_url: str | None, as_json: bool) -> None:
    """Recorded runs, newest first: status, lists, share of full lists, time,
    and whether the run stores all its lists (full) or its changes from a full
    run (delta; ``runs show`` names that run)."""
    with errors_to_exit_codes():
        recorded = open_configured_store(config_path, store_url).runs()
        if as_json:
            for run in recorded:
                click.echo(json.dumps(_as_dict(run)))
            return
        table = Table(box=None, padding=(0, 1))
        for column in ("run", "status", "created (UTC)", "lists", "full", "time", "kind"):
            table.add_column(column, no_wrap=True)
        table.add_column("error", overflow="fold")
        for run in recorded:
            table.add_row(
                run.run_id,
                f"[{STATUS_STYLE.get(run.status, 'default')}]{run.status}[/]",
                run.created_at[:16].replace("T", " "),
                str(run.n_lists),
                _coverage(run),
                _seconds(run),
                _kind(run),
                run.error,
            )
        out.print(table if recorded else "[dim]no runs recorded yet[/]")


@runs.command("show")
@click.argument("run_id")
@store_options
def show_run(run_id: str, config_path: str | None, store_url: str | None) -> None:
    """Everything recorded about RUN_ID, as JSON."""
    with errors_to_exit_codes():
        run = open_configured_store(config_path, store_url).run(run_id)
        if run is None:
            raise StoreError(f"no run {run_id!r} recorded in this store")
        click.echo(json.dumps(_as_dict(run), indent=2))


@runs.command("rollback")
@click.argument("run_id")
@store_options
def rollback_run(run_id: str, config_path: str | None, store_url: str | None) -> None:
    """Serve RUN_ID (an earlier kept run) again, atomically."""
    with errors_to_exit_codes():
        store = open_configured_store(config_path, store_url)
        previous = store.current_run_id()
        run = store.rollback(run_id)
        delta = f", a delta of {run.base_run_id}" if run.is_delta else ""
        out.print(f"now serving {run.run_id} ({run.n_lists} lists{delta}); was {previous}")


def _as_dict(run: RunInfo) -> dict:
    """Every recorded field; ``base_run_id`` empty for a full run."""
    return asdict(run)
