"""A simulated news click log, written in the MIND format.

No real click log may be shipped with the project (MIND's licence forbids
redistribution), yet the evaluation, its tests, the demo and the benchmark
need one that has the shape of real traffic. This simulator writes
``news.tsv`` and ``behaviors.tsv`` exactly as MIND does; every number
measured on it is a number about the simulation, and says so.

What is simulated (each a common finding about news traffic, none fitted to
any real log):

- **articles** arrive at a steady rate in MIND's sections (``news`` and
  ``sports`` most, ``travel`` least), with titles and abstracts drawn from a
  vocabulary per section, so text similarity carries topic;
- **appeal**: each article's click probability when fresh is
  ``mean_ctr * appeal``, appeal log-normal (sigma ``appeal_sigma``): a few
  articles draw most clicks;
- **news cycle**: interest decays from publication with a per-article
  half-life (log-normal around ``interest_half_life_hours``) above a small
  evergreen floor;
- **users** have a taste over sections (Dirichlet) and a history of
  clicked articles from before the log; a user clicks an article of a section
  they like up to ``taste_strength`` times more than one of a section they
  ignore;
- **impressions** arrive with a daily cycle; each shows 5-30 live
  candidates chosen by an editorial policy that favours fresh articles but
  knows nothing of appeal; each candidate is clicked independently with
  probability ``appeal * decay(age) * taste``.

The same parameters and seed give the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.datasets.mind import MIND_TIME_FORMAT

#: Sections and their share of new articles.
SECTIONS: dict[str, float] = {
    "news": 0.28,
    "sports": 0.14,
    "finance": 0.07,
    "lifestyle": 0.09,
    "travel": 0.04,
    "foodanddrink": 0.06,
    "health": 0.06,
    "entertainment": 0.08,
    "tv": 0.05,
    "movies": 0.04,
    "music": 0.03,
    "autos": 0.03,
    "weather": 0.03,
}

_VOCABULARY: dict[str, str] = {
    "news": "senate congress election vote governor policy court judge law president "
    "campaign protest mayor city council officials investigation report federal state",
    "sports": "game season coach team player win loss score playoff league quarterback "
    "touchdown goal match championship injury trade draft stadium fans",
    "finance": "market stocks shares investors bank rates inflation earnings profit "
    "economy fund dollar retirement tax budget trade prices growth",
    "lifestyle": "home family wedding style fashion holiday gift design decor kids "
    "parenting relationship celebrity royal beauty tips trends",
    "travel": "trip flight airport hotel beach island destination vacation cruise "
    "passport tourists resort road journey adventure guide",
    "foodanddrink": "recipe dinner chicken cheese bake chef restaurant kitchen wine "
    "dessert pasta soup menu cook flavor breakfast",
    "health": "doctor patients study disease cancer diet sleep weight heart vaccine "
    "hospital symptoms fitness brain medicine workout",
    "entertainment": "star actor actress celebrity award show premiere fans singer "
    "hollywood interview scandal red carpet",
    "tv": "episode series season finale network streaming host cast showrunner sitcom "
    "drama reality ratings",
    "movies": "film box office director trailer sequel studio cinema release review "
    "franchise villain hero",
    "music": "album song singer band tour concert rapper chart grammy lyrics festival guitar",
    "autos": "car truck engine electric vehicle driver recall model dealer sedan suv fuel mileage",
    "weather": "storm snow rain forecast temperatures winds hurricane flood cold heat "
    "tornado warning",
}
_COMMON = [
    "new", "first", "year", "week", "day", "people", "time", "says", "after", "could", "over",
    "best", "most", "just", "now", "how", "why", "what", "inside", "here", "see", "look", "big",
]  # fmt: skip

HOURLY = np.array(
    [0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.8, 1.2, 1.4, 1.3, 1.2, 1.2, 1.3, 1.2, 1.1, 1.1, 1.2, 1.3,
     1.4, 1.5, 1.4, 1.1, 0.8, 0.5]
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticMindParams:
    """Knobs of :func:`write_synthetic_mind` (times in hours unless named)."""

    start: str = "2019-11-09T00:00:00Z"
    days: int = 6
    news_per_day: int = 250
    impressions_per_day: int = 5000
    n_users: int = 4000
    min_candidates: int = 5
    max_candidates: int = 30
    mean_ctr: float = 0.04
    appeal_sigma: float = 0.9
    interest_half_life_hours: float = 12.0
    evergreen: float = 0.05
    max_candidate_age_hours: float = 72.0
    taste_strength: float = 4.0
    history_length: tuple[int, int] = (3, 30)
    seed: int = 7


@dataclass(frozen=True)
class SyntheticMind:
    """What :func:`write_synthetic_mind` wrote, with the hidden truth."""

    folder: Path
    news: pd.DataFrame  # news_id, category, published_at, appeal, half_life_hours
    n_impressions: int
    n_candidates: int
    n_clicks: int


def _text(rng: np.random.Generator, section: str, n_topic: int, n_common: int) -> str:
    topic = _VOCABULARY[section].split()
    words = list(rng.choice(topic, size=n_topic)) + list(rng.choice(_COMMON, size=n_common))
    rng.shuffle(words)
    return " ".join(words).capitalize()


def write_synthetic_mind(
    folder: str | Path, params: SyntheticMindParams | None = None
) -> SyntheticMind:
    """Write ``news.tsv`` and ``behaviors.tsv`` of a simulated log to ``folder``."""
    p = params or SyntheticMindParams()
    rng = np.random.default_rng(p.seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = pd.Timestamp(p.start)
    hours = p.days * 24.0
    sections = np.array(list(SECTIONS))
    shares = np.array(list(SECTIONS.values()))
    shares = shares / shares.sum()

    # Articles: from three days before the log (the users' histories) to its end.
    lead = 72.0
    n_news = round(p.news_per_day * (hours + lead) / 24.0)
    published = np.sort(rng.uniform(-lead, hours, size=n_news))
    category = rng.choice(len(sections), size=n_news, p=shares)
    appeal = rng.lognormal(0.0, p.appeal_sigma, size=n_news)
    appeal /= appeal.mean()
    half_life = p.interest_half_life_hours * rng.lognormal(0.0, 0.5, size=n_news)
    ids = np.array([f"N{i + 1}" for i in range(n_news)])
    titles = [
        _text(rng, sections[c], int(rng.integers(3, 6)), int(rng.integers(2, 5))) for c in category
    ]
    abstracts = [
        _text(rng, sections[c], int(rng.integers(6, 12)), int(rng.integers(6, 12)))
        for c in category
    ]
    news_lines = [
        f"{ids[i]}\t{sections[category[i]]}\t{sections[category[i]]}general\t{titles[i]}\t"
        f"{abstracts[i]}\thttps://assets.msn.com/labs/mind/{ids[i]}.html\t[]\t[]"
        for i in range(n_news)
    ]
    (folder / "news.tsv").write_text("\n".join(news_lines) + "\n", encoding="utf-8")

    # Users: a taste over sections and a history of clicks before the log.
    taste = rng.dirichlet(np.full(len(sections), 0.3), size=p.n_users)
    affinity = 1.0 + (p.taste_strength - 1.0) * taste / taste.max(axis=1, keepdims=True)
    before = np.flatnonzero(published < 0)
    histories = []
    for u in range(p.n_users):
        n_hist = int(rng.integers(p.history_length[0], p.history_length[1] + 1))
        weight = appeal[before] * affinity[u, category[before]] ** 2
        chosen = rng.choice(
            before, size=min(n_hist, len(before)), replace=False, p=weight / weight.sum()
        )
        histories.append(" ".join(ids[np.sort(chosen)]))

    # Impressions: a daily cycle of arrivals.
    n_imp = round(p.impressions_per_day * p.days)
    hour_weight = np.tile(HOURLY, p.days)
    hour = rng.choice(len(hour_weight), size=n_imp, p=hour_weight / hour_weight.sum())
    times = np.sort(hour + rng.random(n_imp))
    users = rng.integers(0, p.n_users, size=n_imp)
    lines = []
    n_cand_total = n_clicks = 0
    for j, (t, u) in enumerate(zip(times, users, strict=True)):
        lo = np.searchsorted(published, t - p.max_candidate_age_hours)
        hi = np.searchsorted(published, t)
        live = np.arange(lo, hi)
        if len(live) < p.min_candidates:
            continue
        age = t - published[live]
        # The editor favours fresh articles and knows nothing of appeal.
        policy = 0.3 + np.exp2(-age / 24.0)
        m = min(len(live), int(rng.integers(p.min_candidates, p.max_candidates + 1)))
        shown = rng.choice(live, size=m, replace=False, p=policy / policy.sum())
        shown_age = t - published[shown]
        interest = p.evergreen + (1 - p.evergreen) * np.exp2(-shown_age / half_life[shown])
        prob = np.clip(p.mean_ctr * appeal[shown] * interest * affinity[u, category[shown]], 0, 0.9)
        clicked = rng.random(m) < prob
        n_cand_total += m
        n_clicks += int(clicked.sum())
        stamp = (start + pd.Timedelta(hours=float(t))).strftime(MIND_TIME_FORMAT)
        tokens = " ".join(f"{ids[i]}-{int(c)}" for i, c in zip(shown, clicked, strict=True))
        lines.append(f"{j + 1}\tU{u + 1}\t{stamp}\t{histories[u]}\t{tokens}")
    (folder / "behaviors.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth = pd.DataFrame(
        {
            "news_id": ids,
            "category": sections[category],
            "published_at": start + pd.to_timedelta(published, unit="h"),
            "appeal": appeal,
            "half_life_hours": half_life,
        }
    )
    return SyntheticMind(folder, truth, len(lines), n_cand_total, n_clicks)


__all__ = ["SECTIONS", "SyntheticMind", "SyntheticMindParams", "write_synthetic_mind"]
