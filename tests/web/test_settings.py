"""The service's settings: validated with messages that name the field, and
handed to worker processes through the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recommender.errors import ConfigError
from recommender.web import ServiceSettings
from recommender.web.app import SETTINGS_ENV, app_from_environment
from tests.web.conftest import SITES, make_client

CLI = [sys.executable, "-m", "recommender.cli"]


def test_settings_round_trip_through_json(tmp_path: Path) -> None:
    settings = ServiceSettings(
        store_url="sqlite:////srv/lists.sqlite",
        events_dir=tmp_path / "events",
        sites=SITES,
        public_url="https://recs.example.com",
        events_burst=7,
        header_timeout_seconds=2.5,
        body_timeout_seconds=4.0,
        keep_alive_seconds=3,
    )
    assert ServiceSettings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cache_size": 0}, "cache_size must be >= 1, got 0"),
        ({"events_rate_per_second": 0}, "events_rate_per_second must be > 0 seconds"),
        ({"max_age_seconds": -1}, "max_age_seconds must be >= 0 seconds, got -1"),
        ({"public_url": "recs.example.com"}, "public_url must be an http(s) URL"),
        ({"sites": {"Bad Key": "x"}}, "site keys must match"),
        ({"header_timeout_seconds": 0}, "header_timeout_seconds must be > 0 seconds, got 0"),
        ({"body_timeout_seconds": -1.5}, "body_timeout_seconds must be > 0 seconds, got -1.5"),
        ({"keep_alive_seconds": 0}, "keep_alive_seconds must be > 0 seconds, got 0"),
        (
            {"experiments": {"ab": {"placement": "p", "variants": {"only": 1}}}},
            "experiments.ab: experiment 'ab': needs at least 2 variants",
        ),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ServiceSettings(store_url="sqlite:///x", events_dir=tmp_path, **changes)


def test_malformed_settings_json_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="malformed service settings"):
        ServiceSettings.from_json('{"store_url": "x"}')


def test_workers_build_the_app_from_the_environment(settings, monkeypatch) -> None:
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    with pytest.raises(ConfigError, match="RECOMMENDER_SERVICE_SETTINGS is not set"):
        app_from_environment()
    monkeypatch.setenv(SETTINGS_ENV, settings.to_json())
    with make_client(app_from_environment()) as client:
        assert client.get("/v1/recommendations/jt-1").json()["run_id"] == "run-01"


def test_serve_refuses_any_free_port_with_several_workers(store_url: str) -> None:
    done = subprocess.run(
        [*CLI, "serve", "--store", store_url, "--port", "0", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--port 0 (any free port) needs --workers 1" in done.stderr
