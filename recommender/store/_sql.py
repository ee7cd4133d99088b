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

**Full and delta runs.** A *full* run (:meth:`SQLStore.publish`) stores all
its lists. A *delta* run (:meth:`SQLStore.publish_changes`) stores only how it
differs from its *base*, a full run named by ``runs.base_run_id``: a row per
changed or added list, and a *tombstone* row (payload ``''``, never a valid
list) per list of the base it no longer has. Deltas are cumulative: a delta
published on top of a delta copies the previous delta's rows it does not
override and keeps the same base, so a run is never more than one layer
deep. ``meta.current_base`` (absent for a full run) names the current run's
base; it changes together with ``meta.current_run``, in the same
transaction. A lookup is then one statement of two primary-key probes: the
current run's row if there is one (a tombstone reads as "no list"), else the
base's. When a delta would store more than ``compact_fraction`` of its
base's rows, the run is written as a full run instead (the unchanged lists
copied inside the database), so deltas stay small.

**Ids.** Every id that reaches a query is checked first with
:func:`recommender.ids.id_problem`: an invalid id (a NUL byte, a control
character, not text at all...) is never sent to the database, where one backend
would store it and the other raise. ``get``/``get_payload``/``run`` answer
None for it (no list or run can have such an id), and a publish whose run id,
source id or item ``article_id`` is invalid is refused with a StoreError naming
the id, the same way on every backend.

**Read-only handles.** A store opened with ``read_only=True`` (what
:class:`recommender.serving.Recommendations` does) never creates, migrates or
writes anything; its writes raise StoreError.

**Damage.** A database error that means the data itself is damaged (a SQLite
file with broken pages, a PostgreSQL table reported corrupt) raises
:class:`DamagedStoreError`, whose message says how to recover; a publish checks
the store first (see the backends) and refuses to write into a damaged one.

Backends supply a connection per thread, a transaction context, the bulk
insert of lists, their placeholder style and the ordering column.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from recommender.errors import StoreError
from recommender.ids import id_problem, is_valid_id
from recommender.lists import (
    SITE_PAGE_PREFIX,
    PublishableList,
    RecommendationList,
    RunInfo,
)

_RUN_COLUMNS = (
    "run_id, created_at, status, config_hash, model_version, n_lists, summary, published_at, "
    "error, base_run_id, delta_rows"
)
#: Columns a new run is inserted with (the rest keep their defaults).
_INSERT_RUN = (
    "INSERT INTO runs (run_id, created_at, status, config_hash, model_version, n_lists, summary, "
    "published_at, error) VALUES (%s, %s, %s, %s, %s, 0, %s, '', %s)"
)
#: The payload that marks a list of the base as removed in a delta run.
TOMBSTONE = ""

_CURRENT = "(SELECT value FROM meta WHERE key = 'current_run')"
#: The ``meta`` key of the editors' blocks (see :mod:`recommender.editorial`).
EDITORIAL_KEY = "editorial_blocks"
_CURRENT_BASE = "(SELECT value FROM meta WHERE key = 'current_base')"

# One statement, so one snapshot: the current run's id and the list of
# ``source_id`` in it (its own row, a tombstone, or else its base's row).
_GET = (
    "SELECT m.value, COALESCE("
    "(SELECT payload FROM lists WHERE run_id = m.value AND source_id = %s), "
    f"(SELECT payload FROM lists WHERE run_id = {_CURRENT_BASE} AND source_id = %s)) "
    "FROM meta m WHERE m.key = 'current_run'"
)


class DamagedStoreError(StoreError):
    """The store's data is damaged (e.g. a SQLite file with broken pages): a
    retry does not help; the message says how to recover."""


#: How each item of a list starts in the JSON the package writes (the batch's
#: bulk encoder and :meth:`RecommendationList.to_json` alike).
_ITEM_START = '{"article_id":"'
_ITEMS = '"items":['
_ITEM_IDS = re.compile(r'\{"article_id":"([^"]*)"')
#: Item ids already checked in one publish are not checked again, up to this many.
_CHECKED_IDS = 200_000


def _effective(run: str, base: str, columns: str = "source_id") -> str:
    """A SELECT of ``columns`` (of ``lists``) of the lists a run serves: its
    rows that are not tombstones, and its base's rows it does not override.
    ``run`` and ``base`` are SQL expressions (a NULL base: a full run; its
    rows are then not even compared with the tombstone)."""
    return (
        f"SELECT {columns} FROM lists WHERE run_id = {run} "
        f"AND ({base} IS NULL OR payload <> '') "
        f"UNION ALL SELECT {columns} FROM lists b WHERE b.run_id = {base} "
        "AND NOT EXISTS (SELECT 1 FROM lists d "
        f"WHERE d.run_id = {run} AND d.source_id = b.source_id)"
    )


class SQLStore(ABC):
    """Base of the SQLite and PostgreSQL stores (see module docs).

    ``keep_runs``: how many of the newest published runs (full or delta, the
    current one always among them) are kept for rollback; see :meth:`_prune`.
    ``compact_fraction``: a :meth:`publish_changes` whose run would store more
    rows than this fraction of its base's lists writes a full run instead.
    """

    #: Column giving the order in which runs were recorded.
    order_column = "rowid"
    #: Exceptions of the driver that mean "the database failed".
    database_errors: tuple[type[BaseException], ...] = ()

    def __init__(
        self, *, keep_runs: int, compact_fraction: float = 0.25, read_only: bool = False
    ) -> None:
        if not compact_fraction >= 0:
            raise ValueError(f"compact_fraction must be >= 0, got {compact_fraction!r}")
        self.keep_runs = keep_runs
        self.compact_fraction = compact_fraction
        #: Opened for reading only: nothing is created, migrated or written.
        self.read_only = read_only
        self._local = threading.local()

    # -- backend hooks -------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any:
        """A new connection in autocommit mode."""

    @abstractmethod
    def _transaction(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction on ``conn`` (commit on success, roll back on
        error); one writer at a time."""

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

    def _is_damage(self, error: BaseException) -> bool:
        """Whether the database ``error`` means the stored data is damaged."""
        return False

    def _damage_advice(self) -> str:
        """How to recover from damage, for messages."""
        return ""

    def _check_before_publish(self, conn: Any) -> None:
        """Inside a publish's transaction, before anything is written: raise
        DamagedStoreError when the store is damaged (a backend hook)."""
        return None

    def _failure(self, what: str, error: BaseException) -> StoreError:
        """The StoreError for a database ``error`` during ``what``."""
        if self._is_damage(error):
            return DamagedStoreError(
                f"{self._describe()}: {what}: the store is damaged ({error}). "
                f"{self._damage_advice()}".rstrip()
            )
        return StoreError(f"{self._describe()}: {what}: {error}")

    def _refuse_if_read_only(self, action: str) -> None:
        if self.read_only:
            raise StoreError(f"{self._describe()}: opened read-only, cannot {action}")

    # -- connections -----------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or not self._is_alive(conn):
            if conn is not None:
                self._drop_connection()
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
            raise self._failure("read failed", error) from None

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with suppress(*self.database_errors):  # already gone
                conn.close()

    def close(self) -> None:
        self._drop_connection()

    # -- reads -------------------------------------------------------------------
    def _lookup(self, source_id: str) -> tuple[str, str | None] | None:
        """(current run id, its payload for ``source_id`` or None), or None
        before the first publish: one statement, so one run."""
        rows = self._fetch(_GET, (source_id, source_id))
        if not rows:
            return None
        run_id, payload = rows[0]
        return run_id, payload or None  # a tombstone: removed in a delta run

    def get_payload(self, source_id: str) -> str | None:
        """The current run's list for ``source_id`` as JSON text, or None.

        The JSON is the list as it was computed: a list a delta run carries
        over unchanged from an earlier run keeps that run's ``run_id`` and
        ``generated_at`` (see :meth:`get`). None for an invalid id (see
        :mod:`recommender.ids`), which is not sent to the database."""
        if not is_valid_id(source_id):
            return None
        found = self._lookup(source_id)
        return found[1] if found is not None else None

    def get(self, source_id: str) -> RecommendationList | None:
        """The current run's list for ``source_id``, or None.

        Its ``run_id`` is the run being served, also for a list that a delta
        run carries over from an earlier run (its ``generated_at`` stays the
        time it was computed): readers that cache per run, like
        :class:`recommender.serving.Recommendations`, take a list of another
        run for a sign that a new run was published. None for an invalid id
        (see :mod:`recommender.ids`), which is not sent to the database: no
        list can have one, and asking must not look like a store failure."""
        if not is_valid_id(source_id):
            return None
        found = self._lookup(source_id)
        if found is None:
            return None
        run_id, payload = found
        if payload is None:
            return None
        lst = RecommendationList.from_json(payload)
        return lst if lst.run_id == run_id else dataclasses.replace(lst, run_id=run_id)

    def current_run_id(self) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = 'current_run'")
        return rows[0][0] if rows else None

    def current_run(self) -> RunInfo | None:
        run_id = self.current_run_id()
        return self.run(run_id) if run_id is not None else None

    def run(self, run_id: str) -> RunInfo | None:
        """One recorded run, or None (also for an invalid id)."""
        if not is_valid_id(run_id):
            return None
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s", (run_id,))
        return self._run_info(rows[0], self.current_run_id()) if rows else None

    def runs(self) -> list[RunInfo]:
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY {self.order_column} DESC")
        current = self.current_run_id()
        return [self._run_info(row, current) for row in rows]

    @staticmethod
    def _run_info(row: tuple, current: str | None) -> RunInfo:
        (
            run_id,
            created,
            status,
            config_hash,
            version,
            n_lists,
            summary,
            published,
            error,
            base,
            delta_rows,
        ) = row
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
            base or "",
            delta_rows or 0,
        )

    def source_ids(self) -> Iterator[str]:
        """Source ids of the current run's lists, in order."""
        rows = self._fetch(f"{_effective(_CURRENT, _CURRENT_BASE)} ORDER BY 1")
        yield from (row[0] for row in rows)

    def page_sites(self) -> list[str]:
        """The sites with a page list (``site:<key>``) in the current run, sorted:
        the sites the run knows of (one primary-key range per run)."""
        low = SITE_PAGE_PREFIX
        high = low[:-1] + chr(ord(low[-1]) + 1)
        rows = self._fetch(
            f"SELECT source_id FROM ({_effective(_CURRENT, _CURRENT_BASE)}) pages "
            "WHERE source_id >= %s AND source_id < %s ORDER BY 1",
            (low, high),
        )
        return [row[0][len(low) :] for row in rows]

    # -- writes ------------------------------------------------------------------
    def publish(self, lists: Iterable[PublishableList], run: RunInfo) -> RunInfo:
        """Store every list of ``run`` as a full run and make it current,
        atomically; returns the run as recorded.

        Refused (StoreError, nothing written) when an id of the run, of a
        list or of an item is invalid (see :mod:`recommender.ids`), and
        (DamagedStoreError) when the store is damaged."""
        with self._publishing(run) as conn:
            self._insert_run(conn, run)
            rows = ((run.run_id, lst.source_id, text) for lst, text in self._checked(lists, run))
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
            self._set_current(conn, run.run_id, None)
        return self._published(run.run_id)

    def publish_changes(
        self,
        lists: Iterable[PublishableList],
        run: RunInfo,
        *,
        removed: Iterable[str] = (),
        based_on: str | None = None,
    ) -> RunInfo:
        """Record and make current, atomically, a run whose lists are the
        current run's, with ``lists`` replacing or adding the lists of their
        source ids and the source ids in ``removed`` dropped (ids the current
        run has no list for are ignored); returns the run as recorded.

        Stored as a delta of the current run's base (see the module docs), or
        as a full run when the delta would exceed ``compact_fraction`` of the
        base's lists. Lists carried over keep the ``run_id`` and
        ``generated_at`` of the run that computed them in their JSON
        (:meth:`get` reports the run being served). Like :meth:`publish`:
        one transaction, a failure leaves the previous run served, a run id
        already recorded is refused. Raises StoreError when no run is current,
        when ``based_on`` is given and is not the current run (checked inside
        the transaction: the changes were computed against that run), when a
        source id is both in ``lists`` and in ``removed``, when an id is
        invalid (as :meth:`publish`), or when the run would have no lists left.
        An invalid id in ``removed`` names no list and is ignored.
        """
        gone = {str(source_id) for source_id in removed}
        gone = {source_id for source_id in gone if is_valid_id(source_id)}
        with self._publishing(run) as conn:
            current = dict(
                conn.execute(
                    self._sql(
                        "SELECT key, value FROM meta WHERE key IN ('current_run', 'current_base')"
                    )
                ).fetchall()
            )
            if "current_run" not in current:
                raise StoreError(
                    f"{self._describe()}: cannot publish run {run.run_id} as changes: no "
                    "run is current to build on (publish a full run first)"
                )
            if based_on is not None and current["current_run"] != based_on:
                raise StoreError(
                    f"{self._describe()}: cannot publish run {run.run_id} as changes to run "
                    f"{based_on}: the store now serves run {current['current_run']}; the "
                    "current run stays served"
                )
            base = current.get("current_base") or current["current_run"]
            previous = current["current_run"] if current.get("current_base") else None
            self._insert_run(conn, run)
            self._insert_lists(conn, self._delta_rows(lists, run, gone))
            self._layer(conn, run.run_id, base, previous, gone)
            n_lists, delta_rows, is_delta = self._finish_delta(conn, run.run_id, base)
            if n_lists == 0:
                raise StoreError(
                    f"{self._describe()}: refusing to publish run {run.run_id}: its "
                    "changes remove every list; the current run stays served"
                )
            conn.execute(
                self._sql(
                    "UPDATE runs SET n_lists = %s, published_at = %s, base_run_id = %s, "
                    "delta_rows = %s WHERE run_id = %s"
                ),
                (n_lists, _now(), base if is_delta else None, delta_rows, run.run_id),
            )
            self._set_current(conn, run.run_id, base if is_delta else None)
        return self._published(run.run_id)

    @contextmanager
    def _publishing(self, run: RunInfo) -> Iterator[Any]:
        """The write transaction that publishes ``run``: a database failure
        rolls it back, drops the connection and raises StoreError (the
        previous run stays served). The run's id is checked first, and the
        store (:meth:`_check_before_publish`) inside the transaction."""
        self._refuse_if_read_only(f"publish run {run.run_id!r}")
        self._check_run_id(run)
        conn = self._conn()
        try:
            with self._transaction(conn):
                self._check_before_publish(conn)
                yield conn
        except self.database_errors as error:
            self._drop_connection()
            raise self._failure(
                f"publish of run {run.run_id} failed, the previous run stays served", error
            ) from None

    def _check_run_id(self, run: RunInfo) -> None:
        problem = id_problem(run.run_id)
        if problem is not None:
            raise StoreError(
                f"{self._describe()}: run id {run.run_id!r} is not a valid id ({problem}); "
                "nothing recorded, the current run stays served"
            )

    def _checked(
        self, lists: Iterable[PublishableList], run: RunInfo
    ) -> Iterator[tuple[PublishableList, str]]:
        """(list, its JSON) for each of ``lists``, after checking its source id
        and its items' article ids: StoreError naming the first invalid one."""
        checked: set[str] = set()
        for lst in lists:
            payload = lst.to_json()
            source_id = lst.source_id
            problem = id_problem(source_id)
            if problem is not None:
                raise StoreError(
                    f"{self._describe()}: run {run.run_id}: source id {source_id!r} is not a "
                    f"valid id ({problem}); nothing published, the current run stays served"
                )
            for article_id in self._item_ids(lst, payload, run):
                if article_id in checked:
                    continue
                problem = id_problem(article_id)
                if problem is not None:
                    raise StoreError(
                        f"{self._describe()}: run {run.run_id}: list {source_id!r}: item "
                        f"article_id {article_id!r} is not a valid id ({problem}); nothing "
                        "published, the current run stays served"
                    )
                if len(checked) >= _CHECKED_IDS:
                    checked.clear()
                checked.add(str(article_id))
            yield lst, payload

    def _item_ids(self, lst: PublishableList, payload: str, run: RunInfo) -> list[object]:
        """The ``article_id`` of each item of ``lst`` (its JSON: ``payload``)."""
        if isinstance(lst, RecommendationList):
            return [item.article_id for item in lst.items]
        try:
            return _payload_item_ids(payload)
        except (ValueError, TypeError, AttributeError) as error:
            raise StoreError(
                f"{self._describe()}: run {run.run_id}: list {lst.source_id!r}: its JSON is "
                f"not a list ({error}); nothing published, the current run stays served"
            ) from None

    def _published(self, run_id: str) -> RunInfo:
        """After a publish: prune old runs, return the run as recorded."""
        self._prune()
        recorded = self.run(run_id)
        assert recorded is not None
        return recorded

    def _delta_rows(
        self, lists: Iterable[PublishableList], run: RunInfo, gone: set[str]
    ) -> Iterator[tuple[str, str, str]]:
        for lst, payload in self._checked(lists, run):
            if lst.source_id in gone:
                raise StoreError(
                    f"{self._describe()}: run {run.run_id}: source {lst.source_id!r} is both "
                    "changed and removed; the current run stays served"
                )
            if payload == TOMBSTONE:
                raise StoreError(
                    f"{self._describe()}: run {run.run_id}: empty payload for source "
                    f"{lst.source_id!r}; the current run stays served"
                )
            yield run.run_id, lst.source_id, payload

    def _layer(
        self, conn: Any, run_id: str, base: str, previous: str | None, gone: set[str]
    ) -> None:
        """Complete the new run's rows (its changed lists are in): tombstones
        for the removed lists of the base, then the previous delta's rows it
        does not override, less the lists removed now."""
        removed = sorted(gone)
        if removed:
            conn.cursor().executemany(
                self._sql(
                    "INSERT INTO lists (run_id, source_id, payload) "
                    "SELECT CAST(%s AS TEXT), source_id, '' FROM lists "
                    "WHERE run_id = %s AND source_id = %s"
                ),
                [(run_id, base, source_id) for source_id in removed],
            )
        if previous is None:
            return
        conn.execute(
            self._sql(
                "INSERT INTO lists (run_id, source_id, payload) "
                "SELECT CAST(%s AS TEXT), p.source_id, p.payload FROM lists p "
                "WHERE p.run_id = %s AND NOT EXISTS "
                "(SELECT 1 FROM lists n WHERE n.run_id = %s AND n.source_id = p.source_id)"
            ),
            (run_id, previous, run_id),
        )
        if removed:
            # The previous delta's additions removed now (a list of the base
            # removed now already has its tombstone, which was not overridden).
            conn.cursor().executemany(
                self._sql(
                    "DELETE FROM lists WHERE run_id = %s AND source_id = %s AND payload <> ''"
                ),
                [(run_id, source_id) for source_id in removed],
            )

    def _finish_delta(self, conn: Any, run_id: str, base: str) -> tuple[int, int, bool]:
        """(lists the new run serves, rows it stores as a delta, whether it
        stays a delta): a delta of more than ``compact_fraction`` of its base's
        lists is completed into a full run."""
        found = conn.execute(
            self._sql("SELECT n_lists FROM runs WHERE run_id = %s AND status = 'published'"),
            (base,),
        ).fetchone()
        if found is None:
            raise StoreError(
                f"{self._describe()}: cannot publish run {run_id} as changes: the current "
                f"run's base run {base} is missing; publish a full run"
            )
        base_lists = found[0]
        rows, tombstones, added = conn.execute(
            self._sql(
                "SELECT count(*), "
                "coalesce(sum(CASE WHEN n.payload = '' THEN 1 ELSE 0 END), 0), "
                "coalesce(sum(CASE WHEN n.payload <> '' AND NOT EXISTS (SELECT 1 FROM lists b "
                "WHERE b.run_id = %s AND b.source_id = n.source_id) THEN 1 ELSE 0 END), 0) "
                "FROM lists n WHERE n.run_id = %s"
            ),
            (base, run_id),
        ).fetchone()
        n_lists = int(base_lists) - int(tombstones) + int(added)
        if rows <= self.compact_fraction * base_lists:
            return n_lists, int(rows), True
        # Compact: the base's unchanged lists copied in, the tombstones dropped.
        removed = [
            row[0]
            for row in conn.execute(
                self._sql("SELECT source_id FROM lists WHERE run_id = %s AND payload = ''"),
                (run_id,),
            ).fetchall()
        ]
        conn.execute(
            self._sql(
                "INSERT INTO lists (run_id, source_id, payload) "
                "SELECT CAST(%s AS TEXT), b.source_id, b.payload FROM lists b "
                "WHERE b.run_id = %s AND NOT EXISTS "
                "(SELECT 1 FROM lists n WHERE n.run_id = %s AND n.source_id = b.source_id)"
            ),
            (run_id, base, run_id),
        )
        if removed:
            conn.cursor().executemany(
                self._sql("DELETE FROM lists WHERE run_id = %s AND source_id = %s"),
                [(run_id, source_id) for source_id in removed],
            )
        return n_lists, 0, False

    def _insert_run(self, conn: Any, run: RunInfo) -> None:
        """Insert ``run`` as published (its list count set later); refuse a
        run id already recorded."""
        if conn.execute(
            self._sql("SELECT 1 FROM runs WHERE run_id = %s"), (run.run_id,)
        ).fetchone():
            raise StoreError(f"{self._describe()}: run {run.run_id} was already recorded")
        conn.execute(self._sql(_INSERT_RUN), _run_row(run, "published", ""))

    def record_failure(self, run: RunInfo, error: str) -> None:
        """Record a run that failed before publishing (the current run stays).

        The error and the summary are recorded as text every backend stores:
        NUL bytes and lone surrogates (which an error message quoting bad
        input may hold) are replaced."""
        self._refuse_if_read_only(f"record run {run.run_id!r}")
        self._check_run_id(run)
        conn = self._conn()
        try:
            with self._transaction(conn):
                conn.execute(self._sql(_INSERT_RUN), _run_row(run, "failed", error[:4000]))
        except self.database_errors as db_error:
            self._drop_connection()
            raise self._failure("cannot record failed run", db_error) from None
        self._prune()

    def editorial_blocks(self) -> str | None:
        """The editors' blocks that serving enforces at once (the JSON of
        :func:`recommender.editorial.blocks_payload`), None when none were set."""
        rows = self._fetch(f"SELECT value FROM meta WHERE key = '{EDITORIAL_KEY}'")
        return str(rows[0][0]) if rows else None

    def set_editorial_blocks(self, payload: str) -> None:
        """Replace the blocks serving enforces (in one transaction)."""
        self._refuse_if_read_only("set the editorial blocks")
        conn = self._conn()
        try:
            with self._transaction(conn):
                conn.execute(self._sql(f"DELETE FROM meta WHERE key = '{EDITORIAL_KEY}'"))
                conn.execute(
                    self._sql(f"INSERT INTO meta (key, value) VALUES ('{EDITORIAL_KEY}', %s)"),
                    (payload,),
                )
        except self.database_errors as db_error:
            self._drop_connection()
            raise self._failure("cannot set the editorial blocks", db_error) from None

    def rollback(self, run_id: str) -> RunInfo:
        """Serve a kept run again, atomically (a delta run with its base)."""
        self._refuse_if_read_only(f"roll back to run {run_id!r}")
        if not is_valid_id(run_id):
            kept = [r.run_id for r in self.runs() if r.status in ("current", "kept")]
            raise StoreError(
                f"{self._describe()}: no kept run {run_id!r} to roll back to "
                f"(kept: {', '.join(kept) or 'none'})"
            )
        conn = self._conn()
        try:
            with self._transaction(conn):
                self._check_before_publish(conn)
                row = conn.execute(
                    self._sql("SELECT status, base_run_id FROM runs WHERE run_id = %s"), (run_id,)
                ).fetchone()
                if row is None or row[0] != "published":
                    kept = [r.run_id for r in self.runs() if r.status in ("current", "kept")]
                    raise StoreError(
                        f"{self._describe()}: no kept run {run_id!r} to roll back to "
                        f"(kept: {', '.join(kept) or 'none'})"
                    )
                base = row[1]
                if (
                    base is not None
                    and not conn.execute(
                        self._sql("SELECT 1 FROM runs WHERE run_id = %s AND status = 'published'"),
                        (base,),
                    ).fetchone()
                ):
                    raise StoreError(
                        f"{self._describe()}: cannot roll back to run {run_id}: its base run "
                        f"{base} is missing"
                    )
                self._set_current(conn, run_id, base)
        except self.database_errors as error:
            self._drop_connection()
            raise self._failure("rollback failed", error) from None
        recorded = self.run(run_id)
        assert recorded is not None
        return recorded

    def _set_current(self, conn: Any, run_id: str, base: str | None) -> None:
        conn.execute(self._sql("DELETE FROM meta WHERE key IN ('current_run', 'current_base')"))
        conn.execute(
            self._sql("INSERT INTO meta (key, value) VALUES ('current_run', %s)"), (run_id,)
        )
        if base is not None:
            conn.execute(
                self._sql("INSERT INTO meta (key, value) VALUES ('current_base', %s)"), (base,)
            )

    def _prune(self) -> None:
        """Drop the runs no longer kept, in one transaction.

        Kept: the current run and the newest ``keep_runs - 1`` other published
        runs (``keep_runs`` counts published runs, full or delta alike), plus
        the base of every kept delta run, however old: deleting it would break
        that run. A base kept that way is a whole full run and can be rolled
        back to as well. Each such base is needed by a delta counted in
        ``keep_runs``, so the store never holds more than ``keep_runs`` full
        copies of the lists. Failed records: the newest ``keep_runs``.
        """
        conn = self._conn()
        try:
            if not self._prunable(conn):
                return  # (no write lock taken for nothing)
            with self._transaction(conn):
                for run_id in self._prunable(conn):
                    conn.execute(self._sql("DELETE FROM lists WHERE run_id = %s"), (run_id,))
                    conn.execute(self._sql("DELETE FROM runs WHERE run_id = %s"), (run_id,))
        except self.database_errors as error:
            self._drop_connection()
            raise self._failure("pruning old runs failed", error) from None

    def _prunable(self, conn: Any) -> list[str]:
        """The runs :meth:`_prune` drops, as of now."""
        row = conn.execute(self._sql("SELECT value FROM meta WHERE key = 'current_run'")).fetchone()
        current = row[0] if row else None
        ordered = conn.execute(
            self._sql(
                f"SELECT run_id, status, base_run_id FROM runs ORDER BY {self.order_column} DESC"
            )
        ).fetchall()
        base_of = {run_id: base for run_id, _, base in ordered}
        published = [r for r, s, _ in ordered if s == "published" and r != current]
        kept = set(published[: max(self.keep_runs - 1 if current else self.keep_runs, 0)])
        if current is not None:
            kept.add(current)
        kept |= {base_of[r] for r in kept if base_of.get(r)}
        failed = [r for r, s, _ in ordered if s == "failed"]
        return [r for r in published if r not in kept] + failed[max(self.keep_runs, 0) :]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_row(run: RunInfo, status: str, error: str) -> tuple:
    """The parameters of :data:`_INSERT_RUN` for ``run``."""
    return (
        run.run_id,
        _storable(run.created_at),
        status,
        _storable(run.config_hash),
        _storable(run.model_version),
        json.dumps(_storable(run.summary), default=str),
        _storable(error),
    )


def _storable(value: Any) -> Any:
    """``value`` with every string in it storable as text by every backend: a
    NUL (refused by PostgreSQL, also escaped as JSON) becomes U+FFFD, a lone
    surrogate (not encodable as UTF-8) becomes "?". Dicts and lists are
    copied; other values are returned as they are."""
    if isinstance(value, str):
        if "\x00" in value or not value.isascii():
            value = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
        return value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _payload_item_ids(payload: str) -> list[object]:
    """The items' ``article_id`` values of a list's JSON ``payload``.

    Read from the text (about 5 µs for a 12-item list, a seventh of decoding
    it) when the JSON has the compact form this package writes, in which each
    item starts with ``{"article_id":"`` (inside a JSON string quotes are
    escaped, so that text is never part of a title); else, or when an id holds
    an escape, by decoding the JSON."""
    items = payload.find(_ITEMS)
    if items >= 0 and payload.startswith((_ITEM_START, "]"), items + len(_ITEMS)):
        ids: list[object] = _ITEM_IDS.findall(payload, items)
        if not any("\\" in value for value in ids):  # type: ignore[operator]
            return ids
    return [item["article_id"] for item in json.loads(payload)["items"]]
