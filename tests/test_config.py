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


@pytest.mark.parametrize(
    "toml, field, suggestion",
    [
        ("[trending]\nhalf_life_hour = 12\n", "trending.half_life_hour", "half_life_hours"),
        ("[mix]\nmax_per_sites = 2\n", "mix.max_per_sites", "max_per_site"),
        ("[mix.weights]\nrelevanse = 0.5\n", "mix.weights.relevanse", "relevance"),
        (
            "[sites.alpha]\ndisplay_name = 'Alpha'\ncatgories = []\n",
            "sites.alpha.catgories",
            "categories",
        ),
        ("[trendng]\nhalf_life_hours = 12\n", "trendng", "trending"),
        ("[store]\nmodel_pth = 'm.rec'\n", "store.model_pth", "model_path"),
    ],
)
def test_a_mistyped_key_gets_a_did_you_mean(
    tmp_path: Path, toml: str, field: str, suggestion: str
) -> None:
    sites = "".join(
        f"[sites.{key}]\ndisplay_name = '{site['display_name']}'\n"
        for key, site in TINY_SITES.items()
        if f"[sites.{key}]" not in toml
    )
    path = tmp_path / "network.toml"
    path.write_text(sites + toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid configuration")
    assert f"  {field}: unknown key; did you mean {suggestion!r}?" in message.splitlines()


def test_an_unknown_key_without_a_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"sites": TINY_SITES, "trending": {"colour": "red"}}, source="net.toml")
    assert "trending.colour: unknown key; known keys: half_life_hours, prior_views" in str(
        info.value
    )


def test_a_missing_config_says_how_to_pass_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "recommender.toml")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'recommender.toml'}: config file not found")
    for hint in ("-c PATH", "$RECOMMENDER_CONFIG", "recommender.toml", "data/sample.toml"):
        assert hint in message


@pytest.mark.parametrize("command", [["run"], ["ingest", "feed.xml", "--site", "a"], ["evaluate"]])
def test_a_command_without_a_config_says_how_to_pass_one(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from recommender.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECOMMENDER_CONFIG", raising=False)
    done = CliRunner().invoke(cli, command)
    assert done.exit_code == 2, done.output
    text = " ".join(done.output.split())
    assert "recommender.toml: config file not found" in text
    for hint in ("-c PATH", "$RECOMMENDER_CONFIG", "data/sample.toml"):
        assert hint in text, (hint, text)


def test_the_sample_network_fixture_keeps_runs_out_of_the_repository(
    sample_network: Path,
) -> None:
    config = load_config(sample_network / "data" / "sample.toml")
    assert config.store.url == f"sqlite:///{sample_network / 'var' / 'sample-store.sqlite'}"
    assert config.store.model_path == sample_network / "var" / "sample-model.rec"
    assert all(path.is_relative_to(sample_network) for path in config.data.articles)
