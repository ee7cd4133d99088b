"""``recommender experiments report``: an A/B test's figures from the events.

Reads the impressions and clicks of the config's ``[data] events`` (or
``--events``), keeps those of the experiment's placement that carry a
``variant``, and prints per variant the page views, impressions, clicks and
CTR with its 95% interval, the difference to the control with its interval,
and the warnings (a peek before the planned size, a sample-ratio mismatch).
See :mod:`recommender.experiments`.
"""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from recommender.cli._app import cli, errors_to_exit_codes, out, resolve_config_path


@cli.group()
def experiments() -> None:
    """A/B tests per placement ([experiments.<name>] in the config)."""


@experiments.command("report")
@click.argument("name")
@click.option("-c", "--config", "config_path", metavar="PATH", help="Config naming the test.")
@click.option(
    "--events", "events_glob", metavar="GLOB", help="Event files (default: [data] events)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(name: str, config_path: str | None, events_glob: str | None, as_json: bool) -> None:
    """The report of the experiment NAME."""
    with errors_to_exit_codes():
        from recommender.config import load_config
        from recommender.errors import ConfigError
        from recommender.experiments import Experiment, experiment_report
        from recommender.ingest import read_events

        config = load_config(resolve_config_path(config_path))
        if name not in config.experiments:
            known = ", ".join(sorted(config.experiments)) or "none"
            raise ConfigError(f"no [experiments.{name}] in the config (known: {known})")
        chosen = config.experiments[name]
        experiment = Experiment(
            name, chosen.placement, chosen.variants, chosen.planned_impressions, chosen.control
        )
        paths = [events_glob] if events_glob else [str(p) for p in config.data.events]
        events = read_events(paths).valid
        result = experiment_report(events, experiment)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"experiment {name} on {experiment.placement}", title_justify="left")
    for column in ("variant", "page views", "impressions", "clicks", "CTR [95%]", "vs control"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for v in result.variants:
        diff = (
            "control"
            if v.diff is None
            else f"{v.diff:+.4f} [{v.diff_low:+.4f}, {v.diff_high:+.4f}]"
        )
        table.add_row(
            v.variant,
            f"{v.page_views:,}",
            f"{v.impressions:,}",
            f"{v.clicks:,}",
            f"{v.ctr:.4f} [{v.low:.4f}, {v.high:.4f}]",
            diff,
        )
    out.print(table)
    for warning in result.warnings:
        out.print(f"[bold yellow]warning:[/] {escape(warning)}")
