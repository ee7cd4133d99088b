"""``recommender runs``: the store's record of batch runs; rollback.

``list`` and ``show`` only read the store; ``rollback`` writes it. None of
them creates a store at a mistyped path. A run id the store does not know is a
usage error (exit 2, naming the nearest recorded ids), not a store failure.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict

import click
from rich.markup import escape

from recommender.cli._app import (
    cli,
    errors_to_exit_codes,
    open_existing_store,
    out,
    store_options,
)
from recommender.lists import RunInfo
from recommender.store import Store

STATUS_STYLE = {"current": "bold green", "kept": "default", "failed": "red"}
#: The least of an error ``runs list`` shows on a terminal.
_MIN_ERROR_WIDTH = 24
#: Columns of ``runs list``, as the plain (tab-separated) output names them.
COLUMNS = ("run", "status", "created_utc", "lists", "full", "time", "kind", "error")


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


def _one_line(text: str) -> str:
    """``text`` on one line: tabs, line breaks and other control characters
    become spaces, runs of spaces one."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _fields(run: RunInfo) -> tuple[str, ...]:
    return (
        run.run_id,
        run.status,
        run.created_at[:16].replace("T", " "),
        str(run.n_lists),
        _coverage(run),
        _seconds(run),
        _kind(run),
        _one_line(run.error),
    )


@runs.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
def list_runs(config_path: str | None, store_url: str | None, as_json: bool) -> None:
    """Recorded runs, newest first: status, lists, share of full lists, time,
    and whether the run stores all its lists (full) or its changes from a full
    run (delta; ``runs show`` names that run).

    To a terminal, a table that fits the window. To a file or a pipe (a cron
    log), one tab-separated line per run under a header line, whatever the
    width: `cut -f1,2` gives run ids and statuses.
    """
    with errors_to_exit_codes():
        store, _ = open_existing_store(config_path, store_url)
        try:
            recorded = store.runs()
        finally:
            store.close()
        if as_json:
            for run in recorded:
                click.echo(json.dumps(_as_dict(run)))
            return
        if not out.is_terminal:
            if not recorded:
                click.echo("no runs recorded yet")
                return
            click.echo("\t".join(COLUMNS))
            for run in recorded:
                click.echo("\t".join(_fields(run)))
            return
        if not recorded:
            out.print("[dim]no runs recorded yet[/]")
            return
        _print_table(recorded)


def _print_table(recorded: list[RunInfo]) -> None:
    """The runs as a table on the terminal: every column but the error at its
    full width; the error on the same line, cut to the width that is left
    (`runs show` has it whole). A window too narrow for the rest wraps the
    lines as it wraps any long line; no other cell is ever cut or folded."""
    headers = ("run", "status", "created (UTC)", "lists", "full", "time", "kind", "error")
    rows = [_fields(run) for run in recorded]
    widths = [max(len(name), *(len(row[at]) for row in rows)) for at, name in enumerate(headers)]
    # At least the start of an error, even if the line then wraps.
    left = max(out.width - sum(widths[:-1]) - 2 * (len(headers) - 1), _MIN_ERROR_WIDTH)

    def line(cells: tuple[str, ...], status_style: str = "") -> str:
        padded = [escape(cell.ljust(width)) for cell, width in zip(cells, widths, strict=False)]
        if status_style:
            padded[1] = f"[{status_style}]{padded[1]}[/]"
        error = cells[-1]
        padded[-1] = escape(error if len(error) <= left else error[: max(left - 1, 0)] + "…")
        return "  ".join(padded).rstrip()

    out.print(f"[bold]{line(headers)}[/]", soft_wrap=True, highlight=False)
    for run, row in zip(recorded, rows, strict=True):
        style = STATUS_STYLE.get(run.status, "default")
        out.print(line(row, style), soft_wrap=True, highlight=False)


def _nearest(run_id: str, store: Store, *, kept_only: bool = False) -> str:
    """The recorded (or kept) run ids nearest to ``run_id``, for a message."""
    recorded = store.runs()
    candidates = [r.run_id for r in recorded if not kept_only or r.status in ("current", "kept")]
    what = "kept" if kept_only else "recorded"
    nearest = difflib.get_close_matches(run_id, candidates, n=3, cutoff=0.5)
    if nearest:
        return f"nearest {what}: {', '.join(nearest)}"
    if candidates:
        return f"{what}, newest first: {', '.join(candidates[:3])}"
    return f"no runs {what}"


def _unknown_run(run_id: str, store: Store) -> click.BadParameter:
    """The usage error (exit 2) for a run id the store has no record of."""
    return click.BadParameter(
        f"no run named {run_id!r} ({_nearest(run_id, store)})", param_hint="RUN_ID"
    )


@runs.command("show")
@click.argument("run_id")
@store_options
def show_run(run_id: str, config_path: str | None, store_url: str | None) -> None:
    """Everything recorded about RUN_ID, as JSON."""
    with errors_to_exit_codes():
        store, _ = open_existing_store(config_path, store_url)
        try:
            run = store.run(run_id)
            if run is None:
                raise _unknown_run(run_id, store)
        finally:
            store.close()
        click.echo(json.dumps(_as_dict(run), indent=2))


@runs.command("rollback")
@click.argument("run_id")
@store_options
def rollback_run(run_id: str, config_path: str | None, store_url: str | None) -> None:
    """Serve RUN_ID (an earlier kept run) again, atomically."""
    with errors_to_exit_codes():
        store, _ = open_existing_store(config_path, store_url, read_only=False)
        try:
            target = store.run(run_id)
            if target is None:
                raise _unknown_run(run_id, store)
            if target.status == "failed":
                raise click.BadParameter(
                    f"run {run_id!r} failed and was never served; only a kept run can be "
                    f"served again ({_nearest(run_id, store, kept_only=True)})",
                    param_hint="RUN_ID",
                )
            previous = store.current_run_id()
            run = store.rollback(run_id)
        finally:
            store.close()
        delta = f", a delta of {run.base_run_id}" if run.is_delta else ""
        out.print(
            f"now serving {run.run_id} ({run.n_lists} lists{delta}); was {previous}",
            highlight=False,
        )


def _as_dict(run: RunInfo) -> dict:
    """Every recorded field; ``base_run_id`` empty for a full run."""
    return asdict(run)
