"""The batch on a Dask cluster: the single-process lists, a killed worker, no scheduler.

The right answer of every cluster run is the single-process run of the same
corpus: the same neighbours, the same lists, the same published JSON.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from distributed import Client, LocalCluster, WorkerPlugin

import recommender.distributed
from recommender.batch import run_batch
from recommender.config import Config, parse_config
from recommender.distributed import (
    MIN_PARTITION_ROWS,
    Partition,
    connect,
    default_partition_rows,
    fit_on_cluster,
    local_cluster,
    plan_partitions,
)
from recommender.errors import ClusterError, ConfigError
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from recommender.store import open_store
from tests.conftest import NOW, tiny_articles, tiny_events

REPO = Path(__file__).resolve().parents[1]
SITES = ("news", "life", "travel", "food")
N_ARTICLES = 2400


def network_corpus(n: int = N_ARTICLES, seed: int = 8) -> pd.DataFrame:
    """``n`` articles over four sites and 40 topics: each text mixes its
    topic's words with common ones, every 40th article copies an earlier one
    onto another site (equal scores, near-duplicates), and publication dates
    span 120 days, so that a quarter of the articles is too old to show."""
    rng = np.random.default_rng(seed)
    topic_words = [[f"t{t}w{j}" for j in range(30)] for t in range(40)]
    common = [f"word{j}" for j in range(300)]
    rows = []
    for i in range(n):
        topic = int(rng.integers(40))
        words = rng.choice(topic_words[topic], 24).tolist() + rng.choice(common, 16).tolist()
        rng.shuffle(words)
        site = SITES[int(rng.integers(len(SITES)))]
        row = {
            "article_id": f"{site}-{i}",
            "site": site,
            "url": f"https://{site}.example/{i}",
            "title": " ".join(words[:8]).capitalize(),
            "body": " ".join(words[8:]),
            "category": f"topic {topic}" if rng.random() < 0.8 else "",
            "published_at": (NOW - pd.Timedelta(hours=float(rng.uniform(1, 24 * 120)))).isoformat(),
        }
        if i % 40 == 39:
            copy = rows[int(rng.integers(len(rows)))]
            other = SITES[(SITES.index(copy["site"]) + 1) % len(SITES)]
            row.update(site=other, url=f"https://{other}.example/{i}", title=copy["title"])
            row.update(article_id=f"{other}-{i}", body=copy["body"])
        rows.append(row)
    return pd.DataFrame(rows)


def network_views(articles: pd.DataFrame, n_views: int = 30_000, seed: int = 9) -> pd.DataFrame:
    """Long-tailed views over the last three days."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0, 1.5, len(articles))
    picks = rng.choice(len(articles), n_views, p=weights / weights.sum())
    hours = rng.exponential(20, n_views).clip(0, 72)
    return pd.DataFrame(
        {
            "ts": [(NOW - pd.Timedelta(hours=float(h))).isoformat() for h in hours],
            "article_id": articles["article_id"].to_numpy()[picks],
            "kind": "view",
        }
    )


def network_config(folder: Path, store: str, **run: object) -> Config:
    return parse_config(
        {
            "sites": {site: {"display_name": site.title()} for site in SITES},
            "data": {"articles": ["articles.csv"], "events": ["events.csv"]},
            "store": {"url": f"sqlite:///{store}"},
            "run": {"now": NOW.isoformat(), **run},
            "similarity": {"k": 20},
            "mix": {"k": 8, "max_per_site": 3, "max_per_category": 2},
        },
        base_dir=folder,
    )


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recommender]:
    """The corpus's files, and its single-process run (the reference)."""
    folder = tmp_path_factory.mktemp("network")
    articles = network_corpus()
    articles.to_csv(folder / "articles.csv", index=False)
    network_views(articles).to_csv(folder / "events.csv", index=False)
    _, reference = run_batch(network_config(folder, "single.sqlite"))
    return folder, reference


def assert_same_model(model: Recommender, reference: Recommender) -> None:
    """The same neighbours, lists and published JSON, bit for bit."""
    assert np.array_equal(model.neighbors_.indices, reference.neighbors_.indices)
    assert np.array_equal(model.neighbors_.scores, reference.neighbors_.scores)
    for field in ("source_ids", "source_sites", "items", "score", "relevance", "trend"):
        assert np.array_equal(getattr(model.lists_, field), getattr(reference.lists_, field))
    assert np.array_equal(model.lists_.freshness, reference.lists_.freshness)
    payloads = [lst.json for lst in model.list_payloads("run", "2021-03-08T00:00:00+00:00")]
    expected = [lst.json for lst in reference.list_payloads("run", "2021-03-08T00:00:00+00:00")]
    assert payloads == expected


def worker_processes() -> set[int]:
    """Processes this one spawned to run Dask workers (Python's resource
    tracker, started with the first of them, lives as long as this process)."""
    return {
        child.pid
        for child in psutil.Process().children(recursive=True)
        if "spawn_main" in " ".join(child.cmdline())
    }


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- identical results -----------------------------------------------------------
def test_a_two_worker_cluster_publishes_the_single_process_lists(network) -> None:
    folder, reference = network
    assert reference.neighbors_.counts().min() > 0  # every article has neighbours
    assert (reference.neighbors_.scores[:, 0] == reference.neighbors_.scores[:, 1]).any()
    before = worker_processes()

    summary, model = run_batch(network_config(folder, "cluster.sqlite", cluster="local:2"))

    assert_same_model(model, reference)
    labelled = reference.articles_[reference.articles_["category"].fillna("") != ""]
    sections = labelled[["site", "category"]].drop_duplicates()
    assert summary.lists == N_ARTICLES + len(SITES) + 1 + len(sections)
    assert {"cluster", "ship", "similarity+mix", "pages", "publish"} <= set(summary.timings)
    single, cluster = (open_store(folder / name) for name in ("single.sqlite", "cluster.sqlite"))
    for source_id in reference.lists_.source_ids:
        assert cluster.get(source_id).items == single.get(source_id).items
    assert worker_processes() <= before  # the LocalCluster's workers are gone


def test_partitions_cover_every_row_once_one_site_each() -> None:
    site_rows = {"a": np.array([0, 2, 5, 6, 9]), "b": np.array([1, 3]), "c": np.array([4, 7, 8])}
    plan = plan_partitions(site_rows, 2)
    assert plan == [
        Partition("a", 0, 2),
        Partition("a", 2, 4),
        Partition("a", 4, 5),
        Partition("b", 0, 2),
        Partition("c", 0, 2),
        Partition("c", 2, 3),
    ]
    rows = np.concatenate([site_rows[p.site][p.start : p.stop] for p in plan])
    assert sorted(rows.tolist()) == list(range(10))
    assert [len(p) for p in plan] == [2, 2, 1, 2, 2, 1]
    with pytest.raises(ValueError, match="partition_rows must be >= 1"):
        plan_partitions(site_rows, 0)


def test_default_partitions_are_four_per_thread_and_not_tiny() -> None:
    assert default_partition_rows(100_000, 2) == 12_500
    assert default_partition_rows(10_000_000, 100) == 25_000
    assert default_partition_rows(2_400, 2) == MIN_PARTITION_ROWS


# -- faults ------------------------------------------------------------------------
class KillFirstPartitionWorker(WorkerPlugin):
    """Kills (SIGKILL) the worker process that starts the run's first
    partition task, once per marker file: a worker lost mid-run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key: object, start: str, finish: str, **kwargs: object) -> None:
        if finish != "executing" or not str(key).startswith("recommender-partition"):
            return
        try:
            marker = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(marker, str(key).encode())
        os.close(marker)
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """Two single-threaded worker processes under nannies (which restart a
    killed worker), each keeping its copy of scattered data."""
    with local_cluster(2, threads_per_worker=1) as local:
        yield local


def test_a_worker_killed_mid_run_has_its_partitions_recomputed(
    network, cluster: LocalCluster, tmp_path: Path
) -> None:
    folder, reference = network
    marker = tmp_path / "killed"
    with Client(cluster, set_as_default=False) as client:
        client.register_plugin(KillFirstPartitionWorker(str(marker)))
        config = network_config(folder, "faults.sqlite", cluster=cluster.scheduler_address)

        summary, model = run_batch(config)

    killed_key = marker.read_text()
    removals = [
        event
        for _, event in cluster.scheduler.get_events("all")
        if event.get("action") == "remove-worker"
    ]
    # The killed worker, while it computed a partition; the run went on without it.
    assert len(removals) == 1 and killed_key in removals[0]["processing-tasks"]
    assert_same_model(model, reference)
    assert open_store(folder / "faults.sqlite").current_run_id() == summary.run_id


def test_an_unreachable_scheduler_fails_the_run_and_the_previous_one_stays(network) -> None:
    folder, _ = network
    first, _ = run_batch(network_config(folder, "kept.sqlite"))
    address = f"tcp://127.0.0.1:{free_port()}"
    config = network_config(folder, "kept.sqlite", cluster=address, cluster_timeout_seconds=0.5)

    with pytest.raises(ClusterError, match=f"cannot reach the Dask scheduler at {address}"):
        run_batch(config)

    store = open_store(folder / "kept.sqlite")
    assert store.current_run_id() == first.run_id
    failed = store.runs()[0]
    assert failed.status == "failed" and f"ClusterError: cannot reach {address}" not in failed.error
    assert failed.error.startswith("ClusterError: ") and address in failed.error


def test_a_scheduler_without_workers_fails_the_run_clearly() -> None:
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        address = empty.scheduler_address
        with (
            pytest.raises(ClusterError, match=f"scheduler at {address} has fewer than 1 worker"),
            connect(address, timeout=0.5),
        ):
            pass


def mkl_only() -> list[str]:
    """The kernels of a worker built without SciPy's (a stand-in for any mismatch)."""
    return ["mkl"]


def test_workers_without_this_process_kernel_are_refused(tiny_network, monkeypatch) -> None:
    config, _ = tiny_network
    config = config.model_copy(
        update={"similarity": config.similarity.model_copy(update={"kernel": "scipy"})}
    )
    monkeypatch.setattr(recommender.distributed, "available_kernels", mkl_only)
    articles = validate_articles(tiny_articles()).valid
    events = validate_events(tiny_events()).valid
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as local,
        Client(local, set_as_default=False) as client,
        pytest.raises(ClusterError, match="cannot run the similarity kernel 'scipy'"),
    ):
        fit_on_cluster(client, config, articles, events)


def test_cluster_addresses_are_validated() -> None:
    for good in ("local:2", "tcp://10.0.0.5:8786", "scheduler:8786", "tls://[::1]:8786"):
        assert parse_config(
            {"sites": {s: {"display_name": s} for s in SITES}, "run": {"cluster": good}}
        )
    for bad, reason in (
        ("local:0", "at least 1 worker"),
        ("http://scheduler:8786", "not a Dask scheduler address"),
        ("scheduler", "not a Dask scheduler address"),
    ):
        with pytest.raises(ConfigError, match=f"run.cluster: .*{reason}"):
            parse_config(
                {"sites": {s: {"display_name": s} for s in SITES}, "run": {"cluster": bad}}
            )


# -- the command -------------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recommender.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def network_toml(tiny_network) -> Path:
    _, folder = tiny_network
    path = folder / "net.toml"
    path.write_text(
        '[data]\narticles = ["articles.csv"]\nevents = ["events.csv"]\n'
        '[store]\nurl = "sqlite:///store.sqlite"\n[run]\nnow = 2021-03-08T00:00:00Z\n'
        "cluster_timeout_seconds = 1\n"
        "[sites.alpha]\ndisplay_name = 'A'\n[sites.beta]\ndisplay_name = 'B'\n"
        "[sites.gamma]\ndisplay_name = 'C'\n[features]\nmax_df = 1.0\n"
    )
    return path


def test_run_with_cluster_local_publishes(tiny_network) -> None:
    config_path = network_toml(tiny_network)
    # `batch` is `run` under its other name.
    done = cli("batch", "--config", str(config_path), "--cluster", "local:1", "--show", "a-sake")
    assert done.returncode == 0, done.stderr
    assert "similarity+mix" in done.stdout and "INFO" not in done.stderr
    assert "A tasting tour of Nada sake breweries" in done.stdout  # a-sake's twin on beta
    store = open_store(config_path.parent / "store.sqlite")
    assert {"b-sake", "c-sake"} <= {item.article_id for item in store.get("a-sake").items}


def test_run_with_an_unreachable_cluster_exits_4_and_a_bad_address_2(tiny_network) -> None:
    config_path = network_toml(tiny_network)
    address = f"127.0.0.1:{free_port()}"
    done = cli("run", "--config", str(config_path), "--cluster", address)
    assert done.returncode == 4
    assert f"cannot reach the Dask scheduler at {address}" in " ".join(done.stderr.split())
    assert open_store(config_path.parent / "store.sqlite").current_run_id() is None

    bad = cli("run", "--config", str(config_path), "--cluster", "local:zero")
    assert bad.returncode == 2 and "--cluster" in bad.stderr
