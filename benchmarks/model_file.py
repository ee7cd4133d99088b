"""Saving and loading the fitted model (``store.model_path``), at scale.

Fits the engine on the bundled sample network and on a synthetic corpus of N
articles (``benchmarks/corpus.py``; candidates: the newest ``--candidates``),
then times ``Recommender.save`` and ``Recommender.load`` (median of
``--repeats``, each load in a collected heap) and reports the file's size.
The loaded model is checked to publish the same lists.

    python benchmarks/model_file.py --n 100000 --candidates 20000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import cached_corpus  # noqa: E402
from scale import NOW, machine_facts, scale_inputs  # noqa: E402

from recommender.config import load_config  # noqa: E402
from recommender.inputs import load_inputs  # noqa: E402
from recommender.model import Recommender  # noqa: E402
from recommender.schema import validate_articles  # noqa: E402


def measure(name: str, model: Recommender, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.rec"
        saves, loads = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            model.save(path)
            saves.append(time.perf_counter() - started)
            gc.collect()
            started = time.perf_counter()
            loaded = Recommender.load(path)
            loads.append(time.perf_counter() - started)
            same = next(loaded.list_payloads("r", "t")) == next(model.list_payloads("r", "t"))
            assert same, "the loaded model publishes other lists"
            del loaded
            gc.collect()
        size = path.stat().st_size
    print(
        f"{name:<26} save {statistics.median(saves):7.3f} s   "
        f"load {statistics.median(loads):7.3f} s (best {min(loads):.3f})   "
        f"file {size / 2**20:8.1f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic articles (0: none)")
    parser.add_argument("--candidates", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    print(machine_facts())

    config = load_config(HERE.parent / "data" / "sample.toml")
    articles, events, _ = load_inputs(config)
    sample = Recommender(config).fit(articles.valid, events.valid)
    measure(f"sample ({len(sample.articles_)} articles)", sample, max(args.repeats, 5))

    if args.n:
        corpus = validate_articles(cached_corpus(args.n, args.cache, end=NOW.isoformat())).valid
        config, events = scale_inputs(corpus, args.candidates)
        started = time.perf_counter()
        model = Recommender(config).fit(corpus, events)
        print(f"(fit on {args.n:,} articles: {time.perf_counter() - started:.1f} s)")
        measure(f"synthetic {args.n:,}/{args.candidates:,}", model, args.repeats)


if __name__ == "__main__":
    main()
