"""What the SQL backends share: the run/list/meta model and its queries.

Three tables: ``runs`` (one row per recorded run, in publish order),
``lists`` (one JSON payload per run and source id, primary key
(run_id, source_id)) and ``meta`` (the current run). A publish inserts the
run and its lists and switches ``meta.current_run`` inside one transaction,
so a reader's single query sees the old run or the new one; a crash
mid-publish rolls back and leaves the old run served. Runs beyond
``keep_runs`` are pruned after each publish.

Run status as recorded: ``published`` or ``failed``; :meth:`runs` reports
the served run as ``current`` and older published runs as ``kept`` (each
can be rolled back to).

Backends supply a connection per thread, a transaction context, the bulk
insert of lists, their placeholder style and the ordering column.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from typing import Any

from recommender.errors import StoreError
from recommender.lists import PublishableList, RecommendationList, RunInfo

_RUN_COLUMNS = (
    "run_id, created_at, status, config_hash, model_version, n_lists, summary, published_at, error"
)


class SQLStore(ABC):
    """Base of the SQLite and PostgreSQL stores (see module docs)."""

    #: Column giving the order in which runs were recorded.
    order_column = "rowid"
    #: Exceptions of the driver that mean "the database failed".
    database_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, *, keep_runs: int) -> None:
        self.keep_runs = keep_runs
        self._local = threading.local()

    # -- backend hooks -------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any:
        """A new connection in autocommit mode."""

    @abstractmethod
    def _transaction(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction on ``conn`` (commit on success, roll back on error)."""

    @abstractmethod
    def _insert_lists(self, conn: Any, rows: Iterator[tuple[str, str, str]]) -> int:
        """Insert (run_id, source_id, payload) rows; return how many."""

    @abstractmethod
    def _describe(self) -> str:
        """The store's name in messages (a path, or a URL without password)."""

    def _sql(self, query: str) -> str:
        """``query`` with ``%s`` placeholders in the driver's style."""
        return query

    def _is_alive(self, conn: Any) -> bool:
        return True

    # -- connections -----------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or not self._is_alive(conn):
            try:
                conn = self._connect()
            except self.database_errors as error:
                raise StoreError(f"{self._describe()}: cannot connect: {error}") from None
            self._local.conn = conn
        return conn

    def _fetch(self, query: str, params: tuple = ()) -> list[tuple]:
        try:
            return list(self._conn().execute(self._sql(query), params).fetchall())
        except self.database_errors as error:
            self._drop_connection()
            raise StoreError(f"{self._describe()}: read failed: {error}") from None

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with suppress(*self.database_errors):  # already gone
                conn.close()

    def close(self) -> None:
        self._drop_connection()

    # -- reads -------------------------------------------------------------------
    def get_payload(self, source_id: str) -> str | None:
        """The current run's list for ``source_id`` as JSON text, or None."""
        rows = self._fetch(
            "SELECT payload FROM lists WHERE source_id = %s AND run_id = "
            "(SELECT value FROM meta WHERE key = 'current_run')",
            (source_id,),
        )
        return rows[0][0] if rows else None

    def get(self, source_id: str) -> RecommendationList | None:
        payload = self.get_payload(source_id)
        return RecommendationList.from_json(payload) if payload is not None else None

    def current_run_id(self) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = 'current_run'")
        return rows[0][0] if rows else None

    def current_run(self) -> RunInfo | None:
        run_id = self.current_run_id()
        return self.run(run_id) if run_id is not None else None

    def run(self, run_id: str) -> RunInfo | None:
        """One recorded run, or None."""
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s", (run_id,))
        return self._run_info(rows[0], self.current_run_id()) if rows else None

    def runs(self) -> list[RunInfo]:
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY {self.order_column} DESC")
        current = self.current_run_id()
        return [self._run_info(row, current) for row in rows]

    @staticmethod
    def _run_info(row: tuple, current: str | None) -> RunInfo:
        run_id, created, status, config_hash, version, n_lists, summary, published, error = row
        if status == "published":
            status = "current" if run_id == current else "kept"
        summary = json.loads(summary) if isinstance(summary, str) else summary
        return RunInfo(
            run_id,
            str(created),
            config_hash,
            version,
            summary or {},
            status,
            n_lists,
            str(published or ""),
            error or "",
        )

    def source_ids(self) -> Iterator[str]:
        """Source ids of the current run's lists, in order."""
        rows = self._fetch(
            "SELECT source_id FROM lists WHERE run_id = "
            "(SELECT value FROM meta WHERE key = 'current_run') ORDER BY source_id"
        )
        yield from (row[0] for row in rows)

    # -- writes ------------------------------------------------------------------
    def publish(self, lists: Iterable[PublishableList], run: RunInfo) -> RunInfo:
        conn = self._conn()
        try:
            with self._transaction(conn):
                if conn.execute(
                    self._sql("SELECT 1 FROM runs WHERE run_id = %s"), (run.run_id,)
                ).fetchone():
                    raise StoreError(f"{self._describe()}: run {run.run_id} was already recorded")
                conn.execute(
                    self._sql(
                        f"INSERT INTO runs ({_RUN_COLUMNS}) "
                        "VALUES (%s, %s, 'published', %s, %s, 0, %s, '', '')"
                    ),
                    (
                        run.run_id,
                        run.created_at,
                        run.config_hash,
                        run.model_version,
                        json.dumps(run.summary, default=str),
                    ),
                )
                rows = ((run.run_id, lst.source_id, lst.to_json()) for lst in lists)
                n_lists = self._insert_lists(conn, rows)
                if n_lists == 0:
                    raise StoreError(
                        f"{self._describe()}: refusing to publish run {run.run_id} with no "
                        "lists; the current run stays served"
                    )
                conn.execute(
                    self._sql("UPDATE runs SET n_lists = %s, published_at = %s WHERE run_id = %s"),
                    (n_lists, _now(), run.run_id),
                )
                self._set_current(conn, run.run_id)
        except self.database_errors as error:
            self._drop_connection()
            raise StoreError(
                f"{self._describe()}: publish of run {run.run_id} failed, the previous run "
                f"stays served: {error}"
            ) from None
        self._prune()
        recorded = self.run(run.run_id)
        assert recorded is not None
        return recorded

    def record_failure(self, run: RunInfo, error: str) -> None:
        """Record a run that failed before publishing (the current run stays)."""
        conn = self._conn()
        try:
            with self._transaction(conn):
                conn.execute(
                    self._sql(
                        f"INSERT INTO runs ({_RUN_COLUMNS}) "
                        "VALUES (%s, %s, 'failed', %s, %s, 0, %s, '', %s)"
                    ),
                    (
                        run.run_id,
                        run.created_at,
                        run.config_hash,
                        run.model_version,
                        json.dumps(run.summary, default=str),
                        error[:4000],
                    ),
                )
        except self.database_errors as db_error:
            self._drop_connection()
            raise StoreError(f"{self._describe()}: cannot record failed run: {db_error}") from None
        self._prune()

    def rollback(self, run_id: str) -> RunInfo:
        conn = self._conn()
        try:
            with self._transaction(conn):
                row = conn.execute(
                    self._sql("SELECT status FROM runs WHERE run_id = %s"), (run_id,)
                ).fetchone()
                if row is None or row[0] != "published":
                    kept = [r.run_id for r in self.runs() if r.status in ("current", "kept")]
                    raise StoreError(
                        f"{self._describe()}: no kept run {run_id!r} to roll back to "
                        f"(kept: {', '.join(kept) or 'none'})"
                    )
                self._set_current(conn, run_id)
        except self.database_errors as error:
            self._drop_connection()
            raise StoreError(f"{self._describe()}: rollback failed: {error}") from None
        recorded = self.run(run_id)
        assert recorded is not None
        return recorded

    def _set_current(self, conn: Any, run_id: str) -> None:
        conn.execute(self._sql("DELETE FROM meta WHERE key = 'current_run'"))
        conn.execute(
            self._sql("INSERT INTO meta (key, value) VALUES ('current_run', %s)"), (run_id,)
        )

    def _prune(self) -> None:
        """Drop published runs beyond the newest ``keep_runs`` (never the
        current one) and failed records beyond the newest ``keep_runs``."""
        current = self.current_run_id()
        ordered = self._fetch(f"SELECT run_id, status FROM runs ORDER BY {self.order_column} DESC")
        old: list[str] = []
        for status in ("published", "failed"):
            ids = [run_id for run_id, s in ordered if s == status and run_id != current]
            keep = self.keep_runs - 1 if status == "published" and current else self.keep_runs
            old += ids[max(keep, 0) :]
        if not old:
            return
        conn = self._conn()
        try:
            with self._transaction(conn):
                for run_id in old:
                    conn.execute(self._sql("DELETE FROM lists WHERE run_id = %s"), (run_id,))
                    conn.execute(self._sql("DELETE FROM runs WHERE run_id = %s"), (run_id,))
        except self.database_errors as error:
            self._drop_connection()
            raise StoreError(f"{self._describe()}: pruning old runs failed: {error}") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
