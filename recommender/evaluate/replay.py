"""The trending replay: MIND behaviours in time order, as the engine runs them.

In production a batch refreshes the trend scores every ``R`` minutes from
the impressions and clicks logged so far, and every page shows lists ranked
by the scores of the latest refresh. The replay does exactly that over a
MIND-format log:

1. Every candidate of every impression is an impression event at the
   impression's time; every clicked candidate is also a click event.
2. The *evaluation window* is the log's last day (from 00:00 UTC of the
   last impression's date to the end). Refreshes fall at ``window start +
   j * R``. A refresh sees only the events logged strictly **before** it.
3. Each impression of the window is ranked by the scores of the latest
   refresh at or before its time: a click logged at 09:07 can inform
   the ranking of an impression at 09:12 only if a refresh fell between.
4. With ``refresh_minutes=None`` (the *static split*), one refresh at the
   window's start ranks the whole last day.

An article first shown after the latest refresh is unknown to the batch;
every method scores it as an article published at that refresh with no
traffic (its first-shown time is MIND's only publication date, so using it
would leak the future).

Methods (each ranks candidates by one score per article at the refresh):

``random``            uniform random scores (seeded).
``clicks``            all-time click count.
``ctr``               all-time CTR, smoothed toward the all-time network CTR
                      with ``prior_impressions``.
``decayed_views``     time-decayed clicks (in MIND a click is the page view),
                      with the engine's half-life.
``decayed_ctr``       time-decayed CTR, smoothed toward the all-time network
                      CTR with the same prior and half-life.
``engine``            :func:`recommender.trending.score_traffic` as shipped:
                      smoothing toward the *current* network CTR,
                      impressions as negative evidence, half-life and the
                      freshness curve (see :mod:`recommender.trending`).

All counts come from one :class:`~recommender.trending.TrafficAccumulator`,
advanced refresh by refresh, so the baselines and the engine see the same
events. An article without text (a MIND candidate with no ``news.tsv`` row)
is scored from its traffic like any other: every method uses traffic only.

Small samples: the metrics are means over impressions with a click. With
fewer than :data:`MIN_IMPRESSIONS` of them (200 by default), the evaluation
and the tuning still report them, with a warning
(:func:`small_sample_warning`) that says how many there were.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.config import TrendingConfig
from recommender.datasets.mind import MindData
from recommender.evaluate.metrics import bootstrap_interval, impression_metrics
from recommender.trending import CLICK, IMPRESSION, TrafficAccumulator, score_traffic

_log = logging.getLogger(__name__)

METHODS: dict[str, str] = {
    "random": "random",
    "clicks": "all-time clicks",
    "ctr": "all-time smoothed CTR",
    "decayed_views": "time-decayed views (clicks)",
    "decayed_ctr": "time-decayed smoothed CTR",
    "engine": "engine trending (as shipped)",
}
METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")
#: Fewer impressions with a click than this in a metric's sample and the
#: metric is reported with a warning. Per impression, AUC, MRR and nDCG
#: spread with a standard deviation of 0.2-0.35 (simulated log), so at 200
#: impressions the 95% interval of a mean is already +-0.03 to 0.05: about
#: the differences between methods. Below, the intervals grow past them
#: (+-0.1 at 30 impressions) and a percentile bootstrap over so few
#: impressions understates its own width.
MIN_IMPRESSIONS = 200


def clicked_impressions(candidates: pd.DataFrame) -> int:
    """Impressions of ``candidates`` with at least one click (what a metric averages over)."""
    clicked = candidates["label"].fillna(0).to_numpy() == 1
    return int(candidates.loc[clicked, "impression_id"].nunique())


class SmallSampleWarning(UserWarning):
    """Metrics were computed on fewer impressions with a click than the threshold."""


def warn_small_sample(message: str, found: list[str]) -> None:
    """Record ``message`` in ``found`` and issue it as a :class:`SmallSampleWarning`
    (the CLI, which prints ``found`` itself, ignores the warning category)."""
    found.append(message)
    warnings.warn(message, SmallSampleWarning, stacklevel=3)


def small_sample_warning(
    what: str, n_clicked: int, n_impressions: int, threshold: int = MIN_IMPRESSIONS
) -> str | None:
    """The warning for metrics of ``what`` averaged over ``n_clicked``
    impressions with a click (of ``n_impressions``), or None when
    ``n_clicked`` reaches ``threshold``."""
    if n_clicked >= threshold:
        return None
    return (
        f"SMALL SAMPLE: {what}: only {n_clicked:,} impressions with a click "
        f"(of {n_impressions:,} impressions), fewer than {threshold:,}; "
        "its metrics and 95% intervals are not reliable"
    )


def evaluation_start(data: MindData) -> pd.Timestamp:
    """Start of the log's last day: 00:00 UTC of the last impression's date."""
    return data.end.normalize()


@dataclass
class ReplayResult:
    """What :func:`replay` produced.

    ``candidates``: the window's candidates (impression_id, user_id, ts,
    article_id, label, refresh) with one score column per method;
    ``top_ctr``: per method, clicks and impressions in the window of the
    ``top_k`` articles it ranked first at each refresh (among those shown
    before the next one), and of all shown articles (``all``).
    """

    refresh_minutes: float | None
    window_start: pd.Timestamp
    candidates: pd.DataFrame
    top_ctr: pd.DataFrame
    n_refreshes: int

    @property
    def label(self) -> str:
        if self.refresh_minutes is None:
            return "static split"
        return f"refresh every {self.refresh_minutes:g} min"


def _encoded_events(data: MindData, ids: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = data.candidates
    rows = ids.get_indexer(pd.Index(c["article_id"].astype(str)))
    ts = pd.DatetimeIndex(c["ts"]).as_unit("ns").asi8
    clicked = c["label"].fillna(0).to_numpy() == 1
    all_rows = np.concatenate([rows, rows[clicked]])
    all_ts = np.concatenate([ts, ts[clicked]])
    kinds = np.concatenate(
        [np.full(len(rows), IMPRESSION, np.int8), np.full(int(clicked.sum()), CLICK, np.int8)]
    )
    keep = all_rows >= 0
    order = np.argsort(all_ts[keep], kind="stable")
    return all_rows[keep][order], all_ts[keep][order], kinds[keep][order]


def method_scores(
    traffic: TrafficAccumulator,
    ids: pd.Index,
    at: pd.Timestamp,
    config: TrendingConfig,
    published_ns: np.ndarray,
) -> dict[str, np.ndarray]:
    """Score of every article by every non-random method at refresh ``at``."""
    a = config.prior_impressions
    impressions = traffic.impressions.astype(np.float64)
    clicks = traffic.clicks.astype(np.float64)
    c_all = clicks.sum() / impressions.sum() if impressions.sum() > 0 else 0.0
    decayed_impressions = traffic.decayed_impressions.sum(axis=1)
    decayed_clicks = traffic.decayed_clicks.sum(axis=1)
    engine = score_traffic(
        traffic,
        ids,
        at,
        prior_views=config.prior_views,
        prior_impressions=a,
        freshness=config.freshness,
        published_ns=published_ns,
    )
    return {
        "clicks": clicks,
        "ctr": (clicks + a * c_all) / (impressions + a),
        "decayed_views": decayed_clicks,
        "decayed_ctr": (decayed_clicks + a * c_all) / (decayed_impressions + a),
        "engine": engine["trend"].to_numpy(),
    }


def replay(
    data: MindData,
    *,
    refresh_minutes: float | None = 60.0,
    trending: TrendingConfig | None = None,
    window_start: pd.Timestamp | None = None,
    window_end: pd.Timestamp | None = None,
    top_k: int = 10,
    seed: int = 0,
) -> ReplayResult:
    """Replay ``data`` and score the candidates of the evaluation window.

    Parameters
    ----------
    refresh_minutes : minutes between refreshes; None for the static split.
    trending : the engine's trending settings (default: as shipped); the
        baselines use its half-life and prior too.
    window_start, window_end : the evaluation window (default: the last day).
    top_k : list length for the CTR of each method's top articles.
    """
    config = trending or TrendingConfig()
    if refresh_minutes is not None and refresh_minutes <= 0:
        raise ValueError(f"refresh_minutes must be > 0, got {refresh_minutes}")
    ids = pd.Index(data.articles["article_id"].astype(str))
    published_ns = pd.DatetimeIndex(data.articles["published_at"]).as_unit("ns").asi8
    start = pd.Timestamp(window_start) if window_start is not None else evaluation_start(data)
    rows, ts, kinds = _encoded_events(data, ids)

    c = data.candidates
    in_window = (c["ts"] >= start).to_numpy().copy()
    if window_end is not None:
        in_window &= (c["ts"] < pd.Timestamp(window_end)).to_numpy()
    window = c[in_window].reset_index(drop=True)
    if len(window) == 0:
        raise ValueError(f"no impressions in the evaluation window starting {start}")
    window_ns = pd.DatetimeIndex(window["ts"]).as_unit("ns").asi8
    if refresh_minutes is None:
        refresh_ns = np.full(len(window), start.value, dtype=np.int64)
    else:
        step = round(refresh_minutes * 60 * 10**9)
        refresh_ns = start.value + (window_ns - start.value) // step * step
    window_rows = ids.get_indexer(pd.Index(window["article_id"].astype(str)))
    labels = window["label"].fillna(0).to_numpy(dtype=np.int8)

    traffic = TrafficAccumulator(data.articles["published_at"], config.half_life_hours)
    names = [m for m in METHODS if m != "random"]
    scores = {m: np.zeros(len(window)) for m in names}
    top_clicks = dict.fromkeys([*names, "all"], 0.0)
    top_impressions = dict.fromkeys([*names, "all"], 0.0)
    refreshes = np.unique(refresh_ns)
    done = 0
    for r in refreshes:
        upto = int(np.searchsorted(ts, r, side="left"))  # strictly before the refresh
        at = pd.Timestamp(int(r), tz="UTC")
        traffic.advance(at, rows[done:upto], ts[done:upto], kinds[done:upto])
        done = upto
        # Articles not yet shown are scored as published at the refresh, with no traffic.
        known = np.minimum(published_ns, r)
        per_article = method_scores(traffic, ids, at, config, known)
        here = np.flatnonzero(refresh_ns == r)
        here_rows = window_rows[here]
        shown = np.unique(here_rows)
        shown_clicks = np.bincount(here_rows, weights=labels[here], minlength=len(ids))
        shown_impressions = np.bincount(here_rows, minlength=len(ids))
        top_clicks["all"] += shown_clicks.sum()
        top_impressions["all"] += shown_impressions.sum()
        for name in names:
            values = per_article[name]
            scores[name][here] = values[here_rows]
            best = shown[np.lexsort((shown, -values[shown]))][:top_k]
            top_clicks[name] += shown_clicks[best].sum()
            top_impressions[name] += shown_impressions[best].sum()

    rng = np.random.default_rng(seed)
    out = window[["impression_id", "user_id", "ts", "article_id", "label"]].copy()
    out["refresh"] = pd.to_datetime(refresh_ns, utc=True)
    out["random"] = rng.random(len(window))
    for name in names:
        out[name] = scores[name]
    top_ctr = pd.DataFrame(
        {
            "clicks": pd.Series(top_clicks),
            "impressions": pd.Series(top_impressions),
        }
    )
    top_ctr["ctr"] = top_ctr["clicks"] / top_ctr["impressions"].where(top_ctr["impressions"] > 0)
    _log.info("replay %s: %d refreshes, %d candidates", refresh_minutes, len(refreshes), len(out))
    return ReplayResult(refresh_minutes, start, out, top_ctr, len(refreshes))


def metric_table(
    scored: pd.DataFrame,
    methods: Sequence[str],
    *,
    metrics: Sequence[str] = METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    labels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Mean of each metric per method with a 95% bootstrap interval.

    ``scored``: candidates with ``impression_id``, ``label`` and one score
    column per method. Returns one row per (method, metric) with ``mean``,
    ``low``, ``high`` and ``n_impressions`` (impressions with a click).
    """
    ks = sorted({int(m.split("@")[1]) for m in metrics if "@" in m}) or [10]
    frame = scored.assign(label=scored["label"].fillna(0).astype(np.int8))
    rows = []
    for method in methods:
        per = impression_metrics(frame, score=method, ks=ks)
        for metric in metrics:
            mean, low, high = bootstrap_interval(per[metric].to_numpy(), n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "method": method,
                    "label": (labels or METHODS).get(method, method),
                    "metric": metric,
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "n_impressions": int(per[metric].notna().sum()),
                }
            )
    return pd.DataFrame(rows)


__all__ = [
    "METHODS",
    "METRICS",
    "MIN_IMPRESSIONS",
    "ReplayResult",
    "SmallSampleWarning",
    "clicked_impressions",
    "evaluation_start",
    "method_scores",
    "metric_table",
    "replay",
    "small_sample_warning",
    "warn_small_sample",
]
