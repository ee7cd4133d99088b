"""Self-tuned trending against the shipped setting and the best simple baseline.

On each simulated log (the MIND-like one of :mod:`recommender.datasets.synthetic`
and the generators of :mod:`recommender.simulate_logs`, 5 days each), the
tuning (:func:`recommender.autotune.autotune`) runs at the start of the last
day with the day before as its holdout; its choice is then judged on the
**last day**, which it never saw, by the trending replay (a refresh every
60 minutes, each seeing only earlier events). Against it:

- the shipped setting (``TrendingConfig()``: half-life 24 h, freshness on,
  prior 100 impressions);
- the best simple baseline: the baseline the tuning measured best on its
  holdout, or the all-time smoothed CTR with the fitted prior, whichever is
  better on the last day (the choice on the test day favours the baseline);
- the fallback setting (:func:`recommender.autotune.fallback_config`) against
  the all-time smoothed CTR, to check the fallback does not lose to it.

Differences are means over the last day's impressions with a click of the
per-impression AUC difference, with a paired 95% bootstrap interval (1,000
resamples). Seconds are wall-clock on a shared 2-core machine.

Usage (from the repository root)::

    python benchmarks/autotune.py

Prints Markdown tables and writes ``benchmarks/results/autotune.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.autotune import autotune, fallback_config  # noqa: E402
from recommender.config import TrendingConfig  # noqa: E402
from recommender.datasets import read_mind  # noqa: E402
from recommender.datasets.mind import MindData  # noqa: E402
from recommender.datasets.synthetic import SyntheticMindParams, write_synthetic_mind  # noqa: E402
from recommender.evaluate.metrics import bootstrap_interval, impression_metrics  # noqa: E402
from recommender.evaluate.replay import replay  # noqa: E402
from recommender.simulate_logs import (  # noqa: E402
    LogShape,
    bursty_log,
    position_bias_log,
    steady_appeal_log,
)

OUT = REPO / "benchmarks" / "results" / "autotune.json"
DAYS = 5
#: Half-lives (hours) of the freshness-off settings measured as fallbacks.
FALLBACK_CANDIDATES = (24.0, 48.0, 96.0, 1e5)


def logs(work: Path) -> list[tuple[str, str, MindData]]:
    shape = LogShape(days=DAYS)
    params = SyntheticMindParams(days=DAYS, impressions_per_day=2000, news_per_day=150)
    mind_like = write_synthetic_mind(work / "mind-like", params)
    out = [
        (
            "MIND-like (datasets.synthetic)",
            "appeal decays from publication (per-article half-life ~12 h), "
            "editor favours fresh articles, user taste",
            read_mind(mind_like.folder),
        )
    ]
    fast = LogShape(days=DAYS, max_candidate_age_hours=24.0)
    for log in (
        steady_appeal_log(shape=shape),
        steady_appeal_log(shape=fast, decay_half_life_hours=4.0, mean_ctr=0.2),
        position_bias_log(shape=shape),
        bursty_log(shape=shape),
    ):
        out.append((log.name, log.assumes, log.data))
    return out


def per_impression_auc(candidates: pd.DataFrame, method: str) -> pd.Series:
    frame = candidates.assign(label=candidates["label"].fillna(0).astype(np.int8))
    return impression_metrics(frame, score=method, ks=(10,))["auc"]


def paired(a: pd.Series, b: pd.Series, n_boot: int) -> tuple[float, float, float]:
    both = pd.concat([a, b], axis=1, join="inner").dropna()
    return bootstrap_interval((both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(), n_boot=n_boot)


def fmt(interval: tuple[float, float, float]) -> str:
    mean, low, high = interval
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def run_one(name: str, assumes: str, data: MindData, n_boot: int) -> dict[str, Any]:
    test_start = data.end.normalize()
    tuned = autotune(data, at=test_start)
    prior = tuned.alpha + tuned.beta if tuned.alpha == tuned.alpha else None

    def test_day(config: TrendingConfig) -> pd.DataFrame:
        return replay(data, refresh_minutes=60, trending=config, window_start=test_start).candidates

    chosen = test_day(tuned.config)
    shipped = test_day(TrendingConfig())
    fallback_cfg = fallback_config(TrendingConfig(), prior)
    fallback = test_day(fallback_cfg)  # also holds the all-time CTR with the fitted prior
    auc = {
        "self-tuned": per_impression_auc(chosen, "engine"),
        "shipped": per_impression_auc(shipped, "engine"),
        "fallback": per_impression_auc(fallback, "engine"),
        "ctr (fitted prior)": per_impression_auc(fallback, "ctr"),
    }
    best = tuned.best_baseline
    if best:
        h = best["half_life"] or TrendingConfig().half_life_hours
        update: dict[str, Any] = {"half_life_hours": float(h)}
        if prior is not None:
            update["prior_impressions"] = prior
        frame = test_day(TrendingConfig().model_copy(update=update))
        label = best["method"] + (f" {best['half_life']:g} h" if best["half_life"] else "")
        auc[label] = per_impression_auc(frame, best["method"])
    # Candidates for the fallback: freshness off at several half-lives (fitted prior).
    candidates: dict[str, tuple[float, float, float]] = {}
    for h in FALLBACK_CANDIDATES:
        update = {"freshness": False, "half_life_hours": h}
        if prior is not None:
            update["prior_impressions"] = prior
        frame = test_day(TrendingConfig().model_copy(update=update))
        candidates[f"{h:g}"] = paired(
            per_impression_auc(frame, "engine"), auc["ctr (fitted prior)"], n_boot
        )
    baselines = [k for k in auc if k not in ("self-tuned", "shipped", "fallback")]
    best_label = max(baselines, key=lambda k: float(auc[k].mean()))
    row = {
        "generator": name,
        "assumes": assumes,
        "impressions": len(data.behaviors),
        "clicked_test_impressions": int(auc["self-tuned"].notna().sum()),
        "chosen": {
            "half_life_hours": tuned.config.half_life_hours,
            "freshness": tuned.config.freshness,
            "prior_impressions": round(tuned.config.prior_impressions, 2),
        },
        "tuning_seconds": tuned.seconds,
        "tuning": tuned.to_dict(),
        "auc": {k: float(v.mean()) for k, v in auc.items()},
        "best_baseline": best_label,
        "tuned_minus_baseline": paired(auc["self-tuned"], auc[best_label], n_boot),
        "tuned_minus_shipped": paired(auc["self-tuned"], auc["shipped"], n_boot),
        "fallback_minus_ctr": paired(auc["fallback"], auc["ctr (fitted prior)"], n_boot),
        "shipped_minus_ctr": paired(auc["shipped"], auc["ctr (fitted prior)"], n_boot),
        "fallback_candidates_minus_ctr": candidates,
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="autotune-bench-"))
    try:
        rows = []
        for name, assumes, data in logs(work):
            started = time.perf_counter()
            rows.append(run_one(name, assumes, data, args.bootstrap))
            print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        "| log | chosen (half-life, freshness, prior) | tuning s | AUC self-tuned | AUC shipped "
        "| best baseline: AUC | self-tuned - baseline | self-tuned - shipped |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["chosen"]
        h = "all-time" if c["half_life_hours"] >= 1e4 else f"{c['half_life_hours']:g} h"
        print(
            f"| {r['generator']} | {h}, {'on' if c['freshness'] else 'off'}, "
            f"{c['prior_impressions']:g} | {r['tuning_seconds']:.1f} "
            f"| {r['auc']['self-tuned']:.4f} | {r['auc']['shipped']:.4f} "
            f"| {r['best_baseline']}: {r['auc'][r['best_baseline']]:.4f} "
            f"| {fmt(r['tuned_minus_baseline'])} | {fmt(r['tuned_minus_shipped'])} |"
        )
    print()
    print("| log | AUC fallback | AUC ctr (fitted prior) | fallback - ctr | shipped - ctr |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['generator']} | {r['auc']['fallback']:.4f} "
            f"| {r['auc']['ctr (fitted prior)']:.4f} | {fmt(r['fallback_minus_ctr'])} "
            f"| {fmt(r['shipped_minus_ctr'])} |"
        )
    print()
    heads = " | ".join(
        f"off, {'all-time' if h >= 1e4 else f'{h:g} h'} - ctr" for h in FALLBACK_CANDIDATES
    )
    print(f"| log | {heads} |")
    print("|---|" + "---|" * len(FALLBACK_CANDIDATES))
    for r in rows:
        cells = " | ".join(fmt(v) for v in r["fallback_candidates_minus_ctr"].values())
        print(f"| {r['generator']} | {cells} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"days": DAYS, "logs": rows}, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
