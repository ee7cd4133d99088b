"""The batch on a Dask cluster against one process: overhead, and 1 -> 2 workers.

The corpus and inputs are those of ``benchmarks/scale.py`` (a synthetic corpus of
``--n`` articles on 4 sites, the newest ``--candidates`` eligible, 20 views per
eligible article). Each setup fits the whole model (features -> lists) in a fresh
process:

- ``single``: :meth:`Recommender.fit` in one process (the batch without a cluster;
  the similarity kernel on every core);
- ``local:1``, ``local:2``: :func:`recommender.distributed.fit_on_cluster` on the
  LocalCluster that ``recommender run --cluster local:N`` starts (N workers, cores/N
  threads each);
- ``1x1``, ``2x1``: 1 and 2 single-threaded workers (one core each): the scaling
  from one worker to two.

Every cluster setup checks that its neighbours and lists are identical to the
single process's (bit for bit), and records each partition task's compute time
(the scheduler's task stream), each worker's peak memory and the client's.

    python benchmarks/distributed.py --n 100000 --repeats 2 --out benchmarks/results/distributed.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import cached_corpus  # noqa: E402
from scale import NOW, machine_facts, scale_inputs  # noqa: E402

# This file has the Dask package's name: keep its folder off the path, so that
# `import distributed` finds Dask here and in the worker processes.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

#: setup -> (workers, threads per worker); None: the single process.
SETUPS: dict[str, tuple[int, int] | None] = {
    "single": None,
    "local:1": (1, 2),
    "local:2": (2, 1),
    "1x1": (1, 1),
    "2x1": (2, 1),
}
ARRAYS = ("source_ids", "source_sites", "items", "score", "relevance", "trend", "freshness")


def load_inputs(n: int, n_candidates: int, cache: Path) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Config, validated articles and events, as ``benchmarks/scale.py`` builds them."""
    from recommender.schema import validate_articles

    articles = validate_articles(cached_corpus(n, cache, end=NOW.isoformat())).valid
    config, events = scale_inputs(articles, n_candidates)
    return config, articles, events


def _comparable(values: np.ndarray) -> np.ndarray:
    """Object arrays (ids, sites) as strings, so that ``np.savez`` stores them."""
    return values.astype(str) if values.dtype == object else values


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def run_setup(setup: str, n: int, n_candidates: int, cache: Path, reference: Path) -> dict:
    """Fit once with ``setup``; the single process saves its arrays to
    ``reference``, the cluster setups compare theirs with them."""
    from recommender.model import Recommender
    from recommender.progress import StageTimer

    config, articles, events = load_inputs(n, n_candidates, cache)
    progress = StageTimer()
    shape = SETUPS[setup]
    result: dict[str, Any] = {"setup": setup, "n": n}
    if shape is None:
        started = time.perf_counter()
        model = Recommender(config).fit(articles, events, progress=progress)
        result["fit"] = time.perf_counter() - started
        np.savez(
            reference,
            indices=model.neighbors_.indices,
            scores=model.neighbors_.scores,
            **{name: _comparable(getattr(model.lists_, name)) for name in ARRAYS},
        )
    else:
        model = _fit_on_cluster(setup, shape, config, articles, events, progress, result)
        expected = np.load(reference)
        same = np.array_equal(model.neighbors_.indices, expected["indices"]) and np.array_equal(
            model.neighbors_.scores, expected["scores"]
        )
        for name in ARRAYS:
            same &= np.array_equal(_comparable(getattr(model.lists_, name)), expected[name])
        result["identical"] = bool(same)
    result["timings"] = dict(progress.timings)
    result["candidates"] = int(model.eligible_.sum())
    result["x_mib"] = (
        model.X_.data.nbytes + model.X_.indices.nbytes + model.X_.indptr.nbytes
    ) / 2**20
    result["client_peak_gib"] = _peak_rss_gib()
    # Other work on a shared machine slows some runs: the 1-minute load tells.
    result["load"] = os.getloadavg()[0]
    return result


def _fit_on_cluster(
    setup: str,
    shape: tuple[int, int],
    config: Any,
    articles: pd.DataFrame,
    events: pd.DataFrame,
    progress: Any,
    result: dict[str, Any],
) -> Any:
    """Fit on the setup's cluster; record partition times and worker memory."""
    from distributed import get_task_stream

    from recommender.distributed import connect, fit_on_cluster, local_cluster

    with ExitStack() as stack:
        with progress.stage("cluster"):
            if setup.startswith("local:"):
                client = stack.enter_context(connect(setup))
            else:
                workers, threads = shape
                cluster = stack.enter_context(local_cluster(workers, threads))
                # Connected as to a remote scheduler, by its address.
                client = stack.enter_context(connect(cluster.scheduler_address))
                client.wait_for_workers(workers)
        with get_task_stream(client) as stream:
            started = time.perf_counter()
            model = fit_on_cluster(client, config, articles, events, progress=progress)
            result["fit"] = time.perf_counter() - started
        computes = [
            sum(s["stop"] - s["start"] for s in record["startstops"] if s["action"] == "compute")
            for record in stream.data
            if str(record["key"]).startswith("recommender-partition")
        ]
        result["partitions"] = len(computes)
        result["partition_seconds"] = sorted(computes)
        result["worker_peak_gib"] = sorted(client.run(_peak_rss_gib).values())
        result["threads"] = sum(client.nthreads().values())
    return model


def summarise(runs: list[dict]) -> dict:
    """Median over repeats of each figure (first repeat's partition list)."""
    first = runs[0]
    timings = {
        stage: statistics.median(r["timings"][stage] for r in runs) for stage in first["timings"]
    }
    out = {**first, "timings": timings, "fit": statistics.median(r["fit"] for r in runs)}
    out["repeats"] = len(runs)
    out["load"] = statistics.median(r["load"] for r in runs)
    if "identical" in first:
        out["identical"] = all(r["identical"] for r in runs)
    return out


def markdown(rows: dict[str, dict], n: int) -> str:
    single = rows["single"]
    lines = [
        f"Machine: {machine_facts()}",
        "",
        f"{n:,} articles, {single['candidates']:,} candidates; feature matrix "
        f"{single['x_mib']:.0f} MiB; medians of {single['repeats']} runs, each in a fresh "
        "process.",
        "",
        "| setup | workers × threads | cluster start | client stages¹ | ship | "
        "similarity+mix | fit (features→lists) | vs single | identical | client peak "
        "| worker peak | load² |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    client_stages = ("features", "trending", "dedupe", "pages", "similarity", "mix")
    for setup, r in rows.items():
        t = r["timings"]
        shape = SETUPS[setup]
        on_client = sum(t.get(s, 0.0) for s in client_stages if s not in ("similarity", "mix"))
        if shape is None:
            cells = [
                "1 process × 2 threads",
                "–",
                f"{on_client:.1f} s",
                "–",
                f"{t['similarity'] + t['mix']:.1f} s",
            ]
        else:
            cells = [
                f"{shape[0]} × {shape[1]}",
                f"{t['cluster']:.1f} s",
                f"{on_client:.1f} s",
                f"{t['ship']:.1f} s",
                f"{t['similarity+mix']:.1f} s",
            ]
        lines.append(
            f"| {setup} | " + " | ".join(cells) + f" | {r['fit']:.1f} s | "
            f"{r['fit'] / single['fit']:.2f}× | {'yes' if r.get('identical', True) else '**no**'} "
            f"| {r['client_peak_gib']:.2f} GiB | "
            + (
                ", ".join(f"{g:.2f}" for g in r["worker_peak_gib"]) + " GiB"
                if "worker_peak_gib" in r
                else "–"
            )
            + f" | {r['load']:.1f} |"
        )
    lines += [
        "",
        "¹ features, trending, dedupe (and pages) in the client process, the same work in "
        'every setup; "single" shows its similarity + mix stages in the similarity+mix '
        "column.",
        "² the machine's 1-minute load average as the fit ended (2 cores: above 2, other "
        "work competed for them).",
        "",
        "Partition tasks (compute seconds per task, from the scheduler's task stream):",
        "",
    ]
    for setup, r in rows.items():
        if "partition_seconds" in r:
            s = r["partition_seconds"]
            lines.append(
                f"- {setup}: {r['partitions']} partitions, median {statistics.median(s):.2f} s, "
                f"range {s[0]:.2f}–{s[-1]:.2f} s, sum {sum(s):.1f} s"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_setup(args.child, args.n, args.candidates, args.cache, args.reference)
        print(json.dumps(result))
        return
    if "single" not in args.setups:
        parser.error("the single-process setup is the reference: keep it in --setups")
    runs: dict[str, list[dict]] = {setup: [] for setup in args.setups}
    with tempfile.TemporaryDirectory() as folder:
        reference = Path(folder) / "single.npz"
        for repeat in range(args.repeats):
            for setup in args.setups:
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        setup,
                        "--n",
                        str(args.n),
                        "--candidates",
                        str(args.candidates),
                        "--cache",
                        str(args.cache),
                        "--reference",
                        str(reference),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode:
                    sys.exit(f"{setup} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs[setup].append(result)
                print(
                    f"[{repeat + 1}/{args.repeats}] {setup:8} fit {result['fit']:6.1f} s  "
                    + "  ".join(f"{k} {v:.1f}s" for k, v in result["timings"].items())
                    + (f"  identical={result['identical']}" if "identical" in result else ""),
                    flush=True,
                )
    rows = {setup: summarise(setup_runs) for setup, setup_runs in runs.items()}
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    text = markdown(rows, args.n)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
