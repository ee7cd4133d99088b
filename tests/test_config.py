from __future__ import annotations

from pathlib import Path

import pytest

from recommender.config import load_config, parse_config
from recommender.errors import ConfigError
from tests.conftest import TINY_SITES

REPO = Path(__file__).resolve().parents[1]


def test_sample_config_loads_with_paths_resolved_against_its_folder() -> None:
    config = load_config(REPO / "data" / "sample.toml")
    assert list(config.sites) == ["japantoday", "savvytokyo", "gaijinpot-blog", "gaijinpot-travel"]
    assert config.sites["savvytokyo"].display_name == "Savvy Tokyo"
    assert config.data.articles == [
        REPO / "data" / "articles.csv",
        REPO / "data" / "late-additions.jsonl",
    ]
    assert config.store.url == f"sqlite:///{REPO / 'var' / 'sample-store.sqlite'}"
    assert config.run.now is not None and config.run.now.utcoffset().total_seconds() == 0


def test_defaults_serve_a_minimal_config() -> None:
    config = parse_config({"sites": TINY_SITES})
    assert config.mix.k == 12 and config.trending.half_life_hours == 24
    assert config.allowed_pairs()["alpha"] == ["beta", "gamma"]


def test_allowed_pairs_can_restrict_and_include_own_site() -> None:
    config = parse_config(
        {"sites": TINY_SITES, "similarity": {"allowed": {"alpha": ["alpha", "beta"]}}}
    )
    assert config.allowed_pairs() == {
        "alpha": ["alpha", "beta"],
        "beta": ["alpha", "gamma"],
        "gamma": ["alpha", "beta"],
    }


@pytest.mark.parametrize(
    "data, where",
    [
        ({"sites": TINY_SITES, "mix": {"k": 0}}, "mix.k"),
        ({"sites": TINY_SITES, "mix": {"max_per_site": "two"}}, "mix.max_per_site"),
        ({"sites": TINY_SITES, "mix": {"kk": 3}}, "mix.kk"),
        ({"sites": TINY_SITES, "trending": {"half_life_hours": -1}}, "trending.half_life_hours"),
        ({"sites": {"alpha": {"display_name": "A"}}}, "sites"),
        ({"sites": {**TINY_SITES, "Bad Key": {"display_name": "B"}}}, "sites"),
        ({"sites": {**TINY_SITES, "delta": {}}}, "sites.delta.display_name"),
        (
            {"sites": {**TINY_SITES, "delta": {"display_name": "D", "url": "ftp://d"}}},
            "sites.delta.url",
        ),
        ({"sites": TINY_SITES, "similarity": {"allowed": {"alpha": ["omega"]}}}, "omega"),
        ({"sites": TINY_SITES, "run": {"now": "2021-03-08T00:00:00"}}, "run.now"),
        (
            {"sites": TINY_SITES, "mix": {"weights": {"relevance": 0, "trend": 0, "freshness": 0}}},
            "mix.weights",
        ),
        ({"sites": TINY_SITES, "features": {"ngram_range": [2, 1]}}, "features.ngram_range"),
    ],
)
def test_invalid_settings_name_the_field(data: dict, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="net.toml")
    assert str(info.value).startswith("net.toml: invalid configuration")
    assert where in str(info.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[sites\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml")


def test_config_hash_changes_with_settings() -> None:
    a = parse_config({"sites": TINY_SITES})
    b = parse_config({"sites": TINY_SITES, "mix": {"k": 6}})
    assert a.config_hash() == parse_config({"sites": TINY_SITES}).config_hash()
    assert a.config_hash() != b.config_hash()
