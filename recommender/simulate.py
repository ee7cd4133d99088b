"""A seeded pageview simulator for the sample network.

The bundled sample's traffic is *simulated*, not measured. Its shape follows
what publisher logs look like:

- **long-tailed popularity**: each article's appeal is log-normal
  (sigma 1.3), so a few articles draw most views;
- **a news cycle**: views start at publication and decay with a per-article
  time constant of 1 to 8 days, above a small evergreen floor;
- **time of day**: an hourly cycle in Japan time (quiet at night, peaks at
  the morning commute, lunch and evening);
- **trending**: ``n_trending`` older articles of modest appeal get a sharp
  rise over the last ``trending_days`` days, to 1-3 times the level of the
  most appealing article at its peak.

Counts per article and hour are Poisson draws of that intensity scaled to
``total_views``; each view gets a uniform random second within its hour.
The same seed gives the same log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Relative pageviews by hour of day, Japan time (00:00 .. 23:00).
HOURLY_JST = np.array(
    [
        0.55,
        0.35,
        0.22,
        0.15,
        0.12,
        0.18,
        0.45,
        0.9,
        1.35,
        1.2,
        1.0,
        1.05,
        1.4,
        1.25,
        1.0,
        0.95,
        1.0,
        1.1,
        1.25,
        1.45,
        1.6,
        1.7,
        1.45,
        0.95,
    ]
)


@dataclass(frozen=True)
class TrafficParams:
    """``end``: end of the log (ISO time with offset); ``days`` simulated before
    it; ``total_views`` expected size; ``n_trending`` spiking articles over the
    last ``trending_days``; ``seed`` for the random generator."""

    end: str
    days: int = 66
    total_views: int = 120_000
    n_trending: int = 5
    trending_days: float = 3.0
    seed: int = 20210308
    timezone: str = "Asia/Tokyo"


def simulate_pageviews(
    articles: pd.DataFrame, params: TrafficParams
) -> tuple[pd.DataFrame, list[str]]:
    """Return (events, trending_ids): a view log with columns ts (UTC),
    article_id, kind, sorted by time, and the ids given a trending spike."""
    rng = np.random.default_rng(params.seed)
    end = pd.Timestamp(params.end)
    if end.tzinfo is None:
        raise ValueError("end must have a UTC offset")
    end = end.tz_convert("UTC").floor("h")
    hours = pd.date_range(end - pd.Timedelta(days=params.days), end, freq="h", inclusive="left")
    ids = articles["article_id"].astype(str).to_numpy()
    n = len(ids)

    appeal = rng.lognormal(mean=0.0, sigma=1.3, size=n)
    lifetime_hours = rng.uniform(24, 8 * 24, size=n)
    # Plain UTC datetime64 arrays for the (articles x hours) arithmetic.
    hour_values = hours.tz_convert(None).to_numpy()
    published = articles["published_at"].dt.tz_convert(None).to_numpy()
    age = (hour_values[None, :] - published[:, None]) / np.timedelta64(1, "h")
    live = age >= 0
    life = np.where(live, np.exp(-np.clip(age, 0, None) / lifetime_hours[:, None]) + 0.03, 0.0)

    local_hour = hours.tz_convert(params.timezone).hour.to_numpy()
    diurnal = HOURLY_JST[local_hour]

    intensity = appeal[:, None] * life * diurnal[None, :]
    trending: list[str] = []
    if params.n_trending:
        window = int(params.trending_days * 24)
        start = len(hours) - window
        # Spiking articles were already out before the window, and of modest
        # appeal, so the rise stands out against their own past (a story
        # going viral days after publication).
        old_enough = published < hour_values[max(0, start)]
        modest = appeal < np.quantile(appeal, 0.8)
        pool = np.flatnonzero(old_enough & modest)
        chosen = rng.choice(pool, size=min(params.n_trending, len(pool)), replace=False)
        since_start = np.arange(len(hours)) - start
        rise = np.where(since_start >= 0, 1 / (1 + np.exp(-(since_start - window / 4) / 6)), 0)
        peaks = appeal.max() * rng.uniform(1.0, 3.0, size=len(chosen))
        intensity[chosen] += peaks[:, None] * rise[None, :] * diurnal[None, :]
        trending = sorted(ids[chosen].tolist())

    intensity *= params.total_views / intensity.sum()
    counts = rng.poisson(intensity)
    rows, cols = np.nonzero(counts)
    repeats = counts[rows, cols]
    hour_starts = hour_values[np.repeat(cols, repeats)]
    seconds = rng.integers(0, 3600, size=len(hour_starts)).astype("timedelta64[s]")
    events = (
        pd.DataFrame(
            {
                "ts": pd.to_datetime(hour_starts + seconds, utc=True),
                "article_id": np.repeat(ids[rows], repeats),
                "kind": "view",
            }
        )
        .sort_values(["ts", "article_id"], kind="stable")
        .reset_index(drop=True)
    )
    return events, trending


def write_events(events: pd.DataFrame, path: str | Path) -> Path:
    """Write an event log as CSV (``.csv`` / ``.csv.gz``) or Parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = events.copy()
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame.to_csv(path, index=False, compression="infer")
    return path
