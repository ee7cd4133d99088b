"""``recommender tune``: a small grid with a temporal split; the best setting as TOML."""

from __future__ import annotations

import click

from recommender.cli._app import cli, errors_to_exit_codes, out, print_table, require_extra
from recommender.cli.evaluate import (
    min_impressions_option,
    print_mind_summary,
    print_sample_warnings,
    sample_warnings_printed_not_raised,
)


def _floats(text: str, size: int, name: str) -> list[tuple[float, ...]]:
    try:
        values = [tuple(float(x) for x in item.split(":")) for item in text.split(",") if item]
    except ValueError:
        raise click.BadParameter(f"expected numbers, got {text!r}", param_hint=name) from None
    if any(len(v) != size for v in values):
        raise click.BadParameter(f"each item needs {size} numbers joined by ':'", param_hint=name)
    return values


@cli.command()
@click.option(
    "--mind-dir",
    "mind_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="MIND-format folder (news.tsv, behaviors.tsv); repeat for several splits.",
)
@click.option("-c", "--config", "config_path", metavar="PATH", help="Base config to tune.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default="tuned.toml",
    show_default=True,
    help="Config file to write with the best setting.",
)
@click.option(
    "--weights",
    default="0.45:0.4:0.15,0.3:0.6:0.1,0.2:0.7:0.1,0.1:0.8:0.1,0.3:0.7:0,0.6:0.3:0.1",
    show_default=True,
    help="relevance:trend:freshness weights to try, comma-separated.",
)
@click.option(
    "--half-life",
    "half_lives",
    default="6,12,24,48",
    show_default=True,
    help="Trend half-lives (hours) to try.",
)
@click.option(
    "--caps",
    default="5:3,3:2,10:10",
    show_default=True,
    help="max_per_site:max_per_category pairs to try.",
)
@click.option(
    "--refresh", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True
)
@min_impressions_option
def tune(
    mind_dirs: tuple[str, ...],
    config_path: str | None,
    out_path: str,
    weights: str,
    half_lives: str,
    caps: str,
    refresh: float,
    min_impressions: int,
) -> None:
    """Choose weights, half-life and caps on the day before the last of a MIND-format
    log, confirm on the last day, and write the best setting as a config file."""
    require_extra("evaluate", "tomli_w", command="tune")  # writes the tuned config
    from rich.table import Table

    from recommender.config import load_config
    from recommender.datasets import MIND_SITE_NAMES, read_mind
    from recommender.evaluate.tuning import tune as run_grid
    from recommender.evaluate.tuning import write_tuned_config

    grid_weights = _floats(weights, 3, "--weights")
    grid_half_lives = [v[0] for v in _floats(half_lives, 1, "--half-life")]
    grid_caps = [(int(a), int(b)) for a, b in _floats(caps, 2, "--caps")]
    with errors_to_exit_codes(), sample_warnings_printed_not_raised():
        base = load_config(config_path) if config_path else None
        data = read_mind(mind_dirs)
        print_mind_summary(data)
        result = run_grid(
            data,
            base=base,
            weights=[(w[0], w[1], w[2]) for w in grid_weights],
            half_lives=grid_half_lives,
            caps=grid_caps,
            refresh_minutes=refresh,
            min_impressions=min_impressions,
        )
        print_sample_warnings(result.warnings)
        table = Table(
            title=f"Grid on {result.validation_start:%Y-%m-%d} (best first)", title_justify="left"
        )
        for column in result.grid.columns:
            table.add_column(column, justify="right")
        for row in result.grid.head(15).itertuples(index=False):
            table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
        print_table(table)
        test = Table(title=f"Test day {result.test_start:%Y-%m-%d}", title_justify="left")
        for column in result.test.columns:
            test.add_column(column, justify="right")
        for row in result.test.itertuples(index=False):
            test.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
        print_table(test)
        ndcg = result.test.set_index("setting")["ndcg@10"].astype(float)
        comment = (
            f"Written by `recommender tune` on {', '.join(mind_dirs)}.\n"
            f"Chosen on {result.validation_start:%Y-%m-%d}; on the test day "
            f"{result.test_start:%Y-%m-%d} nDCG@10 {ndcg['tuned']:.4f} "
            f"(shipped {ndcg['shipped']:.4f})."
        )
        comment += "".join(f"\nWARNING: {warning}." for warning in result.warnings)
        written = write_tuned_config(
            out_path,
            result.best,
            base_path=config_path,
            sites=None if config_path else MIND_SITE_NAMES,
            comment=comment,
        )
        print_sample_warnings(result.warnings)  # again below the tables
        out.print(
            f"best setting written to {written}", soft_wrap=True, markup=False, highlight=False
        )
