"""The trending replay, the blend and tuning on a MIND-format log.

With ``--mind-dir`` it reads a user's MIND folder(s); without, it writes a
simulated log in the MIND format (:mod:`recommender.datasets.synthetic`,
7 days, seed 7) to a temporary folder and uses that: no real click log can
be shipped, so the figures it prints are figures about the simulation.

Usage (from the repository root)::

    python benchmarks/replay.py                               # simulated log
    python benchmarks/replay.py --mind-dir ~/data/MINDsmall_train --mind-dir ~/data/MINDsmall_dev

Writes ``benchmarks/results/replay.json`` (every table), the report's
metric picture to ``docs/evaluation-replay.png`` (``--picture``) and prints
Markdown tables. Times are wall-clock seconds on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.datasets import read_mind  # noqa: E402
from recommender.datasets.synthetic import SyntheticMindParams, write_synthetic_mind  # noqa: E402
from recommender.evaluate.evaluation import evaluate_mind  # noqa: E402
from recommender.evaluate.report import (  # noqa: E402
    metric_frame,
    plot_metric_bars,
    write_report,
)
from recommender.evaluate.tuning import tune  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "replay.json"
PICTURE = REPO / "docs" / "evaluation-replay.png"


def markdown(frame) -> str:
    frame = frame.reset_index()
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mind-dir", action="append", type=Path, default=[])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--picture", type=Path, default=PICTURE)
    parser.add_argument("--report", type=Path, default=None, help="also keep the HTML report")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    try:
        if args.mind_dir:
            folders = args.mind_dir
            source = "MIND: " + ", ".join(str(f) for f in folders)
            picture_title = "Trending replay (MIND, last day, 95% intervals)"
            params_text = ""
        else:
            params = SyntheticMindParams(days=7)
            simulated = write_synthetic_mind(work / "synthetic-mind", params)
            folders = [simulated.folder]
            source = f"simulated MIND-format log ({params.days} days, seed {params.seed})"
            picture_title = "Trending replay (simulated MIND-format log, last day, 95% intervals)"
            params_text = repr(params)
        started = time.perf_counter()
        data = read_mind(folders)
        read_s = time.perf_counter() - started
        print(f"{source}\nread in {read_s:.1f} s: {len(data.behaviors)} impressions", flush=True)
        evaluation = evaluate_mind(data, n_boot=args.bootstrap)
        report = write_report(evaluation, args.report or work / "report.html", title=source)
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        plot_metric_bars(evaluation.replay, args.picture, picture_title)
        print(f"report: {report}")
        print(markdown(metric_frame(evaluation.replay)))
        print(markdown(metric_frame(evaluation.blend)))
        print(evaluation.top_ctr.to_string())
        print(evaluation.lists.round(3).to_string())

        started = time.perf_counter()
        tuned = tune(data)
        tune_s = time.perf_counter() - started
        print(tuned.grid.head(10).round(4).to_string())
        print(tuned.test.round(4).to_string())
        results = {
            "source": source,
            "parameters": params_text,
            "read_seconds": read_s,
            "facts": evaluation.facts,
            "replay": evaluation.replay.to_dict(orient="records"),
            "top_ctr": evaluation.top_ctr.to_dict(orient="records"),
            "blend": evaluation.blend.to_dict(orient="records"),
            "lists": evaluation.lists.reset_index(names="lists").to_dict(orient="records"),
            "tuning": {
                "seconds": tune_s,
                "validation_day": str(tuned.validation_start),
                "test_day": str(tuned.test_start),
                "grid": tuned.grid.to_dict(orient="records"),
                "test": tuned.test.to_dict(orient="records"),
            },
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.out} and {args.picture}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
