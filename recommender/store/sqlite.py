"""The embedded store: one SQLite file in WAL mode.

Tables: ``runs`` (one row per kept run), ``lists`` (one JSON payload per run
and source id, primary key (run_id, source_id)) and ``meta`` (schema version
and the current run). A publish inserts the new run's lists and switches
``meta.current_run`` inside one transaction, so a reader's single query sees
either the old run or the new one; a crash mid-publish rolls back and leaves
the old run served. Old runs beyond ``keep_runs`` are pruned afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from recommender.errors import StoreError
from recommender.lists import RecommendationList, RunInfo

SCHEMA_VERSION = 1
_BATCH = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
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
"""

_GET = """
SELECT payload FROM lists
WHERE run_id = (SELECT value FROM meta WHERE key = 'current_run') AND source_id = ?
"""


def _run_from_row(row: tuple) -> RunInfo:
    run_id, created_at, status, config_hash, model_version, n_lists, summary = row
    return RunInfo(
        run_id, created_at, config_hash, model_version, json.loads(summary), status, n_lists
    )


class SQLiteStore:
    """SQLite backend of :class:`recommender.store.Store`.

    Safe to share between threads: each thread gets its own connection.
    """

    def __init__(self, path: str | Path, *, keep_runs: int = 5, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.keep_runs = keep_runs
        self.timeout = timeout
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            version = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{self.path}: cannot open as a recommendation store: {error}"
            ) from None
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create store: {error}") from None
        if int(version) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version}, this code reads {SCHEMA_VERSION}"
            )

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: transactions are explicit (BEGIN ... COMMIT).
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    # -- reads ---------------------------------------------------------------
    def get_payload(self, source_id: str) -> str | None:
        """The current run's list for ``source_id`` as JSON text, or None."""
        try:
            row = self._conn().execute(_GET, (source_id,)).fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: read failed: {error}") from None
        return row[0] if row else None

    def get(self, source_id: str) -> RecommendationList | None:
        payload = self.get_payload(source_id)
        return RecommendationList.from_json(payload) if payload is not None else None

    def current_run(self) -> RunInfo | None:
        row = (
            self._conn()
            .execute(
                "SELECT r.run_id, r.created_at, r.status, r.config_hash, r.model_version, "
                "r.n_lists, r.summary FROM runs r JOIN meta m "
                "ON m.key = 'current_run' AND m.value = r.run_id"
            )
            .fetchone()
        )
        return _run_from_row(row) if row else None

    def current_run_id(self) -> str | None:
        """Cheap check of which run is served (one primary-key read)."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'current_run'").fetchone()
        return row[0] if row else None

    def runs(self) -> list[RunInfo]:
        rows = (
            self._conn()
            .execute(
                "SELECT run_id, created_at, status, config_hash, model_version, n_lists, summary "
                "FROM runs ORDER BY rowid DESC"
            )
            .fetchall()
        )
        current = self.current_run_id()
        return [
            _run_from_row(row) if row[0] == current else _run_from_row((*row[:2], "kept", *row[3:]))
            for row in rows
        ]

    def source_ids(self) -> Iterator[str]:
        """Source ids of the current run's lists."""
        yield from (
            row[0]
            for row in self._conn().execute(
                "SELECT source_id FROM lists WHERE run_id = "
                "(SELECT value FROM meta WHERE key = 'current_run') ORDER BY source_id"
            )
        )

    # -- writes --------------------------------------------------------------
    def publish(self, lists: Iterable[RecommendationList], run: RunInfo) -> RunInfo:
        conn = self._conn()
        n_lists = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone():
                raise StoreError(f"{self.path}: run {run.run_id} was already published")
            rows = ((run.run_id, lst.source_id, lst.to_json()) for lst in lists)
            while batch := list(islice(rows, _BATCH)):
                conn.executemany("INSERT INTO lists VALUES (?, ?, ?)", batch)
                n_lists += len(batch)
            if n_lists == 0:
                raise StoreError(
                    f"{self.path}: refusing to publish run {run.run_id} "
                    "with no lists; the current run stays served"
                )
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, 'published', ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.created_at,
                    run.config_hash,
                    run.model_version,
                    n_lists,
                    json.dumps(run.summary, default=str),
                ),
            )
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('current_run', ?)", (run.run_id,))
            conn.execute("COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise StoreError(
                    f"{self.path}: publish of run {run.run_id} failed, "
                    f"the previous run stays served: {error}"
                ) from None
            raise
        self._prune()
        recorded = self.current_run()
        assert recorded is not None
        return recorded

    def rollback(self, run_id: str) -> RunInfo:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                kept = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
                raise StoreError(f"{self.path}: no kept run {run_id!r} (kept: {kept})")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('current_run', ?)", (run_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        recorded = self.current_run()
        assert recorded is not None
        return recorded

    def _prune(self) -> None:
        conn = self._conn()
        current = self.current_run_id()
        old = [
            row[0]
            for row in conn.execute(
                "SELECT run_id FROM runs ORDER BY rowid DESC LIMIT -1 OFFSET ?",
                (self.keep_runs,),
            )
            if row[0] != current
        ]
        if not old:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for run_id in old:
                conn.execute("DELETE FROM lists WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
