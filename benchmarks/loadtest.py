"""Load test of ``recommender serve`` on 127.0.0.1, with a run published mid-test.

Three processes: the service (``recommender serve``), this load generator
(asyncio, keep-alive HTTP/1.1 connections), and a publisher that publishes
a second run into the store half way through. Every response is checked:
status 200, and its list exactly the one its run published for the page
(item ids carry their run and page, so a list mixing two runs, or the wrong
page's list, is caught); each connection must never go back to the older
run once it saw the newer one. Runs ``--duration`` seconds, longer only
until the new run has been served for a second (at most twice the duration,
or 60 s), and at most ``--max-requests`` requests.

::

    python benchmarks/loadtest.py run --lists 100000 --duration 20 --connections 16
    python benchmarks/loadtest.py run --duration 4 --json    # what the test suite runs

Prints throughput (requests/s), latency percentiles (ms), errors, mixed
responses, how long the publish took and how long after its start the new
run was first served (its commit comes at the end of the publish).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.lists import NETWORK_PAGE, Item, RecommendationList, RunInfo, site_page_id
from recommender.store import open_store

SITES = {
    "japantoday": "JapanToday",
    "savvytokyo": "Savvy Tokyo",
    "gaijinpot-blog": "GaijinPot Blog",
    "gaijinpot-travel": "GaijinPot Travel",
}
CATEGORIES = ["Families", "Food & Drink", "Travel", "Shrines & Temples", "", "Culture"]
ITEMS_PER_LIST = 12
RUNS = ("load-run-a", "load-run-b")
_WIDGET_RUN = re.compile(rb'data-rec-run="([^"]*)"')
_WIDGET_ITEM = re.compile(rb'data-rec-article="([^"]*)"')


# -- the store ---------------------------------------------------------------------
def page_ids(n_lists: int) -> list[str]:
    return [f"a{i:07d}" for i in range(n_lists)]


def synthetic_lists(run_id: str, n_lists: int) -> Iterator[RecommendationList]:
    """``n_lists`` article lists plus each site's page and the network's, 12
    items each, sized like the sample's (titles of ~60 characters). Item ids
    are ``<run>/<page>/<position>``."""
    sites = list(SITES)
    pages = [
        *((source, sites[i % 4]) for i, source in enumerate(page_ids(n_lists))),
        *((site_page_id(site), site) for site in sites),
        (NETWORK_PAGE, None),
    ]
    for source_id, site in pages:
        items = tuple(
            Item(
                article_id=f"{run_id}/{source_id}/{j}",
                site=sites[(j + 1) % 4],
                site_name=SITES[sites[(j + 1) % 4]],
                category=CATEGORIES[j % len(CATEGORIES)],
                title=f"Article {j} recommended under {source_id}: a title of usual length",
                url=f"https://{sites[(j + 1) % 4]}.example/{source_id}/{j}/a-readable-slug",
                image_url=None,
                score=1.0 - j / 20,
                relevance=0.5,
                trend=0.3,
                freshness=0.2,
                reason="related" if j % 2 else "trending",
            )
            for j in range(ITEMS_PER_LIST)
        )
        yield RecommendationList(source_id, site, items, run_id, "2021-03-08T00:00:00+00:00")


def publish_run(store_url: str, run_id: str, n_lists: int) -> tuple[float, float]:
    """Publish a synthetic run; returns the wall-clock times (seconds) when
    the publish started and returned (its commit is just before it returns)."""
    store = open_store(store_url)
    try:
        started = time.time()
        store.publish(synthetic_lists(run_id, n_lists), RunInfo(run_id, "2021-03-08T00:00:00Z"))
        return started, time.time()
    finally:
        store.close()


# -- the service -------------------------------------------------------------------
def start_service(
    store_url: str, events_dir: Path, workers: int, refresh_seconds: float
) -> tuple[subprocess.Popen[str], str, int]:
    """``recommender serve`` on a free port of 127.0.0.1; (process, host, port)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recommender.cli",
            "serve",
            "--store",
            store_url,
            "--port",
            "0",
            "--events-dir",
            str(events_dir),
            "--refresh-seconds",
            str(refresh_seconds),
            "--workers",
            str(workers),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if found:
            port = int(found.group(1))
            _wait_until_ready("127.0.0.1", port, deadline)
            return process, "127.0.0.1", port
    process.kill()
    raise RuntimeError("the service did not start:\n" + "".join(lines))


def _wait_until_ready(host: str, port: int, deadline: float) -> None:
    import http.client

    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the service on {host}:{port} never became healthy")


# -- the load ----------------------------------------------------------------------
@dataclass
class Stats:
    latencies_ns: list[int] = field(default_factory=list)
    per_run: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    mixed: int = 0
    went_back: int = 0
    problems: list[str] = field(default_factory=list)
    first_new_run_at: float | None = None

    def problem(self, kind: str, message: str) -> None:
        if kind == "mixed":
            self.mixed += 1
        elif kind == "went_back":
            self.went_back += 1
        else:
            self.errors += 1
        if len(self.problems) < 10:
            self.problems.append(f"{kind}: {message}")


def request_plan(n_lists: int, seed: int = 7) -> list[tuple[bytes, str, str, int]]:
    """(request target, page, kind, k) in a shuffled mix: 70 % JSON lists,
    20 % widget fragments, 10 % a site's trending mix."""
    rng = random.Random(seed)
    pages = page_ids(n_lists)
    sites = list(SITES)
    plan = []
    for _ in range(5000):
        roll, page, site = rng.random(), rng.choice(pages), rng.choice(sites)
        if roll < 0.7:
            plan.append((f"/v1/recommendations/{page}?k=6&site={site}".encode(), page, "json", 6))
        elif roll < 0.9:
            plan.append((f"/widget/{page}?site={site}".encode(), page, "html", ITEMS_PER_LIST))
        else:
            target = f"/v1/trending?site={site}".encode()
            plan.append((target, site_page_id(site), "json", ITEMS_PER_LIST))
    return plan


def check(stats: Stats, page: str, kind: str, k: int, body: bytes) -> str | None:
    """The run of a correct response, or None after recording what is wrong."""
    if kind == "json":
        data = json.loads(body)
        run = data["run_id"]
        ids = [item["article_id"] for item in data["items"]]
    else:
        found = _WIDGET_RUN.search(body)
        run = found.group(1).decode() if found else ""
        ids = [m.decode() for m in _WIDGET_ITEM.findall(body)]
    if run not in RUNS:
        stats.problem("error", f"{page}: unknown run {run!r}")
        return None
    if ids != [f"{run}/{page}/{j}" for j in range(k)]:
        stats.problem("mixed", f"{page}: run {run} answered with {ids[:3]}...")
        return None
    return run


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the service")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


@dataclass
class Schedule:
    """When to stop: after ``duration`` seconds, but not before the new run
    has been published for ``after_publish`` seconds (so that the switch is
    always exercised), and in any case after ``hard_limit`` seconds or
    ``budget`` requests."""

    start: float
    duration: float
    hard_limit: float
    budget: int
    after_publish: float = 1.0
    published: float | None = None

    def go_on(self) -> bool:
        now = time.monotonic()
        if self.budget <= 0 or now - self.start >= self.hard_limit:
            return False
        if now - self.start < self.duration:
            return True
        return self.published is None or now - self.published < self.after_publish


async def connection(
    host: str,
    port: int,
    plan: list[tuple[bytes, str, str, int]],
    offset: int,
    stats: Stats,
    schedule: Schedule,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    latest = 0
    i = offset
    clock = time.perf_counter_ns
    try:
        while schedule.go_on():
            schedule.budget -= 1
            target, page, kind, k = plan[i % len(plan)]
            i += 1
            start = clock()
            writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: loadtest\r\n\r\n")
            try:
                status, body = await asyncio.wait_for(read_response(reader), timeout=10)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as error:
                stats.problem("error", f"{target.decode()}: {error!r}")
                return
            stats.latencies_ns.append(clock() - start)
            if status != 200:
                stats.problem("error", f"{target.decode()}: HTTP {status} {body[:200]!r}")
                continue
            run = check(stats, page, kind, k, body)
            if run is None:
                continue
            stats.per_run[run] = stats.per_run.get(run, 0) + 1
            index = RUNS.index(run)
            if index < latest:
                stats.problem("went_back", f"{target.decode()}: {run} after {RUNS[latest]}")
            elif index > latest:
                latest = index
                if stats.first_new_run_at is None:
                    stats.first_new_run_at = time.time()
    finally:
        writer.close()


async def generate_load(
    host: str,
    port: int,
    n_lists: int,
    connections: int,
    duration: float,
    max_requests: int,
    publish: Any,
) -> tuple[Stats, float]:
    plan = request_plan(n_lists)
    stats = Stats()
    start = time.monotonic()
    schedule = Schedule(start, duration, hard_limit=max(2 * duration, 60), budget=max_requests)

    async def publish_then_note() -> None:
        await publish()
        schedule.published = time.monotonic()

    publisher = asyncio.create_task(publish_then_note())
    await asyncio.gather(
        *(connection(host, port, plan, n * 997, stats, schedule) for n in range(connections))
    )
    elapsed = time.monotonic() - start
    await publisher
    return stats, elapsed


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1e6


def run_load_test(
    *,
    n_lists: int,
    duration: float,
    connections: int,
    max_requests: int,
    workers: int,
    publish_after: float,
    refresh_seconds: float,
    folder: Path,
) -> dict[str, Any]:
    store_url = f"sqlite:///{folder / 'lists.sqlite'}"
    build_started = time.monotonic()
    publish_run(store_url, RUNS[0], n_lists)
    build_seconds = time.monotonic() - build_started
    service, host, port = start_service(store_url, folder / "events", workers, refresh_seconds)
    published: dict[str, float] = {}

    async def publish() -> None:
        await asyncio.sleep(publish_after)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            os.path.abspath(__file__),
            "publish",
            "--store",
            store_url,
            "--run-id",
            RUNS[1],
            "--lists",
            str(n_lists),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the publisher failed with exit code {process.returncode}")
        published.update(json.loads(out))

    try:
        stats, elapsed = asyncio.run(
            generate_load(host, port, n_lists, connections, duration, max_requests, publish)
        )
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
    latencies = sorted(stats.latencies_ns)
    switch = (
        stats.first_new_run_at - published["started"]
        if stats.first_new_run_at is not None and published
        else None
    )
    return {
        "lists": n_lists,
        "items_per_list": ITEMS_PER_LIST,
        "connections": connections,
        "workers": workers,
        "store_build_seconds": round(build_seconds, 2),
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 3),
        "p90_ms": round(percentile(latencies, 0.90), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "max_ms": round(latencies[-1] / 1e6, 3) if latencies else None,
        "errors": stats.errors,
        "mixed": stats.mixed,
        "went_back": stats.went_back,
        "per_run": stats.per_run,
        "publish_seconds": round(published["returned"] - published["started"], 2)
        if published
        else None,
        "new_run_first_served_after_publish_start_seconds": round(switch, 3)
        if switch is not None
        else None,
        "problems": stats.problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the load test")
    run.add_argument("--lists", type=int, default=20_000, help="article lists in the store")
    run.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    run.add_argument("--connections", type=int, default=16, help="concurrent connections")
    run.add_argument("--max-requests", type=int, default=2_000_000, help="request budget")
    run.add_argument("--workers", type=int, default=1, help="service worker processes")
    run.add_argument(
        "--publish-after", type=float, help="seconds before the new run (default: half way)"
    )
    run.add_argument("--refresh-seconds", type=float, default=0.5)
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    publish = commands.add_parser("publish", help="(the publisher process)")
    publish.add_argument("--store", required=True)
    publish.add_argument("--run-id", required=True)
    publish.add_argument("--lists", type=int, required=True)
    args = parser.parse_args()

    if args.command == "publish":
        started, returned = publish_run(args.store, args.run_id, args.lists)
        print(json.dumps({"started": started, "returned": returned}))
        return
    with tempfile.TemporaryDirectory(prefix="recommender-load-") as folder:
        result = run_load_test(
            n_lists=args.lists,
            duration=args.duration,
            connections=args.connections,
            max_requests=args.max_requests,
            workers=args.workers,
            publish_after=args.publish_after
            if args.publish_after is not None
            else args.duration / 2,
            refresh_seconds=args.refresh_seconds,
            folder=Path(folder),
        )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>48}: {value}")
    failed = result["errors"] or result["mixed"] or result["went_back"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
