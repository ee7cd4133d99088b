"""End-to-end scale benchmark: vectorise -> similarity -> trending -> mix -> publish.

For each corpus size N (a synthetic corpus from ``benchmarks/corpus.py``, 4 sites),
runs the engine as the batch job does and records seconds per stage and the
process's peak resident memory. Every page (all N articles) is a source; the
candidates are the articles eligible for the widget: the newest
``--candidates`` (default 50,000) by publication date, as the config's
``mix.max_age_days`` selects them. Each N runs in a fresh process so that peak
memory is that run's own.

    python benchmarks/scale.py --sizes 10000 100000 1000000 --out benchmarks/results/scale.md

Results are appended to the markdown table given by ``--out`` with the
machine's facts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import cached_corpus  # noqa: E402

from recommender.progress import StageTimer  # noqa: E402

NOW = pd.Timestamp("2024-01-01T00:00:00Z")


def machine_facts() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from recommender.kernels import get_kernel

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python "
        f"{platform.python_version()}, numpy {np.__version__}, kernel {get_kernel().name}"
    )


def synthetic_views(
    articles: pd.DataFrame, eligible: np.ndarray, n_views: int, seed: int = 1
) -> pd.DataFrame:
    """Long-tailed views over the eligible articles in the last 7 days."""
    rng = np.random.default_rng(seed)
    ids = articles["article_id"].to_numpy()[eligible]
    weights = rng.lognormal(0, 1.3, len(ids))
    picks = rng.choice(len(ids), n_views, p=weights / weights.sum())
    ages = rng.exponential(36, n_views).clip(0, 24 * 7)
    return pd.DataFrame(
        {
            "ts": NOW - pd.to_timedelta(ages, unit="h"),
            "article_id": ids[picks],
            "kind": "view",
        }
    )


class LoggedStages(StageTimer):
    """Stage timings, each stage also reported on stderr as it ends."""

    def _finish(self, name: str) -> None:
        print(f"  {name} done", file=sys.stderr, flush=True)


def scale_inputs(
    articles: pd.DataFrame, n_candidates: int, *, slack_days: float = 1e-6
) -> tuple[Any, pd.DataFrame]:
    """The config and traffic of a scale run on validated ``articles``: the
    newest ``n_candidates`` are eligible (the freshness window ends
    ``slack_days`` past the oldest of them), 20 views per eligible article."""
    from recommender.config import parse_config
    from recommender.schema import validate_events

    newest = np.sort(articles["published_at"].to_numpy())[::-1]
    cutoff = pd.Timestamp(newest[min(n_candidates, len(newest)) - 1])
    max_age_days = float((NOW - cutoff) / pd.Timedelta(days=1)) + slack_days
    eligible = (articles["published_at"] >= cutoff).to_numpy()
    events = validate_events(synthetic_views(articles, eligible, 20 * int(eligible.sum()))).valid
    config = parse_config(
        {
            "sites": {s: {"display_name": s.title()} for s in sorted(set(articles["site"]))},
            "run": {"now": NOW.isoformat()},
            "features": {"max_df": 0.5, "min_df": 2},
            "mix": {"max_age_days": max_age_days},
        }
    )
    return config, events


def run_one(n: int, n_candidates: int, corpus_cache: Path) -> dict:
    """Run the engine once at size ``n``; return timings and peak memory."""
    from recommender.batch import _counted  # the batch's own publish path
    from recommender.lists import RunInfo
    from recommender.model import Recommender
    from recommender.schema import validate_articles
    from recommender.store import open_store

    timings: dict[str, float] = {}
    started = time.perf_counter()
    raw = cached_corpus(n, corpus_cache, end=NOW.isoformat())
    timings["generate"] = time.perf_counter() - started

    started = time.perf_counter()
    articles = validate_articles(raw).valid
    timings["validate"] = time.perf_counter() - started
    config, events = scale_inputs(articles, n_candidates)
    progress = LoggedStages()
    model = Recommender(config).fit(articles, events, progress=progress)
    timings.update(progress.timings)

    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "lists.sqlite")
        started = time.perf_counter()
        store.publish(
            _counted(model.list_payloads("bench"), lambda _: None),
            RunInfo("bench", NOW.isoformat()),
        )
        timings["publish"] = time.perf_counter() - started
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {
        "n": n,
        "candidates": int(model.eligible_.sum()),
        "events": len(events),
        "timings": timings,
        "peak_gib": peak,
        "full_lists": model.coverage()["full_lists"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.candidates, args.cache)))
        return
    rows = []
    for n in args.sizes:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--candidates",
                str(args.candidates),
                "--cache",
                str(args.cache),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(result)
        t = result["timings"]
        engine = sum(v for k, v in t.items() if k not in ("generate", "validate"))
        print(
            f"N={n:>9,}  candidates={result['candidates']:>7,}  "
            + "  ".join(f"{k} {v:.1f}s" for k, v in t.items())
            + f"  engine total {engine:.1f}s  "
            f"peak {result['peak_gib']:.2f} GiB",
            flush=True,
        )
    if args.out:
        lines = [
            f"Machine: {machine_facts()}",
            "",
            "| N sources | candidates | features | similarity | trending | dedupe | mix "
            "| publish | vectorise→publish | peak RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        stages = ("features", "similarity", "trending", "dedupe", "mix", "publish")
        for r in rows:
            t = r["timings"]
            total = sum(t[s] for s in stages)
            lines.append(
                f"| {r['n']:,} | {r['candidates']:,} | "
                + " | ".join(f"{t[s]:.1f} s" for s in stages)
                + f" | **{total:.1f} s** | {r['peak_gib']:.1f} GiB |"
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as handle:
            handle.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
