"""The batch on a Dask cluster: the same lists, computed partition by partition.

When ``run.cluster`` (or ``recommender run --cluster``) names a cluster, the
batch computes every article's neighbours and list on Dask workers instead
of in its own process; everything else is the single-process batch's:

1. The client (the process running the batch) loads the inputs, fits the
   vectorizer on every article and transforms them, and computes trending
   and the near-duplicate groups, exactly as :meth:`Recommender.fit` does
   (see :meth:`Recommender.fit_partitioned`).
2. The run's shared context (the feature matrix, the per-article arrays and
   the run's :class:`~recommender.mix.Mixer` built from them) is scattered to
   every worker once.
3. Source rows are split into partitions, each a run of consecutive rows of
   one site (so each partition prepares one site's candidate block); one
   task per partition computes its neighbours
   (:func:`~recommender.similarity.cross_site_neighbors` with ``rows=``) and
   its lists (:meth:`Mixer.for_articles`).
4. Results come back to the client as partitions finish and are placed by
   row. A row's neighbours and list depend on that row and the shared
   context only, never on which other rows share its block, so they equal
   the single-process run's, bit for bit.
5. The batch publishes the run atomically, as it always does.

Faults: a worker that dies takes its running partitions with it; the
scheduler runs them again on the workers left (or on the worker that
replaces it), and the run completes with the same lists. A partition that
saw more than ``distributed.scheduler.allowed-failures`` (3) of its workers
die, a scheduler that cannot be reached, a cluster without workers for
``cluster_timeout_seconds``, or the loss of every copy of the shared
context fail the run with :class:`~recommender.errors.ClusterError` naming
the scheduler's address: nothing is published and the previous run stays
served.

``local:N`` starts a :class:`distributed.LocalCluster` of N worker processes
on 127.0.0.1 for the run (with the Active Memory Manager off, so that every
worker keeps its copy of the shared context) and shuts it down after.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import CancelledError
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.config import Config, SimilarityConfig, local_cluster_workers
from recommender.errors import ClusterError, ConfigError
from recommender.kernels import available_kernels, get_kernel
from recommender.mix import MixedLists, Mixer
from recommender.model import Recommender
from recommender.model.stages import Stages
from recommender.progress import Advance, StageTimer
from recommender.similarity import Neighbors, cross_site_neighbors

if TYPE_CHECKING:
    from distributed import Client, Future

_log = logging.getLogger(__name__)

#: Smallest default partition: below it, a task's fixed cost (its share of
#: the candidate block, scheduling) outweighs its scoring.
MIN_PARTITION_ROWS = 1_000
#: Default partitions per worker thread: enough to balance uneven sites and
#: to lose little work with a worker.
PARTITIONS_PER_THREAD = 4


@dataclass(frozen=True)
class RunContext:
    """What every partition task reads; scattered to each worker once.

    ``mixer`` holds the feature rows (``mixer.X``), the site of each row
    (``mixer.site_values``) and the per-article arrays of the mix;
    ``candidates`` marks the rows that may be recommended; ``site_rows``
    maps each site to its rows, ascending (partitions are slices of these);
    ``similarity`` and ``allowed`` are the run's neighbour settings.
    """

    mixer: Mixer
    candidates: np.ndarray
    site_rows: Mapping[str, np.ndarray]
    similarity: SimilarityConfig
    allowed: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Partition:
    """Rows ``site_rows[site][start:stop]`` of a :class:`RunContext`."""

    site: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class PartitionResult:
    """Neighbours and lists of one partition's rows, in their order."""

    partition: Partition
    neighbors: Neighbors
    lists: MixedLists


def plan_partitions(site_rows: Mapping[str, np.ndarray], partition_rows: int) -> list[Partition]:
    """Each site's rows cut into runs of at most ``partition_rows``, sites in
    the mapping's order; together they cover every row once."""
    if partition_rows < 1:
        raise ValueError(f"partition_rows must be >= 1, got {partition_rows}")
    return [
        Partition(site, start, min(start + partition_rows, len(rows)))
        for site, rows in site_rows.items()
        for start in range(0, len(rows), partition_rows)
    ]


def default_partition_rows(n_rows: int, n_threads: int) -> int:
    """About :data:`PARTITIONS_PER_THREAD` partitions per worker thread, each
    of at least :data:`MIN_PARTITION_ROWS` rows."""
    target = math.ceil(n_rows / max(1, PARTITIONS_PER_THREAD * n_threads))
    return max(MIN_PARTITION_ROWS, target)


def score_partition(context: RunContext, partition: Partition) -> PartitionResult:
    """One partition's neighbours and lists; runs on a worker.

    A worker runs as many partitions at once as it has threads: each scores
    on one thread, and their dense score blocks together stay within the
    run's ``similarity.max_block_mb``.
    """
    from distributed import get_worker

    threads = max(1, get_worker().state.nthreads)
    rows = context.site_rows[partition.site][partition.start : partition.stop]
    mixer = context.mixer
    s = context.similarity
    neighbors = cross_site_neighbors(
        mixer.X,
        mixer.site_values,
        s.k,
        allowed=context.allowed,
        candidates=context.candidates,
        rows=rows,
        min_similarity=s.min_similarity,
        max_block_mb=s.max_block_mb / threads,
        kernel=s.kernel,
        n_jobs=1,
    )
    return PartitionResult(partition, neighbors, mixer.for_articles(rows, neighbors))


@contextmanager
def connect(address: str, *, timeout: float = 30.0) -> Iterator[Client]:
    """A Dask client for the cluster at ``address``, closed on exit.

    ``local:N`` starts a LocalCluster of N worker processes on 127.0.0.1
    (threads per worker: this machine's cores / N, at least 1) and shuts it
    down on exit. Any other address is a running scheduler's, e.g.
    ``tcp://scheduler:8786``. Waits up to ``timeout`` seconds for the
    scheduler and for a worker (every worker of a local cluster), and checks
    that the workers run this version of the package; :class:`ClusterError`
    otherwise.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            f"run.cluster = {address!r} needs Dask: pip install 'recommender[dask]'"
        ) from None
    n_workers = local_cluster_workers(address)
    with ExitStack() as stack:
        target: Any = address
        if n_workers is not None:
            target = stack.enter_context(local_cluster(n_workers))
        try:
            client = Client(target, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {error}; "
                "nothing published, the previous run stays served"
            ) from None
        stack.enter_context(client)
        # A local cluster's workers all start now; a remote one's may come and go.
        expected = n_workers or 1
        try:
            client.wait_for_workers(expected, timeout=timeout)
        except TimeoutError:
            raise ClusterError(
                f"the Dask scheduler at {address} has fewer than {expected} worker(s) after "
                f"{timeout:g} s; nothing published, the previous run stays served"
            ) from None
        _check_worker_versions(client, address)
        yield client


@contextmanager
def local_cluster(n_workers: int, threads_per_worker: int | None = None) -> Iterator[Any]:
    """A LocalCluster of ``n_workers`` processes on 127.0.0.1 (``threads_per_worker``
    each; default: this machine's cores / N, at least 1), every worker keeping
    its copy of scattered data, closed on exit: what ``local:N`` starts."""
    import dask
    from distributed import LocalCluster

    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // n_workers)
    # The scheduler runs in this process and logs every worker and client at
    # INFO: keep that for debug runs (-vv), warnings only otherwise.
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    if not _log.isEnabledFor(logging.DEBUG):
        dask_log.setLevel(max(level, logging.WARNING))
    try:
        try:
            # The AMM would drop all but one copy of the scattered context,
            # which then dies with its worker; each worker keeps its copy.
            with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=threads,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # No dashboard; the scheduler's HTTP endpoint on a free port.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
        except Exception as error:
            raise ClusterError(
                f"cannot start a local Dask cluster of {n_workers} workers: {error}"
            ) from error
        with cluster:
            _log.info("started %s (%d x %d threads)", cluster.scheduler_address, n_workers, threads)
            yield cluster
    finally:
        dask_log.setLevel(level)


def _installed_version() -> str | None:
    try:
        return metadata.version("recommender")
    except metadata.PackageNotFoundError:
        return None


def _check_worker_versions(client: Client, address: str) -> None:
    """Every worker must run the client's version of this package: tasks
    are this package's functions, and identical lists need identical code."""
    expected = _installed_version()
    if expected is None:  # running from a source tree: nothing to compare
        return
    found = client.run(_installed_version, on_error="return")
    wrong = {
        worker: f"cannot import it ({version})"
        if isinstance(version, BaseException)
        else f"has {version or 'none'}"
        for worker, version in found.items()
        if version != expected
    }
    if wrong:
        listed = ", ".join(f"{worker} {state}" for worker, state in sorted(wrong.items()))
        raise ClusterError(
            f"workers of the Dask cluster at {address} do not run recommender {expected} "
            f"({listed}); install it on every worker: pip install 'recommender[dask]=={expected}'"
        )


def _check_worker_kernels(client: Client, kernel: str, address: str) -> None:
    """Every worker must be able to run ``kernel``: another kernel may round
    a score differently, and the lists would no longer be identical."""
    found = client.run(available_kernels, on_error="return")
    missing = sorted(
        worker
        for worker, kernels in found.items()
        if not isinstance(kernels, list) or kernel not in kernels
    )
    if missing:
        raise ClusterError(
            f"workers {', '.join(missing)} of the Dask cluster at {address} cannot run the "
            f"similarity kernel {kernel!r} that this process uses: install this version "
            "of recommender on them with the same extras as here ('recommender[dask]', "
            "plus 'fast' for mkl), or set similarity.kernel = \"scipy\""
        )


def fit_on_cluster(
    client: Client,
    config: Config,
    articles: pd.DataFrame,
    events: pd.DataFrame,
    *,
    now: datetime | pd.Timestamp | None = None,
    progress: StageTimer | None = None,
    partition_rows: int | None = None,
    timeout: float | None = None,
) -> Recommender:
    """:meth:`Recommender.fit` with the neighbours and lists computed on the
    cluster of ``client``; the fitted model equals the single-process one.

    ``partition_rows``: most source rows per task (default: see
    :func:`default_partition_rows`). ``timeout``: seconds the cluster may
    stay without a worker before the run fails (default: the config's
    ``run.cluster_timeout_seconds``).
    """
    wait_seconds = config.run.cluster_timeout_seconds if timeout is None else timeout

    def score_articles(
        model: Stages, mixer: Mixer, stages: StageTimer
    ) -> tuple[Neighbors, MixedLists]:
        return _score_on_cluster(client, model, mixer, stages, partition_rows, wait_seconds)

    return Recommender(config).fit_partitioned(
        articles, events, score_articles, now=now, progress=progress
    )


def _score_on_cluster(
    client: Client,
    model: Stages,
    mixer: Mixer,
    progress: StageTimer,
    partition_rows: int | None,
    timeout: float,
) -> tuple[Neighbors, MixedLists]:
    config = model.config
    n = len(model.articles_)
    sites = mixer.site_values
    site_rows = {site: np.flatnonzero(sites == site) for site in sorted(set(sites.tolist()))}
    address = str(client.scheduler_info(n_workers=0)["address"])
    # The workers score with the kernel this process would use, never their own "auto".
    kernel = get_kernel(config.similarity.kernel).name
    _check_worker_kernels(client, kernel, address)
    similarity = config.similarity.model_copy(update={"kernel": kernel})
    context = RunContext(mixer, model.eligible_, site_rows, similarity, config.allowed_pairs())
    threads = sum(client.nthreads().values())
    plan = plan_partitions(site_rows, partition_rows or default_partition_rows(n, threads))
    _log.info("%d rows in %d partitions on %s (%d threads)", n, len(plan), address, threads)
    futures: list[Future] = []
    try:
        with progress.stage("ship"):
            shared = client.scatter(context, broadcast=True, hash=False)
            futures.append(shared)
        with progress.stage("similarity+mix", total=n) as advance:
            token = uuid.uuid4().hex[:12]
            tasks = [
                client.submit(
                    score_partition,
                    shared,
                    partition,
                    key=f"recommender-partition-{token}-{i}",
                    pure=False,
                )
                for i, partition in enumerate(plan)
            ]
            futures += tasks
            results = _collect(client, tasks, address, timeout, advance)
    finally:
        client.cancel(futures)
    return _assemble(context, results, n, config.similarity.k, config.mix.k)


def _collect(
    client: Client, tasks: list[Future], address: str, timeout: float, advance: Advance
) -> list[PartitionResult]:
    """The tasks' results as they finish. Fails when a partition cannot be
    computed, when the scheduler is lost, or when the cluster has had no
    worker for ``timeout`` seconds."""
    from distributed import KilledWorker, wait

    results: list[PartitionResult] = []
    pending = set(tasks)
    without_workers_since: float | None = None
    poll = min(timeout, 5.0)
    while pending:
        try:
            with client.as_current():
                done, pending = wait(pending, timeout=poll, return_when="FIRST_COMPLETED")
        except TimeoutError:
            without_workers_since = _check_workers(client, address, without_workers_since)
            if without_workers_since is not None and (
                time.monotonic() - without_workers_since > timeout
            ):
                raise ClusterError(
                    f"the Dask cluster at {address} has had no worker for {timeout:g} s; "
                    "nothing published, the previous run stays served"
                ) from None
            continue
        without_workers_since = None
        for future in done:
            try:
                result: PartitionResult = future.result()
            except KilledWorker as error:
                raise ClusterError(
                    f"a partition could not be computed on the Dask cluster at {address}: "
                    f"{error}; nothing published, the previous run stays served"
                ) from None
            except CancelledError:
                raise ClusterError(
                    f"the Dask cluster at {address} dropped the run's tasks (the scheduler "
                    "was lost, or every worker holding the run's shared context died); "
                    "nothing published, the previous run stays served"
                ) from None
            except OSError as error:
                raise ClusterError(
                    f"lost the connection to the Dask scheduler at {address}: {error}; "
                    "nothing published, the previous run stays served"
                ) from None
            results.append(result)
            advance(len(result.partition))
    return results


def _check_workers(client: Client, address: str, without_since: float | None) -> float | None:
    """When the cluster was first seen without workers (None while it has some)."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except OSError as error:
        raise ClusterError(
            f"lost the connection to the Dask scheduler at {address}: {error}; "
            "nothing published, the previous run stays served"
        ) from None
    if workers:
        return None
    return time.monotonic() if without_since is None else without_since


def _assemble(
    context: RunContext, results: list[PartitionResult], n: int, k: int, list_k: int
) -> tuple[Neighbors, MixedLists]:
    """Every row's neighbours and list, in row order, from the partitions'."""
    indices = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    items = np.full((n, list_k), -1, dtype=np.int32)
    parts = [np.zeros((n, list_k), dtype=np.float32) for _ in range(4)]
    covered = np.zeros(n, dtype=bool)
    for result in results:
        p = result.partition
        rows = context.site_rows[p.site][p.start : p.stop]
        indices[rows], scores[rows] = result.neighbors.indices, result.neighbors.scores
        lists = result.lists
        items[rows] = lists.items
        for part, values in zip(
            parts, (lists.score, lists.relevance, lists.trend, lists.freshness), strict=True
        ):
            part[rows] = values
        covered[rows] = True
    if not covered.all():
        raise RuntimeError(f"{int((~covered).sum())} rows were in no partition")
    mixer = context.mixer
    return Neighbors(indices, scores), MixedLists(
        mixer.article_ids.copy(), mixer.site_values.copy(), items, *parts
    )


__all__ = [
    "Partition",
    "PartitionResult",
    "RunContext",
    "connect",
    "default_partition_rows",
    "fit_on_cluster",
    "local_cluster",
    "plan_partitions",
    "score_partition",
]
