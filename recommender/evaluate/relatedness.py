"""Relatedness on real text: do an article's neighbours share its label?

Given feature rows (TF-IDF, embeddings: any L2-normalised matrix), a label
per article that is *not* among the features (a category, or the site) and
each article's site, :func:`neighbor_agreement` finds every article's top-k
neighbours with the engine's own :func:`~recommender.similarity.cross_site_neighbors`
and measures

- ``share``: the share of the neighbours that have the article's label;
- ``knn_correct``: whether the majority label of the neighbours (ties to
  the label with the larger summed similarity) is the article's label.

``cross_site=True`` looks only at other sites' articles, as the engine
does; ``False`` looks at every other article (used when the site itself is
the label, as on the livedoor corpus).

:func:`agreement_baselines` gives what chance gives: ``random`` neighbours
(the exact expected share; kNN accuracy by simulation with a seed) and the
``most_frequent`` label (a method that always proposes the largest label:
its share and accuracy both equal that label's frequency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.similarity import cross_site_neighbors


@dataclass(frozen=True)
class Agreement:
    """Summary of :func:`neighbor_agreement`.

    ``share``: mean share of same-label neighbours (micro: over articles);
    ``share_macro``: the same averaged per label first, so that a large
    label (POLITICS) does not dominate; ``knn_accuracy``: share of articles
    whose neighbours' majority label is right; ``with_neighbors``: share of
    articles with at least one neighbour (the others count as 0 share and
    wrong).
    """

    share: float
    share_macro: float
    knn_accuracy: float
    with_neighbors: float
    n_articles: int

    def as_dict(self) -> dict[str, float]:
        return {
            "share": self.share,
            "share_macro": self.share_macro,
            "knn_accuracy": self.knn_accuracy,
            "with_neighbors": self.with_neighbors,
            "n_articles": float(self.n_articles),
        }


def _codes(labels: Sequence[str] | np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(pd.Series(labels).astype(str), sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def knn_vote(neighbor_codes: np.ndarray, neighbor_scores: np.ndarray, n_labels: int) -> np.ndarray:
    """Majority label per row of ``neighbor_codes`` (n, k; -1 = no neighbour).

    Ties go to the label whose neighbours have the larger summed score, then
    to the lower code. Rows without neighbours get -1.
    """
    n, k = neighbor_codes.shape
    votes = np.zeros((n, n_labels), dtype=np.float64)
    valid = neighbor_codes >= 0
    rows = np.repeat(np.arange(n), k)[valid.ravel()]
    cols = neighbor_codes.ravel()[valid.ravel()]
    # A similarity is at most 1, so k neighbours add less than 1 vote.
    weight = 1.0 + np.clip(neighbor_scores.ravel()[valid.ravel()], 0, 1) / (k + 1)
    np.add.at(votes, (rows, cols), weight)
    best = votes.argmax(axis=1)
    return np.where(valid.any(axis=1), best, -1)


def neighbor_agreement(
    X: sp.spmatrix | np.ndarray,
    labels: Sequence[str] | np.ndarray | pd.Series,
    sites: Sequence[str] | np.ndarray | pd.Series,
    *,
    k: int = 10,
    cross_site: bool = True,
    max_block_mb: float = 64.0,
) -> tuple[Agreement, pd.DataFrame]:
    """Label agreement of every article's top-``k`` neighbours.

    Parameters
    ----------
    X : (n_articles, n_features) rows with unit L2 norm (sparse or dense).
    labels : the label of each article (category, site, ...).
    sites : the site of each article.
    cross_site : neighbours from other sites only (the engine's rule), or
        from every other article.

    Returns
    -------
    The :class:`Agreement` summary and a per-article frame with ``label``,
    ``predicted`` (kNN majority), ``share`` and ``n_neighbors``.
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    sites_arr = np.asarray(pd.Series(sites).astype(str), dtype=object)
    codes, uniques = _codes(labels)
    allowed = None
    if not cross_site:
        every = sorted(set(sites_arr.tolist()))
        allowed = {s: every for s in every}
    neighbors = cross_site_neighbors(
        X, sites_arr, k, allowed=allowed, min_similarity=0.0, max_block_mb=max_block_mb
    )
    idx = neighbors.indices.astype(np.int64)
    found = idx >= 0
    nb_codes = np.where(found, codes[np.maximum(idx, 0)], -1)
    n_found = found.sum(axis=1)
    same = ((nb_codes == codes[:, None]) & found).sum(axis=1)
    share = np.where(n_found > 0, same / np.maximum(n_found, 1), 0.0)
    predicted = knn_vote(nb_codes, neighbors.scores, len(uniques))
    correct = predicted == codes
    per_article = pd.DataFrame(
        {
            "label": uniques[codes],
            "predicted": np.where(predicted >= 0, uniques[np.maximum(predicted, 0)], None),
            "share": share,
            "n_neighbors": n_found,
        }
    )
    summary = Agreement(
        share=float(share.mean()) if len(share) else float("nan"),
        share_macro=float(per_article.groupby("label")["share"].mean().mean())
        if len(share)
        else float("nan"),
        knn_accuracy=float(correct.mean()) if len(correct) else float("nan"),
        with_neighbors=float((n_found > 0).mean()) if len(n_found) else float("nan"),
        n_articles=len(codes),
    )
    return summary, per_article


def agreement_baselines(
    labels: Sequence[str] | np.ndarray | pd.Series,
    sites: Sequence[str] | np.ndarray | pd.Series,
    *,
    k: int = 10,
    cross_site: bool = True,
    seed: int = 0,
) -> dict[str, Agreement]:
    """What chance gives: ``random`` neighbours and the ``most_frequent`` label.

    ``random``: the share is the exact expectation (the frequency of the
    article's label among the articles it may be matched with); the kNN
    accuracy is simulated with ``k`` neighbours drawn uniformly (``seed``).
    ``most_frequent``: a method that proposes only the largest label.
    """
    codes, uniques = _codes(labels)
    sites_arr = np.asarray(pd.Series(sites).astype(str), dtype=object)
    n = len(codes)
    n_labels = len(uniques)
    site_codes, site_keys = pd.factorize(pd.Series(sites_arr), sort=True)
    table = np.zeros((len(site_keys), n_labels))
    np.add.at(table, (site_codes, codes), 1)
    totals = table.sum(axis=0)
    # Pool of possible neighbours of each article, by label.
    pool = (totals[None, :] - table)[site_codes] if cross_site else np.tile(totals, (n, 1))
    if not cross_site:
        pool[np.arange(n), codes] -= 1  # never itself
    pool_size = pool.sum(axis=1)
    expected_share = np.where(
        pool_size > 0, pool[np.arange(n), codes] / np.maximum(pool_size, 1), 0
    )
    random_share = pd.Series(expected_share).groupby(pd.Series(codes)).mean()

    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(pool, axis=1) / np.maximum(pool_size, 1)[:, None]
    draws = rng.random((n, k))
    # Sampling with replacement from each article's label distribution: the
    # pools hold thousands of articles, so replacement changes nothing visible.
    drawn = np.minimum((draws[:, :, None] > cumulative[:, None, :]).sum(axis=2), n_labels - 1)
    predicted = knn_vote(drawn, np.zeros((n, k)), n_labels)

    majority = int(np.argmax(totals))
    is_major = (codes == majority).astype(float)
    per_label_major = pd.Series(is_major).groupby(pd.Series(codes)).mean()
    return {
        "random": Agreement(
            share=float(expected_share.mean()),
            share_macro=float(random_share.mean()),
            knn_accuracy=float((predicted == codes).mean()),
            with_neighbors=1.0,
            n_articles=n,
        ),
        "most_frequent": Agreement(
            share=float(is_major.mean()),
            share_macro=float(per_label_major.mean()),
            knn_accuracy=float(is_major.mean()),
            with_neighbors=1.0,
            n_articles=n,
        ),
    }


__all__ = ["Agreement", "agreement_baselines", "knn_vote", "neighbor_agreement"]
