"""The OpenAPI contract, checked by Schemathesis: generated requests (valid
and invalid) against the service, every response checked against the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from recommender.web import ServiceSettings, create_app
from tests.web.conftest import SITES, publish


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    folder: Path = tmp_path_factory.mktemp("openapi")
    store_url = f"sqlite:///{folder / 'lists.sqlite'}"
    publish(store_url, "run-01")
    app = create_app(
        ServiceSettings(
            store_url=store_url,
            events_dir=folder / "events",
            sites=SITES,
            # Generated requests come in bursts from one client: no 429 here
            # (rate limits have their own tests).
            events_rate_per_second=1e6,
            events_burst=1_000_000,
            # Nor a 413 before validation for a big generated body (Schemathesis
            # counts only 4xx codes of validation as a refusal; the size limit
            # has its own tests).
            events_max_body_bytes=10_000_000,
        )
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_spec(case) -> None:
    case.call_and_validate()
