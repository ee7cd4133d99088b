"""Where the PostgreSQL tests find a server, and how they skip without one.

``RECOMMENDER_TEST_POSTGRES_URL`` (default: the local server on 127.0.0.1,
database ``test``, user ``postgres``) names the database; every test gets a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from functools import cache

import pytest

BASE_URL = os.environ.get(
    "RECOMMENDER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@cache
def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'recommender[postgres]')"
    try:
        psycopg.connect(BASE_URL, connect_timeout=2).close()
    except psycopg.Error as error:
        return f"no PostgreSQL server at {BASE_URL}: {str(error).strip()}"
    return None


def require_postgres() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def fresh_url() -> str:
    """A store URL in a schema of its own."""
    separator = "&" if "?" in BASE_URL else "?"
    return f"{BASE_URL}{separator}schema=t_{uuid.uuid4().hex[:12]}"
