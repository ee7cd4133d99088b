"""Are the published lists byte-identical to a recorded reference?

A refactor must not change a list. This script builds every list the batch
would publish, as the JSON the store receives (``Recommender.list_payloads``,
with a fixed run id and time), for three scenarios:

- ``sample``: the bundled sample network (``data/sample.toml``), fitted;
- ``fit-100k``: a synthetic corpus of 100,000 articles (``benchmarks/corpus.py``)
  with traffic (``benchmarks/scale.py``), fitted;
- ``update-100k``: that model updated incrementally after 1% of the corpus
  changed (``benchmarks/incremental.py``'s change: half new, half edited).

and compares each list's SHA-256 with the reference file, naming the first
lists that differ. Record a reference before a refactor, check after::

    python benchmarks/identity.py --record benchmarks/results/identity.json
    python benchmarks/identity.py --check benchmarks/results/identity.json

``--only sample`` runs one scenario group (seconds instead of minutes). The
reference holds one digest per scenario; ``--details`` also records each
list's, so that a check against it names the lists that differ (a few MB at
100k: record such a reference locally, on the commit before the refactor).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from corpus import cached_corpus  # noqa: E402
from incremental import changed_corpus  # noqa: E402
from scale import NOW, machine_facts, scale_inputs  # noqa: E402

from recommender.config import load_config  # noqa: E402
from recommender.inputs import load_inputs  # noqa: E402
from recommender.model import Recommender, reference_time  # noqa: E402
from recommender.schema import validate_articles  # noqa: E402

RUN_ID, GENERATED_AT = "identity", "2000-01-01T00:00:00+00:00"


def digests(model: Recommender) -> dict[str, str]:
    """SHA-256 of each published list's JSON, by source id."""
    return {
        payload.source_id: hashlib.sha256(payload.json.encode()).hexdigest()
        for payload in model.list_payloads(RUN_ID, GENERATED_AT)
    }


def sample() -> Iterator[tuple[str, Recommender]]:
    config = load_config(REPO / "data" / "sample.toml")
    articles, events, _ = load_inputs(config)
    model = Recommender(config).fit(articles.valid, events.valid, now=reference_time(config))
    yield "sample", model


def at_100k(cache: Path) -> Iterator[tuple[str, Recommender]]:
    articles = validate_articles(cached_corpus(100_000, cache, end=NOW.isoformat())).valid
    config, events = scale_inputs(articles, 50_000, slack_days=1.0)
    model = Recommender(config).fit(articles, events)
    yield "fit-100k", model
    later = validate_articles(changed_corpus(articles, 0.01)).valid
    yield "update-100k", model.update(later, events, incremental=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", type=Path, metavar="FILE", help="write the reference")
    mode.add_argument("--check", type=Path, metavar="FILE", help="compare with the reference")
    parser.add_argument("--only", choices=["sample", "100k"], help="one scenario group")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--details", action="store_true", help="record each list's digest")
    args = parser.parse_args()

    groups: dict[str, Callable[[], Iterator[tuple[str, Recommender]]]] = {
        "sample": sample,
        "100k": lambda: at_100k(args.cache),
    }
    reference = json.loads(args.check.read_text()) if args.check else {}
    found: dict[str, dict] = {}
    different = False
    print(f"machine: {machine_facts()}", flush=True)
    for group, scenarios in groups.items():
        if args.only and args.only != group:
            continue
        started = time.perf_counter()
        for name, model in scenarios():
            lists = digests(model)
            everything = hashlib.sha256("".join(sorted(lists.values())).encode()).hexdigest()
            found[name] = {"lists": len(lists), "sha256": everything}
            if args.details:
                found[name]["per_list"] = lists
            seconds = time.perf_counter() - started
            line = f"{name}: {len(lists)} lists, sha256 {everything[:16]} ({seconds:.0f} s)"
            if args.check:
                expected = reference.get(name)
                if expected is None:
                    line += " — not in the reference"
                elif expected["sha256"] == everything:
                    line += " — identical"
                elif "per_list" not in expected:
                    different = True
                    line += " — DIFFERENT (record a reference with --details to see which lists)"
                else:
                    different = True
                    changed = sorted(
                        source
                        for source in set(lists) | set(expected["per_list"])
                        if lists.get(source) != expected["per_list"].get(source)
                    )
                    line += f" — DIFFERENT: {len(changed)} lists, e.g. {changed[:5]}"
            print(line, flush=True)
            started = time.perf_counter()
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(args.record.read_text()) if args.record.exists() else {}
        args.record.write_text(json.dumps({**previous, **found}, indent=0, sort_keys=True) + "\n")
        print(f"reference written to {args.record}")
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()
