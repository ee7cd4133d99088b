"""Ranking and list metrics, each a plain documented function.

Impression metrics (as defined for MIND)
    An *impression* is one list of candidates shown to a user, each with a
    binary label (1 clicked, 0 shown and not clicked) and a score from the
    method under test. Per impression:

    - AUC: the probability that a clicked candidate scores above a
      non-clicked one (Mann-Whitney; a tie counts one half).
    - MRR: the mean over clicked candidates of ``1 / rank`` (MIND's
      ``mrr_score``: the sum of reciprocal ranks of the clicks divided by the
      number of clicks).
    - nDCG@k: ``DCG@k / IDCG@k`` with gain ``label`` and discount
      ``1 / log2(rank + 1)``.
    - hit@k: 1 when a clicked candidate is among the top ``k``.
    - precision@k: clicked candidates among the top ``k``, divided by ``k``.

    **Ties.** Candidates with equal scores are ordered at random, and every
    metric is its *expected* value over those orders. So a method that scores
    every candidate alike gets exactly the metrics of a random ranking, and
    no method gains from the order in which ties happen to be stored. (For
    AUC this is the usual "a tie counts one half".)

    **Impressions without a click** (or, for AUC, with every candidate
    clicked) have no right answer: their metrics are NaN, and averages
    (:func:`mean_metrics`) leave them out and report how many were used.

Frame-level functions take a long frame with one row per candidate. The
column names are arguments with these defaults:

    ``impression_id`` (any hashable), ``label`` (0/1), ``score`` (float).

List metrics
    Over *recommendation lists* given as a long frame, one row per item:
    ``list_id``, ``rank`` (1 = top), ``article_id``, and as needed
    ``site``, ``category``, ``published_at``, ``source_site``. See
    :func:`catalogue_coverage`, :func:`intra_list_diversity`,
    :func:`cross_site_share`, :func:`median_age_hours`, :func:`novelty`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import gammaln

# ---------------------------------------------------------------------------
# helpers shared by the per-impression and the frame versions


def _as_arrays(
    labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {len(y)} != {len(s)}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if len(y) and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, s


def _tie_groups(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates sorted best first, as tie groups.

    Returns (start, size, clicks) per group in rank order: ``start`` is the
    0-based position of the group's first member.
    """
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order]
    new = np.ones(len(s_sorted), dtype=bool)
    new[1:] = s_sorted[1:] != s_sorted[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(s_sorted)))
    clicks = np.add.reduceat(y_sorted, starts) if len(starts) else np.zeros(0)
    return starts, sizes, clicks


def _expected_gains(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Expected label at each rank position (0-based) under random tie order."""
    _, sizes, clicks = _tie_groups(y, s)
    return np.repeat(clicks / np.maximum(sizes, 1), sizes)


def _log_prob_none_in_top(g: np.ndarray, c: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log P(no clicked item among m drawn without replacement from g with c clicked)."""
    g = g.astype(np.float64)
    c = c.astype(np.float64)
    m = m.astype(np.float64)
    possible = g - c >= m
    safe_gc = np.where(possible, g - c, m)
    out = gammaln(safe_gc + 1) - gammaln(safe_gc - m + 1) - gammaln(g + 1) + gammaln(g - m + 1)
    return np.where(possible, out, -np.inf)


# ---------------------------------------------------------------------------
# one impression


def auc_score(labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """AUC of one impression; NaN without both a clicked and a non-clicked candidate."""
    y, s = _as_arrays(labels, scores)
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()  # ascending, ties averaged
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mrr_score(labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """MIND's MRR of one impression (mean reciprocal rank of the clicks); NaN without a click."""
    y, s = _as_arrays(labels, scores)
    if y.sum() == 0:
        return float("nan")
    gains = _expected_gains(y, s)
    return float((gains / np.arange(1, len(y) + 1)).sum() / y.sum())


def ndcg_score(
    labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int = 10
) -> float:
    """nDCG@k of one impression; NaN without a click."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    y, s = _as_arrays(labels, scores)
    n_clicks = int(y.sum())
    if n_clicks == 0:
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(2, len(y) + 2))
    gains = _expected_gains(y, s)
    dcg = (gains[:k] * discounts[:k]).sum()
    idcg = discounts[: min(n_clicks, k)].sum()
    return float(dcg / idcg)


def hit_at_k(
    labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int = 10
) -> float:
    """Probability that a click is in the top ``k``; NaN without a click."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    y, s = _as_arrays(labels, scores)
    if y.sum() == 0:
        return float("nan")
    starts, sizes, clicks = _tie_groups(y, s)
    taken = np.clip(k - starts, 0, sizes)  # members of each group inside the top k
    log_none = _log_prob_none_in_top(sizes, clicks, taken)
    return float(1.0 - np.exp(log_none.sum()))


def precision_at_k(
    labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int = 10
) -> float:
    """Expected clicked candidates in the top ``k``, divided by ``k``; NaN without a click."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    y, s = _as_arrays(labels, scores)
    if y.sum() == 0:
        return float("nan")
    return float(_expected_gains(y, s)[:k].sum() / k)


# ---------------------------------------------------------------------------
# many impressions at once


def impression_metrics(
    frame: pd.DataFrame,
    *,
    impression: str = "impression_id",
    label: str = "label",
    score: str = "score",
    ks: Sequence[int] = (5, 10),
    extra: bool = False,
) -> pd.DataFrame:
    """Metrics of every impression of a long frame, vectorised (no loop per impression).

    Parameters
    ----------
    frame : one row per candidate, with columns ``impression``, ``label``
        (0/1) and ``score``.
    ks : cut-offs for nDCG (and hit/precision with ``extra``).
    extra : also compute ``hit@k`` and ``precision@k``.

    Returns
    -------
    DataFrame indexed by impression (in order of first appearance) with
    columns ``n_candidates``, ``n_clicks``, ``auc``, ``mrr``, ``ndcg@k`` for
    each k (and ``hit@k``, ``precision@k``), each equal to the one-impression
    functions of this module.
    """
    keys, uniques = pd.factorize(frame[impression], sort=False)
    y = frame[label].to_numpy(dtype=np.float64)
    s = frame[score].to_numpy(dtype=np.float64)
    if np.isnan(s).any():
        raise ValueError(f"column {score!r} contains NaN")
    if len(y) and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"column {label!r} must hold 0 or 1")
    n_imp = len(uniques)
    order = np.lexsort((-s, keys))
    keys, y, s = keys[order], y[order], s[order]

    n_cand = np.bincount(keys, minlength=n_imp)
    n_click = np.bincount(keys, weights=y, minlength=n_imp)
    imp_start = np.concatenate([[0], np.cumsum(n_cand)[:-1]])
    pos = np.arange(len(keys)) - imp_start[keys]  # 0-based rank position

    new_group = np.ones(len(keys), dtype=bool)
    new_group[1:] = (keys[1:] != keys[:-1]) | (s[1:] != s[:-1])
    gid = np.cumsum(new_group) - 1
    g_size = np.bincount(gid)
    g_clicks = np.bincount(gid, weights=y)
    g_start = pos[new_group]
    g_imp = keys[new_group]
    gain = (g_clicks / g_size)[gid]

    out = pd.DataFrame(index=pd.Index(uniques, name=impression))
    out["n_candidates"] = n_cand
    out["n_clicks"] = n_click.astype(np.int64)
    has_click = n_click > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        # AUC from average ascending ranks: a group at positions [a, b) of n
        # has ascending ranks n - b + 1 .. n - a, mean n - (a + b - 1) / 2.
        n_of = n_cand[keys]
        avg_rank = n_of - (g_start[gid] + g_start[gid] + g_size[gid] - 1) / 2.0
        rank_sum = np.bincount(keys, weights=y * avg_rank, minlength=n_imp)
        n_neg = n_cand - n_click
        auc = (rank_sum - n_click * (n_click + 1) / 2) / (n_click * n_neg)
        out["auc"] = np.where(has_click & (n_neg > 0), auc, np.nan)
        mrr = np.bincount(keys, weights=gain / (pos + 1), minlength=n_imp) / n_click
        out["mrr"] = np.where(has_click, mrr, np.nan)
        discount = 1.0 / np.log2(pos + 2.0)
        max_k = int(max(ks)) if len(ks) else 1
        ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, max_k + 2)))])
        for k in ks:
            top = pos < k
            dcg = np.bincount(keys, weights=np.where(top, gain * discount, 0.0), minlength=n_imp)
            idcg = ideal[np.minimum(n_click, k).astype(np.int64)]
            out[f"ndcg@{k}"] = np.where(has_click, dcg / idcg, np.nan)
        if extra:
            for k in ks:
                hits_in_top = np.bincount(
                    keys, weights=np.where(pos < k, gain, 0.0), minlength=n_imp
                )
                out[f"precision@{k}"] = np.where(has_click, hits_in_top / k, np.nan)
                taken = np.clip(k - g_start, 0, g_size)
                log_none = _log_prob_none_in_top(g_size, g_clicks, taken)
                none = np.exp(np.bincount(g_imp, weights=log_none, minlength=n_imp))
                # bincount turns -inf sums into nan only when mixed with +inf: not here
                none = np.nan_to_num(none, nan=0.0)
                out[f"hit@{k}"] = np.where(has_click, 1.0 - none, np.nan)
    return out


def mean_metrics(per_impression: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.Series:
    """Average of each metric column over the impressions where it is defined,
    plus ``n_impressions`` (impressions with at least one click)."""
    metrics = list(
        metrics or [str(c) for c in per_impression if c not in ("n_candidates", "n_clicks")]
    )
    means = per_impression[metrics].mean(skipna=True)
    means["n_impressions"] = int(per_impression[metrics[0]].notna().sum()) if metrics else 0
    return means


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of ``values`` (NaN left out) and its percentile bootstrap interval.

    The impressions are resampled with replacement ``n_boot`` times; returns
    ``(mean, low, high)``. With fewer than 2 values the interval is the mean.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2 or n_boot < 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, int(2e7 // len(x)))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, len(x), size=(stop - start, len(x)))
        means[start:stop] = x[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return mean, float(low), float(high)


# ---------------------------------------------------------------------------
# list metrics


def catalogue_coverage(
    recommendations: pd.DataFrame, catalogue: Sequence[str] | pd.Index, *, item: str = "article_id"
) -> float:
    """Share of the ``catalogue`` (e.g. eligible article ids) shown in at least one list."""
    catalogue = pd.Index(catalogue).astype(str)
    if len(catalogue) == 0:
        return float("nan")
    shown = pd.Index(recommendations[item].astype(str).unique())
    return float(catalogue.isin(shown).mean())


def intra_list_diversity(
    recommendations: pd.DataFrame, attribute: str = "site", *, list_id: str = "list_id"
) -> float:
    """Mean over lists of the share of item pairs that differ in ``attribute``
    (site, category, ...). Lists with fewer than 2 items are left out (NaN
    when no list has 2)."""
    values = recommendations[attribute].astype("string").fillna("")
    counts = (
        pd.DataFrame({"list": recommendations[list_id].to_numpy(), "value": values.to_numpy()})
        .groupby(["list", "value"], sort=False)
        .size()
    )
    n = counts.groupby(level=0, sort=False).sum()
    same_pairs = (counts * (counts - 1) / 2).groupby(level=0, sort=False).sum()
    all_pairs = n * (n - 1) / 2
    usable = all_pairs > 0
    if not usable.any():
        return float("nan")
    return float((1.0 - same_pairs[usable] / all_pairs[usable]).mean())


def cross_site_share(
    recommendations: pd.DataFrame, *, site: str = "site", source_site: str = "source_site"
) -> float:
    """Share of listed items whose site differs from the site of the page the
    list is on (items of lists without a source site are left out)."""
    known = recommendations[source_site].notna()
    if not known.any():
        return float("nan")
    rows = recommendations[known]
    return float((rows[site].astype(str) != rows[source_site].astype(str)).mean())


def median_age_hours(
    recommendations: pd.DataFrame, now: pd.Timestamp, *, published_at: str = "published_at"
) -> float:
    """Median age in hours, at ``now``, of the listed items."""
    if len(recommendations) == 0:
        return float("nan")
    age = pd.Timestamp(now) - pd.to_datetime(recommendations[published_at], utc=True)
    return float(np.median(age.dt.total_seconds().to_numpy(dtype=np.float64)) / 3600.0)


def novelty(
    recommendations: pd.DataFrame, popularity: pd.Series, *, item: str = "article_id"
) -> float:
    """Mean self-information ``-log2 p(item)`` of the listed items, in bits.

    ``popularity``: interactions (e.g. clicks) per article id; ``p`` is
    add-one smoothed over the articles in ``popularity`` so that an item
    never clicked has finite novelty: ``p = (count + 1) / (total + n)``.
    Higher means the lists show less popular items.
    """
    if len(recommendations) == 0:
        return float("nan")
    counts = popularity.astype(np.float64)
    counts.index = counts.index.astype(str)
    total = counts.sum() + len(counts)
    listed = recommendations[item].astype(str).map(counts).fillna(0.0)
    return float(np.mean(-np.log2((listed.to_numpy() + 1.0) / total)))


__all__ = [
    "auc_score",
    "bootstrap_interval",
    "catalogue_coverage",
    "cross_site_share",
    "hit_at_k",
    "impression_metrics",
    "intra_list_diversity",
    "mean_metrics",
    "median_age_hours",
    "mrr_score",
    "ndcg_score",
    "novelty",
    "precision_at_k",
]
