"""The ``recommender`` command group and what its subcommands share.

Exit codes: 0 success; 2 bad configuration or usage (or a missing extra);
3 bad input data; 4 store (or Dask cluster) unavailable; 1 any other
(internal) failure. A failed run publishes nothing: the previous lists stay
served.

Every subcommand registered on :data:`cli` (and on its subgroups, such as
``runs``) takes ``-v/--verbose`` after its name as well as before it: the
group adds the option as the command is registered, so no command module
has to remember it (see :class:`RecommenderGroup`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import Progress, TaskID
from rich.segment import Segments
from rich.table import Table

from recommender import __version__
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

if TYPE_CHECKING:
    from recommender.config import Config

EXIT_INTERNAL, EXIT_CONFIG, EXIT_INPUT, EXIT_STORE = 1, 2, 3, 4
DEFAULT_CONFIG = "recommender.toml"

#: The modules (import names) each extra of pyproject.toml installs that the
#: code imports; a command checks for its extra's before doing any work.
EXTRAS: dict[str, tuple[str, ...]] = {
    "ingest": (
        "feedparser",
        "httpx",
        "protego",
        "trafilatura",
        "lxml",
        "html_text",
        "charset_normalizer",
        "crawleruseragents",
    ),
    "web": ("fastapi", "uvicorn", "jinja2"),
    "evaluate": ("matplotlib", "tomli_w"),
    "postgres": ("psycopg",),
    "dask": ("dask", "distributed"),
}

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
        err.print(f"[bold red]config error:[/] {escape(str(error))}", markup=True, highlight=False)
        sys.exit(EXIT_CONFIG)
    except (SchemaError, InputError) as error:
        err.print(f"[bold red]input error:[/] {escape(str(error))}", markup=True, highlight=False)
        sys.exit(EXIT_INPUT)
    except StoreError as error:
        err.print(f"[bold red]store error:[/] {escape(str(error))}", markup=True, highlight=False)
        sys.exit(EXIT_STORE)
    except ClusterError as error:
        # Like an unavailable store: nothing was published, a retry may succeed.
        err.print(f"[bold red]cluster error:[/] {escape(str(error))}", markup=True, highlight=False)
        sys.exit(EXIT_STORE)
    except ArtifactError as error:
        err.print(f"[bold red]model error:[/] {escape(str(error))}", markup=True, highlight=False)
        sys.exit(EXIT_INPUT)
    except RecommenderError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", markup=True, highlight=False)
        sys.exit(EXIT_INTERNAL)
    except ImportError as error:
        # A safety net for a command that did not check its extra up front.
        module, extra = _missing_extra(error)
        if extra is None:
            raise
        _print_missing_extra(extra, [module], _command_name())
        sys.exit(EXIT_CONFIG)


def _missing_extra(error: ImportError) -> tuple[str, str | None]:
    """The missing module behind ``error`` (or its cause) and the extra that
    installs it; None when no extra does."""
    cause: BaseException | None = error
    while isinstance(cause, ImportError):
        name = (cause.name or "").split(".")[0]
        for extra, modules in EXTRAS.items():
            if name in modules:
                return name, extra
        cause = cause.__cause__
    return "", None


def _command_name() -> str:
    """The running subcommand, e.g. ``runs list`` (without the program name)."""
    ctx = click.get_current_context(silent=True)
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names)) or "this command"


def _print_missing_extra(extra: str, missing: list[str], command: str) -> None:
    """One line: the command, the extra, the modules missing, the pip command."""
    install = escape(f"pip install 'recommender[{extra}]'")
    err.print(
        f"[bold red]error:[/] `recommender {escape(command)}` needs the {extra} extra "
        f"({', '.join(missing)} not installed): {install}",
        markup=True,
        highlight=False,
    )


def require_extra(extra: str, *modules: str, command: str) -> None:
    """Exit 2 with one line naming the extra to install when any of ``modules``
    cannot be imported (instead of a traceback from deep inside the command).
    Without ``modules``, the extra's own (:data:`EXTRAS`)."""
    import importlib.util

    missing = []
    for module in modules or EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        _print_missing_extra(extra, missing, command)
        sys.exit(EXIT_CONFIG)


def require_store_extra(url: str, *, command: str | None = None) -> None:
    """The postgres extra for a ``postgresql://`` store URL (exit 2 without it).
    ``command``: the running one."""
    if url.startswith(("postgresql://", "postgres://")):
        require_extra("postgres", command=command or _command_name())


def require_config_extras(config: Config, *, command: str | None = None) -> None:
    """Exit 2 naming the extra when ``config`` needs one that is not installed:
    postgres for a PostgreSQL store, dask for ``run.cluster``. Call it right
    after loading the config, before any work. ``command``: the running one."""
    command = command or _command_name()
    require_store_extra(config.store.url, command=command)
    if config.run.cluster is not None:
        require_extra("dask", "distributed", command=command)


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


def store_target(config_path: str | None, store_url: str | None) -> tuple[str, list[str] | None]:
    """(the store URL, the config's site keys) as ``--store`` and ``--config``
    name them: ``--store`` wins for the URL (a plain path is a SQLite file);
    the sites are known when a config is read (without ``--store``, or with
    an explicit ``--config``), else None."""
    sites = None
    if store_url is None or config_path is not None:
        from recommender.config import load_config

        config = load_config(resolve_config_path(config_path))
        sites = sorted(config.sites)
        store_url = store_url or config.store.url
    if "://" not in store_url:
        store_url = f"sqlite:///{Path(store_url).resolve()}"
    return store_url, sites


def open_existing_store(
    config_path: str | None, store_url: str | None, *, read_only: bool = True
) -> tuple[Store, list[str] | None]:
    """The store of ``--store``/``--config``, which must exist (StoreError
    otherwise: a mistyped path is never created), and the config's sites.
    ``read_only``: only read it (what a command that shows things does)."""
    from recommender.store import open_store

    url, sites = store_target(config_path, store_url)
    require_store_extra(url)  # a postgresql:// store without psycopg: one line, exit 2
    return open_store(url, read_only=read_only, create=False), sites


#: Wider than any table: the width at which a table's natural width is measured.
_UNBOUNDED = 100_000


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` without cutting a header or a cell short.

    To a terminal, the table fits the window and a cell that does not fit
    folds onto the next line instead of ending in an ellipsis. To a file or a
    pipe, whatever ``COLUMNS`` says, the table keeps its natural width: one
    line per row, every header whole, readable in the log or file it lands in.
    """
    console = console or out
    for column in table.columns:
        if column.overflow == "ellipsis":
            column.overflow = "fold"
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(_UNBOUNDED), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    rendered = console.render(table, console.options.update_width(natural))
    console.print(Segments(rendered), crop=False)


def render_block(lst: RecommendationList, console: Console, title: str = HEADING) -> None:
    """Print a list the way the page shows it: category label, title, site name
    (an item without a category shows none, as on the page)."""
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column("category", style="cyan", no_wrap=True)
    table.add_column("title")
    table.add_column("site", style="green", no_wrap=True)
    for item in lst.items:
        table.add_row(escape(item.category), escape(item.title), escape(item.site_name))
    if not lst.items:
        table.add_row("", "[dim](no recommendations)[/]", "")
    print_table(table, console)


# -- -v/--verbose on every command ---------------------------------------------

_VERBOSE_HELP = "More log output (-vv for debug)."
_VERBOSITY = "recommender.verbosity"
#: The handler :func:`configure_logging` installed (None: the root logger was
#: configured by someone else, e.g. pytest or an embedding application).
_log_handler: logging.Handler | None = None


def configure_logging(verbose: int) -> None:
    """Log warnings (0), info (1) or debug (2+) records to stderr. Like
    :func:`logging.basicConfig`, it leaves a root logger that already has
    handlers alone; it may be called again with a higher count."""
    global _log_handler
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    if _log_handler is None or _log_handler not in root.handlers:
        if root.handlers:
            return
        _log_handler = RichHandler(console=err, show_path=False)
        _log_handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(_log_handler)
    root.setLevel(level)


def _count_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    """Add this command's ``-v`` count to its parents' (``ctx.meta`` is shared
    by the whole command line) and set the log level from the total."""
    total = ctx.meta.get(_VERBOSITY, 0) + (value or 0)
    ctx.meta[_VERBOSITY] = total
    configure_logging(total)


def _has_verbose(command: click.Command) -> bool:
    return any(
        param.name == "verbose" or {"-v", "--verbose"} & set(param.opts) for param in command.params
    )


def verbose_option(command: click.Command) -> click.Command:
    """Give ``command`` the ``-v/--verbose`` option (once; a command with its
    own ``-v`` keeps it). The group applies this to every command it
    registers; call it only for a command run outside the group."""
    if not _has_verbose(command):
        command.params.append(
            click.Option(
                ["-v", "--verbose"],
                count=True,
                expose_value=False,
                callback=_count_verbose,
                help=_VERBOSE_HELP,
            )
        )
    return command


class RecommenderGroup(click.Group):
    """A group whose every subcommand takes ``-v/--verbose``, wherever it is
    registered (``@cli.command()``, ``cli.add_command(...)``), and whose
    subgroups (``@cli.group()``) are RecommenderGroups too."""

    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        verbose_option(cmd)
        super().add_command(cmd, name)


@click.group(cls=RecommenderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="recommender")
def cli() -> None:
    """Cross-site recommendations: 'A mix of what's trending on our other sites'."""


verbose_option(cli)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SystemExit:
        raise
    except Exception:
        err.print_exception()
        sys.exit(EXIT_INTERNAL)
