"""Near-duplicate title search with many identical titles: time and peak memory.

``recommender.similarity.title_links`` (the ``dedupe`` stage) on:

- **identical**: n copies of one title (the review's case: 21,754 articles
  with the same title made the old search list ~236 million pairs, 13.5 GB
  and 560 s);
- **distinct**: the n titles of the synthetic corpus (``benchmarks/corpus.py``),
  a control: the grouping must not slow down the usual case.

with:

- **new**: this worktree's code (identical title vectors grouped first, one
  comparison per group, pairs linear in n);
- **old**: the code before the grouping (commit ``d2a91bf``, read with
  ``git show``), which lists every similar pair: quadratic in the copies, so
  only run at small n on identical titles; the larger sizes are extrapolated
  from the largest measured one (time and memory ~ n², both dominated by the
  n²/2 pairs).

Each (code, corpus, n) runs in a fresh process, ``--repeats`` calls; the table
gives the median seconds of a call, the process's peak RSS and its growth
over the resident size before the first call (titles, libraries loaded), and
the number of stored pairs.

    python benchmarks/title_links.py
    python benchmarks/title_links.py --sizes 5000 20000 50000 --old-sizes 1000 2000 5000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OLD_COMMIT = "d2a91bf378f0549c25e77e79c5e94c3e9807ac55"
TITLE = "Breaking: markets rally as central bank cuts rates"


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _old_module() -> ModuleType:
    """``recommender.similarity`` as of ``OLD_COMMIT``."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:recommender/similarity.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "similarity_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("similarity_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["similarity_before"] = module
    spec.loader.exec_module(module)
    return module


def _titles(corpus: str, n: int) -> list[str]:
    if corpus == "identical":
        return [TITLE] * n
    sys.path.insert(0, str(HERE))
    from corpus import make_corpus

    return make_corpus(n)["title"].astype(str).tolist()


def child(code: str, corpus: str, n: int, repeats: int, kernel: str, n_jobs: int) -> dict:
    if code == "old":
        module = _old_module()
    else:
        from recommender import similarity as module
    titles = _titles(corpus, n)
    module.title_links(titles[:10], 0.7, kernel=kernel, n_jobs=n_jobs)  # warm up
    before = _rss_mib()
    seconds = []
    pairs = groups = 0
    for _ in range(repeats):
        started = time.perf_counter()
        links = module.title_links(titles, 0.7, kernel=kernel, n_jobs=n_jobs)
        seconds.append(time.perf_counter() - started)
        pairs = len(links.pairs)
        del links
    links = module.title_links(titles, 0.7, kernel=kernel, n_jobs=n_jobs)
    groups = len(set(links.groups(n).tolist()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "code": code,
        "corpus": corpus,
        "n": n,
        "seconds": statistics.median(seconds),
        "peak_mib": peak,
        "growth_mib": peak - before,
        "pairs": pairs,
        "groups": groups,
        "measured": True,
    }


def run(code: str, corpus: str, n: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", code, corpus, str(n)]
    command += [
        "--repeats",
        str(args.repeats),
        "--kernel",
        args.kernel,
        "--n-jobs",
        str(args.n_jobs),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def extrapolated(measured: dict, n: int) -> dict:
    """The old code at ``n`` from its run at a smaller size: pairs exactly
    n(n-1)/2; seconds and memory growth scaled by (n / n0)²."""
    scale = (n / measured["n"]) ** 2
    return {
        **measured,
        "n": n,
        "seconds": measured["seconds"] * scale,
        "growth_mib": measured["growth_mib"] * scale,
        "peak_mib": float("nan"),
        "pairs": n * (n - 1) // 2,
        "measured": False,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| corpus | n | code | seconds | peak RSS | RSS growth | stored pairs | groups |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = "" if r["measured"] else " (est.)"
        peak = "—" if r["peak_mib"] != r["peak_mib"] else f"{r['peak_mib']:,.0f} MiB"
        lines.append(
            f"| {r['corpus']} | {r['n']:,} | {r['code']}{mark} | {r['seconds']:.3g} s | {peak} "
            f"| {r['growth_mib']:,.0f} MiB | {r['pairs']:,} | {r['groups']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    parser.add_argument(
        "--old-sizes",
        type=int,
        nargs="+",
        default=[1_000, 2_000, 5_000],
        help="sizes of identical titles the old code runs at (the rest are extrapolated)",
    )
    parser.add_argument(
        "--distinct",
        type=int,
        nargs="*",
        default=[50_000],
        help="sizes of the distinct-titles control (both codes)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kernel", default="auto")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", nargs=3, metavar=("CODE", "CORPUS", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        code, corpus, n = args.child
        print(json.dumps(child(code, corpus, int(n), args.repeats, args.kernel, args.n_jobs)))
        return
    rows = []
    old = [run("old", "identical", n, args) for n in sorted(args.old_sizes)]
    rows += old
    for n in sorted(args.sizes):
        rows.append(run("new", "identical", n, args))
        if n not in args.old_sizes and old:
            rows.append(extrapolated(old[-1], n))
        print(f"identical {n:,}: {rows[-1]}", file=sys.stderr)
    for n in sorted(set(args.old_sizes) - set(args.sizes)):
        rows.append(run("new", "identical", n, args))
    for n in args.distinct:
        rows += [run("new", "distinct", n, args), run("old", "distinct", n, args)]
    rows.sort(key=lambda r: (r["corpus"] != "identical", r["n"], r["code"], not r["measured"]))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
