"""The PostgreSQL store (psycopg 3), for networks whose web nodes share a database.

URL: ``postgresql://user:password@host:5432/dbname?schema=recommender`` —
any libpq connection URL; the optional ``schema`` parameter (default
``recommender``) names the PostgreSQL schema that holds the store's tables,
so several stores can share one database.

The schema is created and migrated on open: ``MIGRATIONS`` lists numbered
steps and ``schema_migrations`` records those applied, under an advisory lock
so that two processes opening a new store do not race. Lists are written with
``COPY``; reads are single primary-key queries. See
:mod:`recommender.store._sql` for the table model and atomicity.

Opened with ``read_only=True`` (what a web node's reader does), nothing is
created or migrated (a role with ``USAGE`` on the schema and ``SELECT`` on
its tables is enough) and every connection is ``default_transaction_read_only``.
Data the server reports corrupt (SQLSTATE ``XX001``, ``XX002``) raises
:class:`~recommender.store._sql.DamagedStoreError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

try:
    import psycopg
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "the PostgreSQL store needs psycopg: pip install 'recommender[postgres]'"
    ) from error

from recommender.errors import StoreError
from recommender.store._sql import SQLStore

#: SQLSTATEs of data_corrupted and index_corrupted.
_DAMAGE_STATES = ("XX001", "XX002")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: (version, statements) in order; each step runs once, inside one transaction.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
            """CREATE TABLE runs (
            seq bigserial UNIQUE,
            run_id text PRIMARY KEY,
            created_at text NOT NULL,
            status text NOT NULL CHECK (status IN ('published', 'failed')),
            config_hash text NOT NULL DEFAULT '',
            model_version text NOT NULL DEFAULT '',
            n_lists integer NOT NULL DEFAULT 0,
            summary jsonb NOT NULL DEFAULT '{}',
            published_at text NOT NULL DEFAULT '',
            error text NOT NULL DEFAULT ''
        )""",
            """CREATE TABLE lists (
            run_id text NOT NULL,
            source_id text NOT NULL,
            payload text NOT NULL,
            PRIMARY KEY (run_id, source_id)
        )""",
        ],
    ),
    (
        2,
        # Delta runs (see recommender.store._sql): the full run a delta is
        # layered on (NULL for a full run) and how many rows the delta stores.
        [
            "ALTER TABLE runs ADD COLUMN base_run_id text",
            "ALTER TABLE runs ADD COLUMN delta_rows integer NOT NULL DEFAULT 0",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def split_url(url: str) -> tuple[str, str]:
    """(libpq URL without our ``schema`` parameter, schema name)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "recommender")
    if not _SCHEMA_NAME.match(schema):
        raise StoreError(f"schema={schema!r}: expected lower-case letters, digits and '_'")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(SQLStore):
    """PostgreSQL backend of :class:`recommender.store.Store`.

    One connection per thread, in autocommit mode for reads.
    ``connect_timeout``: seconds to wait for the server. ``keep_runs``,
    ``compact_fraction``: see :class:`SQLStore`. ``read_only``: only read
    (see the module docs). ``create=False``: refuse a schema that holds no
    store yet instead of creating one.
    """

    order_column = "seq"
    database_errors = (psycopg.Error,)

    def __init__(
        self,
        url: str,
        *,
        keep_runs: int = 5,
        connect_timeout: float = 5.0,
        compact_fraction: float = 0.25,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        super().__init__(
            keep_runs=keep_runs, compact_fraction=compact_fraction, read_only=read_only
        )
        self.url = url
        self.conninfo, self.schema = split_url(url)
        self.connect_timeout = connect_timeout
        if read_only or not create:
            version = self._stored_version()
            if version > SCHEMA_VERSION:
                self._drop_connection()
                raise StoreError(
                    f"{self._describe()}: store schema version {version} was written by a "
                    f"newer recommender; this one reads up to {SCHEMA_VERSION}"
                )
        if not read_only:
            self._migrate()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"PostgresStore({redact(self.url)!r}{mode})"

    def _describe(self) -> str:
        return redact(self.url)

    def _connect(self) -> psycopg.Connection:
        options = f"-c search_path={self.schema}"
        if self.read_only:
            options += " -c default_transaction_read_only=on"
        return psycopg.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self.connect_timeout)),
            options=options,
            application_name="recommender",
        )

    def _is_alive(self, conn: psycopg.Connection) -> bool:
        return not conn.closed and not conn.broken

    def _is_damage(self, error: BaseException) -> bool:
        return getattr(error, "sqlstate", None) in _DAMAGE_STATES

    def _damage_advice(self) -> str:
        return (
            "Retrying will not help: see the PostgreSQL server's log; restore the database "
            "or the schema from a backup, or drop the schema and `recommender run` again"
        )

    def _stored_version(self) -> int:
        """The schema version recorded in the store; StoreError when the
        schema holds no store (never created)."""
        try:
            rows = self._conn().execute("SELECT max(version) FROM schema_migrations").fetchall()
        except psycopg.errors.UndefinedTable:
            self._drop_connection()
            raise StoreError(
                f"{self._describe()}: no store in schema {self.schema!r} (nothing published "
                "yet); run `recommender run` first, or check the URL"
            ) from None
        except psycopg.Error as error:
            self._drop_connection()
            raise StoreError(f"{self._describe()}: cannot read the store: {error}") from None
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    @contextmanager
    def _transaction(self, conn: psycopg.Connection) -> Iterator[Any]:
        with conn.transaction():
            # One writer at a time: a publish of changes reads the current run
            # it builds on, and pruning reads which runs are kept. Readers
            # (plain SELECTs) are not blocked by this lock mode.
            conn.execute("LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE")
            yield conn

    def _insert_lists(self, conn: psycopg.Connection, rows: Iterator[tuple[str, str, str]]) -> int:
        n = 0
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY lists (run_id, source_id, payload) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            with conn.transaction():
                # One migrator at a time per schema, across processes.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"recommender:{self.schema}",)
                )
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
                version = int(row[0]) if row and row[0] is not None else 0
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self._describe()}: store schema version {version} was written by a "
                        f"newer recommender; this one reads up to {SCHEMA_VERSION}"
                    )
                for step, statements in MIGRATIONS:
                    if step > version:
                        for statement in statements:
                            conn.execute(statement)
                        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (step,))
        except psycopg.Error as error:
            self._drop_connection()
            raise StoreError(f"{self._describe()}: cannot prepare the store: {error}") from None

    def drop(self) -> None:
        """Delete the store's schema and everything in it (for tests and teardown)."""
        conn = self._conn()
        conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.close()
