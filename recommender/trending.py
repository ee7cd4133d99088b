"""Trending: time-decayed, smoothed popularity and click-through rates.

Every event is weighed by ``0.5 ** (age / half_life)``, so the scores follow
what is happening now. Two kinds of evidence make an article's *lift* (how
much better than the network's average it does right now):

**Views** (pageviews, ``kind == "view"``). An article's *decayed views* are
divided by its *exposure*, the same weight integrated over the time it has
been published: ``h / ln 2 * (1 - 0.5 ** (age_of_article / h))`` hours, so
a new article is judged on the short time it has had. The view rate is
smoothed toward the network's mean rate ``mu`` as if every article had
``prior_views`` extra views at that rate (a Gamma-Poisson posterior mean)::

    rate = (decayed_views + prior_views) / (exposure + prior_views / mu)

so 2 views in a minute do not outrank 2,000 in a day, yet a new article that
draws views faster than its peers rises within hours. Its lift is
``rate / mu``.

**Impressions and clicks** (the widget's own log, ``kind == "impression"``
and ``"click"``). An impression without a click is negative evidence: the
article was shown and not chosen. The *current network CTR* is
``c0 = sum(decayed clicks) / sum(decayed impressions)``. With ``freshness``
on, the network's CTR is also measured per band of article age at the time
of the impression (0-1 h, 1-2 h, 2-4 h, ... 256 h and more), each band
smoothed toward ``c0``: ``g(age)``, how likely a click is on an article of
that age today. An article's clicks are then compared with the clicks
*expected* at the ages it was shown, ``E = sum over its impressions of
g(age)`` (clicks over expected clicks), smoothed toward 1 as if it had had
``prior_impressions`` more impressions at the network's CTR::

    ctr = g(age now) * (decayed_clicks + a * c0) / (E + a * c0),  a = prior_impressions

so an article shown 500 times without a click sinks, one clicked 3 times in
10 impressions rises but not above a steady performer, and a new article
with no impressions yet starts at the CTR that new articles get today.
Without ``freshness``, ``g`` is ``c0`` at every age and ``ctr`` is the plain
smoothed CTR ``(decayed_clicks + a * c0) / (decayed_impressions + a)``.
Its lift is ``ctr / c0``.

The article's lift is the product of the lifts of the evidence the log has
(a kind of event absent from the whole log contributes 1), and ``trend``
maps lifts to [0, 1] on a log scale: ``log1p(lift) / log1p(max_lift)``. On a
log of views only, this is exactly ``log1p(rate / mu) / log1p(max_rate / mu)``.

:class:`TrafficAccumulator` keeps the decayed sums and advances them event
batch by event batch; :func:`trend_scores` builds one from a whole event
frame. The evaluation replay uses the same accumulator at every refresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.columns import rows_of

LN2 = float(np.log(2.0))
#: Upper edges (hours) of the article-age bands of the CTR-by-age curve.
AGE_BAND_EDGES_HOURS = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])
N_AGE_BANDS = len(AGE_BAND_EDGES_HOURS) + 1
#: Event kinds as the accumulator codes them.
VIEW, IMPRESSION, CLICK = 0, 1, 2
_KIND_CODES = {"view": VIEW, "impression": IMPRESSION, "click": CLICK}

_NS_PER_HOUR = 3600 * 10**9


def _hours(delta: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_timedelta(delta) / pd.Timedelta(hours=1), dtype=np.float64)


def _ns(values: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """UTC nanoseconds since the epoch (NaT as the minimum int64)."""
    stamps = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return np.array(stamps.as_unit("ns").asi8, dtype=np.int64)


def age_band(age_hours: np.ndarray) -> np.ndarray:
    """Index of the age band (see :data:`AGE_BAND_EDGES_HOURS`) of each age;
    negative ages count as band 0."""
    return np.searchsorted(AGE_BAND_EDGES_HOURS, np.clip(age_hours, 0, None), side="right")


class TrafficAccumulator:
    """Decayed traffic sums of every article, advanced batch by batch.

    Parameters
    ----------
    published_at : publication time of each article (row ``i`` of every
        array below is article ``i``).
    half_life_hours : an event this many hours old weighs one half.

    Attributes
    ----------
    at : the time the decayed sums refer to (None before the first batch).
    views, impressions, clicks : counts of events so far, shape (n,).
    decayed_views : shape (n,).
    decayed_impressions, decayed_clicks : shape (n, N_AGE_BANDS), split by
        the article's age band at the time of each event.
    """

    def __init__(self, published_at: pd.Series | np.ndarray, half_life_hours: float) -> None:
        if half_life_hours <= 0:
            raise ValueError("half_life_hours must be > 0")
        self.published_ns = _ns(published_at)
        self.half_life_hours = float(half_life_hours)
        n = len(self.published_ns)
        self.at: pd.Timestamp | None = None
        self.views = np.zeros(n, dtype=np.int64)
        self.impressions = np.zeros(n, dtype=np.int64)
        self.clicks = np.zeros(n, dtype=np.int64)
        self.decayed_views = np.zeros(n)
        self.decayed_impressions = np.zeros((n, N_AGE_BANDS))
        self.decayed_clicks = np.zeros((n, N_AGE_BANDS))

    def __len__(self) -> int:
        return len(self.published_ns)

    def advance(
        self,
        to: pd.Timestamp,
        rows: np.ndarray | None = None,
        ts_ns: np.ndarray | None = None,
        kinds: np.ndarray | None = None,
    ) -> TrafficAccumulator:
        """Decay the sums to time ``to`` and add a batch of events.

        ``rows`` (article row of each event), ``ts_ns`` (event time in UTC
        nanoseconds, none later than ``to``) and ``kinds`` (:data:`VIEW`,
        :data:`IMPRESSION` or :data:`CLICK`) describe the batch.
        """
        to = pd.Timestamp(to)
        if to.tzinfo is None:
            raise ValueError("the time must be tz-aware (UTC)")
        to_ns = int(to.value)
        h = self.half_life_hours
        if self.at is not None:
            step = (to_ns - self.at.value) / _NS_PER_HOUR
            if step < 0:
                raise ValueError(f"cannot advance backwards from {self.at} to {to}")
            factor = float(np.exp2(-step / h))
            self.decayed_views *= factor
            self.decayed_impressions *= factor
            self.decayed_clicks *= factor
        self.at = to
        if rows is None or len(rows) == 0:
            return self
        assert ts_ns is not None and kinds is not None
        rows = np.asarray(rows, dtype=np.int64)
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        kinds = np.asarray(kinds)
        if (ts_ns > to_ns).any():
            raise ValueError("events after the time advanced to cannot be added")
        weights = np.exp2(-((to_ns - ts_ns) / _NS_PER_HOUR) / h)
        n = len(self)
        for code, counts, decayed in (
            (VIEW, self.views, self.decayed_views),
            (IMPRESSION, self.impressions, self.decayed_impressions),
            (CLICK, self.clicks, self.decayed_clicks),
        ):
            mask = kinds == code
            if not mask.any():
                continue
            r = rows[mask]
            counts += np.bincount(r, minlength=n)
            if decayed.ndim == 1:
                decayed += np.bincount(r, weights=weights[mask], minlength=n)
            else:
                band = age_band((ts_ns[mask] - self.published_ns[r]) / _NS_PER_HOUR)
                flat = np.bincount(
                    r * N_AGE_BANDS + band, weights=weights[mask], minlength=n * N_AGE_BANDS
                )
                decayed += flat.reshape(n, N_AGE_BANDS)
        return self


def encode_events(
    events: pd.DataFrame, article_ids: pd.Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (into ``article_ids``), UTC nanoseconds and kind codes of the
    events that name a known article and a known kind (a missing ``kind``
    column means all are views)."""
    rows = rows_of(events["article_id"].astype("string"), article_ids.to_series())
    if "kind" in events:
        kinds = events["kind"].map(_KIND_CODES).fillna(-1).to_numpy(dtype=np.int64)
    else:
        kinds = np.full(len(events), VIEW, dtype=np.int64)
    ts = _ns(events["ts"])
    keep = (rows >= 0) & (kinds >= 0) & (ts != np.iinfo(np.int64).min)
    return rows[keep], ts[keep], kinds[keep]


@dataclass(frozen=True)
class TrendBaseline:
    """The network-wide figures every article's trend is judged against:
    the mean view rate ``mu`` (views per hour of exposure), the network CTR
    ``c0`` and its ``curve`` by age band, and the ``top`` lift (trend 1).

    A full fit measures them; an update of the model on the same vocabulary
    reuses them (see :meth:`recommender.model.Recommender.update`), so that
    adding or editing a few articles does not move every other article's
    trend by a rounding step, and the lists it did not touch stay the same.
    """

    mu: float
    c0: float
    curve: tuple[float, ...]
    top: float


def score_traffic(
    traffic: TrafficAccumulator,
    article_ids: pd.Index,
    now: pd.Timestamp,
    *,
    prior_views: float = 20.0,
    prior_impressions: float = 100.0,
    freshness: bool = True,
    published_ns: np.ndarray | None = None,
    baseline: TrendBaseline | None = None,
) -> pd.DataFrame:
    """Trend of every article from decayed sums at time ``now`` (``traffic.at``).

    ``published_ns`` overrides the publication times used for exposure and
    the current age band (the replay scores articles it has not yet seen as
    published at the refresh). ``baseline``: judge against these network
    figures instead of measuring them (trends above its ``top`` are capped
    at 1). The figures used are in ``frame.attrs["baseline"]``. See the
    module docs for the model and :func:`trend_scores` for the columns.
    """
    h = traffic.half_life_hours
    now_ns = int(pd.Timestamp(now).value)
    published = traffic.published_ns if published_ns is None else published_ns
    published_age = (now_ns - published) / _NS_PER_HOUR
    live = published_age >= 0
    exposure = np.where(live, h / LN2 * (1.0 - np.exp2(-np.clip(published_age, 0, None) / h)), 0.0)
    decayed = np.where(live, traffic.decayed_views, 0.0)

    lift = np.where(live, 1.0, 0.0)
    if baseline is None:
        total_exposure = exposure.sum()
        mu = decayed.sum() / total_exposure if total_exposure > 0 else 0.0
    else:
        mu = baseline.mu
    if mu > 0:
        rate = np.where(live, (decayed + prior_views) / (exposure + prior_views / mu), 0.0)
        lift = lift * rate / mu
    else:
        rate = np.zeros_like(decayed)

    by_band_impressions = traffic.decayed_impressions.sum(axis=0)
    by_band_clicks = traffic.decayed_clicks.sum(axis=0)
    total_impressions = by_band_impressions.sum()
    if baseline is None:
        c0 = by_band_clicks.sum() / total_impressions if total_impressions > 0 else 0.0
    else:
        c0 = baseline.c0
    own_impressions = traffic.decayed_impressions.sum(axis=1)
    own_clicks = traffic.decayed_clicks.sum(axis=1)
    ctr = np.zeros(len(lift))
    expected = np.zeros(len(lift))
    curve = np.zeros(N_AGE_BANDS)
    if c0 > 0:
        a = prior_impressions
        if baseline is not None:
            curve = np.asarray(baseline.curve, dtype=np.float64)
        elif freshness:
            curve = (by_band_clicks + a * c0) / (by_band_impressions + a)
        else:
            curve = np.full(N_AGE_BANDS, c0)
        expected = traffic.decayed_impressions @ curve
        ctr = curve[age_band(published_age)] * (own_clicks + a * c0) / (expected + a * c0)
        ctr = np.where(live, ctr, 0.0)
        lift = lift * ctr / c0
    elif mu <= 0:
        lift = np.zeros_like(lift)  # no usable evidence at all: nothing trends

    if baseline is None:
        top = float(lift.max()) if len(lift) else 0.0
        trend = np.log1p(lift) / np.log1p(top) if top > 0 else np.zeros_like(lift)
    else:
        top = baseline.top
        trend = np.minimum(np.log1p(lift) / np.log1p(top), 1.0) if top > 0 else np.zeros_like(lift)
    frame = pd.DataFrame(
        {
            "views": traffic.views,
            "decayed_views": decayed,
            "exposure_hours": exposure,
            "rate": rate,
            "impressions": traffic.impressions,
            "clicks": traffic.clicks,
            "decayed_impressions": np.where(live, own_impressions, 0.0),
            "decayed_clicks": np.where(live, own_clicks, 0.0),
            "expected_clicks": np.where(live, expected, 0.0),
            "ctr": ctr,
            "lift": lift,
            "trend": trend,
        },
        index=article_ids,
    )
    frame.attrs["baseline"] = TrendBaseline(
        float(mu), float(c0), tuple(float(v) for v in curve), float(top)
    )
    return frame


def trend_scores(
    events: pd.DataFrame,
    articles: pd.DataFrame,
    now: pd.Timestamp,
    *,
    half_life_hours: float = 24.0,
    prior_views: float = 20.0,
    prior_impressions: float = 100.0,
    freshness: bool = True,
    baseline: TrendBaseline | None = None,
) -> pd.DataFrame:
    """Trend of every article at time ``now``.

    Parameters
    ----------
    events : Event frame with ``ts``, ``article_id`` and ``kind`` (``view``,
        ``impression``, ``click``; a missing ``kind`` column means all are
        views); only events at or before ``now`` count.
    articles : Article frame with ``article_id`` and ``published_at``.
    now : tz-aware reference time.
    half_life_hours : an event this old weighs one half.
    prior_views : smoothing of view rates, in views at the network's mean rate.
    prior_impressions : smoothing of CTRs, in impressions at the network's CTR.
    freshness : judge CTRs against the network's current CTR by article age
        (see the module docs); no effect on a log of views only.
    baseline : network figures to judge against instead of measuring them
        (see :class:`TrendBaseline`); the ones used are in
        ``frame.attrs["baseline"]``.

    Returns
    -------
    DataFrame indexed by article_id (in ``articles`` order) with columns
    views (count up to now), decayed_views, exposure_hours, rate (smoothed
    views per hour), impressions, clicks (counts), decayed_impressions,
    decayed_clicks, expected_clicks, ctr (smoothed CTR expected now; 0
    without impressions in the log), lift and trend (in [0, 1]). Articles
    published after ``now`` get rate, ctr, lift and trend 0.
    """
    if half_life_hours <= 0 or prior_views <= 0 or prior_impressions <= 0:
        raise ValueError("half_life_hours, prior_views and prior_impressions must be > 0")
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise ValueError("now must be tz-aware (UTC)")
    ids = pd.Index(articles["article_id"].astype(str), name="article_id")
    rows, ts, kinds = encode_events(events, ids)
    keep = ts <= now.value
    traffic = TrafficAccumulator(articles["published_at"], half_life_hours)
    traffic.advance(now, rows[keep], ts[keep], kinds[keep])
    return score_traffic(
        traffic,
        ids,
        now,
        prior_views=prior_views,
        prior_impressions=prior_impressions,
        freshness=freshness,
        baseline=baseline,
    )


def trending_articles(
    scores: pd.DataFrame,
    articles: pd.DataFrame,
    k: int,
    *,
    site: str | None = None,
    eligible: np.ndarray | None = None,
) -> pd.Index:
    """Ids of the ``k`` top-trending articles, network-wide or of one ``site``.

    ``scores`` as returned by :func:`trend_scores` (same order as
    ``articles``); ``eligible`` an optional boolean mask over ``articles``.
    Only articles with traffic (views or impressions) are listed. Ties rank
    by article id.
    """
    mask = np.ones(len(articles), dtype=bool) if eligible is None else np.asarray(eligible)
    if site is not None:
        mask = mask & (articles["site"].to_numpy() == site)
    traffic = scores["views"].to_numpy() > 0
    if "impressions" in scores:
        traffic |= scores["impressions"].to_numpy() > 0
    mask = mask & traffic
    chosen = scores[mask].reset_index()
    chosen = chosen.sort_values(["trend", "article_id"], ascending=[False, True], kind="stable")
    return pd.Index(chosen["article_id"].head(k), name="article_id")
