"""Japanese word analyzers against character 2-3-grams on livedoor, and a
network that mixes English and Japanese articles (issue 17).

    python -m pip install -e '.[ja]'
    python benchmarks/relatedness_ja.py [--livedoor ../shared/data/livedoor]
        [--huffpost ../shared/data/huffpost/news_category_v3_newest10k.jsonl]

Livedoor: same protocol as ``benchmarks/relatedness.py`` (the site as label,
top-10 neighbours): the shipped livedoor settings, then each word analyzer
that is installed (``ja_analyzer``), with and without boilerplate. One row
per variant.

Mixed: 300 HuffPost articles (75 of each of POLITICS, ENTERTAINMENT, SPORTS,
STYLE & BEAUTY) on two English sites and 300 livedoor ones (75 of each of
sports-watch, it-life-hack, movie-enter, dokujo-tsushin, the label; site
stamps 【...】 removed; then also the rest of the boilerplate, as in
``relatedness.py``) on two Japanese sites, each article on a site by a hash
of its id; the engine's default features without the category. Per
language: the share of the top-10 cross-site neighbours in the article's
category and the share in the article's language, for each ``ja_analyzer``
and, as peers, one analyzer for every article (what a single ``analyzer``
gave before). ``tests/test_features_mixed.py`` checks the same sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import relatedness as R

from recommender.datasets import read_livedoor
from recommender.datasets.mixed import mixed_language_sample
from recommender.evaluate.relatedness import neighbor_agreement
from recommender.features import ArticleVectorizer
from recommender.similarity import cross_site_neighbors
from recommender.tokenize_ja import available


def mixed_sample(huffpost: Path, livedoor: Path) -> pd.DataFrame:
    """The mixed sample (see the module docstring); ``label`` and ``lang``."""
    return mixed_language_sample(huffpost, livedoor)


def mixed_row(name: str, frame: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    X = ArticleVectorizer(**{**R.SHIPPED, **params}).fit_transform(frame)
    features_s = time.perf_counter() - started
    lang = frame["lang"].to_numpy()
    _, per = neighbor_agreement(X, frame["label"], frame["site"], k=10)
    neighbours = cross_site_neighbors(X, frame["site"].to_numpy(), 10, min_similarity=0.0)
    found = neighbours.indices >= 0
    own = (lang[np.maximum(neighbours.indices, 0)] == lang[:, None]) & found
    own_share = own.sum(axis=1) / np.maximum(found.sum(axis=1), 1)
    row: dict[str, Any] = {"method": name, "features_s": features_s}
    for language in ("en", "ja"):
        rows = lang == language
        row[f"share_{language}"] = float(per["share"][rows].mean())
        row[f"own_language_{language}"] = float(own_share[rows & found.any(axis=1)].mean())
    print(
        f"  {name:<62} category share en {row['share_en']:.3f} ja {row['share_ja']:.3f}  "
        f"own language en {row['own_language_en']:.3f} ja {row['own_language_ja']:.3f}  "
        f"({features_s:.1f} s features)",
        flush=True,
    )
    return row


def run_mixed(huffpost: Path, livedoor: Path, backends: list[str]) -> list[dict[str, Any]]:
    sample = mixed_sample(huffpost, livedoor)
    print(f"mixed: {len(sample)} articles, sites {sorted(set(sample['site']))}")
    japanese = sample["lang"] == "ja"
    cleaned = pd.concat([sample[~japanese], R.strip_boilerplate(sample[japanese])]).sort_index()
    rows = []
    for frame, suffix in ((sample, ""), (cleaned, ", no boilerplate")):
        print(f" Japanese {'site stamps' if not suffix else 'boilerplate'} removed:")
        for ja in ["char", *backends]:
            params = {"ja_analyzer": ja}
            rows.append(mixed_row(f"per language, ja_analyzer = {ja!r}{suffix}", frame, params))
        word = {"ja_analyzer": None}
        rows.append(mixed_row(f"one word analyzer for all (before){suffix}", frame, word))
        chars = {"ja_analyzer": None, "analyzer": "char_wb", "ngram_range": (2, 3)}
        chars["stop_words"] = None
        rows.append(mixed_row(f"one char_wb 2-3 analyzer for all{suffix}", frame, chars))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--livedoor", type=Path, default=R.LIVEDOOR)
    parser.add_argument("--huffpost", type=Path, default=R.HUFFPOST)
    args = parser.parse_args()
    if not args.livedoor.exists():
        sys.exit(f"{args.livedoor}: livedoor corpus not found (see ../shared/data/README.md)")
    articles = read_livedoor(args.livedoor).valid
    labels = sites = articles["site"].astype(str)
    variants: list[tuple[str, dict]] = [("char_wb 2-3", {})]
    backends = []
    for backend in ("fugashi", "sudachi"):
        if available(backend):
            backends.append(backend)
            variants.append((backend, {"ja_analyzer": backend}))
        else:
            print(f"{backend}: not installed (pip install -e '.[ja]'), skipped")
    print(f"livedoor: {len(articles)} articles")
    for frame, suffix in ((articles, ""), (R.strip_boilerplate(articles), ", no boilerplate")):
        for name, params in variants:
            vectorizer = ArticleVectorizer(**{**R.LIVEDOOR_BASE, **params})
            R.measure(
                name + suffix,
                lambda v=vectorizer, f=frame: v.fit_transform(f),
                labels,
                sites,
                False,
            )
    if args.huffpost.exists():
        run_mixed(args.huffpost, args.livedoor, backends)
    else:
        print(f"{args.huffpost}: HuffPost not found, the mixed network skipped")


if __name__ == "__main__":
    main()
