"""What editorial pins and blocks cost at scale.

On the synthetic corpus (``benchmarks/corpus.py``; the newest ``--candidates``
eligible, 20 views each, as ``benchmarks/scale.py``), in one run:

1. a fit without rules, and a fit with rules: ``--page-pins`` pins on
   article pages, a pin on every site's pages, ``--blocks`` blocked
   articles, a URL-pattern block and a one-site category block;
2. an incremental update after 1% of the corpus changed
   (``benchmarks/incremental.py``'s change), without rules, with the page
   pins and blocks only, and with every rule (a site-wide pin makes every
   page of its site a pinned page, which an update always mixes again).

Reports the mix stage and the whole fit or update, and the ratio to the
run without rules (after a first fit and update that warm up, not recorded).

    python benchmarks/editorial.py --n 100000 --candidates 50000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import cached_corpus  # noqa: E402
from incremental import changed_corpus  # noqa: E402
from scale import NOW, machine_facts, scale_inputs  # noqa: E402

from recommender.editorial import Block, EditorialRules, Pin, save_rules  # noqa: E402
from recommender.model import Recommender  # noqa: E402
from recommender.schema import validate_articles  # noqa: E402


def rules_for(articles, *, page_pins: int, blocks: int, site_pins: bool, seed: int = 5):
    """Pins and blocks over ``articles`` (ids drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    ids = articles["article_id"].astype(str).to_numpy()
    eligible = ids[-len(ids) // 2 :]  # the newer half: most are candidates
    pins = [
        Pin(f"page-{i}", str(rng.choice(eligible)), 1 + i % 12, page=str(rng.choice(ids)))
        for i in range(page_pins)
    ]
    if site_pins:
        pins += [
            Pin(f"site-{site}", str(rng.choice(eligible)), 3, site=str(site), label="Sponsored")
            for site in sorted(set(articles["site"]))
        ]
    blocked = [Block(f"b-{i}", article=str(a)) for i, a in enumerate(rng.choice(ids, blocks))]
    blocked += [
        Block("url", url="https://example.org/12*"),
        Block("cat", category="c3", site=str(sorted(set(articles["site"]))[0])),
    ]
    return EditorialRules(tuple(pins), tuple(blocked))


def timed(run) -> tuple[Recommender, float, float]:
    started = time.perf_counter()
    model = run()
    return model, time.perf_counter() - started, float(model.timings_.get("mix", float("nan")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--page-pins", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=50)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    print(f"machine: {machine_facts()}", flush=True)
    articles = validate_articles(cached_corpus(args.n, args.cache, end=NOW.isoformat())).valid
    config, events = scale_inputs(articles, args.candidates, slack_days=1.0)
    later = validate_articles(changed_corpus(articles, 0.01)).valid
    folder = Path(tempfile.mkdtemp())
    variants = {
        "no rules": None,
        "page pins and blocks": rules_for(
            articles, page_pins=args.page_pins, blocks=args.blocks, site_pins=False
        ),
        "every rule (with site-wide pins)": rules_for(
            articles, page_pins=args.page_pins, blocks=args.blocks, site_pins=True
        ),
    }
    # A first fit and update, not recorded: compiled kernels and caches warm up.
    Recommender(config).fit(articles, events).update(later, events, incremental=True)
    rows: list[dict] = []
    for name, rules in variants.items():
        run_config = config
        if rules is not None:
            path = folder / f"{len(rows)}.toml"
            save_rules(rules, path)
            run_config = config.model_copy(
                update={"editorial": config.editorial.model_copy(update={"rules": path})}
            )
        fitted, fit_s, fit_mix = timed(lambda c=run_config: Recommender(c).fit(articles, events))
        _, update_s, update_mix = timed(lambda m=fitted: m.update(later, events, incremental=True))
        rows.append(
            {
                "rules": name,
                "fit_s": fit_s,
                "fit_mix_s": fit_mix,
                "update_s": update_s,
                "update_mix_s": update_mix,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    print(f"\n{args.n:,} articles, {args.candidates:,} candidates\n")
    print("| rules | fit (mix) s | ratio | update (mix) s | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['rules']} | {row['fit_s']:.1f} ({row['fit_mix_s']:.1f}) | "
            f"{row['fit_s'] / base['fit_s']:.2f} | {row['update_s']:.1f} "
            f"({row['update_mix_s']:.1f}) | {row['update_s'] / base['update_s']:.2f} |"
        )
    if args.out:
        args.out.write_text(json.dumps({"machine": machine_facts(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
