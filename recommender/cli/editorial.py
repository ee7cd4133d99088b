"""``recommender pins ...`` and ``recommender block ...``: the editors' rules.

Both edit the rules file named by the config's ``[editorial] rules`` (see
:mod:`recommender.editorial`); the batch applies it at its next run, refit
or not. ``block add`` and ``block remove`` also copy the blocks into the
store, so that serving drops a blocked article at once (within its
``refresh_seconds``), before the next run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recommender.cli._app import cli, errors_to_exit_codes, out, resolve_config_path

if TYPE_CHECKING:
    from recommender.config import Config

_WHEN = click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d%z"])


def _config_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "-c",
        "--config",
        "config_path",
        metavar="PATH",
        help="Config naming the rules file ([editorial] rules) and the store.",
    )(command)


def _rules_path(config_path: str | None) -> tuple[Path, Config]:
    from recommender.config import load_config
    from recommender.errors import ConfigError

    config = load_config(resolve_config_path(config_path))
    if config.editorial.rules is None:
        raise ConfigError(
            'the config names no rules file: add [editorial] rules = "editorial.toml"'
        )
    return Path(config.editorial.rules), config


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-01T00:00:00+0000")
    from datetime import UTC

    return value.astimezone(UTC)


def _show(rules: object, kind: str, as_json: bool) -> None:
    from recommender.editorial import EditorialRules, rules_to_json

    assert isinstance(rules, EditorialRules)
    entries = rules_to_json(rules).get(kind, [])
    if as_json:
        for entry in entries:
            out.print(json.dumps(entry, ensure_ascii=False), markup=False, highlight=False)
        return
    if not entries:
        out.print(f"no {kind}s", markup=False)
    for entry in entries:
        fields = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "id")
        out.print(f"{entry['id']}: {fields}", markup=False, highlight=False)


def _copy_blocks_to_store(config: object, rules: object) -> None:
    """Serving's copy of the blocks; a store that does not exist yet gets
    them from the first run."""
    from recommender.config import Config
    from recommender.editorial import EditorialRules, blocks_payload
    from recommender.errors import StoreError
    from recommender.store import open_store
    from recommender.store._sql import SQLStore

    assert isinstance(config, Config) and isinstance(rules, EditorialRules)
    try:
        store = open_store(config.store.url, create=False)
    except StoreError as error:
        out.print(f"not in serving yet (the next run applies it): {error}", markup=False)
        return
    try:
        assert isinstance(store, SQLStore)  # what open_store opens
        store.set_editorial_blocks(blocks_payload(rules))
    finally:
        store.close()
    out.print("blocks copied to the store: serving applies them at once", markup=False)


@cli.group()
def pins() -> None:
    """Pin articles to slots of the lists (campaigns, cornerstone articles)."""


@pins.command("add")
@_config_option
@click.argument("article")
@click.option("--slot", type=click.IntRange(1, 200), required=True, help="1 = first item.")
@click.option("--site", help="On this site's pages (default: every site's).")
@click.option("--page", help="Only on this page (an article id, or site:<key>).")
@click.option("--start", type=_WHEN, help="From (ISO 8601 with a zone; default: now).")
@click.option("--end", type=_WHEN, help="Until, exclusive (default: no end).")
@click.option("--label", help='Shown on the item, e.g. "Sponsored".')
@click.option("--id", "rule_id", help="The rule's id (default: pin-N).")
def add_pin(
    config_path: str | None,
    article: str,
    slot: int,
    site: str | None,
    page: str | None,
    start: datetime | None,
    end: datetime | None,
    label: str | None,
    rule_id: str | None,
) -> None:
    """Pin ARTICLE to a slot of a site's (or one page's) lists."""
    with errors_to_exit_codes():
        from recommender.editorial import Pin, load_rules, parse_rules, rules_to_json, save_rules

        path, config = _rules_path(config_path)
        rules = load_rules(path)
        pin = Pin(rule_id or rules.next_id("pin"), article, slot, site, page, _utc(start),
                  _utc(end), label)  # fmt: skip
        # Check the new rule as the file will hold it.
        rules = parse_rules(rules_to_json(rules.with_rule(pin)), source=path)
        rules.check_sites(config.sites)
        save_rules(rules, path)
        out.print(f"{pin.id}: {article} pinned to slot {slot} ({path})", markup=False)


@pins.command("list")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pin.")
def list_pins(config_path: str | None, as_json: bool) -> None:
    """The pins of the rules file."""
    with errors_to_exit_codes():
        from recommender.editorial import load_rules

        path, _ = _rules_path(config_path)
        _show(load_rules(path), "pin", as_json)


@pins.command("remove")
@_config_option
@click.argument("rule_id")
def remove_pin(config_path: str | None, rule_id: str) -> None:
    """Remove the pin RULE_ID."""
    with errors_to_exit_codes():
        from recommender.editorial import load_rules, save_rules

        path, _ = _rules_path(config_path)
        save_rules(load_rules(path).without(rule_id), path)
        out.print(f"{rule_id} removed ({path})", markup=False)


@cli.group()
def block() -> None:
    """Block articles from the lists (retractions, partners' requests)."""


@block.command("add")
@_config_option
@click.option("--article", help="An article id.")
@click.option("--url", help="A URL pattern, e.g. 'https://site.example/sponsored/*'.")
@click.option("--tag", help="One of the articles' tags.")
@click.option("--category", help="A category label or network category key.")
@click.option("--site", help="From this site's lists only (default: every list).")
@click.option("--reason", default="", help="Why, for the record.")
@click.option("--start", type=_WHEN, help="From (ISO 8601 with a zone; default: now).")
@click.option("--end", type=_WHEN, help="Until, exclusive (default: no end).")
@click.option("--id", "rule_id", help="The rule's id (default: block-N).")
def add_block(
    config_path: str | None,
    article: str | None,
    url: str | None,
    tag: str | None,
    category: str | None,
    site: str | None,
    reason: str,
    start: datetime | None,
    end: datetime | None,
    rule_id: str | None,
) -> None:
    """Block an article, a URL pattern, a tag or a category; serving drops it at once."""
    with errors_to_exit_codes():
        from recommender.editorial import Block, load_rules, parse_rules, rules_to_json, save_rules

        path, config = _rules_path(config_path)
        rules = load_rules(path)
        new = Block(rule_id or rules.next_id("block"), article, url, tag, category, site, reason,
                    _utc(start), _utc(end))  # fmt: skip
        rules = parse_rules(rules_to_json(rules.with_rule(new)), source=path)
        rules.check_sites(config.sites)
        save_rules(rules, path)
        kind, value = new.target
        out.print(f"{new.id}: {kind} {value} blocked ({path})", markup=False)
        _copy_blocks_to_store(config, rules)


@block.command("list")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per block.")
def list_blocks(config_path: str | None, as_json: bool) -> None:
    """The blocks of the rules file."""
    with errors_to_exit_codes():
        from recommender.editorial import load_rules

        path, _ = _rules_path(config_path)
        _show(load_rules(path), "block", as_json)


@block.command("remove")
@_config_option
@click.argument("rule_id")
def remove_block(config_path: str | None, rule_id: str) -> None:
    """Remove the block RULE_ID (serving shows the article again at once)."""
    with errors_to_exit_codes():
        from recommender.editorial import load_rules, save_rules

        path, config = _rules_path(config_path)
        rules = load_rules(path).without(rule_id)
        save_rules(rules, path)
        out.print(f"{rule_id} removed ({path})", markup=False)
        _copy_blocks_to_store(config, rules)
