"""``recommender evaluate``: the metric table and an HTML report with plots.

Also what ``recommender tune`` shares with it: the MIND summary line and the
small-sample warnings, printed in bold red before the tables they qualify.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from recommender.cli._app import (
    DEFAULT_CONFIG,
    cli,
    err,
    errors_to_exit_codes,
    out,
    print_table,
    require_extra,
    resolve_config_path,
)
from recommender.errors import ConfigError

if TYPE_CHECKING:
    from recommender.config import Config
    from recommender.datasets.mind import MindData

#: Where the report goes without ``--output``: a folder beside the config's
#: SQLite store (``var/evaluation/`` for the sample), else this one under the
#: current folder; never the current folder itself.
REPORT_FOLDER = "evaluation"
REPORT_NAME = "evaluation.html"


def default_report_path(config: Config | None) -> Path:
    """``evaluation/evaluation.html`` beside the config's SQLite store, else
    ``var/evaluation/evaluation.html`` under the current folder."""
    url = config.store.url if config is not None else ""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / REPORT_FOLDER / REPORT_NAME
    return Path("var") / REPORT_FOLDER / REPORT_NAME


def print_mind_summary(data: MindData) -> None:
    """What was read: the loader's summary (with the candidates that have no
    news.tsv row, a plain count) and the rejected rows, on stderr."""
    err.print(data.summary(), markup=False, highlight=False)
    if len(data.problems):
        err.print(f"[yellow]{len(data.problems)} rows of the MIND files rejected[/]")


def print_sample_warnings(found: Sequence[str]) -> None:
    """Each small-sample warning in bold red, with the tables (stdout)."""
    from rich.markup import escape

    for warning in found:
        out.print(f"[bold red]WARNING: {escape(warning)}[/]", soft_wrap=True, highlight=False)


@contextmanager
def sample_warnings_printed_not_raised() -> Iterator[None]:
    """Silence :class:`~recommender.evaluate.replay.SmallSampleWarning` while the
    command runs: the command prints the same warnings itself, in red."""
    from recommender.evaluate.replay import SmallSampleWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        yield


_Command = TypeVar("_Command", bound=Callable[..., Any])


def min_impressions_option(command: _Command) -> _Command:
    """``--min-impressions``: below it, metrics come with a loud warning."""
    from recommender.evaluate.replay import MIN_IMPRESSIONS

    return click.option(
        "--min-impressions",
        type=click.IntRange(min=0),
        default=MIN_IMPRESSIONS,
        show_default=True,
        help="Warn (in red, and at the top of the report) when metrics average over fewer "
        "impressions with a click than this: they and their intervals are not reliable.",
    )(command)


@cli.command()
@click.option(
    "--mind-dir",
    "mind_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="MIND-format folder (news.tsv, behaviors.tsv); repeat for several splits.",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    help="Engine settings (with --mind-dir: features, trending, mix; without: the network "
    "to evaluate).",
)
@click.option(
    "--refresh",
    "refresh",
    type=click.FloatRange(min=0, min_open=True),
    multiple=True,
    help="Minutes between trend refreshes in the replay (repeatable) [default: 10 and 60].",
)
@click.option("--no-static", is_flag=True, help="Leave out the static split.")
@click.option("--no-lists", is_flag=True, help="Leave out the list metrics (no model fit).")
@click.option(
    "-o",
    "--output",
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    metavar="HTML",
    help="HTML report to write; its PNG files go to <name>_files/ beside it [default: "
    "evaluation/evaluation.html in the folder of the config's SQLite store (var/evaluation/ "
    "for data/sample.toml), else var/evaluation/evaluation.html].",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Also write the tables as JSON."
)
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@min_impressions_option
def evaluate(
    mind_dirs: tuple[str, ...],
    config_path: str | None,
    refresh: tuple[float, ...],
    no_static: bool,
    no_lists: bool,
    report_path: str | None,
    json_path: str | None,
    bootstrap: int,
    seed: int,
    min_impressions: int,
) -> None:
    """Measure the engine: the trending replay on a MIND-format log (--mind-dir),
    content vs trending vs blend, and the coverage and diversity of its lists."""
    require_extra("evaluate", "matplotlib", command="evaluate")  # the report's plots
    from rich.table import Table

    from recommender.config import load_config
    from recommender.evaluate.evaluation import evaluate_mind, evaluate_network
    from recommender.evaluate.report import metric_frame, write_report

    with errors_to_exit_codes(), sample_warnings_printed_not_raised():
        config = None
        if config_path is not None or not mind_dirs:
            path = resolve_config_path(config_path)
            if not mind_dirs and not path.exists():
                raise ConfigError(
                    f"{path}: config file not found; give --mind-dir PATH (a MIND-format log) "
                    f"or a config with -c PATH, $RECOMMENDER_CONFIG or ./{DEFAULT_CONFIG} "
                    "(data/sample.toml in the repository is an example)"
                )
            config = load_config(path)
        if mind_dirs:
            from recommender.datasets import read_mind

            data = read_mind(mind_dirs)
            print_mind_summary(data)
            evaluation = evaluate_mind(
                data,
                config,
                refresh_minutes=refresh or (10.0, 60.0),
                static=not no_static,
                n_boot=bootstrap,
                seed=seed,
                lists=not no_lists,
                min_impressions=min_impressions,
            )
            title = f"Evaluation of {', '.join(Path(d).name for d in mind_dirs)}"
        else:
            assert config is not None
            evaluation = evaluate_network(config)
            title = f"Evaluation of {config_path or 'the configured network'}"

        found = list(evaluation.facts.get("warnings") or [])
        print_sample_warnings(found)
        for name, table in (("Trending replay", evaluation.replay), ("Blend", evaluation.blend)):
            wide = metric_frame(table)
            if wide.empty:
                continue
            shown = Table(title=f"{name} (mean [95% interval])", title_justify="left")
            shown.add_column("setting")
            shown.add_column("method")
            for column in wide.columns:
                shown.add_column(column, justify="right")
            for key, row in zip(wide.index, wide.itertuples(index=False), strict=True):
                shown.add_row(str(key[0]), str(key[1]), *[str(v) for v in row])
            print_table(shown)
        if not evaluation.lists.empty:
            shown = Table(title="Lists", title_justify="left")
            shown.add_column("lists")
            for column in evaluation.lists.columns:
                shown.add_column(column, justify="right")
            for variant, values in zip(
                evaluation.lists.index, evaluation.lists.itertuples(index=False), strict=True
            ):
                shown.add_row(str(variant), *[f"{v:.3f}" for v in values])
            print_table(shown)
        report = Path(report_path) if report_path else default_report_path(config)
        written = write_report(evaluation, report, title=title)
        print_sample_warnings(found)  # again below the tables: the last thing read
        out.print(f"report: {written}", soft_wrap=True, markup=False, highlight=False)
        if json_path:
            payload = {
                "facts": evaluation.facts,
                "replay": evaluation.replay.to_dict(orient="records"),
                "top_ctr": evaluation.top_ctr.to_dict(orient="records"),
                "blend": evaluation.blend.to_dict(orient="records"),
                "lists": evaluation.lists.reset_index(names="lists").to_dict(orient="records")
                if not evaluation.lists.empty
                else [],
            }
            Path(json_path).write_text(json.dumps(payload, indent=2, default=str) + "\n")
