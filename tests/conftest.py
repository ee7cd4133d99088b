"""Shared fixtures: a tiny network whose right answers are known by construction,
a copy of the bundled sample, and a guard that keeps every test out of the
repository's own ``var/`` and ``data/`` (tests write to temporary folders only)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from recommender.config import Config, parse_config

NOW = pd.Timestamp("2021-03-08T00:00:00Z")
REPO = Path(__file__).resolve().parents[1]
#: Folders of the repository no test may write to: the user's own sample
#: store and model (var/, where `recommender run --config data/sample.toml`
#: publishes) and the sample's inputs.
GUARDED = [REPO / "var", REPO / "data"]

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


def write_network_config(folder: Path, store: str = "") -> Path:
    """``folder/network.toml``: the tiny network (see :func:`tiny_network`)
    as a config file, with ``store`` (TOML lines of its ``[store]`` section;
    none: the default store beside the config)."""
    path = folder / "network.toml"
    path.write_text(
        "[sites.alpha]\ndisplay_name = 'Alpha'\n[sites.beta]\ndisplay_name = 'Beta'\n"
        "[sites.gamma]\ndisplay_name = 'Gamma'\n"
        "[data]\narticles = ['articles.csv']\nevents = ['events.csv']\n"
        + (f"[store]\n{store}\n" if store else "")
        + f"[run]\nnow = '{NOW.isoformat()}'\n[features]\nmax_df = 1.0\n[mix]\nk = 4\n"
    )
    return path


@pytest.fixture
def sample_network(tmp_path: Path) -> Path:
    """A copy of the bundled sample in ``tmp_path``: ``data/`` (its config, its
    articles and pageviews) and an empty ``var/``, laid out as in the
    repository. The copy's ``data/sample.toml`` is the sample's own, so its
    store and model file (``../var/``) land in ``tmp_path/var``. Run a README
    command from the returned folder exactly as written."""
    shutil.copytree(REPO / "data", tmp_path / "data")
    (tmp_path / "var").mkdir()
    return tmp_path


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``folder``."""
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while walking
                continue
            found[str(path.relative_to(REPO))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(autouse=True)
def _repository_folders_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that writes into the repository's var/ or data/ (a run of
    the sample into the user's store, a report, a screenshot): tests use
    ``tmp_path`` (see ``sample_network`` for the sample)."""
    before = {folder: _files(folder) for folder in GUARDED}
    yield
    for folder, files in before.items():
        after = _files(folder)
        changed = sorted(
            name for name in files.keys() | after.keys() if files.get(name) != after.get(name)
        )
        if changed:
            pytest.fail(
                f"{request.node.nodeid} wrote into the repository's {folder.name}/: "
                f"{', '.join(changed)}; tests must write to temporary folders "
                "(tmp_path; the sample_network fixture copies the sample there)",
                pytrace=False,
            )
