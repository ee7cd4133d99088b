"""Simulated impression logs whose picture of traffic differs from the trend model's.

:mod:`recommender.datasets.synthetic` writes a MIND-format log in which an
article's appeal decays with its age, the editor picks candidates by age
alone and a click depends only on appeal, age and the reader's taste: the
picture the trend model (half-life, freshness by age) was written around.
A setting that wins only there proves little (issue 16), so this module
simulates logs built on other assumptions. Each generator is seeded (same
parameters, same seed: the same log), returns a :class:`MindData` in memory
(the frames :func:`recommender.datasets.read_mind` would give for the same
log: ``published_at`` is the time an article was first shown, MIND's only
publication date) and the hidden truth, and documents what it assumes:

:func:`steady_appeal_log`
    An article's appeal does **not** decay with age (evergreen content,
    reference pages, recipes). Each article's click probability is
    ``mean_ctr * appeal`` for its whole life, appeal log-normal. The editor
    shows live articles (published within ``max_candidate_age_hours``)
    uniformly at random, knowing nothing of appeal or age. The right
    trending here is all-time CTR: the longer the half-life the better, and
    an age curve has nothing to learn. With ``decay_half_life_hours`` set,
    appeal instead halves every that many hours of age (a per-article
    half-life, log-normal around it): a fast news cycle, where a short
    half-life is right.

:func:`position_bias_log`
    Strong position bias and an editorial policy correlated with appeal.
    The editor picks candidates with probability ``appeal ** editor_power``
    (times a preference for fresh articles) and lists them in order of a
    noisy estimate of appeal; a reader examines position ``p`` (0-based)
    with probability ``1 / (1 + p) ** position_power`` and clicks an
    examined article with probability ``mean_ctr * appeal * decay(age)``.
    So good articles are shown more and higher, and raw CTR is inflated for
    them by position: the evidence and the exposure are confounded.

:func:`bursty_log`
    Clicks arrive in bursts, as from a social network: besides a steady
    appeal (no decay with age), each article has a few *bursts* (a Poisson
    number over its life, starting at random, lasting an exponential time
    around ``burst_hours``) during which its click probability is
    multiplied by a log-normal factor around ``burst_lift``; during a burst
    the network's impression volume rises too (the social referrals). What
    is popular changes within hours and unrelated to age: a short
    half-life is right.

All three show ``min_candidates`` to ``max_candidates`` live
candidates per impression, with a daily cycle of impression arrivals, and
write no files. No user histories are simulated (empty history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.datasets.mind import MindData, mind_site
from recommender.datasets.synthetic import HOURLY, SECTIONS
from recommender.schema import validate_articles

#: A candidate policy: (rng, time in hours, live article rows, their ages in
#: hours) -> the rows shown, in display order.
Policy = Callable[[np.random.Generator, float, np.ndarray, np.ndarray], np.ndarray]
#: Click probability of the shown rows: (time, rows in display order, ages) -> p.
ClickModel = Callable[[float, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LogShape:
    """Size and timing shared by the generators (times in hours)."""

    start: str = "2019-11-09T00:00:00Z"
    days: int = 4
    news_per_day: int = 120
    impressions_per_day: int = 2000
    n_users: int = 3000
    min_candidates: int = 8
    max_candidates: int = 20
    max_candidate_age_hours: float = 72.0
    #: articles exist this long before the log starts (so the first day has candidates)
    lead_hours: float = 72.0


@dataclass(frozen=True)
class SimulatedLog:
    """A generated log and its hidden truth (one row per article, in ``articles`` order
    of id: ``article_id``, ``published_hours`` since the start, ``appeal``, and
    generator-specific columns)."""

    data: MindData
    truth: pd.DataFrame
    name: str
    assumes: str


def _articles(rng: np.random.Generator, shape: LogShape) -> tuple[np.ndarray, np.ndarray]:
    """Publication hours (sorted, from ``-lead_hours``) and section index of every article."""
    hours = shape.days * 24.0
    n_news = round(shape.news_per_day * (hours + shape.lead_hours) / 24.0)
    published = np.sort(rng.uniform(-shape.lead_hours, hours, size=n_news))
    shares = np.array(list(SECTIONS.values()))
    category = rng.choice(len(SECTIONS), size=n_news, p=shares / shares.sum())
    return published, category


def _arrivals(
    rng: np.random.Generator, shape: LogShape, extra: np.ndarray | None = None
) -> np.ndarray:
    """Sorted impression times in hours: a daily cycle, times ``extra`` per hour if given."""
    n_imp = round(shape.impressions_per_day * shape.days)
    weight = np.tile(HOURLY, shape.days)
    if extra is not None:
        weight = weight * extra
    hour = rng.choice(len(weight), size=n_imp, p=weight / weight.sum())
    return np.sort(hour + rng.random(n_imp))


def _build(
    rng: np.random.Generator,
    shape: LogShape,
    published: np.ndarray,
    category: np.ndarray,
    times: np.ndarray,
    policy: Policy,
    click: ClickModel,
) -> MindData:
    """Run the impressions and assemble the frames of :class:`MindData`."""
    start = pd.Timestamp(shape.start)
    n_news = len(published)
    ids = np.array([f"N{i + 1}" for i in range(n_news)])
    users = rng.integers(0, shape.n_users, size=len(times))
    imp_ids: list[np.ndarray] = []
    imp_rows: list[np.ndarray] = []
    imp_labels: list[np.ndarray] = []
    imp_times: list[float] = []
    imp_users: list[int] = []
    for t, u in zip(times, users, strict=True):
        lo = np.searchsorted(published, t - shape.max_candidate_age_hours)
        hi = np.searchsorted(published, t)
        live = np.arange(lo, hi)
        if len(live) < shape.min_candidates:
            continue
        shown = policy(rng, float(t), live, t - published[live])
        prob = np.clip(click(float(t), shown, t - published[shown]), 0.0, 0.95)
        clicked = rng.random(len(shown)) < prob
        number = len(imp_times) + 1
        imp_ids.append(np.full(len(shown), number))
        imp_rows.append(shown)
        imp_labels.append(clicked)
        imp_times.append(float(t))
        imp_users.append(int(u))
    if not imp_times:
        raise ValueError("the simulated log has no impressions: too few articles per day")
    counts = np.array([len(r) for r in imp_rows])
    rows = np.concatenate(imp_rows)
    labels = np.concatenate(imp_labels).astype(np.int8)
    impression_numbers = np.concatenate(imp_ids)
    ts_h = np.repeat(np.array(imp_times), counts)
    ts = start + pd.to_timedelta(ts_h, unit="h")
    ts = pd.DatetimeIndex(ts).floor("s")  # MIND's times have whole seconds
    candidates = pd.DataFrame(
        {
            "impression_id": pd.array(impression_numbers.astype(str), dtype="string"),
            "user_id": pd.array(
                np.repeat([f"U{u + 1}" for u in imp_users], counts), dtype="string"
            ),
            "ts": ts,
            "article_id": pd.array(ids[rows], dtype="string"),
            "position": np.concatenate([np.arange(c) for c in counts]).astype(np.int32),
            "label": pd.array(labels, dtype="Int8"),
        }
    )
    first = candidates.groupby("impression_id", sort=False).head(1)
    behaviors = pd.DataFrame(
        {
            "impression_id": first["impression_id"].to_numpy(),
            "user_id": first["user_id"].to_numpy(),
            "ts": first["ts"].to_numpy(),
            "history": pd.array([""] * len(first), dtype="string"),
            "n_candidates": counts,
        }
    )
    behaviors["ts"] = pd.to_datetime(behaviors["ts"], utc=True)
    for name in ("impression_id", "user_id"):
        behaviors[name] = behaviors[name].astype("string")
    first_seen = candidates.groupby("article_id", sort=False)["ts"].min()
    shown_ids = pd.Index(first_seen.index.astype(str))
    row_of = pd.Index(ids).get_indexer(shown_ids)
    sections = np.array(list(SECTIONS))
    section = pd.Series(sections[category[row_of]], dtype="string")
    raw = pd.DataFrame(
        {
            "article_id": pd.Series(shown_ids, dtype="string"),
            "site": mind_site(section),
            "url": pd.Series([f"https://sim.invalid/{i}.html" for i in shown_ids], dtype="string"),
            "title": pd.Series([f"{s} story {i}" for s, i in zip(section, shown_ids, strict=True)]),
            "body": "",
            "category": section,
            "tags": section + "general",
            "language": "en",
            "published_at": first_seen.to_numpy(),
        }
    )
    articles = validate_articles(raw, source="<simulated>").valid
    return MindData(articles=articles, behaviors=behaviors, candidates=candidates)


def _uniform_policy(shape: LogShape) -> Policy:
    def policy(rng: np.random.Generator, t: float, live: np.ndarray, age: np.ndarray) -> np.ndarray:
        m = min(len(live), int(rng.integers(shape.min_candidates, shape.max_candidates + 1)))
        return rng.choice(live, size=m, replace=False)

    return policy


def _truth(published: np.ndarray, appeal: np.ndarray, **extra: np.ndarray) -> pd.DataFrame:
    ids = np.array([f"N{i + 1}" for i in range(len(published))])
    return pd.DataFrame(
        {"article_id": ids, "published_hours": published, "appeal": appeal, **extra}
    )


def steady_appeal_log(
    *,
    seed: int = 11,
    shape: LogShape | None = None,
    mean_ctr: float = 0.05,
    appeal_sigma: float = 0.8,
    decay_half_life_hours: float | None = None,
) -> SimulatedLog:
    """Appeal that does not decay with age; uniform random candidates (see the module docs).

    ``decay_half_life_hours``: make appeal halve with age instead (per-article
    half-life log-normal around it, sigma 0.5): the fast-decay variant.
    """
    shape = shape or LogShape()
    rng = np.random.default_rng(seed)
    published, category = _articles(rng, shape)
    appeal = rng.lognormal(0.0, appeal_sigma, size=len(published))
    appeal /= appeal.mean()
    if decay_half_life_hours is None:
        half_life = np.full(len(published), np.inf)
    else:
        half_life = decay_half_life_hours * rng.lognormal(0.0, 0.5, size=len(published))

    def click(t: float, rows: np.ndarray, age: np.ndarray) -> np.ndarray:
        return mean_ctr * appeal[rows] * np.exp2(-age / half_life[rows])

    times = _arrivals(rng, shape)
    data = _build(rng, shape, published, category, times, _uniform_policy(shape), click)
    if decay_half_life_hours is None:
        name, assumes = "steady appeal", "appeal does not decay with age; random candidates"
    else:
        name = f"fast decay ({decay_half_life_hours:g} h)"
        assumes = (
            f"appeal halves every ~{decay_half_life_hours:g} h of age (per article); "
            "random candidates"
        )
    return SimulatedLog(data, _truth(published, appeal, half_life_hours=half_life), name, assumes)


def position_bias_log(
    *,
    seed: int = 12,
    shape: LogShape | None = None,
    mean_ctr: float = 0.08,
    appeal_sigma: float = 0.8,
    editor_power: float = 1.0,
    editor_noise: float = 0.5,
    position_power: float = 1.0,
    decay_half_life_hours: float = 36.0,
) -> SimulatedLog:
    """Strong position bias, candidates picked and ordered by (noisy) appeal (module docs)."""
    shape = shape or LogShape()
    rng = np.random.default_rng(seed)
    published, category = _articles(rng, shape)
    appeal = rng.lognormal(0.0, appeal_sigma, size=len(published))
    appeal /= appeal.mean()
    estimate = appeal * rng.lognormal(0.0, editor_noise, size=len(published))

    def policy(rng: np.random.Generator, t: float, live: np.ndarray, age: np.ndarray) -> np.ndarray:
        m = min(len(live), int(rng.integers(shape.min_candidates, shape.max_candidates + 1)))
        weight = estimate[live] ** editor_power * (0.3 + np.exp2(-age / 24.0))
        shown = rng.choice(live, size=m, replace=False, p=weight / weight.sum())
        return shown[np.argsort(-estimate[shown], kind="stable")]

    def click(t: float, rows: np.ndarray, age: np.ndarray) -> np.ndarray:
        examined = 1.0 / (1.0 + np.arange(len(rows))) ** position_power
        decay = np.exp2(-age / decay_half_life_hours)
        return mean_ctr * appeal[rows] * decay * examined

    times = _arrivals(rng, shape)
    data = _build(rng, shape, published, category, times, policy, click)
    assumes = (
        f"examination 1/(1+position)^{position_power:g}; editor picks by appeal^"
        f"{editor_power:g} and lists by noisy appeal; appeal halves every "
        f"{decay_half_life_hours:g} h of age"
    )
    return SimulatedLog(
        data, _truth(published, appeal, editor_estimate=estimate), "position bias", assumes
    )


def bursty_log(
    *,
    seed: int = 13,
    shape: LogShape | None = None,
    mean_ctr: float = 0.04,
    appeal_sigma: float = 0.5,
    bursts_per_day: float = 0.6,
    burst_hours: float = 3.0,
    burst_lift: float = 6.0,
    volume_lift: float = 0.5,
) -> SimulatedLog:
    """Steady appeal plus social-network bursts of clicks (see the module docs)."""
    shape = shape or LogShape()
    rng = np.random.default_rng(seed)
    published, category = _articles(rng, shape)
    n = len(published)
    appeal = rng.lognormal(0.0, appeal_sigma, size=n)
    appeal /= appeal.mean()
    end = shape.days * 24.0
    life = np.clip(np.minimum(published + shape.max_candidate_age_hours, end) - published, 0, None)
    n_bursts = rng.poisson(bursts_per_day * life / 24.0)
    owner = np.repeat(np.arange(n), n_bursts)
    b_start = published[owner] + rng.random(len(owner)) * life[owner]
    b_end = b_start + rng.exponential(burst_hours, size=len(owner))
    b_lift = rng.lognormal(np.log(burst_lift), 0.5, size=len(owner))
    # Network volume per hour of the log: more impressions while bursts run.
    hour_mid = np.arange(shape.days * 24) + 0.5
    running = ((b_start[None, :] <= hour_mid[:, None]) & (hour_mid[:, None] < b_end[None, :])).sum(
        axis=1
    )
    volume = 1.0 + volume_lift * running / max(1.0, float(running.mean()))

    def click(t: float, rows: np.ndarray, age: np.ndarray) -> np.ndarray:
        lift = np.ones(len(rows))
        active = np.flatnonzero((b_start <= t) & (t < b_end))
        if len(active):
            hit = np.isin(owner[active], rows)
            for b in active[hit]:
                lift[rows == owner[b]] *= b_lift[b]
        return mean_ctr * appeal[rows] * lift

    times = _arrivals(rng, shape, extra=volume)
    data = _build(rng, shape, published, category, times, _uniform_policy(shape), click)
    assumes = (
        f"steady appeal (no age decay) plus ~{bursts_per_day:g} bursts/day per article, "
        f"~{burst_hours:g} h long, clicks x~{burst_lift:g}; random candidates"
    )
    truth = _truth(published, appeal, bursts=n_bursts)
    return SimulatedLog(data, truth, "bursts", assumes)


GENERATORS: dict[str, Callable[..., SimulatedLog]] = {
    "steady": steady_appeal_log,
    "position_bias": position_bias_log,
    "bursts": bursty_log,
}

__all__ = [
    "GENERATORS",
    "LogShape",
    "SimulatedLog",
    "bursty_log",
    "position_bias_log",
    "steady_appeal_log",
]
