"""Shared fixtures: a tiny network whose right answers are known by construction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.config import Config, parse_config

NOW = pd.Timestamp("2021-03-08T00:00:00Z")

# Three sites, three topics; each topic has one article per site, so the
# nearest cross-site neighbour of every article is its topic twin.
TINY_ARTICLES = [
    # id, site, title, body, category, days before NOW
    (
        "a-sake",
        "alpha",
        "Sake breweries of Kobe open their cellars",
        "The Nada district in Kobe brews sake from Yamada Nishiki rice.",
        "Food",
        3,
    ),
    (
        "a-fuji",
        "alpha",
        "Climbing Mount Fuji in summer",
        "The Yoshida trail to the summit of Mount Fuji opens in July.",
        "Travel",
        5,
    ),
    (
        "a-baby",
        "alpha",
        "Baby products parents love",
        "Strollers, slings and diapers that new parents recommend.",
        "Family",
        8,
    ),
    (
        "b-sake",
        "beta",
        "A tasting tour of Nada sake breweries",
        "Kobe sake brewers explain rice polishing and brewing.",
        "Drinks",
        2,
    ),
    (
        "b-fuji",
        "beta",
        "Mount Fuji summit trails compared",
        "Which Fuji trail to the summit suits a first climb in summer.",
        "Outdoors",
        6,
    ),
    (
        "b-baby",
        "beta",
        "Choosing a stroller for your baby",
        "Parents compare strollers and baby slings for city life.",
        "Parenting",
        1,
    ),
    (
        "c-sake",
        "gamma",
        "Sake rice and the brewers of Kobe",
        "Nada brewers in Kobe rely on rice from Hyogo for their sake.",
        "Food",
        4,
    ),
    (
        "c-fuji",
        "gamma",
        "Fuji views from the five lakes",
        "Lake Kawaguchi frames Mount Fuji; the summit glows at dawn.",
        "Nature",
        7,
    ),
    (
        "c-baby",
        "gamma",
        "Baby slings and strollers on trains",
        "Tips for parents taking a baby stroller on crowded trains.",
        "Kids",
        9,
    ),
]

TINY_SITES = {
    "alpha": {"display_name": "Alpha News", "url": "https://alpha.example"},
    "beta": {"display_name": "Beta Life", "url": "https://beta.example"},
    "gamma": {"display_name": "Gamma Travel", "url": "https://gamma.example"},
}


def tiny_articles() -> pd.DataFrame:
    rows = [
        {
            "article_id": aid,
            "site": site,
            "url": f"https://{site}.example/{aid}",
            "title": title,
            "body": body,
            "category": category,
            "published_at": (NOW - pd.Timedelta(days=days)).isoformat(),
        }
        for aid, site, title, body, category, days in TINY_ARTICLES
    ]
    return pd.DataFrame(rows)


def tiny_events(views: dict[str, int] | None = None) -> pd.DataFrame:
    """``views[article_id]`` views spread over the 24 hours before NOW."""
    views = views or {"b-baby": 300, "c-fuji": 40, "a-sake": 10}
    rows = []
    for article_id, count in views.items():
        for i in range(count):
            rows.append(
                {
                    "ts": (NOW - pd.Timedelta(minutes=1 + (i * 1440) // count)).isoformat(),
                    "article_id": article_id,
                    "kind": "view",
                }
            )
    return pd.DataFrame(rows)


def tiny_config(tmp_path: Path | None = None, **sections: dict) -> Config:
    data: dict = {
        "sites": TINY_SITES,
        "run": {"now": NOW.isoformat()},
        "features": {"max_df": 1.0, "category_weight": 0.0},
        "mix": {"k": 4, "max_per_site": 2, "max_per_category": 2, "trending_pool": 20},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data, base_dir=tmp_path)


@pytest.fixture
def tiny_network(tmp_path: Path) -> tuple[Config, Path]:
    """Config plus article/event files of the tiny network in tmp_path."""
    tiny_articles().to_csv(tmp_path / "articles.csv", index=False)
    tiny_events().to_csv(tmp_path / "events.csv", index=False)
    config = tiny_config(
        tmp_path,
        data={"articles": ["articles.csv"], "events": ["events.csv"]},
        store={"url": "sqlite:///store.sqlite", "model_path": "model.rec"},
    )
    return config, tmp_path
