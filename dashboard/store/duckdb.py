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
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dashboard.store.base import StoreBusy

SCHEMA_VERSION = 2  # 2: significance columns in the reaction caches
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
    article_id VARCHAR NOT NULL,
    symbol     VARCHAR NOT NULL,
    how        VARCHAR NOT NULL,   -- embed | link | inline
    name       VARCHAR             -- the name the post gives, if any
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
CREATE TABLE IF NOT EXISTS reactions (
    article_id   VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    session      DATE,
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


def _is_lock_error(e: Exception) -> bool:
    return isinstance(e, duckdb.IOException) and "lock" in str(e).lower()


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
                return duckdb.connect(str(self.path), read_only=read_only)
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
        version = stored_version(con)
        if version is None or version >= SCHEMA_VERSION:
            return con
        con.close()
        with self.write(timeout):
            pass
        return self._connect(read_only=True, timeout=timeout)

    @contextmanager
    def write(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction; committed only if the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _OPEN_LOCK:
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


class Snapshot:
    """A read-only copy of the store; safe to query from several threads."""

    def __init__(self, path: Path, generation: Generation) -> None:
        self.path = path
        self.generation = generation
        self._con = duckdb.connect(str(path), read_only=True)
        self._con.execute("SET TimeZone = 'UTC'")
        atexit.register(self.close)

    def query(self, sql: str, params: Any = None) -> pd.DataFrame:
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            return cur.execute(sql, params).df()
        finally:
            cur.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def close(self) -> None:
        try:
            self._con.close()
        finally:
            shutil.rmtree(self.path.parent, ignore_errors=True)


# Changes to stores made by earlier versions, each applied once (recorded in meta).
MIGRATIONS: list[tuple[str, str]] = [
    ("files.folder", """
        ALTER TABLE files ADD COLUMN IF NOT EXISTS folder VARCHAR;
        UPDATE files SET folder = regexp_replace(path, '/[^/]*$', '') WHERE folder IS NULL;
    """),
]


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version the store file was written with (None for a new file)."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:
        return None
    return int(rows[0][0]) if rows else None


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    version = stored_version(con)
    if version is not None and version < SCHEMA_VERSION:
        _migrate(con)
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


# Caches derived from articles and prices: an older store's are rebuilt, not altered.
DERIVED_TABLES = ("reactions", "daily_returns")


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
        con.execute("; ".join(f"DROP TABLE IF EXISTS {t}" for t in DERIVED_TABLES))
        con.execute(SCHEMA)
        refresh_reactions(con, {**DEFAULT_BENCHMARKS, **used})
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
    except BaseException:
        con.rollback()
        raise
    con.commit()
