"""The batch's inputs: the config's article and event files, read, validated
and tied together. The batch job and the evaluation both load through here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recommender.config import Config
from recommender.errors import InputError, SchemaError
from recommender.ingest import read_articles, read_events
from recommender.ingest.matching import match_events
from recommender.progress import StageTimer
from recommender.schema import LoadResult, empty_events


def _check_rejections(name: str, result: LoadResult, limit: float) -> None:
    if result.n_read and result.n_rejected / result.n_read > limit:
        details = "\n  ".join(result.describe_problems(5))
        raise InputError(
            f"{result.n_rejected} of {result.n_read} {name} rows rejected "
            f"(more than run.max_rejected_fraction = {limit:.0%}); nothing published, "
            f"the previous run stays served. First problems:\n  {details}"
        )


def _check_files_exist(config: Config, config_source: str | Path | None) -> None:
    """A data file that does not exist, named with the config key that names
    it (glob patterns may match nothing: an empty spool folder)."""
    where = str(config_source) if config_source is not None else "the config"
    for key in ("articles", "events"):
        for path in getattr(config.data, key):
            if any(ch in str(path) for ch in "*?["):
                continue
            if not Path(path).exists():
                raise SchemaError(
                    f"data.{key}: {path}: file not found (set [data] {key} in {where})"
                )


def load_inputs(
    config: Config,
    progress: StageTimer | None = None,
    rejects_path: str | Path | None = None,
    *,
    config_source: str | Path | None = None,
) -> tuple[LoadResult, LoadResult, int]:
    """Validated articles and events (events tied to article ids), and the
    number of events that name no known article.

    ``rejects_path``: write every rejected or cleared field (file, row, field,
    value, reason, action) to this CSV, also when the run then fails for
    having too many of them. ``config_source``: the config file, named in
    the message about a data file that does not exist.
    """
    progress = progress or StageTimer()
    with progress.stage("load"):
        if not config.data.articles:
            raise InputError("the config names no article files ([data] articles = [...])")
        _check_files_exist(config, config_source)
        articles = read_articles(config.data.articles, sites=list(config.sites))
        events = (
            read_events(config.data.events) if config.data.events else LoadResult(empty_events())
        )
        if rejects_path is not None:
            problems = pd.concat([articles.problems, events.problems], ignore_index=True)
            problems.to_csv(rejects_path, index=False)
        _check_rejections("article", articles, config.run.max_rejected_fraction)
        _check_rejections("event", events, config.run.max_rejected_fraction)
        matched, unmatched = match_events(events.valid, articles.valid)
        events.valid = matched
    return articles, events, unmatched
