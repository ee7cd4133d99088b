"""The batch job: config -> load -> fit -> publish, with a summary.

This is the one place that wires the stages together. A run either
publishes all of its lists in one atomic step or publishes nothing: any
failure before or during the publish leaves the previously published run
served.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.config import Config
from recommender.errors import ArtifactError, InputError, StoreError
from recommender.ingest import read_articles, read_events
from recommender.ingest.matching import match_events
from recommender.lists import PublishableList, RunInfo
from recommender.model import Recommender, reference_time
from recommender.progress import StageTimer
from recommender.schema import LoadResult, empty_events
from recommender.store import Store, open_store

if TYPE_CHECKING:
    from distributed import Client

_log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did, for the terminal, the logs and the store's run record."""

    run_id: str
    now: str
    store_url: str
    articles_read: int = 0
    articles_rejected: int = 0
    events_read: int = 0
    events_rejected: int = 0
    events_unmatched: int = 0
    articles: int = 0
    eligible: int = 0
    views: int = 0
    lists: int = 0
    coverage: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    model_path: str | None = None
    model_version: str = ""
    config_hash: str = ""
    #: "fit" (vocabulary fitted in this run) or "update" (the saved model's
    #: vocabulary reused, see ``run.refit_after_hours``), and why.
    mode: str = "fit"
    mode_reason: str = ""
    #: Lists written to the store (an update writes only those that changed).
    lists_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id(clock: datetime | None = None) -> str:
    """Sortable, unique run id: UTC time of the run plus a random suffix."""
    clock = clock or datetime.now(UTC)
    return f"{clock:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def _check_rejections(name: str, result: LoadResult, limit: float) -> None:
    if result.n_read and result.n_rejected / result.n_read > limit:
        details = "\n  ".join(result.describe_problems(5))
        raise InputError(
            f"{result.n_rejected} of {result.n_read} {name} rows rejected "
            f"(more than run.max_rejected_fraction = {limit:.0%}); nothing published, "
            f"the previous run stays served. First problems:\n  {details}"
        )


def load_inputs(
    config: Config,
    progress: StageTimer | None = None,
    rejects_path: str | Path | None = None,
) -> tuple[LoadResult, LoadResult, int]:
    """Validated articles and events (events tied to article ids), and the
    number of events that name no known article.

    ``rejects_path``: write every rejected or cleared field (file, row, field,
    value, reason, action) to this CSV, also when the run then fails for
    having too many of them.
    """
    progress = progress or StageTimer()
    with progress.stage("load"):
        if not config.data.articles:
            raise InputError("the config names no article files ([data] articles = [...])")
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


def run_batch(
    config: Config,
    *,
    now: datetime | pd.Timestamp | None = None,
    progress: StageTimer | None = None,
    rejects_path: str | Path | None = None,
) -> tuple[RunSummary, Recommender]:
    """Run the whole job and publish; return the summary and the fitted model.

    ``rejects_path``: see :func:`load_inputs`. The model artifact (when
    ``store.model_path`` is set) is written after a successful publish, so it
    always matches the run being served.
    """
    progress = progress or StageTimer()
    started = datetime.now(UTC)
    created_at = started.isoformat(timespec="seconds")
    summary = RunSummary(
        run_id=new_run_id(started),
        now="",
        store_url=config.store.url,
        config_hash=config.config_hash(),
    )
    try:
        model = _fit_and_publish(config, summary, created_at, now, progress, rejects_path)
    except Exception as error:
        summary.timings = dict(progress.timings)
        _record_failure(config, summary, created_at, error)
        raise
    _log.info("run %s published %d lists to %s", summary.run_id, summary.lists, summary.store_url)
    return summary, model


def _fit_and_publish(
    config: Config,
    summary: RunSummary,
    created_at: str,
    now: datetime | pd.Timestamp | None,
    progress: StageTimer,
    rejects_path: str | Path | None,
) -> Recommender:
    """The run's stages; fills ``summary`` as they go."""
    with _cluster(config, progress) as client:
        articles, events, unmatched = load_inputs(config, progress, rejects_path)
        summary.articles_read, summary.articles_rejected = articles.n_read, articles.n_rejected
        summary.events_read, summary.events_rejected = events.n_read, events.n_rejected
        summary.events_unmatched = unmatched
        summary.problems = articles.describe_problems(20) + events.describe_problems(20)

        previous, summary.mode_reason = _previous_model(config, now)
        if previous is not None:
            summary.mode = "update"
            model = previous.update(articles.valid, events.valid, now=now, progress=progress)
        elif client is None:
            model = Recommender(config).fit(
                articles.valid, events.valid, now=now, progress=progress
            )
        else:
            from recommender.distributed import fit_on_cluster

            model = fit_on_cluster(
                client, config, articles.valid, events.valid, now=now, progress=progress
            )
    summary.now = model.now_.isoformat()
    summary.articles = len(model.articles_)
    summary.eligible = int(model.eligible_.sum())
    summary.views = int(model.trend_["views"].sum())
    summary.lists = len(model.lists_)
    summary.coverage = model.coverage()
    summary.model_version = model.version

    with progress.stage("publish", total=len(model.lists_)) as advance:
        summary.timings = dict(progress.timings)
        run = RunInfo(
            summary.run_id,
            created_at,
            summary.config_hash,
            summary.model_version,
            summary.to_dict(),
        )
        store = open_store(
            config.store.url,
            keep_runs=config.store.keep_runs,
            compact_fraction=config.store.compact_fraction,
        )
        try:
            summary.lists_written = publish_model(
                store,
                model,
                run,
                based_on=previous.published_run_id_ if previous is not None else None,
                compact_fraction=config.store.compact_fraction,
                advance=advance,
            )
        finally:
            store.close()

    if config.store.model_path is not None:
        with progress.stage("save model"):
            model.published_run_id_ = summary.run_id
            model.save(config.store.model_path)
        summary.model_path = str(config.store.model_path)
    summary.timings = dict(progress.timings)
    return model


@contextmanager
def _cluster(config: Config, progress: StageTimer) -> Iterator[Client | None]:
    """A client of the Dask cluster named by ``run.cluster`` (connected
    before the inputs are read, so that an unreachable one fails at once),
    or None to fit in this process."""
    if config.run.cluster is None:
        yield None
        return
    from recommender.distributed import connect

    with ExitStack() as stack:
        with progress.stage("cluster"):
            client = stack.enter_context(
                connect(config.run.cluster, timeout=config.run.cluster_timeout_seconds)
            )
        yield client


def _record_failure(
    config: Config, summary: RunSummary, created_at: str, error: BaseException
) -> None:
    """Best effort: note the failed run in the store (which keeps serving the
    previous run). An unreachable store is only logged: the error that
    failed the run is the one to report."""
    run = RunInfo(
        summary.run_id, created_at, summary.config_hash, summary.model_version, summary.to_dict()
    )
    message = f"{type(error).__name__}: {error}"
    try:
        store = open_store(config.store.url, keep_runs=config.store.keep_runs)
        try:
            store.record_failure(run, message)
        finally:
            store.close()
    except StoreError as store_error:
        _log.warning("could not record failed run %s: %s", summary.run_id, store_error)


def _counted(
    lists: Iterable[PublishableList], advance: Callable[[int], None], every: int = 1000
) -> Iterator[PublishableList]:
    """Pass ``lists`` through, reporting progress every ``every`` lists."""
    for i, lst in enumerate(lists, start=1):
        if i % every == 0:
            advance(every)
        yield lst


def _previous_model(
    config: Config, now: datetime | pd.Timestamp | None
) -> tuple[Recommender | None, str]:
    """The saved model to update instead of refitting (see
    ``run.refit_after_hours``), or None; and why, in a few words."""
    hours = config.run.refit_after_hours
    path = config.store.model_path
    if hours is None or path is None:
        return None, "every run refits (run.refit_after_hours not set)"
    if not Path(path).exists():
        return None, f"no saved model at {path}"
    try:
        previous = Recommender.load(path)
    except ArtifactError as error:
        _log.warning("refitting: the saved model cannot be used: %s", error)
        return None, f"the saved model cannot be used: {error}"
    if previous.config.config_hash() != config.config_hash():
        return None, "the configuration changed since the saved model"
    age = (reference_time(config, now) - previous.vocabulary_fitted_at_) / pd.Timedelta(hours=1)
    if age >= hours or age < 0:
        return None, f"refit due: vocabulary fitted {age:.1f} h before this run (limit {hours:g} h)"
    return previous, f"vocabulary fitted {age:.1f} h before this run (refit after {hours:g} h)"


def publish_model(
    store: Store,
    model: Recommender,
    run: RunInfo,
    *,
    based_on: str | None = None,
    compact_fraction: float = 0.25,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Publish ``model``'s lists as ``run``; returns how many were written.

    With ``based_on`` (the run the model was updated from, see
    :meth:`Recommender.update`) still served and at most ``compact_fraction``
    of the lists changed, only the changes are written
    (:meth:`Store.publish_changes`); otherwise every list is: after a fit,
    a rollback, another writer, or an update that moved most lists (the
    time passing moves every freshness score)."""
    changed = getattr(model, "changed_lists_", None)
    rows: np.ndarray | None = None
    if based_on is not None and changed is not None:
        served = store.current_run_id()
        if served != based_on:
            _log.warning(
                "publishing every list: the store serves run %s, the model was updated from %s",
                served,
                based_on,
            )
        elif np.mean(changed) <= compact_fraction:
            rows = np.asarray(changed)
    lists = _counted(
        model.list_payloads(run.run_id, run.created_at, rows=rows), advance or (lambda _: None)
    )
    if rows is None:
        store.publish(lists, run)
        return len(model.lists_)
    store.publish_changes(lists, run, removed=model.removed_sources_, based_on=based_on)
    return int(rows.sum())
