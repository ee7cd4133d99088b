"""The ``recommender`` command group and what its subcommands share.

Exit codes: 0 success; 2 bad configuration or usage; 3 bad input data;
4 store (or Dask cluster) unavailable; 1 any other (internal) failure. A
failed run publishes nothing: the previous lists stay served.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, TaskID
from rich.table import Table

from recommender.errors import (
    ArtifactError,
    ClusterError,
    ConfigError,
    InputError,
    RecommenderError,
    SchemaError,
    StoreError,
)
from recommender.lists import HEADING, RecommendationList
from recommender.progress import StageTimer
from recommender.store import Store

EXIT_INTERNAL, EXIT_CONFIG, EXIT_INPUT, EXIT_STORE = 1, 2, 3, 4
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
def errors_to_exit_codes() -> Iterator[None]:
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
    except ClusterError as error:
        # Like an unavailable store: nothing was published, a retry may succeed.
        err.print(f"[bold red]cluster error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_STORE)
    except ArtifactError as error:
        err.print(f"[bold red]model error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_INPUT)
    except RecommenderError as error:
        err.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
        sys.exit(EXIT_INTERNAL)


def require_extra(extra: str, *modules: str, command: str) -> None:
    """Exit 2 with one line naming the extra to install when any of ``modules``
    cannot be imported (instead of a traceback from deep inside the command)."""
    import importlib.util

    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        err.print(
            f"[bold red]error:[/] `recommender {command}` needs the {extra} extra "
            f"({', '.join(missing)} not installed): pip install 'recommender[{extra}]'",
            markup=True,
            highlight=False,
        )
        sys.exit(EXIT_CONFIG)


def resolve_config_path(config: str | None) -> Path:
    return Path(config or os.environ.get("RECOMMENDER_CONFIG") or DEFAULT_CONFIG)


def store_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add ``--config`` and ``--store`` (which store to read) to a command."""
    command = click.option(
        "--store",
        "store_url",
        metavar="URL",
        help="Store URL, e.g. sqlite:///var/store.sqlite (overrides the config's).",
    )(command)
    return click.option(
        "-c",
        "--config",
        "config_path",
        metavar="PATH",
        help=f"Config whose store to use (default: $RECOMMENDER_CONFIG or ./{DEFAULT_CONFIG}).",
    )(command)


def open_configured_store(config_path: str | None, store_url: str | None) -> Store:
    """The store named by ``--store``, else by the config's ``store.url``."""
    from recommender.store import open_store

    if store_url is None:
        from recommender.config import load_config

        config = load_config(resolve_config_path(config_path))
        return open_store(config.store.url, keep_runs=config.store.keep_runs)
    if "://" not in store_url:
        store_url = f"sqlite:///{Path(store_url).resolve()}"
    return open_store(store_url)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Cross-site recommendations: 'A mix of what's trending on our other sites'."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)]
    )


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SystemExit:
        raise
    except Exception:
        err.print_exception()
        sys.exit(EXIT_INTERNAL)
