"""Japanese word analyzers against character 2-3-grams on livedoor (issue 17).

    python -m pip install -e '.[ja]'
    python benchmarks/relatedness_ja.py [--livedoor ../shared/data/livedoor]

Same protocol as ``benchmarks/relatedness.py`` (the site as label, top-10
neighbours): the shipped livedoor settings, then each word analyzer that is
installed, with and without boilerplate. Prints one row per variant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import relatedness as R

from recommender.datasets import read_livedoor
from recommender.features import ArticleVectorizer
from recommender.tokenize_ja import JapaneseWordAnalyzer, available


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--livedoor", type=Path, default=Path("../shared/data/livedoor"))
    args = parser.parse_args()
    if not args.livedoor.exists():
        sys.exit(f"{args.livedoor}: livedoor corpus not found (see ../shared/data/README.md)")
    articles = read_livedoor(args.livedoor).valid
    labels = sites = articles["site"].astype(str)
    variants: list[tuple[str, dict]] = [("char_wb 2-3", {})]
    for backend in ("fugashi", "sudachi"):
        if available(backend):
            params = {"analyzer": JapaneseWordAnalyzer(backend), "ngram_range": (1, 1)}
            variants.append((backend, params))
        else:
            print(f"{backend}: not installed (pip install -e '.[ja]'), skipped")
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


if __name__ == "__main__":
    main()
