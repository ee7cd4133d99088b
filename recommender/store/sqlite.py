"""The embedded store: one SQLite file in WAL mode (see :mod:`recommender.store._sql`).

The schema is created and migrated on open: ``MIGRATIONS`` lists numbered
steps, ``meta.schema_version`` records the last one applied. A file written
by a newer version of this package is refused rather than altered.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from recommender.errors import StoreError
from recommender.store._sql import SQLStore

_BATCH = 5000

#: (version, script) in order; a step runs once, inside one transaction.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL,
            config_hash TEXT NOT NULL DEFAULT '',
            model_version TEXT NOT NULL DEFAULT '',
            n_lists INTEGER NOT NULL DEFAULT 0,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE IF NOT EXISTS lists (
            run_id TEXT NOT NULL,
            source_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (run_id, source_id)
        ) WITHOUT ROWID;
    """,
    ),
    (
        2,
        """
        ALTER TABLE runs ADD COLUMN published_at TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN error TEXT NOT NULL DEFAULT '';
    """,
    ),
    (
        3,
        # Delta runs (see recommender.store._sql): the full run a delta is
        # layered on (NULL for a full run) and how many rows the delta stores.
        """
        ALTER TABLE runs ADD COLUMN base_run_id TEXT;
        ALTER TABLE runs ADD COLUMN delta_rows INTEGER NOT NULL DEFAULT 0;
    """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


class SQLiteStore(SQLStore):
    """SQLite backend of :class:`recommender.store.Store`.

    Safe to share between threads (one connection per thread). ``timeout``:
    seconds to wait for another writer's lock before failing.
    ``keep_runs``, ``compact_fraction``: see :class:`SQLStore`.
    """

    order_column = "rowid"
    database_errors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | Path,
        *,
        keep_runs: int = 5,
        timeout: float = 30.0,
        compact_fraction: float = 0.25,
    ) -> None:
        super().__init__(keep_runs=keep_runs, compact_fraction=compact_fraction)
        self.path = Path(path)
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create the store's folder: {error}") from None
        self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _describe(self) -> str:
        return str(self.path)

    def _sql(self, query: str) -> str:
        return query.replace("%s", "?")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT).
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _insert_lists(self, conn: sqlite3.Connection, rows: Iterator[tuple[str, str, str]]) -> int:
        n = 0
        while batch := list(islice(rows, _BATCH)):
            conn.executemany(
                "INSERT INTO lists (run_id, source_id, payload) VALUES (?, ?, ?)", batch
            )
            n += len(batch)
        return n

    def _migrate(self) -> None:
        try:
            conn = self._conn()
            # Readers open stores all the time, also while a writer publishes:
            # only take the write lock when there is something to migrate.
            if _schema_version(conn) == SCHEMA_VERSION:
                return
            with self._transaction(conn):
                version = _schema_version(conn)
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path}: store schema version {version} was written by a newer "
                        f"recommender; this one reads up to {SCHEMA_VERSION}"
                    )
                for step, script in MIGRATIONS:
                    if step > version:
                        for statement in filter(str.strip, script.split(";")):
                            conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as error:
            self._drop_connection()
            raise StoreError(
                f"{self.path}: cannot open as a recommendation store: {error}"
            ) from None


def _schema_version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0
