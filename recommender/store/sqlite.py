"""The embedded store: one SQLite file (see :mod:`recommender.store._sql`).

The schema is created and migrated on open: ``MIGRATIONS`` lists numbered
steps, ``meta.schema_version`` records the last one applied. A file written
by a newer version of this package is refused rather than altered.

**Journal modes, and readers that may only read.** A writer (the batch, a
rollback) works in WAL mode, so that readers never wait for a publish, however
long. But a WAL database can only be read by a process that can write its
``-shm`` file, or create it: a web server whose user may only read the store
and its folder cannot open it once the last writer has closed it (SQLite
deletes ``-wal`` and ``-shm`` then). So a writer's :meth:`SQLiteStore.close`
checkpoints the WAL into the file and switches the file back to the rollback
journal (``journal_mode=DELETE``) when no other connection has it open: a
file at rest needs nothing but read access. When readers are connected, the
switch is skipped (it needs the file to itself); the ``-wal`` and ``-shm`` files
then stay as long as those readers have them open, so a reader that starts
meanwhile can open them too, and the WAL has been truncated to nothing.

A store opened with ``read_only=True`` (``file:...?mode=ro``) never creates,
migrates or writes anything: no folder, no schema, no journal mode change. It
accepts a store of an older schema version (reads need only ``meta`` and
``lists``, which never changed), refuses a newer one, and reopens its
connection when the file at its path is replaced (e.g. a damaged file moved
aside and a fresh store published in its place).

**Damage.** Reads that hit damaged pages raise
:class:`~recommender.store._sql.DamagedStoreError`; a publish (or rollback)
first runs ``PRAGMA quick_check`` inside its write transaction and refuses to
write into a damaged file, saying how to recover.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from recommender.errors import StoreError
from recommender.store._sql import DamagedStoreError, SQLStore

_log = logging.getLogger(__name__)

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


#: SQLite's primary result codes that mean the file's content is damaged.
_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
#: How many problems ``PRAGMA quick_check`` reports at most in a message.
_PROBLEMS_SHOWN = 5


class SQLiteStore(SQLStore):
    """SQLite backend of :class:`recommender.store.Store`.

    Safe to share between threads (one connection per thread). ``timeout``:
    seconds to wait for another writer's lock before failing.
    ``keep_runs``, ``compact_fraction``: see :class:`SQLStore`.
    ``read_only``: only read (see the module docs); the file must exist.
    ``create``: create the file (and its folder) when missing; with False, a
    missing file is refused as ``read_only`` does.
    ``close_wait``: seconds :meth:`close` waits for readers to leave the WAL
    before it checkpoints it away (see the module docs).
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
        read_only: bool = False,
        create: bool = True,
        close_wait: float = 2.0,
    ) -> None:
        super().__init__(
            keep_runs=keep_runs, compact_fraction=compact_fraction, read_only=read_only
        )
        self.path = Path(path)
        self.timeout = timeout
        self.close_wait = close_wait
        #: The schema version of the file (older than SCHEMA_VERSION only when
        #: opened read-only: a writer migrates it).
        self.schema_version = SCHEMA_VERSION
        if read_only or not create:
            self._require_file()
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"{self.path}: cannot create the store's folder: {error}"
                ) from None
        if read_only:
            self._check_schema()
        else:
            self._migrate()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"SQLiteStore({str(self.path)!r}{mode})"

    def _describe(self) -> str:
        return str(self.path)

    def _sql(self, query: str) -> str:
        return query.replace("%s", "?")

    def _require_file(self) -> None:
        try:
            is_file = self.path.is_file()
        except OSError as error:
            raise StoreError(f"{self.path}: cannot reach the store: {error}") from None
        if not is_file:
            raise StoreError(
                f"{self.path}: no store there (nothing published yet); run `recommender run` "
                "first, or check the path"
            )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT).
        if self.read_only:
            conn = sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro",
                uri=True,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as error:
                conn.close()
                if _code(error) == sqlite3.SQLITE_READONLY:
                    raise StoreError(
                        f"{self.path}: cannot write the store ({error}); a process that only "
                        "reads it opens it read-only (open_store(url, read_only=True))"
                    ) from None
                raise
        try:
            self._local.identity = _identity(self.path)
        except OSError:  # gone already: the next query reconnects (and says why)
            self._local.identity = None
        return conn

    def _is_alive(self, conn: sqlite3.Connection) -> bool:
        """False when the file at ``path`` is no longer the one ``conn`` reads
        (replaced, e.g. after damage): reconnect. A file moved away with
        nothing in its place keeps being read."""
        try:
            return _identity(self.path) == getattr(self._local, "identity", None)
        except OSError:
            return True

    def _is_damage(self, error: BaseException) -> bool:
        return _code(error) in _DAMAGE_CODES

    def _damage_advice(self) -> str:
        path = self.path
        return (
            "Retrying will not help. To recover: stop the batch and anything else that writes "
            f"the store; move the file aside with its -wal and -shm files if any (e.g. `mv "
            f"{path} {path}.damaged`); run `recommender run` to publish a fresh store at {path} "
            "(readers switch to it by themselves); check it with `recommender runs list`. The "
            "runs kept in the damaged file do not come along: `recommender runs list --store "
            f"{path}.damaged` shows what they were, `sqlite3 {path}.damaged .recover` may "
            "salvage them."
        )

    def _check_before_publish(self, conn: sqlite3.Connection) -> None:
        """``PRAGMA quick_check`` (every page and index, without cross-checking
        index contents): DamagedStoreError when the file is damaged."""
        problems = [row[0] for row in conn.execute(f"PRAGMA quick_check({_PROBLEMS_SHOWN})")]
        if problems != ["ok"]:
            raise DamagedStoreError(
                f"{self.path}: the store file is damaged (quick_check: "
                f"{'; '.join(problems)}); nothing was written, the current run stays served "
                f"(where its pages are intact). {self._damage_advice()}"
            )

    def close(self) -> None:
        """Close this thread's connection; a writer first leaves the file in a
        state readers that may only read can open (see the module docs)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self.read_only:
            self._leave_readable(conn)
        self._drop_connection()

    def _leave_readable(self, conn: sqlite3.Connection) -> None:
        """Checkpoint the WAL into the file and truncate it; then switch to the
        rollback journal, unless other connections have the file open (the
        switch is skipped at once, not waited for). Best effort: a failure
        leaves the store as it was, still whole."""
        try:
            if conn.in_transaction:
                return
            conn.execute(f"PRAGMA busy_timeout = {int(self.close_wait * 1000)}")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            conn.execute("PRAGMA busy_timeout = 0")
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            _log.debug("%s: closed, checkpoint busy=%s, journal mode %s", self.path, busy, mode)
        except sqlite3.Error as error:  # e.g. readers still have the WAL open
            _log.debug("%s: left in WAL mode at close: %s", self.path, error)

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

    def _check_schema(self) -> None:
        """For a read-only open: the file is a store this version can read."""
        try:
            version = _schema_version(self._conn())
        except sqlite3.DatabaseError as error:
            self._drop_connection()
            raise StoreError(self._unreadable(error)) from None
        if version == 0:
            self._drop_connection()
            raise StoreError(
                f"{self.path}: not a recommendation store yet (no schema); `recommender run` "
                "creates one"
            )
        if version > SCHEMA_VERSION:
            self._drop_connection()
            raise StoreError(
                f"{self.path}: store schema version {version} was written by a newer "
                f"recommender; this one reads up to {SCHEMA_VERSION}"
            )
        self.schema_version = version

    def _unreadable(self, error: sqlite3.Error) -> str:
        """Why a read-only open failed, saying what to do about it."""
        shm = self.path.with_name(self.path.name + "-shm")
        if (
            _code(error) in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)
            and _in_wal_mode(self.path)
            and not shm.exists()
            and not os.access(self.path.parent, os.W_OK)
        ):
            return (
                f"{self.path}: cannot open the store read-only ({error}): it was left in WAL "
                f"mode without its {shm.name} file, and this user cannot create that file in "
                f"{self.path.parent}. A `recommender run` (or `recommender runs rollback`) of "
                "this version leaves the file readable; or let this user write to the folder"
            )
        return f"{self.path}: cannot open as a recommendation store: {error}"

    def _fetch(self, query: str, params: tuple = ()) -> list[tuple]:
        try:
            return super()._fetch(query, params)
        except DamagedStoreError:
            raise
        except StoreError as error:
            if self.schema_version < SCHEMA_VERSION:
                raise StoreError(
                    f"{error} (the store's schema is version {self.schema_version}, this "
                    f"recommender's {SCHEMA_VERSION}: `recommender run` migrates it)"
                ) from None
            raise


def _code(error: BaseException) -> int | None:
    """SQLite's primary result code of ``error``, if it has one."""
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _identity(path: Path) -> tuple[int, int]:
    """Which file ``path`` is (device and inode)."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _in_wal_mode(path: Path) -> bool:
    """Whether the database header of ``path`` says WAL (read and write
    versions 2, bytes 18 and 19)."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18:20] == b"\x02\x02"


def _schema_version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0
