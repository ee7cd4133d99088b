"""Second-order relatedness on the TF-IDF path (issue 17, point 2): measure first.

Every variant starts from the engine's own feature rows
(:func:`recommender.features.vectorizer_from_config` with the shipped
:class:`~recommender.config.FeaturesConfig`, category removed from the
features) and finds the final neighbours with the engine's exact search
(:func:`recommender.similarity.cross_site_neighbors`). The share of top-10
neighbours with the article's label and the kNN accuracy are those of
:func:`recommender.evaluate.relatedness.neighbor_agreement` (same protocol as
``benchmarks/relatedness.py``: HuffPost with 4 pseudo-sites, cross-site
neighbours, the category as label; livedoor with boilerplate removed, any
other article, the site as label), so the numbers compare with RESULTS.md.

Variants (``N_k(i)``: row ``i``'s top-``k`` neighbours by a first search on
the shipped rows; ``x_j``: L2-normalised rows; every result renormalised):

- ``smooth``: ``x_i <- x_i + beta * mean_{j in N_k(i)} x_j`` (``weighted``:
  the mean weighted by the cosines); ``scope`` says where the first search
  looks: ``cross`` the engine's own lists (other sites), ``any`` every
  other article; ``iterations = 2`` smooths the smoothed rows again with
  their own neighbours (a third search).
  ``prune``: each smoothed row cut to its ``prune`` x (shipped row length)
  largest entries (:func:`recommender.second_order.prune_rows`).
- ``lsa``: ``[x, sqrt(w) * z]`` with ``z`` the L2-normalised TruncatedSVD
  (``random_state = 0``) projection: the cosine becomes
  ``cos_tfidf + w * cos_lsa`` up to a constant; optionally then smoothed
  (with ``prune`` 3).
- ``rocchio``: query expansion, the smoothed row used as the query only,
  the candidates' rows unchanged (asymmetric: i's list no longer bounds j's).

Time: wall-clock seconds of features + every search + the smoothing or
projection, as a ratio to the shipped features + similarity (on HuffPost
the median of 3 runs) in the same run. The kernels are compiled before any timing.

Usage (from the repository root)::

    python benchmarks/second_order.py                 # HuffPost, full grid
    python benchmarks/second_order.py --only livedoor # the short list only
    python benchmarks/second_order.py --data /path/to/shared/data  # elsewhere
    python benchmarks/second_order.py --scale 100000  # cost only, synthetic corpus

Writes ``benchmarks/results/second_order.json`` (other corpora's entries
kept) and prints a Markdown table per corpus.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from relatedness import strip_boilerplate  # noqa: E402
from scale import machine_facts  # noqa: E402

from recommender.config import FeaturesConfig  # noqa: E402
from recommender.datasets import read_huffpost, read_livedoor  # noqa: E402
from recommender.evaluate.relatedness import knn_vote, neighbor_agreement  # noqa: E402
from recommender.features import vectorizer_from_config  # noqa: E402
from recommender.second_order import prune_rows, smooth_rows  # noqa: E402
from recommender.similarity import Neighbors, cross_site_neighbors  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "second_order.json"
DATA = REPO.parent / "shared" / "data"
HUFFPOST = Path("huffpost") / "news_category_v3_newest10k.jsonl"
LIVEDOOR = Path("livedoor")
K = 10

# The shipped settings, category removed (the label must not be a feature).
HUFFPOST_FEATURES = FeaturesConfig(category_weight=0.0)
TITLE_15_FEATURES = FeaturesConfig(category_weight=0.0, title_weight=1.5)
# livedoor as benchmarks/relatedness.py reads it (LIVEDOOR_BASE).
LIVEDOOR_FEATURES = FeaturesConfig(
    category_weight=0.0, analyzer="char_wb", ngram_range=(2, 3), min_df=2, stop_words=None
)


class Corpus:
    """One corpus: its feature rows, labels, sites and search rule."""

    def __init__(self, frame: pd.DataFrame, labels: pd.Series, cross_site: bool, cfg: Any):
        self.frame = frame
        self.codes, self.uniques = pd.factorize(labels.astype(str), sort=True)
        self.codes = self.codes.astype(np.int64)
        self.labels = labels.astype(str)
        self.sites = np.asarray(frame["site"].astype(str), dtype=object)
        self.cross_site = cross_site
        self.cfg = cfg
        every = sorted(set(self.sites.tolist()))
        self.any_sites = {s: every for s in every}

    def features(self) -> sp.csr_matrix:
        vectorizer = vectorizer_from_config(self.cfg, category_column="category")
        return sp.csr_matrix(vectorizer.fit_transform(self.frame), dtype=np.float32)

    def search(self, X: sp.csr_matrix, k: int, scope: str = "final") -> Neighbors:
        """``final``: the metric's rule; ``cross``: other sites; ``any``: all others."""
        cross = self.cross_site if scope == "final" else scope == "cross"
        return cross_site_neighbors(
            X, self.sites, k, allowed=None if cross else self.any_sites, min_similarity=0.0
        )

    def search_queries(self, Q: sp.csr_matrix, X: sp.csr_matrix, k: int) -> Neighbors:
        """Rows of ``Q`` against the candidates ``X`` (same row order), by the
        metric's rule: one stacked matrix, queries on their own "sites"."""
        n = X.shape[0]
        stacked = sp.vstack([Q, X], format="csr")
        qsites = np.array(["?" + s for s in self.sites], dtype=object)
        every = sorted(set(self.sites.tolist()))
        allowed = {
            "?" + s: [t for t in every if t != s] if self.cross_site else every for s in every
        }
        candidates = np.r_[np.zeros(n, bool), np.ones(n, bool)]
        extra = 0 if self.cross_site else 1  # the article's own candidate copy
        found = cross_site_neighbors(
            stacked,
            np.r_[qsites, self.sites],
            k + extra,
            allowed=allowed,
            candidates=candidates,
            rows=np.arange(n),
            min_similarity=0.0,
        )
        idx = np.where(found.indices >= 0, found.indices - n, -1)
        scores = found.scores
        if extra:
            keep = idx != np.arange(n)[:, None]
            # Drop the row itself, keep the order (stable), pad with -1.
            order = np.argsort(~keep, axis=1, kind="stable")
            idx = np.take_along_axis(np.where(keep, idx, -1), order, axis=1)[:, :k]
            scores = np.take_along_axis(np.where(keep, scores, 0), order, axis=1)[:, :k]
        return Neighbors(idx.astype(np.int32), scores.astype(np.float32))

    def agreement(self, nb: Neighbors) -> dict[str, float]:
        """neighbor_agreement's summary, from neighbours already found."""
        idx = nb.indices.astype(np.int64)
        found = idx >= 0
        codes = self.codes
        nb_codes = np.where(found, codes[np.maximum(idx, 0)], -1)
        n_found = found.sum(axis=1)
        same = ((nb_codes == codes[:, None]) & found).sum(axis=1)
        share = np.where(n_found > 0, same / np.maximum(n_found, 1), 0.0)
        predicted = knn_vote(nb_codes, nb.scores, len(self.uniques))
        macro = pd.Series(share).groupby(codes).mean().mean()
        return {
            "share": float(share.mean()),
            "share_macro": float(macro),
            "knn_accuracy": float((predicted == codes).mean()),
        }


def lsa_blend(X: sp.csr_matrix, n_components: int, weight: float) -> sp.csr_matrix:
    Z = TruncatedSVD(n_components=n_components, random_state=0).fit_transform(X)
    Z = normalize(Z) * np.sqrt(weight)
    return sp.csr_matrix(
        normalize(sp.hstack([X, sp.csr_matrix(Z)], format="csr")), dtype=np.float32
    )


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


class Bench:
    def __init__(self, corpus: Corpus, repeats: int, check: bool = True):
        self.c = corpus
        self.rows: list[dict[str, Any]] = []
        feats = [timed(corpus.features) for _ in range(repeats)]
        self.X = feats[0][0]
        self.features_s = statistics.median(s for _, s in feats)
        searches = [timed(lambda: corpus.search(self.X, K)) for _ in range(repeats)]
        base_nb = searches[0][0]
        self.search_s = statistics.median(s for _, s in searches)
        self.base_s = self.features_s + self.search_s
        if check:
            self.check(base_nb)
        self.first: dict[tuple[str, int], tuple[Neighbors, float]] = {}
        self.record("shipped", {}, base_nb, 0.0, self.X, passes=1, final_s=self.search_s)

    def check(self, base_nb: Neighbors) -> None:
        """The metric from found neighbours is neighbor_agreement's, exactly."""
        corpus = self.c
        summary, _ = neighbor_agreement(
            self.X, corpus.labels, corpus.sites, k=K, cross_site=corpus.cross_site
        )
        mine = corpus.agreement(base_nb)
        assert mine["share"] == summary.share and mine["knn_accuracy"] == summary.knn_accuracy

    def first_pass(self, scope: str, k: int) -> tuple[Neighbors, float]:
        """The first search (on the shipped rows), computed once per (scope, k)."""
        key = (scope, k)
        if key not in self.first:
            self.first[key] = timed(lambda: self.c.search(self.X, k, scope))
        return self.first[key]

    def record(
        self,
        method: str,
        params: dict[str, Any],
        nb: Neighbors,
        extra_s: float,
        final_X: sp.csr_matrix,
        passes: int,
        final_s: float,
    ) -> None:
        total = self.features_s + extra_s + final_s
        row = {
            "method": method,
            **params,
            **self.c.agreement(nb),
            "searches": passes,
            "nnz_ratio": final_X.nnz / self.X.nnz,
            "time_s": total,
            "ratio": total / self.base_s,
        }
        self.rows.append(row)
        print(
            f"  {method:<10} {json.dumps(params):<70} share {row['share']:.3f}  "
            f"kNN {row['knn_accuracy']:.3f}  nnz x{row['nnz_ratio']:.1f}  "
            f"{total:.1f} s = {row['ratio']:.2f}x",
            flush=True,
        )

    def smooth(
        self,
        beta: float,
        k: int,
        weighted: bool,
        scope: str,
        iterations: int = 1,
        prune: float | None = None,
    ) -> None:
        nb0, first_s = self.first_pass(scope, k)
        Xs, smooth_s = timed(lambda: smooth_rows(self.X, nb0, beta, weighted))
        if prune is not None:
            Xs, prune_s = timed(partial(prune_rows, Xs, self.X, prune))
            smooth_s += prune_s
        extra = first_s + smooth_s
        for _ in range(iterations - 1):
            nb_i, s = timed(partial(self.c.search, Xs, k, scope))
            Xs, t = timed(partial(smooth_rows, Xs, nb_i, beta, weighted))
            extra += s + t
        nb, final_s = timed(lambda: self.c.search(Xs, K))
        params = {"beta": beta, "k_smooth": k, "weighted": weighted, "scope": scope}
        if iterations > 1:
            params["iterations"] = iterations
        if prune is not None:
            params["prune"] = prune
        self.record("smooth", params, nb, extra, Xs, 1 + iterations, final_s)

    def lsa(
        self, n_components: int, weight: float, smooth: tuple[float, int, bool] | None = None
    ) -> None:
        H, extra = timed(lambda: lsa_blend(self.X, n_components, weight))
        params: dict[str, Any] = {"n_components": n_components, "weight": weight}
        passes = 1
        if smooth is not None:
            beta, k, weighted = smooth
            scope = "cross" if self.c.cross_site else "any"
            nb0, s = timed(lambda: self.c.search(H, k, scope))
            H, t = timed(lambda: prune_rows(smooth_rows(H, nb0, beta, weighted), H, 3.0))
            extra += s + t
            passes += 1
            params.update(beta=beta, k_smooth=k, weighted=weighted, scope=scope, prune=3.0)
        nb, final_s = timed(lambda: self.c.search(H, K))
        self.record(
            "lsa" if smooth is None else "lsa+smooth", params, nb, extra, H, passes, final_s
        )

    def rocchio(self, beta: float, m: int, weighted: bool, scope: str) -> None:
        nb0, first_s = self.first_pass(scope, m)
        Q, smooth_s = timed(lambda: smooth_rows(self.X, nb0, beta, weighted))
        nb, final_s = timed(lambda: self.c.search_queries(Q, self.X, K))
        params = {"beta": beta, "m": m, "weighted": weighted, "scope": scope}
        self.record("rocchio", params, nb, first_s + smooth_s, Q, 2, final_s)


def warm_up() -> None:
    """Compile the kernels outside any timing."""
    rng = np.random.default_rng(0)
    X = sp.random(200, 50, density=0.1, format="csr", dtype=np.float32, random_state=rng)
    X = sp.csr_matrix(normalize(X), dtype=np.float32)
    cross_site_neighbors(X, np.array(["a", "b"] * 100, dtype=object), 5)


def huffpost_grid(b: Bench) -> None:
    for weighted in (False, True):
        for k in (5, 10, 20):
            for beta in (0.5, 1.0, 2.0, 4.0):
                b.smooth(beta, k, weighted, "cross")
    for weighted in (False, True):
        for beta in (1.0, 2.0, 4.0):
            b.smooth(beta, 10, weighted, "any")
    for beta in (1.0, 2.0):
        b.smooth(beta, 10, True, "cross", iterations=2)
    # Pruned back to ~the shipped row length: the second search costs the first.
    for prune in (1.0, 2.0, 3.0, 4.0):
        b.smooth(4.0, 10, True, "any", prune=prune)
    for beta in (2.0, 8.0):
        b.smooth(beta, 10, True, "any", prune=3.0)
    b.smooth(4.0, 10, True, "cross", prune=3.0)
    b.smooth(4.0, 20, True, "any", prune=3.0)
    for n_components in (100, 300):
        for weight in (0.5, 1.0):
            b.lsa(n_components, weight)
    for n_components in (100, 300):
        b.lsa(n_components, 0.5, smooth=(4.0, 10, True))
    for weighted in (False, True):
        for m in (5, 10, 20):
            for beta in (1.0, 2.0, 4.0):
                b.rocchio(beta, m, weighted, "cross")


def livedoor_grid(b: Bench) -> None:
    # A search here costs ~100x HuffPost's: the short list of HuffPost's best.
    b.smooth(4.0, 10, True, "any")
    for prune in (2.0, 3.0):
        b.smooth(4.0, 10, True, "any", prune=prune)
    b.rocchio(2.0, 5, True, "any")
    b.lsa(100, 0.5)
    b.lsa(300, 0.5)
    b.lsa(100, 0.5, smooth=(4.0, 10, True))


def markdown(rows: list[dict[str, Any]]) -> str:
    keys = (
        "beta",
        "k_smooth",
        "m",
        "weighted",
        "scope",
        "iterations",
        "prune",
        "n_components",
        "weight",
    )
    lines = [
        "| method | parameters | share | share macro | kNN | searches | nnz × "
        "| time (s) | × shipped |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        params = ", ".join(f"{key} {r[key]}" for key in keys if key in r)
        lines.append(
            f"| {r['method']} | {params or '–'} | {r['share']:.3f} | {r['share_macro']:.3f} "
            f"| {r['knn_accuracy']:.3f} | {r['searches']} | {r['nnz_ratio']:.1f} "
            f"| {r['time_s']:.2f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


def run(name: str, path: Path) -> dict[str, Any]:
    if name == "huffpost":
        a = read_huffpost(path, n_sites=4).valid.reset_index(drop=True)
        corpus = Corpus(a, a["category"], True, HUFFPOST_FEATURES)
        grid, repeats = huffpost_grid, 3
        data = f"HuffPost News Category v3, newest 10,000 ({len(a)} after duplicates), 4 sites"
    else:
        a = strip_boilerplate(read_livedoor(path).valid.reset_index(drop=True))
        corpus = Corpus(a, a["site"], False, LIVEDOOR_FEATURES)
        grid, repeats = livedoor_grid, 1
        data = "livedoor news corpus, 9 sites, boilerplate removed; the site is the label"
    print(f"{name}: {len(a)} articles")
    bench = Bench(corpus, repeats)
    print(f"  shipped: features {bench.features_s:.2f} s + similarity {bench.search_s:.2f} s")
    grid(bench)
    rows = bench.rows
    if name == "huffpost":
        # Point 1's candidate default (title_weight 1.5) with the same option:
        # ratios against its own features + similarity.
        print("  title_weight 1.5:")
        tw = Bench(Corpus(a, a["category"], True, TITLE_15_FEATURES), repeats)
        tw.smooth(4.0, 10, True, "any", prune=3.0)
        tw.rocchio(2.0, 5, True, "any")
        rows += [{**row, "method": "title x1.5, " + row["method"]} for row in tw.rows]
    return {
        "recorded": time.strftime("%Y-%m-%d"),
        "data": data,
        "n_articles": len(a),
        "shipped_features_s": bench.features_s,
        "shipped_similarity_s": bench.search_s,
        "rows": rows,
    }


def run_scale(n: int, cache: Path) -> dict[str, Any]:
    """Cost only, on the synthetic corpus of benchmarks/scale.py (4 sites,
    cross-site lists, category removed): shipped against the smoothing."""
    from corpus import cached_corpus
    from scale import NOW

    a = cached_corpus(n, cache, end=NOW.isoformat()).reset_index(drop=True)
    print(f"synthetic {n}: {len(a)} articles")
    bench = Bench(Corpus(a, a["category"], True, HUFFPOST_FEATURES), 1, check=False)
    print(f"  shipped: features {bench.features_s:.2f} s + similarity {bench.search_s:.2f} s")
    bench.smooth(4.0, 10, True, "cross", prune=3.0)
    bench.smooth(4.0, 10, True, "any", prune=3.0)
    bench.smooth(4.0, 10, True, "any", prune=1.0)
    return {
        "recorded": time.strftime("%Y-%m-%d"),
        "data": f"synthetic corpus (benchmarks/corpus.py), {n} articles, 4 sites; cost only",
        "n_articles": len(a),
        "shipped_features_s": bench.features_s,
        "shipped_similarity_s": bench.search_s,
        "rows": bench.rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["huffpost", "livedoor"], default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the real data sets")
    parser.add_argument(
        "--scale", type=int, default=None, help="only the cost at this many synthetic articles"
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine_facts()
    warm_up()
    if args.scale:
        results[f"synthetic_{args.scale}"] = run_scale(args.scale, args.cache)
        print(markdown(results[f"synthetic_{args.scale}"]["rows"]))
        args.only = "none"
    for name, relative in (("huffpost", HUFFPOST), ("livedoor", LIVEDOOR)):
        path = args.data / relative
        if args.only not in (None, name):
            continue
        if not path.exists():
            print(f"skipped {name}: {path} not found (the real data sets are not shipped)")
            continue
        results[name] = run(name, path)
        print(markdown(results[name]["rows"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
