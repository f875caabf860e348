"""The embedded DuckDB store: schema, transactional writes, and read snapshots.

DuckDB lets one process write a file, and then no other process may even read it.
So nothing here holds the file open for long:

* writers (``ingest``, price fetches) open it read-write for one transaction, retrying
  while another process holds it, and checkpoint before closing, so the file on disk
  is always a complete committed state;
* readers that stay up (the dashboard) work on a :class:`Snapshot`: a private copy of
  the file taken under a brief shared lock, re-taken when the file's generation changes.

A crash halfway through a write leaves the previous committed state: DuckDB rolls an
uncommitted transaction back.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dashboard.store.base import QUIET, CountedReaders, SnapshotQueries, StoreBusy

SCHEMA_VERSION = 4  # 2: significance columns in the reaction caches; 3: mentions, the per-security path;
                    # 4: reactions kept per (security, session), with the session of each article
WRITE_MEMORY_LIMIT = os.environ.get("DASHBOARD_WRITE_MEMORY", "256MB")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS articles (
    article_id   VARCHAR NOT NULL,
    title        VARCHAR NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    categories   VARCHAR[],
    tags         VARCHAR[],
    url          VARCHAR,
    source       VARCHAR,
    digest       VARCHAR,
    text         VARCHAR,
    dedup_key    VARCHAR,
    path         VARCHAR,
    ingested_at  TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS mentions (
    -- one row per (article, security it names): the per-security access path every view reads.
    -- It carries what a view shows of the article, and is kept clustered by symbol (see
    -- cluster_mentions) so a security's rows are a few row groups, never a scan of the corpus.
    article_id   VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    how          VARCHAR NOT NULL,   -- embed | link | inline
    name         VARCHAR,            -- the name the post gives, if any
    published_at TIMESTAMPTZ,
    title        VARCHAR,
    source       VARCHAR,
    categories   VARCHAR[],
    url          VARCHAR,
    text         VARCHAR,            -- the clean text, for the keyword filter
    named        VARCHAR[]           -- every security the article names, main subjects first
);
CREATE TABLE IF NOT EXISTS securities (
    symbol    VARCHAR NOT NULL,    -- Yahoo Finance symbol
    code      VARCHAR,
    canonical VARCHAR,
    market    VARCHAR,
    kind      VARCHAR,
    name      VARCHAR,
    name_en   VARCHAR
);
CREATE TABLE IF NOT EXISTS files (
    path         VARCHAR NOT NULL,
    root         VARCHAR,
    size         BIGINT,
    mtime_ns     BIGINT,
    content_hash VARCHAR,
    article_id   VARCHAR,
    status       VARCHAR,          -- ok | duplicate | rejected
    reason       VARCHAR,
    folder       VARCHAR           -- the folder holding the file
);
CREATE TABLE IF NOT EXISTS folders (
    path     VARCHAR NOT NULL,     -- every folder an ingest walked, so the next one lists only
    parent   VARCHAR,              -- the folders whose modification time changed
    mtime_ns BIGINT                -- -1: too close to the scan to trust; list it again
);
CREATE TABLE IF NOT EXISTS ingest_runs (
    run_id      BIGINT NOT NULL,
    root        VARCHAR,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    files_seen  BIGINT,
    new         BIGINT,
    updated     BIGINT,
    unchanged   BIGINT,
    duplicates  BIGINT,
    rejected    BIGINT,
    removed     BIGINT
);
CREATE TABLE IF NOT EXISTS ingest_problems (
    run_id BIGINT NOT NULL,
    path   VARCHAR,
    kind   VARCHAR,                -- rejected | warning
    reason VARCHAR
);
CREATE TABLE IF NOT EXISTS prices (
    symbol    VARCHAR NOT NULL,
    date      DATE NOT NULL,
    open      DOUBLE,
    high      DOUBLE,
    low       DOUBLE,
    close     DOUBLE,
    adj_close DOUBLE,
    volume    DOUBLE,
    source    VARCHAR,
    fetched_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS price_coverage (
    symbol     VARCHAR NOT NULL,   -- one row per symbol: the span asked for and answered
    start_date DATE,
    end_date   DATE,
    source     VARCHAR,
    updated_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS price_failures (
    symbol       VARCHAR NOT NULL, -- the last failure per symbol, cleared by a success
    start_date   DATE,
    end_date     DATE,
    reason_kind  VARCHAR,          -- network | rate_limited | unknown_symbol | no_data | error
    reason       VARCHAR,
    attempted_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS calendar_sessions (
    calendar  VARCHAR NOT NULL,    -- exchange-calendars code
    session   DATE NOT NULL,
    close_utc TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS daily_returns (
    symbol    VARCHAR NOT NULL,
    date      DATE NOT NULL,
    i         BIGINT,              -- the session's position in the symbol's price rows
    benchmark VARCHAR,
    adj_close DOUBLE,
    volume    DOUBLE,
    ret       DOUBLE,
    rm        DOUBLE,              -- the benchmark's return over the same interval
    ar        DOUBLE,              -- abnormal return, market-adjusted
    alpha     DOUBLE,              -- market model fitted over rows 130..11 before (the estimation window)
    beta      DOUBLE,
    n_est     BIGINT,              -- sessions with both returns in the estimation window
    sigma     DOUBLE,              -- std. dev. of ar there (ddof 1); NULL below 60 sessions or if 0
    sigma_mm  DOUBLE               -- of the market model's residuals (ddof 2); likewise
);
-- The session each article could move each priced security it names (the first session
-- closing after it), and how each security's price moved from each of its sessions: a
-- reaction is a security's at a session, so it is kept once, not once per article; the
-- ``reactions`` view (STORE_VIEWS) joins the two.
CREATE TABLE IF NOT EXISTS article_sessions (
    article_id   VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    published_at TIMESTAMPTZ,
    session      DATE
);
CREATE TABLE IF NOT EXISTS session_reactions (
    symbol       VARCHAR NOT NULL,
    session      DATE NOT NULL,
    benchmark    VARCHAR,
    day0_return  DOUBLE,
    day0_abnormal DOUBLE,
    cr_m1_p1     DOUBLE,
    car_m1_p1    DOUBLE,
    cr_0_p5      DOUBLE,
    car_0_p5     DOUBLE,
    car_m1_p1_mm DOUBLE,
    car_0_p5_mm  DOUBLE,
    volume_ratio DOUBLE,
    car_0_p1     DOUBLE,
    car_0_p2     DOUBLE,
    car_0_p1_mm  DOUBLE,
    car_0_p2_mm  DOUBLE,
    sigma        DOUBLE,           -- the day-0 row's daily_returns.sigma / sigma_mm / n_est
    sigma_mm     DOUBLE,
    n_est        BIGINT,
    t_car_m1_p1  DOUBLE,           -- CAR / (sigma * sqrt(sessions in the window))
    t_car_0_p1   DOUBLE,
    t_car_0_p2   DOUBLE,
    t_car_0_p5   DOUBLE,
    t_car_m1_p1_mm DOUBLE,
    t_car_0_p1_mm  DOUBLE,
    t_car_0_p2_mm  DOUBLE,
    t_car_0_p5_mm  DOUBLE,
    p_car_m1_p1  DOUBLE,           -- two-sided, Student's t with n_est - 1 (market model: n_est - 2) df
    p_car_0_p1   DOUBLE,
    p_car_0_p2   DOUBLE,
    p_car_0_p5   DOUBLE,
    p_car_m1_p1_mm DOUBLE,
    p_car_0_p1_mm  DOUBLE,
    p_car_0_p2_mm  DOUBLE,
    p_car_0_p5_mm  DOUBLE
);
"""


# Made after SCHEMA (and after any migration): an article's reaction, as one row per (article,
# security) for the readers, as the table of that name held before schema version 4. (On
# PostgreSQL translated: the star becomes session_reactions' columns.)
STORE_VIEWS = """
CREATE OR REPLACE VIEW reactions AS
SELECT a.article_id, a.symbol, a.session, r.* EXCLUDE (symbol, session)
FROM article_sessions a
LEFT JOIN session_reactions r ON r.symbol = a.symbol AND r.session = a.session
"""
VIEW_NAMES = ("reactions",)


class NotAStore(RuntimeError):
    """A DuckDB file that holds tables, but not the dashboard's: it is left untouched."""


# Rows per row group a writer gives the tables. DuckDB's default (122,880) is, for mentions
# (which carry their article's text), some 200 MB a row group: more than the write's memory,
# so appending spilled all the while (an append of 100k posts' mentions: 4.3 s, 1.1 s at
# 16,384). Smaller groups also let zone maps pick out one security's rows more closely. A
# file does not keep the size: every writer attaches with it, or its checkpoint would merge
# the groups back.
ROW_GROUP_SIZE = 16_384


def _read_only(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=True)
    con.execute(QUIET)  # its cursors keep it
    return con


def _attach_for_writing(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS store (ROW_GROUP_SIZE {ROW_GROUP_SIZE}); USE store; {QUIET}")
    except BaseException:
        con.close()
        raise
    return con


def _is_lock_error(e: Exception) -> bool:
    """The file is held: by another process (a lock), or read-only by this one (a read view
    that is stepping aside)."""
    return (isinstance(e, duckdb.IOException) and "lock" in str(e).lower()) or (
        isinstance(e, duckdb.ConnectionException) and "different configuration" in str(e))


# One DuckDB instance per file and process: a read-only and a read-write connection
# to the same file may not be open at once in one process.
_OPEN_LOCK = threading.RLock()


@dataclass(frozen=True)
class Generation:
    """Identifies a committed state of the store file, cheaply (one stat)."""

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> Generation:
        try:
            st = path.stat()
        except FileNotFoundError:
            return cls(0, 0)
        return cls(st.st_mtime_ns, st.st_size)


class Store:
    """The embedded store: one DuckDB file."""

    kind = "duckdb"

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser().resolve()
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def work_dir(self) -> Path:
        """Where writers stage files: beside the store, on the same disk."""
        return self.path.parent

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def generation(self) -> Generation:
        return Generation.of(self.path)

    def _connect(self, read_only: bool, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
        timeout = self.lock_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                return _read_only(self.path) if read_only else _attach_for_writing(self.path)
            except duckdb.Error as e:
                if not _is_lock_error(e):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusy(
                        f"the store {self.path} is in use by another process "
                        f"(an ingest or price fetch) and stayed busy for {timeout:.0f} s; try again"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)

    def _connect_current(self, timeout: float | None) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the store at this code's schema: an older file is
        migrated first (a short write), so readers never meet missing columns."""
        con = self._connect(read_only=True, timeout=timeout)
        try:
            version = stored_version(con)
        except BaseException:
            con.close()
            raise
        if version is None or version >= SCHEMA_VERSION and not _pending_migrations(con):
            return con
        con.close()
        if version >= SCHEMA_VERSION:  # only data to tidy: a busy or read-only store is read as it is
            try:
                with self.write(timeout=0):
                    pass
            except (StoreBusy, duckdb.Error, OSError):
                pass
        else:
            with self.write(timeout):
                pass
        return self._connect(read_only=True, timeout=timeout)

    @property
    def writer_mark(self) -> Path:
        """A file a writer leaves beside the store while it wants or holds it, so long-running
        readers (see ReadView) step aside to a copy instead of holding the file."""
        return self.path.with_name(self.path.name + ".writer")

    def writer_waiting(self) -> bool:
        try:
            pid = int(self.writer_mark.read_text().strip() or 0)
        except (OSError, ValueError):
            return False
        return pid > 0 and pid_alive(pid)

    @contextmanager
    def write(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction; committed only if the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _OPEN_LOCK, _writer_mark(self.writer_mark):
            for view in list(_VIEWS):  # this process's own readers let go at once
                if view.store.path == self.path:
                    view.step_aside()
            con = self._connect(read_only=False, timeout=timeout)
            try:
                # Bounded memory: big writes spill to disk instead of growing the process.
                con.execute(f"SET TimeZone = 'UTC'; SET memory_limit = '{WRITE_MEMORY_LIMIT}'; "
                            "SET preserve_insertion_order = false")
                ensure_schema(con)
                con.begin()
                try:
                    yield con
                except BaseException:
                    con.rollback()
                    raise
                con.commit()
                con.execute("CHECKPOINT")
            finally:
                con.close()

    @contextmanager
    def read(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short read-only connection; creates an empty store first if there is none."""
        if not self.exists:
            with self.write(timeout):
                pass
        with _OPEN_LOCK:
            con = self._connect_current(timeout)
            try:
                con.execute("SET TimeZone = 'UTC'")
                yield con
            finally:
                con.close()

    def snapshot(self, timeout: float | None = None) -> Snapshot:
        """A private, consistent copy of the store for a long-running reader."""
        if not self.exists:
            with self.write(timeout):
                pass
        tmpdir = Path(tempfile.mkdtemp(prefix="dashboard-snapshot-"))
        copy = tmpdir / self.path.name
        with _OPEN_LOCK:
            con = self._connect_current(timeout)  # holds the shared lock
            try:
                generation = self.generation()
                shutil.copyfile(self.path, copy)
                wal = self.path.with_name(self.path.name + ".wal")
                if wal.exists():
                    shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            finally:
                con.close()
        return Snapshot(copy, generation)


@contextmanager
def _writer_mark(mark: Path) -> Iterator[None]:
    try:
        mark.write_text(str(os.getpid()))
    except OSError:  # a read-only folder: readers then wait for the lock as before
        yield
        return
    try:
        yield
    finally:
        try:
            if mark.read_text().strip() == str(os.getpid()):
                mark.unlink()
        except OSError:
            pass


def pid_alive(pid: int) -> bool:
    """Whether a process of that id exists (ours to signal or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_VIEWS: weakref.WeakSet[ReadView] = weakref.WeakSet()


class Snapshot(SnapshotQueries):
    """A read-only view of the store: a private copy (``copy=True``), or the store file itself
    opened read-only; safe to query from several threads."""

    def __init__(self, path: Path, generation: Generation, copy: bool = True,
                 con: duckdb.DuckDBPyConnection | None = None, lazy: bool = False) -> None:
        self.path = path
        self.generation = generation
        self.copy = copy
        self._con_lock = threading.Lock()
        self._con = con if con is not None or lazy else _read_only(path)
        self._closed = False
        atexit.register(self._close_at_exit)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        # opened on first use: a copy made by the read view's watcher thread is opened by the
        # thread that queries it, so that thread never calls into DuckDB itself
        with self._con_lock:
            if self._con is None:
                self._con = _read_only(self.path)
            return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._connection().cursor()  # with the connection's QUIET: not set again per query
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._con is not None:
                self._con.close()
        finally:
            if self.copy:
                shutil.rmtree(self.path.parent, ignore_errors=True)

    def _close_at_exit(self) -> None:
        # A page still running as the server exits may be inside a query on this connection
        # (outside exit, readers are counted and a view closes only when its last is done).
        # DuckDB refuses to close a busy connection; the process ending frees it.
        try:
            self.close()
        except duckdb.ResourceInUseException:
            pass


class ReadView(CountedReaders):
    """A long-running reader's view of the store (the app): the store file itself, opened
    read-only, while no writer wants it; a private copy of it while one does.

    DuckDB lets no process write a file another holds open, so the view watches for a
    writer's mark (``Store.writer_mark``) and then copies the file (while it still holds it,
    so the copy is consistent), serves the copy, and lets the file go; once the writer is done
    it opens the file again and deletes the copy. So there is no copy at all while nobody
    writes, and one at most while somebody does. Readers hold a view for the length of a query
    (``reading()``); a replaced one is closed when its last reader is done."""

    def __init__(self, store: Store, poll: float = 0.2) -> None:
        self.store = store
        self.poll = poll
        self._lock = threading.RLock()
        self._current: Snapshot | None = None
        self._readers: dict[int, int] = {}  # id(snapshot) -> queries running on it
        self._retired: dict[int, Snapshot] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.busy = False  # a writer holds the file and the view serves the last state it saw
        _VIEWS.add(self)
        atexit.register(self.close)

    def _open(self, timeout: float) -> Snapshot:
        """The store file itself, or a copy of it when a writer is waiting."""
        if not self.store.exists:
            with self.store.write(timeout):
                pass
        with _OPEN_LOCK:
            con = self.store._connect_current(timeout)
        generation = self.store.generation()
        if not self.store.writer_waiting():
            return Snapshot(self.store.path, generation, copy=False, con=con)
        try:
            return self._copy_of(generation)
        finally:
            con.close()

    def _copy_of(self, generation: Generation) -> Snapshot:
        """A copy of the store file (opened when first queried); the caller holds a connection
        to it for the length of the copy, so no writer can change it meanwhile."""
        tmpdir = Path(tempfile.mkdtemp(prefix="dashboard-snapshot-"))
        copy = tmpdir / self.store.path.name
        shutil.copyfile(self.store.path, copy)
        wal = self.store.path.with_name(self.store.path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        return Snapshot(copy, generation, lazy=True)

    def current(self) -> Snapshot:
        with self._lock:
            snap = self._current
            generation = self.store.generation()
            stale = snap is None or snap.generation != generation
            if not stale and not (snap.copy and not self.store.writer_waiting()):
                return snap  # type: ignore[return-value]
            try:
                fresh = self._open(timeout=0 if snap is not None else 30)
                self.busy = False
            except StoreBusy:
                if snap is None:
                    raise
                self.busy = True  # a writer holds the store: keep serving the last state
                return snap
            self._replace(fresh)
            self._watch()
            return fresh

    def refresh(self, wait: float = 10.0) -> Snapshot:
        """The store's latest state, waiting up to ``wait`` seconds for a writer that holds it
        (after the app's own write, so what the user just did shows, not the state before)."""
        deadline = time.monotonic() + wait
        snap = self.current()
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.1)
            snap = self.current()
        return snap

    def _replace(self, fresh: Snapshot) -> None:
        old, self._current = self._current, fresh
        if old is not None:
            if self._readers.get(id(old), 0):
                self._retired[id(old)] = old  # closed by its last reader
            else:
                old.close()

    def step_aside(self) -> None:
        """A writer is waiting: serve a copy and let the file go."""
        with self._lock:
            snap = self._current
            if snap is None or snap.copy or self._stop.is_set():
                return
            self._replace(self._copy_of(snap.generation))

    def _watch(self) -> None:
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._run, name="dashboard-read-view", daemon=True)
            self._watcher.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                if self.store.writer_waiting():
                    self.step_aside()
            except Exception:  # never let the watcher die; the next query re-opens the view
                continue

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=2)
        with self._lock:
            for snap in [self._current, *self._retired.values()]:
                if snap is not None:
                    snap.close()
            self._current, self._retired = None, {}


# Changes to stores made by earlier versions, each applied once (recorded in meta).
MIGRATIONS: list[tuple[str, str]] = [
    ("mentions.wide", """
        CREATE OR REPLACE TABLE mentions AS
        SELECT m.article_id, m.symbol, m.how, m.name, a.published_at, a.title, a.source, a.categories,
               a.url, a.text,
               list(m.symbol) OVER (PARTITION BY m.article_id ORDER BY
                   CASE m.how WHEN 'embed' THEN 0 WHEN 'link' THEN 1 ELSE 2 END, m.symbol
                   ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS named
        FROM mentions m JOIN articles a USING (article_id)
        ORDER BY m.symbol, a.published_at;
        INSERT INTO meta VALUES ('mentions_clustered', (SELECT count(*)::VARCHAR FROM mentions))
        ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    """),
    ("files.folder", """
        ALTER TABLE files ADD COLUMN IF NOT EXISTS folder VARCHAR;
        UPDATE files SET folder = regexp_replace(path, '/[^/]*$', '') WHERE folder IS NULL;
    """),
    # Articles dated outside the supported range (articles.EARLIEST_PUBLISHED ...
    # LATEST_PUBLISHED), stored before such dates were refused, become rejected files with
    # the reason ingest now gives, so no reader meets year 1 or 9999.
    ("articles.supported_dates", """
        CREATE OR REPLACE TEMP TABLE unsupported AS
        SELECT article_id, published_at FROM articles
        WHERE published_at < TIMESTAMPTZ '1970-01-01 00:00:00+00'
           OR published_at >= TIMESTAMPTZ '2100-01-01 00:00:00+00';
        UPDATE files SET status = 'rejected', article_id = NULL,
               reason = 'publication date ' || strftime(u.published_at, '%Y-%m-%d %H:%M:%S')
                        || ' (UTC) is outside the supported range 1970-01-01 … 2099-12-31 (UTC)'
        FROM unsupported u WHERE files.article_id = u.article_id;
        DELETE FROM mentions WHERE article_id IN (SELECT article_id FROM unsupported);
        DELETE FROM article_sessions WHERE article_id IN (SELECT article_id FROM unsupported);
        DELETE FROM articles WHERE article_id IN (SELECT article_id FROM unsupported);
        DROP TABLE unsupported;
    """),
]


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version the store file was written with (None for a new file).
    Raises NotAStore for a DuckDB file that holds other tables and no dashboard's."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:
        others = [t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND NOT temporary ORDER BY 1 LIMIT 4").fetchall()]
        if others:
            raise NotAStore(f"it holds the tables {', '.join(others)}, and none of the dashboard's") from None
        return None
    return int(rows[0][0]) if rows else None


def _pending_migrations(con: duckdb.DuckDBPyConnection) -> bool:
    done = {k for (k,) in con.execute("SELECT key FROM meta WHERE starts_with(key, 'migration:')").fetchall()}
    return any(f"migration:{key}" not in done for key, _ in MIGRATIONS)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    version = stored_version(con)
    con.execute(SCHEMA)
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        [str(SCHEMA_VERSION)],
    )
    done = {k for (k,) in con.execute("SELECT key FROM meta WHERE starts_with(key, 'migration:')").fetchall()}
    for key, sql in MIGRATIONS:
        if f"migration:{key}" not in done:
            con.execute(sql)
            con.execute("INSERT INTO meta VALUES (?, 'done')", [f"migration:{key}"])
    if version is not None and version < SCHEMA_VERSION:
        _migrate(con)  # last: the caches are computed from the tables as this version has them
    elif version is None:  # a new store (a migrated one has them from _migrate)
        con.execute(STORE_VIEWS)


def drop_derived(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the derived caches and the views over them (see ``derived_drops``)."""
    kinds = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = current_schema()").fetchall()
    for statement in derived_drops(dict(kinds)):
        con.execute(statement)


def derived_drops(kinds: dict[str, str]) -> list[str]:
    """The statements that drop the derived caches and the views over them, given the kind
    (information_schema's table_type) of each object in the schema: ``reactions`` is the table
    an older version kept, or this version's view."""
    return [f"DROP {'VIEW' if kinds[name] == 'VIEW' else 'TABLE'} {name}"
            for name in (*VIEW_NAMES, *DERIVED_TABLES) if name in kinds]


SORT_GROUP = 48 * 2**20  # bytes of rows one sort holds (mentions carry their article's text): DuckDB
                         # sorts that much in the write's 256 MB; the whole 100k corpus's it cannot
_TIME_KEY = "coalesce(published_at, '-infinity'::TIMESTAMPTZ)"


def _group_bounds(con: duckdb.DuckDBPyConnection, source: str, where: str, size: str,
                  key: str = _TIME_KEY) -> list[tuple[Any, Any, int]]:
    """The first (symbol, key) of each group of about ``SORT_GROUP`` bytes (``size`` per row,
    plus 256) in order of symbol and ``key``, each with the count of all rows: a sort of the
    keys and sizes alone, never of the texts."""
    return con.execute(f"""
        WITH sized AS MATERIALIZED (  -- the sizes first: a window given size(text) holds the texts
            SELECT symbol, {key} AS time_key, coalesce({size}, 0) + 256 AS size
            FROM {source} WHERE {where}
        ),
        keyed AS (
            SELECT symbol, time_key,
                   floor(sum(size) OVER (ORDER BY symbol, time_key ROWS UNBOUNDED PRECEDING) / {SORT_GROUP}) AS grp
            FROM sized
        ),
        marked AS (
            SELECT symbol, time_key, count(*) OVER () AS n,
                   grp IS DISTINCT FROM lag(grp) OVER (ORDER BY symbol, time_key) AS starts
            FROM keyed
        )
        SELECT symbol, time_key, n FROM marked WHERE starts ORDER BY symbol, time_key
    """).fetchall()


def append_sorted(con: duckdb.DuckDBPyConnection, table: str, source: str, where: str = "TRUE",
                  columns: str = "* EXCLUDE (time_key)", size: str = "strlen(text)") -> int:
    """Append ``source``'s rows (where ``where`` holds) to ``table`` in order of symbol and time.

    In groups of about ``SORT_GROUP`` bytes (``size`` per row, plus 256), cut where a sort of
    the keys alone puts the boundaries, each read by a range of symbols (which zone maps and
    Parquet statistics use) and sorted on its own: no sort holds more than a group, whatever the
    size of the batch. Returns the rows appended; raises (the caller's transaction then rolls
    back) if a group missed any.

    On PostgreSQL one statement: its sort spills to disk beyond ``work_mem``, and a security's
    rows are found by the index on mentions, not by where they lie."""
    if getattr(con, "kind", None) == "postgres":
        return _append_sorted_pg(con, table, source, where, columns)
    con.execute("SET parquet_metadata_cache = true")  # every group reads the same files' footers
    bounds = _group_bounds(con, source, where, size)
    if not bounds:
        return 0
    done = 0
    for (lo_sym, lo_key, _), hi in zip(bounds, [*bounds[1:], None], strict=True):
        if hi is not None and hi[:2] == (lo_sym, lo_key):
            continue  # more than a group of rows share one key: the group after takes them all
        params = {"lo_sym": lo_sym, "lo_key": lo_key}
        upper, upper_key = "", ""
        if hi is not None:
            params |= {"hi_sym": hi[0], "hi_key": hi[1]}
            upper, upper_key = " AND symbol <= $hi_sym", " AND (symbol, time_key) < ($hi_sym, $hi_key)"
        done += con.execute(f"""
            INSERT INTO {table}
            SELECT {columns} FROM (
                SELECT *, {_TIME_KEY} AS time_key FROM {source}
                WHERE ({where}) AND symbol >= $lo_sym{upper})
            WHERE (symbol, time_key) >= ($lo_sym, $lo_key){upper_key}
            ORDER BY symbol, time_key
        """, params).fetchall()[0][0]
    if done != bounds[0][2]:
        raise RuntimeError(f"appending to {table} in order placed {done} of {bounds[0][2]} rows")
    return done


_NO_TIME = -(2**63)  # a row without a time sorts first, as -infinity does in _TIME_KEY


def append_sorted_files(con: duckdb.DuckDBPyConnection, table: str, pattern: str, columns: list[str],
                        scratch: Path, skip: str, meanwhile: Callable[[], object] = lambda: None) -> int:
    """Append the rows of the Parquet files matching ``pattern`` (with ``symbol``,
    ``published_at``, ``path`` and a ``text_bytes`` size), but those whose ``path`` is in table
    ``skip``, to ``table``'s ``columns`` in order of symbol and time, as append_sorted does: the
    mentions a fresh ingest staged.

    append_sorted reads each group's range from every file, and DuckDB sorts each group with
    its texts. Here the files are read once, each row sent to its group's Arrow file in
    ``scratch``, and each group sorted by Arrow (a stable sort of indices, then one gather) and
    inserted in that order by one thread. At 1M posts (1.3M rows, 2.3 GB of text) 43-51 s
    instead of 80 s, the process at 656-683 MiB instead of 407 (both at 256 MB for DuckDB).

    ``meanwhile``, work of the caller's on ``con``, runs while the rows are spread to their
    groups in another thread (Arrow's work, done without the GIL): the merge of an ingest
    otherwise leaves one of two cores idle."""
    where = f"path NOT IN (SELECT path FROM {skip})"
    files = sorted(glob.glob(pattern.replace("''", "'")))
    if getattr(con, "kind", None) == "postgres" or not files:
        meanwhile()
        return _append_sorted_pg(con, table, f"read_parquet('{pattern}')", where, ", ".join(columns)) if files else 0
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    bounds = _group_bounds(con, f"read_parquet({listed})", where, "text_bytes",
                           f"coalesce(epoch_us(published_at), {_NO_TIME})")
    if not bounds:
        meanwhile()
        return 0
    skip_paths = con.sql(f"SELECT path FROM {skip}").to_arrow_table()["path"].combine_chunks()
    starts = [(sym, key) for sym, key, _ in bounds[1:]]
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    read = sorted({*columns, "symbol", "published_at", "path"})
    stop = threading.Event()

    def spread() -> None:
        try:
            for first in range(0, len(files), 16):  # a few files at a time: tens of MB
                if stop.is_set():
                    return
                rows = pa.concat_tables(pq.read_table(f, columns=read) for f in files[first:first + 16])
                if len(skip_paths):
                    rows = rows.filter(pc.invert(pc.is_in(rows["path"], value_set=skip_paths)))
                group = _group_of(rows, starts)
                order = pc.sort_indices(group)
                rows, group = rows.select(columns).take(order), pc.take(group, order).to_numpy()
                cuts = [0, *(np.flatnonzero(np.diff(group)) + 1), len(group)]
                for lo, hi in itertools.pairwise(cuts):
                    if hi > lo:
                        k = int(group[lo])
                        if k not in writers:
                            writers[k] = pa.ipc.new_stream(scratch / f"group-{k:06d}.arrow", rows.schema)
                        writers[k].write_table(rows.slice(lo, hi - lo))
        finally:
            for w in writers.values():
                w.close()

    with ThreadPoolExecutor(1, thread_name_prefix="append-spread") as pool:  # waits for it on leaving
        spreading = pool.submit(spread)
        try:
            meanwhile()
        except BaseException:
            stop.set()  # the write fails: the spread need not finish
            raise
        spreading.result()  # its error, if any
    done = 0
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    for k in sorted(writers):
        path = scratch / f"group-{k:06d}.arrow"
        with pa.memory_map(str(path)) as mapped:
            rows = pa.ipc.open_stream(mapped).read_all()
            keys = pa.table({"symbol": rows["symbol"], "time": _time_of(rows)})
            rows = rows.take(pc.sort_indices(keys, sort_keys=[("symbol", "ascending"), ("time", "ascending")]))
        path.unlink()
        # inserted from a registered Arrow table, the texts stayed in memory until the commit
        # (2.9 GiB at 1M posts); read from Parquet, DuckDB's memory limit holds
        path = path.with_suffix(".parquet")
        pq.write_table(rows, path, compression="none")
        del rows
        try:  # one thread reads the file: its rows reach the table in their order
            con.execute("SET threads = 1")
            done += con.execute(f"INSERT INTO {table} ({', '.join(columns)}) "
                                f"SELECT {', '.join(columns)} FROM read_parquet($path)",
                                {"path": str(path)}).fetchall()[0][0]
        finally:
            con.execute(f"SET threads = {threads}")
        path.unlink()
    if done != bounds[0][2]:
        raise RuntimeError(f"appending to {table} in order placed {done} of {bounds[0][2]} rows")
    return done


def _time_of(rows: pa.Table) -> pa.ChunkedArray:
    return pc.fill_null(pc.cast(rows["published_at"], pa.int64()), _NO_TIME)


def _group_of(rows: pa.Table, starts: list[tuple[str, int]]) -> pa.Array:
    """Each row's group: how many group starts (symbol, time) it is at or after."""
    symbol, key = rows["symbol"], _time_of(rows)
    group = pa.array(np.zeros(rows.num_rows, np.int32))
    for sym, start in starts:
        after = pc.or_(pc.greater(symbol, sym), pc.and_(pc.equal(symbol, sym), pc.greater_equal(key, start)))
        group = pc.add(group, pc.cast(after, pa.int32()))
    return group


def _append_sorted_pg(con: Any, table: str, source: str, where: str, columns: str) -> int:
    if "EXCLUDE" in columns:
        raise ValueError("append_sorted on PostgreSQL: name the columns to append")
    rows = con.execute(f"SELECT count(*) FROM {source} WHERE {where}").fetchall()[0][0]
    con.execute(f"""
        INSERT INTO {table}
        SELECT {columns} FROM (SELECT *, {_TIME_KEY} AS time_key FROM {source} WHERE {where})
        ORDER BY symbol, time_key
    """)  # one statement: all of them, or an error
    return int(rows)


def cluster_mentions(con: duckdb.DuckDBPyConnection, slack: float = 0.1, inserted_sorted: bool = False) -> bool:
    """Keep ``mentions`` clustered by symbol: each write appends its rows (sorted within the
    batch); once the appended rows exceed ``slack`` of the table (and two row groups), the table
    is rewritten in order. The rewrite costs the corpus, but only every tenth growth or so; in
    between, a security's rows stay in a few row groups that DuckDB's zone maps pick out.
    ``inserted_sorted``: the table was just filled in order from empty. True when it rewrote.
    (A PostgreSQL store finds a security's rows by its index on mentions: nothing to do.)"""
    if getattr(con, "kind", None) == "postgres":
        return False
    total = con.execute("SELECT count(*) FROM mentions").fetchall()[0][0]
    if inserted_sorted:
        con.execute("INSERT INTO meta VALUES ('mentions_clustered', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [str(total)])
        return False
    rows = con.execute("SELECT value FROM meta WHERE key = 'mentions_clustered'").fetchall()
    clustered = int(rows[0][0]) if rows else 0
    if total - clustered <= max(2 * 122_880, slack * total) and clustered <= total:
        return False
    # in order, a group at a time (see append_sorted), into a new table that takes the old one's place
    con.execute("CREATE OR REPLACE TABLE mentions_sorted AS SELECT * FROM mentions LIMIT 0")
    append_sorted(con, "mentions_sorted", "mentions")
    con.execute("DROP TABLE mentions; ALTER TABLE mentions_sorted RENAME TO mentions")
    con.execute("INSERT INTO meta VALUES ('mentions_clustered', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [str(total)])
    return True


# Caches derived from articles and prices: an older store's are rebuilt, not altered.
DERIVED_TABLES = ("article_sessions", "session_reactions", "daily_returns")


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Drop and recompute the derived tables in one transaction, with the benchmarks they
    were built with; a failure leaves the old store as it was, to migrate on the next open."""
    from dashboard.config import DEFAULT_BENCHMARKS
    from dashboard.reactions import refresh_reactions

    con.begin()
    try:
        used = dict(con.execute(
            "SELECT DISTINCT s.market, d.benchmark FROM daily_returns d JOIN securities s USING (symbol) "
            "WHERE s.market IS NOT NULL AND d.benchmark IS NOT NULL").fetchall())
        drop_derived(con)
        con.execute(SCHEMA)
        con.execute(STORE_VIEWS)
        refresh_reactions(con, {**DEFAULT_BENCHMARKS, **used})
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
    except BaseException:
        con.rollback()
        raise
    con.commit()
