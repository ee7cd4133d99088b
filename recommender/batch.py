"""The batch job: config -> load -> fit -> publish, with a summary.

This is the one place that wires the stages together. A run either
publishes all of its lists in one atomic step or publishes nothing: any
failure before or during the publish leaves the previously published run
served.

With ``store.model_path`` set, the fitted model is written (to a temporary
file beside that path, fsynced) *before* the publish, and renamed into
place after it. So a full disk fails the run before anything is served
(exit code, served run, run record and model file all say "failed"), and
after the publish's commit only the rename is left, which needs no space.
A kill between the commit and the rename leaves the written model under
its temporary name; the next run puts it in place when the store serves
the run it was written for, and removes it otherwise.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.artifact import PendingArtifact, is_complete, pending_files, read_header
from recommender.config import Config
from recommender.editorial import blocks_payload
from recommender.errors import ArtifactError, StoreError
from recommender.inputs import load_inputs
from recommender.lists import PublishableList, RunInfo
from recommender.model import Recommender, reference_time
from recommender.progress import StageTimer
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
    #: Valid events dated after the run's reference time: not counted (the
    #: trend is as of the reference time), but worth a look at the clock or
    #: the time zone of the export they came from.
    events_after_now: int = 0
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
    #: Why the model file could not be put in place after the publish (the
    #: run is published all the same); empty when it was, or none is kept.
    model_error: str = ""
    #: The trending settings the lists were scored with, and how they were
    #: chosen: ``tuned`` (by the back-test of this run's refit, or of the
    #: refit an update keeps), its ``reason``, and the back-test's figures
    #: (see :func:`recommender.autotune.tune_trending`).
    trending: dict[str, Any] = field(default_factory=dict)
    #: What editors should know of the run's pins: pins never shown (their
    #: article is not in the corpus), pins that alone exceed a cap.
    editorial: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trending_summary(model: Recommender) -> dict[str, Any]:
    """The run record's account of the trending settings ``model`` used."""
    used = getattr(model, "trending_", model.config.trending)
    return {
        "half_life_hours": used.half_life_hours,
        "freshness": used.freshness,
        "prior_impressions": used.prior_impressions,
        "prior_views": used.prior_views,
        **getattr(model, "tuning_", {"tuned": False, "reason": "no tuning recorded"}),
    }


def new_run_id(clock: datetime | None = None) -> str:
    """Sortable, unique run id: UTC time of the run plus a random suffix."""
    clock = clock or datetime.now(UTC)
    return f"{clock:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def run_batch(
    config: Config,
    *,
    now: datetime | pd.Timestamp | None = None,
    progress: StageTimer | None = None,
    rejects_path: str | Path | None = None,
    config_source: str | Path | None = None,
) -> tuple[RunSummary, Recommender]:
    """Run the whole job and publish; return the summary and the fitted model.

    ``rejects_path`` and ``config_source``: see :func:`load_inputs`. The
    model artifact (when ``store.model_path`` is set) is written and fsynced
    before the publish and renamed into place after it (see the module
    docs): a run that fails publishes nothing and leaves the saved model as
    it was; a run that returns has published, and its model is the saved
    one (unless ``summary.model_error`` says why not).
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
        model, pending = _fit_and_publish(
            config, summary, created_at, now, progress, rejects_path, config_source
        )
    except Exception as error:
        summary.timings = dict(progress.timings)
        _record_failure(config, summary, created_at, error)
        raise
    # Published: from here on nothing may fail the run (its record says published).
    if pending is not None:
        _put_model_in_place(pending, summary)
    _log.info("run %s published %d lists to %s", summary.run_id, summary.lists, summary.store_url)
    return summary, model


def _put_model_in_place(pending: PendingArtifact, summary: RunSummary) -> None:
    """Rename the model written for the published run into place. A rename
    in the same folder needs no space; should it fail all the same (the
    folder made read-only meanwhile, say), the run stays published and the
    summary says the model was not saved."""
    try:
        pending.commit()
    except OSError as error:
        pending.discard()
        summary.model_path = None
        summary.model_error = (
            f"not saved to {pending.target}: {error.strerror or error}; the next run "
            "refits or builds on the model saved before"
        )
        _log.warning("run %s is published, but its model %s", summary.run_id, summary.model_error)


def _fit_and_publish(
    config: Config,
    summary: RunSummary,
    created_at: str,
    now: datetime | pd.Timestamp | None,
    progress: StageTimer,
    rejects_path: str | Path | None,
    config_source: str | Path | None = None,
) -> tuple[Recommender, PendingArtifact | None]:
    """The run's stages up to the publish's commit; fills ``summary`` as they
    go. Returns the model and, with ``store.model_path``, its file written
    under a temporary name, for :func:`run_batch` to put in place."""
    # One reference time for the whole run: the events after it are counted
    # here with the same instant the trend is computed at.
    reference = reference_time(config, now)
    with _cluster(config, progress) as client:
        articles, events, unmatched = load_inputs(
            config, progress, rejects_path, config_source=config_source
        )
        summary.articles_read, summary.articles_rejected = articles.n_read, articles.n_rejected
        summary.events_read, summary.events_rejected = events.n_read, events.n_rejected
        summary.events_unmatched = unmatched
        summary.events_after_now = int((events.valid["ts"] > reference).sum())
        if summary.events_after_now:
            _log.warning(
                "%d events are dated after the reference time %s and are not counted "
                "(check the clock or time zone of the export)",
                summary.events_after_now,
                reference.isoformat(),
            )
        summary.problems = articles.describe_problems(20) + events.describe_problems(20)

        if config.store.model_path is not None:
            _settle_unfinished_saves(config)
        previous, summary.mode_reason = _previous_model(config, reference)
        if previous is not None:
            summary.mode = "update"
            model = previous.update(articles.valid, events.valid, now=reference, progress=progress)
        elif client is None:
            model = Recommender(config).fit(
                articles.valid, events.valid, now=reference, progress=progress
            )
        else:
            from recommender.distributed import fit_on_cluster

            model = fit_on_cluster(
                client, config, articles.valid, events.valid, now=reference, progress=progress
            )
    summary.now = model.now_.isoformat()
    summary.articles = len(model.articles_)
    summary.eligible = int(model.eligible_.sum())
    summary.views = int(model.trend_["views"].sum())
    summary.lists = len(model.lists_)
    summary.coverage = model.coverage()
    summary.trending = trending_summary(model)
    summary.editorial = model.editorial_report()
    summary.model_version = model.version

    pending = None
    if config.store.model_path is not None:
        path = Path(config.store.model_path)
        with progress.stage("save model"):
            model.published_run_id_ = summary.run_id
            try:
                pending = model.save_pending(path)
            except OSError as error:  # a full disk, say: nothing is published
                raise StoreError(
                    f"{path}: cannot write the model file (store.model_path): "
                    f"{error.strerror or error}; nothing published, the previous run stays "
                    "served and the saved model as it was"
                ) from None
        summary.model_path = str(path)
    try:
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
            except StoreError as error:
                # An error after the commit (pruning old runs, a connection
                # lost before the commit's answer): the store has the last word.
                served = _served_run(config, run.run_id)
                if served is None:
                    raise
                _log.warning(
                    "run %s is published (the store serves it), though the store then reported: %s",
                    run.run_id,
                    error,
                )
                summary.lists_written = served.delta_rows if served.is_delta else served.n_lists
            finally:
                store.close()
    except BaseException:
        if pending is not None:
            pending.discard()
        raise
    summary.timings = dict(progress.timings)
    return model, pending


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


def _served_run(config: Config, run_id: str) -> RunInfo | None:
    """The run as recorded when the store serves it now, else None (also
    when the store cannot tell)."""
    try:
        store = open_store(config.store.url, keep_runs=config.store.keep_runs)
        try:
            recorded = store.run(run_id)
            served = store.current_run_id()
        finally:
            store.close()
    except StoreError:
        return None
    return recorded if recorded is not None and served == run_id else None


def _settle_unfinished_saves(config: Config) -> None:
    """Model files left under their temporary name by a run killed before
    it renamed them (see the module docs): the one written for the run the
    store serves goes into place, if the model file is not that run's
    already; the others are removed. Files of a process still running (a
    concurrent run on this host) are left alone."""
    assert config.store.model_path is not None
    path = Path(config.store.model_path)
    unfinished = [
        (temp, pid)
        for temp, pid in pending_files(path)
        if pid is None or pid == os.getpid() or not _process_alive(pid)
    ]
    if not unfinished:
        return
    store = open_store(config.store.url, keep_runs=config.store.keep_runs)
    try:
        served = store.current_run_id()
    finally:
        store.close()
    for temp, _ in unfinished:
        if (
            served is not None
            and _published_run(temp) == served
            and _published_run(path) != served
            and is_complete(temp)
        ):
            os.replace(temp, path)
            _log.warning(
                "put in place the model of run %s, which the store serves: the run was "
                "stopped after its publish, before renaming %s",
                served,
                temp.name,
            )
        else:
            temp.unlink(missing_ok=True)
            _log.info("removed %s, left by an unfinished run", temp)


def _published_run(path: Path) -> str | None:
    """The run a model file (or an unfinished one) was written for."""
    try:
        run_id = read_header(path).get("metadata", {}).get("published_run_id")
    except (ArtifactError, AttributeError):
        return None
    return run_id if isinstance(run_id, str) else None


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    except OSError:
        return False
    return True


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
    if previous.config.model_hash() != config.model_hash():
        return None, "the configuration changed since the saved model"
    # The same lists' settings; the run's own (store, cluster, threads) are this run's.
    previous.config = config
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
        written = len(model.lists_)
    else:
        store.publish_changes(lists, run, removed=model.removed_sources_, based_on=based_on)
        written = int(rows.sum())
    # Serving's copy of the blocks follows the rules file at every run (the
    # `recommender block` commands also copy it at once).
    # Optional for a store: both SQL stores keep them (a Store of its own may not).
    set_blocks = getattr(store, "set_editorial_blocks", None)
    try:
        if set_blocks is not None:
            set_blocks(blocks_payload(model.editorial_))
    except StoreError as error:  # the lists are published; the blocks in them hold
        _log.warning("serving's copy of the editorial blocks was not updated: %s", error)
    return written
