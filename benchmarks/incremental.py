"""Incremental runs and per-request cold start, at scale.

1. Fits the engine on a synthetic corpus of N articles (``benchmarks/corpus.py``;
   candidates: the newest ``--candidates``) and publishes, as the batch does: the
   *full run*.
2. Changes 1% of the corpus (half new articles, half edited ones) and runs
   ``Recommender.update`` incrementally, then the same update in full on the same
   vocabulary (``incremental=False``); both publish. Checks that the two give
   identical neighbour lists and reports the speed-up over the full run.
3. Cold start: ``recommend_unseen`` for articles the run has not seen, with the
   run's candidates and with every article of the corpus as a candidate;
   median and p99 latency over ``--requests`` requests.

    python benchmarks/incremental.py --n 1000000 --candidates 50000
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import cached_corpus  # noqa: E402
from scale import NOW, LoggedStages, machine_facts, scale_inputs  # noqa: E402

from recommender.batch import publish_model  # noqa: E402
from recommender.lists import RunInfo  # noqa: E402
from recommender.model import Recommender  # noqa: E402
from recommender.model.cold_start import cold_start_candidates  # noqa: E402
from recommender.schema import validate_articles  # noqa: E402
from recommender.store import open_store  # noqa: E402


def publish(model: Recommender, folder: Path, run_id: str, *, changes: bool = False) -> float:
    """Seconds to publish ``model``'s lists as the batch does: with ``changes``
    (an update of the served run "full"), only the changed lists when few
    changed (``publish_model``), else every list."""
    store = open_store(folder / "lists.sqlite", keep_runs=3)
    started = time.perf_counter()
    publish_model(store, model, RunInfo(run_id, "now"), based_on="full" if changes else None)
    store.close()
    return time.perf_counter() - started


def changed_corpus(
    articles: pd.DataFrame, fraction: float, seed: int = 3, new_share: float = 0.5
) -> pd.DataFrame:
    """``fraction`` of the corpus changed: ``new_share`` of it new articles
    (published in the last day, appended at the end), the rest edited bodies
    of articles anywhere in the archive."""
    rng = np.random.default_rng(seed)
    n_change = int(len(articles) * fraction)
    n_new = round(n_change * new_share)
    later = articles.copy()
    edited = rng.choice(len(later), n_change - n_new, replace=False)
    later.loc[edited, "body"] = later.loc[edited, "body"] + " update corrected figures"
    fresh = articles.iloc[rng.choice(len(articles), n_new, replace=False)]
    fresh = fresh.copy()
    fresh["article_id"] = [f"new-{i}" for i in range(len(fresh))]
    fresh["url"] = [f"https://example.org/new-{i}" for i in range(len(fresh))]
    fresh["title"] = "Fresh: " + fresh["title"]
    fresh["published_at"] = NOW - pd.to_timedelta(rng.uniform(0, 24, len(fresh)), unit="h")
    return pd.concat([later, fresh], ignore_index=True)


def _as_ids(model: Recommender, rows: np.ndarray) -> np.ndarray:
    """Row indices (-1 pads) as article ids ("" pads), comparable across models."""
    ids = model.articles_["article_id"].to_numpy().astype(str)
    return np.where(rows >= 0, ids[np.maximum(rows, 0)], "")


def changed_fractions(before: Recommender, after: Recommender) -> dict[str, float]:
    """Of the articles in both models, the fractions whose neighbours (ids)
    and whose published list (ids, in order) differ."""
    old_ids = before.articles_["article_id"].to_numpy().astype(str)
    new_rows = pd.Index(after.articles_["article_id"]).get_indexer(old_ids)
    old_rows = np.flatnonzero(new_rows >= 0)
    new_rows = new_rows[old_rows]
    neighbors = _as_ids(before, before.neighbors_.indices[old_rows]) != _as_ids(
        after, after.neighbors_.indices[new_rows]
    )
    # Article lists come first in lists_, in article row order.
    lists = _as_ids(before, before.lists_.items[old_rows]) != _as_ids(
        after, after.lists_.items[new_rows]
    )
    return {
        "neighbors": float(neighbors.any(axis=1).mean()),
        "lists": float(lists.any(axis=1).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument(
        "--new-share", type=float, default=0.5, help="share of the changes that are new articles"
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    articles = validate_articles(cached_corpus(args.n, args.cache, end=NOW.isoformat())).valid
    # A day of slack in the freshness window: room for the new articles' day.
    config, events = scale_inputs(articles, args.candidates, slack_days=1.0)
    print(f"machine: {machine_facts()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        model = Recommender(config).fit(articles, events, progress=LoggedStages())
        full_fit = time.perf_counter() - started
        full_publish = publish(model, folder, "full")
        full = full_fit + full_publish
        print(f"full run: {full:.1f}s ({model.timings_}, publish {full_publish:.1f}s)", flush=True)

        later = validate_articles(
            changed_corpus(articles, args.fraction, new_share=args.new_share)
        ).valid
        timings = {}
        results = {}
        for incremental in (True, False):
            started = time.perf_counter()
            updated = model.update(later, events, progress=LoggedStages(), incremental=incremental)
            seconds = time.perf_counter() - started
            # Both on top of the full run: the incremental one writes only the changes.
            open_store(folder / "lists.sqlite", keep_runs=3).rollback("full")
            seconds += publish(updated, folder, f"update-{incremental}", changes=incremental)
            timings[incremental] = seconds
            results[incremental] = updated
            print(
                f"update incremental={incremental}: {seconds:.1f}s {updated.update_stats_} "
                f"{updated.timings_}",
                flush=True,
            )
        same = np.array_equal(
            results[True].neighbors_.indices, results[False].neighbors_.indices
        ) and np.array_equal(results[True].neighbors_.scores, results[False].neighbors_.scores)
        same_lists = all(
            np.array_equal(
                getattr(results[True].lists_, name), getattr(results[False].lists_, name)
            )
            for name in ("source_ids", "items", "score", "relevance", "trend", "freshness")
        )
        print(f"incremental lists == full update's lists: {same_lists}", flush=True)
        changed = changed_fractions(model, results[True])
        print(
            "of the articles kept from the full run, "
            f"{changed['neighbors']:.1%} have other neighbours and {changed['lists']:.1%} "
            "another list after the update: an exact update rewrites at least those",
            flush=True,
        )
        speedup, over_update = full / timings[True], timings[False] / timings[True]
        print(
            f"incremental == full on the same vocabulary: {same}; speed-up over the full "
            f"run {speedup:.1f}x, over the full update {over_update:.1f}x"
        )

        # The same changes ten minutes later: freshness (and so every score) moved.
        started = time.perf_counter()
        later_now = NOW + pd.Timedelta(minutes=10)
        moved = model.update(later, events, now=later_now, progress=LoggedStages())
        seconds = time.perf_counter() - started
        open_store(folder / "lists.sqlite", keep_runs=3).rollback("full")
        seconds += publish(moved, folder, "update-later", changes=True)
        print(
            f"update 10 minutes later: {seconds:.1f}s (speed-up over the full run "
            f"{full / seconds:.1f}x) {moved.update_stats_} {moved.timings_}",
            flush=True,
        )

        # Only the full run's model is needed from here on: free the others.
        del results, updated, moved
        gc.collect()
        unseen = later.tail(args.requests)
        for label in ("run's candidates", "every article a candidate"):
            if label.startswith("every"):
                model.eligible_ = np.ones(len(model.articles_), dtype=bool)
                model.__dict__.pop("_cold_start_cache", None)
            started = time.perf_counter()
            model.prepare_cold_start()  # every site's candidates, as a web worker does at start
            print(f"prepare_cold_start ({label}): {time.perf_counter() - started:.2f}s")
            model.recommend_unseen(unseen.iloc[0].to_dict())
            latencies = []
            for row in unseen.itertuples(index=False):
                started = time.perf_counter()
                model.recommend_unseen(row._asdict())
                latencies.append((time.perf_counter() - started) * 1000)
            latencies.sort()
            n_candidates = len(cold_start_candidates(model, "news")[0])
            print(
                f"cold start ({label}, {n_candidates:,} for a 'news' page): median "
                f"{statistics.median(latencies):.1f} ms, p99 "
                f"{latencies[int(len(latencies) * 0.99) - 1]:.1f} ms",
                flush=True,
            )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")


if __name__ == "__main__":
    main()
