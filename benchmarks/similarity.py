"""Cross-site top-k similarity, side by side with the peers, on the same matrix.

For each size N the script builds the engine's feature matrix of a synthetic
corpus (``benchmarks/corpus.py``: 4 sites, HuffPost word statistics) and
finds every source's 20 most similar candidates from the *other* sites
(cosine), with:

- **engine**: ``recommender.similarity.cross_site_neighbors`` (kernel ``auto``),
- **floor**: the engine's kernel computing every cross-site score of the same
  blocks on 2 threads and reading each once, with no top-k selection: what any
  exact method must at least do here (its time over the engine's is the
  fraction of that limit the engine reaches),
- **engine-numba**, **engine-mkl**, **engine-scipy**: the same with the kernel
  forced (``recommender.kernels``: Numba's fused product and top-k, MKL's
  product, SciPy's product),
- **sparse_dot_topn**: ``sp_matmul_topn`` (C++ blocked sparse product with
  top-n), called per source site against the other sites' rows, 2 threads,
- **sklearn**: ``NearestNeighbors(metric="cosine", algorithm="brute")``
  fitted per source site on the other sites' rows, ``n_jobs=2``.

Each method runs in a fresh process (so its peak memory is its own), several
times; the table gives the median seconds, the ratio to the engine, and the
process's peak RSS (with its resident size before the call: matrix and
libraries loaded). Every method's lists are checked against
exact brute force on a sample of sources (equal up to rounding-level ties).
The work is counted too: multiply-adds of the cross-site product and the
entries a top-k selection must scan.

    python benchmarks/similarity.py --sizes 10000 100000 --repeats 3
    python benchmarks/similarity.py --sizes 1000000 --candidates 50000 \
        --methods engine sparse_dot_topn
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

K = 20
METHODS = (
    "engine",
    "engine-numba",
    "engine-mkl",
    "floor",
    "engine-scipy",
    "sparse_dot_topn",
    "sklearn",
)


def build_matrix(n: int, n_candidates: int | None, cache: Path) -> Path:
    """The engine's features for a corpus of ``n``; cached as .npz."""
    path = cache / f"similarity-{n}-{n_candidates}.npz"
    if path.exists():
        return path
    from corpus import make_corpus

    from recommender.features import ArticleVectorizer

    corpus_path = cache / f"corpus-{n}.parquet"
    corpus = pd.read_parquet(corpus_path) if corpus_path.exists() else make_corpus(n)
    X = ArticleVectorizer(max_df=0.5, min_df=2).fit_transform(corpus)
    order = np.argsort(corpus["published_at"].to_numpy())[::-1]
    candidates = np.zeros(n, dtype=bool)
    candidates[order[: n_candidates or n]] = True
    np.savez(
        path,
        data=X.data,
        indices=X.indices,
        indptr=X.indptr,
        shape=X.shape,
        sites=corpus["site"].to_numpy().astype(str),
        candidates=candidates,
    )
    return path


def load(path: Path) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    z = np.load(path)
    X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return X, z["sites"], z["candidates"]


def site_blocks(sites: np.ndarray, candidates: np.ndarray):
    """(source rows, candidate rows) per source site: the other sites' candidates."""
    for site in sorted(set(sites.tolist())):
        yield np.flatnonzero(sites == site), np.flatnonzero(candidates & (sites != site))


def run_method(
    method: str, X: sp.csr_matrix, sites: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of shape (n, K), row indices into X, -1 padded."""
    n = X.shape[0]
    if method.startswith("engine"):
        from recommender.similarity import cross_site_neighbors

        kernel = method.partition("-")[2] or "auto"
        found = cross_site_neighbors(
            X, sites, K, candidates=candidates, kernel=kernel, n_jobs=2, max_block_mb=256
        )
        return found.indices.astype(np.int64), found.scores
    if method == "floor":
        return product_floor(X, sites, candidates)
    indices = np.full((n, K), -1, dtype=np.int64)
    scores = np.zeros((n, K), dtype=np.float32)
    for rows, cols in site_blocks(sites, candidates):
        if method == "sparse_dot_topn":
            from sparse_dot_topn import sp_matmul_topn

            top = sp_matmul_topn(X[rows], X[cols].T.tocsr(), top_n=K, n_threads=2, sort=True)
            counts = np.diff(top.indptr)
            rank = np.arange(top.nnz) - np.repeat(top.indptr[:-1], counts)
            indices[rows[np.repeat(np.arange(len(rows)), counts)], rank] = cols[top.indices]
            scores[rows[np.repeat(np.arange(len(rows)), counts)], rank] = top.data
        else:
            from sklearn.neighbors import NearestNeighbors

            model = NearestNeighbors(n_neighbors=K, metric="cosine", algorithm="brute", n_jobs=2)
            model.fit(X[cols])
            distance, position = model.kneighbors(X[rows])
            similarity = 1 - distance
            keep = similarity > 0
            indices[rows] = np.where(keep, cols[position], -1)
            scores[rows] = np.where(keep, similarity, 0)
    return indices, scores


def product_floor(
    X: sp.csr_matrix, sites: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What any exact method must at least do, with the engine's kernel: every
    cross-site score computed (the same blocks, 2 threads) and read once (a
    max per block), with no top-k selection. Its time is this machine's
    floor for the engine's work; no lists come out."""
    from concurrent.futures import ThreadPoolExecutor

    from recommender.kernels import get_kernel

    kernel = get_kernel("auto")
    n = X.shape[0]
    with ThreadPoolExecutor(2) as pool:
        for rows, cols in site_blocks(sites, candidates):
            prepared = kernel.prepare(X[cols])
            block = max(1, int(128 * 2**20 // (max(1, len(cols)) * 4)))  # 128 MiB per thread

            def read(
                start: int, rows: np.ndarray = rows, prepared: object = prepared, block: int = block
            ) -> float:
                return float(kernel.scores(X[rows[start : start + block]], prepared).max(initial=0))

            list(pool.map(read, range(0, len(rows), block)))
    return np.full((n, K), -1, dtype=np.int64), np.zeros((n, K), dtype=np.float32)


def check_exact(
    X, sites, candidates, indices, scores, sample: int = 200, eps: float = 1e-5
) -> float:
    """Share of sampled sources whose list equals exact brute force (up to
    candidates tied within ``eps`` at the last place)."""
    rng = np.random.default_rng(0)
    rows = rng.choice(X.shape[0], min(sample, X.shape[0]), replace=False)
    S = (X[rows] @ X.T).toarray()
    agree = 0
    for i, row in enumerate(rows):
        allowed = candidates & (sites != sites[row])
        exact = np.where(allowed, S[i], -np.inf)
        order = np.argsort(-exact, kind="stable")[:K]
        order = order[exact[order] > 0]
        found = indices[row][indices[row] >= 0]
        if len(found) != len(order):
            continue
        kth = exact[order[-1]] if len(order) else 0
        differ = set(found.tolist()) ^ set(order.tolist())
        if all(abs(S[i, j] - kth) <= eps for j in differ):
            agree += 1
    return agree / len(rows)


def work(X: sp.csr_matrix, sites: np.ndarray, candidates: np.ndarray) -> tuple[float, float]:
    """(multiply-adds of the cross-site product, entries the top-k scans)."""
    macs = scanned = 0.0
    for rows, cols in site_blocks(sites, candidates):
        df_rows = np.bincount(X[rows].indices, minlength=X.shape[1]).astype(np.float64)
        df_cols = np.bincount(X[cols].indices, minlength=X.shape[1]).astype(np.float64)
        macs += float(df_rows @ df_cols)
        scanned += float(len(rows)) * len(cols)
    return macs, scanned


def peak_rss_gib() -> float:
    """This process's peak resident memory. On Linux from VmHWM, which
    belongs to the process's own memory map: ``ru_maxrss`` survives the
    exec of a forked child and would report the parent's size at the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # KiB -> GiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(method: str, path: Path) -> dict:
    X, sites, candidates = load(path)
    # Warm up: imports and library loading (MKL, OpenMP) are not the method's work.
    run_method(method, X[:300], sites[:300], candidates[:300])
    # Resident now (the matrix, the libraries), and the process's peak after
    # the method: the peak may predate the method (reading the matrix), so both.
    loaded = psutil.Process().memory_info().rss / 2**30
    started = time.perf_counter()
    indices, scores = run_method(method, X, sites, candidates)
    seconds = time.perf_counter() - started
    peak = peak_rss_gib()
    return {
        "seconds": seconds,
        "loaded_gib": loaded,
        "peak_gib": peak,
        "exact": (
            float("nan")
            if method == "floor"
            else check_exact(X, sites, candidates, indices, scores)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--candidates", type=int, help="newest N are candidates (default all)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path, help="append the markdown table here")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "MATRIX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return

    lines = []
    for n in args.sizes:
        path = build_matrix(n, args.candidates, args.cache)
        X, sites, candidates = load(path)
        macs, scanned = work(X, sites, candidates)
        results: dict[str, dict] = {}
        for method in args.methods:
            runs = []
            for _ in range(args.repeats if method != "sklearn" or n <= 20_000 else 1):
                done = subprocess.run(
                    [sys.executable, __file__, "--child", method, str(path)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            results[method] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "all_seconds": [round(r["seconds"], 2) for r in runs],
                "peak_gib": max(r["peak_gib"] for r in runs),
                "loaded_gib": min(r["loaded_gib"] for r in runs),
                "exact": min(r["exact"] for r in runs),
            }
            print(f"N={n:,} {method}: {results[method]}", flush=True)
        engine = results.get("engine", {}).get("seconds")
        lines.append(
            f"**N = {n:,} sources, {int(candidates.sum()):,} candidates** "
            f"({X.shape[1]:,} features, {X.nnz / X.shape[0]:.0f} non-zeros per row); "
            f"cross-site work: {macs:.3g} multiply-adds, {scanned:.3g} entries scanned."
        )
        lines += [
            "",
            "| method | median s (runs) | × engine | peak RSS (before the call) "
            "| lists equal to brute force |",
            "|---|---:|---:|---:|---:|",
        ]
        for method, r in results.items():
            ratio = f"{r['seconds'] / engine:.2f}" if engine else ""
            runs = ", ".join(map(str, r["all_seconds"]))
            lines.append(
                f"| {method} | {r['seconds']:.2f} ({runs}) | {ratio} | "
                f"{r['peak_gib']:.2f} GiB ({r['loaded_gib']:.2f}) | "
                + ("no lists |" if np.isnan(r["exact"]) else f"{r['exact']:.1%} |")
            )
        lines.append("")
    print("\n".join(lines))
    if args.out:
        with args.out.open("a") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
