"""Lookup speed of ``recommender.serving`` against the floor of a raw
``sqlite3`` primary-key query on the same store, in the same run.

Two stores: the bundled sample (``recommender run --config data/sample.toml``
writes ``var/sample-store.sqlite``) and a synthetic store of ``--lists``
article lists (default 1,000,000; 12 items each, ~4 KB of JSON per list like
the sample's), built once under ``var/bench/`` and reused.

Per store and repeat, on the same randomly chosen pages:

- ``sqlite3 floor``: ``SELECT payload FROM lists WHERE run_id = ? AND
  source_id = ?`` on an open connection (the JSON text, not decoded);
- ``serving, cold``: ``Recommendations.get(page, k=6, site=...)`` on pages not
  yet in its cache (store read, JSON decoding, link checks, the cut to k);
- ``serving, warm``: the same calls again, answered from the cache (on 1M
  lists: a hot set of 20,000 pages, the default cache size).

Each lookup is timed alone (``perf_counter_ns``); the table gives medians over
repeats of lookups per second and p50/p99 latency, and the ratio to the floor.

::

    recommender run --config data/sample.toml
    python benchmarks/serving.py                         # sample + 1M lists
    python benchmarks/serving.py --lists 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

from loadtest import RUNS, SITES, synthetic_lists

from recommender.serving import Recommendations
from recommender.store import open_store

REPO = Path(__file__).resolve().parents[1]
#: Each cold pass over a chunk of pages is followed by this many warm passes.
WARM_ROUNDS = 3


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; {platform.system()} {platform.release()}; "
        f"load average at start {load}"
    )


def build_synthetic(path: Path, n_lists: int) -> None:
    """A store of ``n_lists`` synthetic article lists (reused when it has them)."""
    if path.exists():
        store = open_store(path)
        run = store.current_run()
        store.close()
        if run is not None and run.n_lists == n_lists + len(SITES) + 1:
            return
        path.unlink()
    print(f"building {path} ({n_lists:,} lists, once) ...", file=sys.stderr)
    started = time.monotonic()
    from recommender.lists import RunInfo

    store = open_store(path)
    store.publish(synthetic_lists(RUNS[0], n_lists), RunInfo(RUNS[0], "2021-03-08T00:00:00Z"))
    store.close()
    print(f"built in {time.monotonic() - started:.0f} s", file=sys.stderr)


def timed(call: Callable[[str, str | None], object], pages: Sequence[tuple[str, str | None]]):
    clock = time.perf_counter_ns
    samples = []
    for page, site in pages:
        start = clock()
        call(page, site)
        samples.append(clock() - start)
    return samples


def summary(samples: list[int]) -> tuple[float, float, float]:
    """(lookups per second, p50 µs, p99 µs)."""
    ordered = sorted(samples)
    per_second = 1e9 * len(ordered) / sum(ordered)
    return (
        per_second,
        ordered[len(ordered) // 2] / 1e3,
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1e3,
    )


def measure(
    path: Path, pages: list[tuple[str, str | None]], hot: int, repeats: int
) -> dict[str, list[tuple[float, float, float]]]:
    url = f"sqlite:///{path}"
    raw = sqlite3.connect(path)
    run_id = raw.execute("SELECT value FROM meta WHERE key = 'current_run'").fetchone()[0]
    query = "SELECT payload FROM lists WHERE run_id = ? AND source_id = ?"

    def floor(page: str, site: str | None) -> object:
        return raw.execute(query, (run_id, page)).fetchone()

    timed(floor, pages)  # untimed: the OS page cache holds the rows for both
    results: dict[str, list[tuple[float, float, float]]] = {
        "sqlite3 floor": [],
        "serving, cold": [],
        "serving, warm": [],
    }
    for _ in range(repeats):
        gc.collect()
        results["sqlite3 floor"].append(summary(timed(floor, pages)))
        cold_samples: list[int] = []
        warm_samples: list[int] = []
        # Fresh caches of `hot` pages each, so that every "cold" call misses.
        for start in range(0, len(pages), hot):
            chunk = pages[start : start + hot]
            recs = Recommendations(url, cache_size=max(hot, 1), refresh_seconds=3600)
            assert recs.run_id == run_id

            def lookup(page: str, site: str | None, recs: Recommendations = recs) -> object:
                return recs.get(page, 6, site=site)

            cold_samples += timed(lookup, chunk)
            for _ in range(WARM_ROUNDS):
                warm_samples += timed(lookup, chunk)
            recs.close()
        results["serving, cold"].append(summary(cold_samples))
        results["serving, warm"].append(summary(warm_samples))
    raw.close()
    return results


def bytes_per_cached_list(path: Path, pages: list[tuple[str, str | None]]) -> float:
    recs = Recommendations(path, cache_size=len(pages) + 1, refresh_seconds=3600)
    recs.run_id  # noqa: B018 (opens the store before measuring)
    tracemalloc.start()
    for page, _ in pages:
        recs.get(page)
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    recs.close()
    return used / len(pages)


def report(name: str, results: dict[str, list[tuple[float, float, float]]]) -> list[str]:
    floor_p50 = statistics.median(p50 for _, p50, _ in results["sqlite3 floor"])
    floor_p99 = statistics.median(p99 for _, _, p99 in results["sqlite3 floor"])
    lines = [
        f"| {name} | lookups/s | p50 µs | p99 µs | p50 vs floor | p99 vs floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, runs in results.items():
        rate = statistics.median(r for r, _, _ in runs)
        p50 = statistics.median(p for _, p, _ in runs)
        p99 = statistics.median(p for _, _, p in runs)
        lines.append(
            f"| {label} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | "
            f"{p50 / floor_p50:.2f}× | {p99 / floor_p99:.2f}× |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample-store", type=Path, default=REPO / "var" / "sample-store.sqlite")
    parser.add_argument("--lists", type=int, default=1_000_000, help="synthetic lists (0: skip)")
    parser.add_argument("--synthetic-store", type=Path, help="default: var/bench/serving-N.sqlite")
    parser.add_argument("--lookups", type=int, default=100_000, help="timed lookups per repeat")
    parser.add_argument("--hot", type=int, default=20_000, help="cache size (pages) on 1M lists")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sites = list(SITES)
    out = [f"Machine: {machine()}", ""]

    if not args.sample_store.exists():
        sys.exit(
            f"{args.sample_store}: no sample store; run `recommender run --config "
            "data/sample.toml` first (or pass --sample-store)"
        )
    sample = open_store(args.sample_store)
    sample_pages = [(page, rng.choice(sites)) for page in sample.source_ids()]
    sample.close()
    # Shuffled passes over all pages: each pass meets a fresh cache, so every
    # cold lookup is a real miss.
    pages = []
    while len(pages) < args.lookups:
        pages += rng.sample(sample_pages, len(sample_pages))
    results = measure(args.sample_store, pages, hot=len(sample_pages), repeats=args.repeats)
    out += report(f"sample ({len(sample_pages)} lists)", results)
    out += [
        "",
        "Memory per cached sample list: "
        f"{bytes_per_cached_list(args.sample_store, sample_pages) / 1024:.1f} KiB",
        "",
    ]

    if args.lists:
        path = args.synthetic_store or REPO / "var" / "bench" / f"serving-{args.lists}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        build_synthetic(path, args.lists)
        ids = rng.sample(range(args.lists), min(args.lookups, args.lists))
        pages = [(f"a{i:07d}", rng.choice(sites)) for i in ids]
        results = measure(path, pages, hot=min(args.hot, len(pages)), repeats=args.repeats)
        size = path.stat().st_size / 2**30
        out += report(f"synthetic ({args.lists:,} lists, {size:.1f} GiB)", results)
    print("\n".join(out))


if __name__ == "__main__":
    main()
