"""A synthetic corpus with realistic text statistics, for scale benchmarks.

When the real HuffPost data is present (``../shared/data/huffpost``), words
are drawn from its vocabulary: each synthetic article picks a real article
as its *topic seed* and mixes words from that article, from the seed's
category (its word distribution) and from the whole corpus, so that the
synthetic articles have HuffPost's Zipfian word frequencies *and* topical
neighbours. Without it, a Zipfian vocabulary of made-up words with the same
mixture of topic and background is used.

Articles are spread over 4 sites and two years of publication dates; each
has a title of 6-14 words and a body of 40-250 words. The same seed gives
the same corpus.

    python benchmarks/corpus.py --n 100000 --out /tmp/corpus-100k.parquet
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

HUFFPOST = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "huffpost"
    / "news_category_v3_newest10k.jsonl"
)
SITES = ["news", "lifestyle", "blog", "travel"]
_WORD = re.compile(r"[a-z][a-z']+")


def _huffpost_model(path: Path) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """(vocabulary, token ids per real article, category per article, global frequencies)."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    docs = [_WORD.findall(f"{r['headline']} {r['short_description']}".lower()) for r in records]
    vocab, inverse = np.unique(
        np.concatenate([np.array(d, dtype=object) for d in docs if d]), return_inverse=True
    )
    ids, start = [], 0
    for d in docs:
        ids.append(inverse[start : start + len(d)].astype(np.int32))
        start += len(d)
    categories = pd.factorize(pd.Series([r["category"] for r in records]))[0]
    freq = np.bincount(inverse, minlength=len(vocab)).astype(np.float64)
    return vocab.astype(str), ids, categories, freq / freq.sum()


def _zipf_model(
    rng: np.random.Generator, n_words: int = 60_000, n_seeds: int = 10_000, n_topics: int = 30
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    vocab = np.array([f"w{i:05d}" for i in range(n_words)])
    freq = 1.0 / np.arange(1, n_words + 1) ** 1.07
    freq /= freq.sum()
    categories = rng.integers(0, n_topics, n_seeds)
    # Each topic favours its own slice of the (non-stop-word) vocabulary.
    topic_words = [rng.choice(np.arange(200, n_words), 400, replace=False) for _ in range(n_topics)]
    ids = [
        np.concatenate([rng.choice(topic_words[c], 12), rng.choice(n_words, 8, p=freq)]).astype(
            np.int32
        )
        for c in categories
    ]
    return vocab, ids, categories, freq


def make_corpus(
    n: int, *, seed: int = 0, end: str = "2024-01-01T00:00:00Z", source: Path | None = HUFFPOST
) -> pd.DataFrame:
    """``n`` articles as an Article frame (article_id, site, url, title, body,
    category, published_at); the newest are published last."""
    rng = np.random.default_rng(seed)
    if source is not None and source.exists():
        vocab, seeds, categories, freq = _huffpost_model(source)
    else:
        vocab, seeds, categories, freq = _zipf_model(rng)
    n_categories = int(categories.max()) + 1
    by_category = [
        np.concatenate([seeds[i] for i in np.flatnonzero(categories == c)])
        for c in range(n_categories)
    ]

    seed_of = rng.integers(0, len(seeds), n)
    lengths = rng.integers(46, 265, n)  # title (6-14) + body (40-250)
    title_len = rng.integers(6, 15, n)
    pools = {}
    for k, groups in ((0, seeds), (1, by_category)):
        sizes = np.array([len(g) for g in groups])
        pools[k] = (np.concatenate(groups), sizes, np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    words_of = vocab.astype(object)
    titles: list[str] = []
    bodies: list[str] = []
    # In chunks of documents, so that memory stays bounded at a million articles.
    for first in range(0, n, 50_000):
        docs = np.arange(first, min(first + 50_000, n))
        chunk_lengths = lengths[docs]
        owner = np.repeat(docs, chunk_lengths)
        # Word sources per token: 30% the seed article, 40% its category, 30% background.
        kind = rng.choice(3, len(owner), p=[0.3, 0.4, 0.3])
        tokens = rng.choice(len(vocab), len(owner), p=freq)  # background, and the fallback
        for k in (0, 1):
            flat, sizes, offsets = pools[k]
            where = np.flatnonzero(kind == k)
            pool = seed_of[owner[where]] if k == 0 else categories[seed_of[owner[where]]]
            size = sizes[pool]
            picks = (rng.random(len(where)) * np.maximum(size, 1)).astype(np.int64)
            chosen = flat[np.minimum(offsets[pool] + picks, len(flat) - 1)]
            tokens[where] = np.where(size > 0, chosen, tokens[where])
        words = words_of[tokens]
        bounds = np.concatenate([[0], np.cumsum(chunk_lengths)])
        for i, doc_id in enumerate(docs):
            doc = words[bounds[i] : bounds[i + 1]]
            titles.append(" ".join(doc[: title_len[doc_id]]).capitalize())
            bodies.append(" ".join(doc[title_len[doc_id] :]))
    end_ts = pd.Timestamp(end)
    ages = np.sort(rng.uniform(0, 730, n))[::-1]  # days before end, oldest first
    return pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "site": np.array(SITES)[rng.integers(0, len(SITES), n)],
            "url": [f"https://example.org/{i}" for i in range(n)],
            "title": titles,
            "body": bodies,
            "category": [f"c{categories[s]}" for s in seed_of],
            "published_at": end_ts - pd.to_timedelta(ages, unit="D"),
        }
    )


def cached_corpus(n: int, cache: Path, *, end: str) -> pd.DataFrame:
    """:func:`make_corpus` of ``n`` articles ending at ``end``, kept in
    ``cache/corpus-{n}.parquet`` so that every benchmark times the same corpus
    (and generates it once: about a minute at a million articles)."""
    path = cache / f"corpus-{n}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    corpus = make_corpus(n, end=end)
    corpus.to_parquet(path, index=False)
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    frame = make_corpus(args.n, seed=args.seed)
    frame.to_parquet(args.out, index=False)
    print(f"{len(frame)} articles in {time.perf_counter() - started:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
