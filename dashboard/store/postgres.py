"""The shared PostgreSQL store: many readers, scheduled writers, one database.

Every module speaks DuckDB's Python API and SQL; :class:`PgConnection` offers that API over
a psycopg 3 connection and translates each statement (``dialect``). Where the two engines
would not give the same numbers, the work runs in DuckDB itself: the derived caches
(daily returns, reactions) are computed by the same DuckDB SQL on the rows they are computed
from, pulled into an in-memory DuckDB, and written back (``local_duckdb``). So both stores
hold the same answers, bit for bit.

* Writers (``ingest``, price fetches and imports) take one transaction each, serialized by a
  transaction-scoped advisory lock (a second writer waits ``lock_timeout`` seconds, then
  :class:`StoreBusy`); unique indexes back the keys, so nothing can be stored twice. Every
  write bumps the ``generation`` row of ``meta``.
* Readers never block writers nor wait for them (MVCC). The app's :class:`PgSnapshot` is an
  exported snapshot: one transaction holds it, every query imports it, so a page reads one
  consistent state until the generation moves on. Reads need only ``SELECT`` (and the
  default ``TEMPORARY`` right); their transactions are always rolled back.
* The connection URL's password is never shown: :attr:`PgStore.label` and every error
  carry the URL without it.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import errors as pgerrors
from psycopg.types.numeric import NumericBinaryLoader, NumericLoader

from dashboard.store.base import (
    QUIET,
    CountedReaders,
    SnapshotQueries,
    StoreBusy,
    StoreUnavailable,
    redact,
    scrub,
    secrets_of,
)
from dashboard.store.dialect import Statement, null_keys, schema_for_postgres, translate

WRITE_LOCK = 0x6E657773  # the advisory lock every writer holds ("news")
INLINE_MAX = 50_000  # registered tables up to this many rows travel as array parameters
READ_WORK_MEM = os.environ.get("DASHBOARD_PG_READ_WORK_MEM", "32MB")
WRITE_WORK_MEM = os.environ.get("DASHBOARD_PG_WRITE_WORK_MEM", "256MB")

# Indexes and keys the DuckDB file does without (it scans); here they keep the app's reads
# index lookups, and the unique ones make a row stored twice an error, never a double count.
PG_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS articles_key ON articles (article_id);
CREATE INDEX IF NOT EXISTS articles_url ON articles (url);
CREATE INDEX IF NOT EXISTS articles_dedup ON articles (dedup_key);
CREATE INDEX IF NOT EXISTS articles_published ON articles (published_at);
CREATE INDEX IF NOT EXISTS mentions_symbol ON mentions (symbol, published_at, how);
CREATE INDEX IF NOT EXISTS mentions_article ON mentions (article_id);
CREATE UNIQUE INDEX IF NOT EXISTS securities_key ON securities (symbol);
CREATE UNIQUE INDEX IF NOT EXISTS files_key ON files (path);
CREATE INDEX IF NOT EXISTS files_article ON files (article_id);
CREATE INDEX IF NOT EXISTS files_folder ON files (folder);
CREATE INDEX IF NOT EXISTS folders_path ON folders (path);
CREATE UNIQUE INDEX IF NOT EXISTS ingest_runs_key ON ingest_runs (run_id);
CREATE INDEX IF NOT EXISTS ingest_problems_run ON ingest_problems (run_id);
CREATE UNIQUE INDEX IF NOT EXISTS prices_key ON prices (symbol, date);
CREATE UNIQUE INDEX IF NOT EXISTS price_coverage_key ON price_coverage (symbol);
CREATE UNIQUE INDEX IF NOT EXISTS price_failures_key ON price_failures (symbol);
CREATE UNIQUE INDEX IF NOT EXISTS calendar_sessions_key ON calendar_sessions (calendar, session);
CREATE UNIQUE INDEX IF NOT EXISTS daily_returns_key ON daily_returns (symbol, date);
CREATE INDEX IF NOT EXISTS daily_returns_i ON daily_returns (symbol, i);
CREATE INDEX IF NOT EXISTS article_sessions_symbol ON article_sessions (symbol, session);
CREATE INDEX IF NOT EXISTS article_sessions_article ON article_sessions (article_id, symbol);
CREATE UNIQUE INDEX IF NOT EXISTS session_reactions_key ON session_reactions (symbol, session);
"""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PgGeneration:
    """A committed state of the shared store: the ``generation`` row every write bumps."""

    number: int


# --- values between PostgreSQL, Arrow and DuckDB -----------------------------------------

class _Number(NumericLoader):
    """numeric as DuckDB's Python API gives its results: an int when whole, else a float."""

    def load(self, data: Any) -> Any:
        return _plain_number(super().load(data))


class _NumberBinary(NumericBinaryLoader):
    def load(self, data: Any) -> Any:
        return _plain_number(super().load(data))


def _plain_number(d: Decimal) -> int | float:
    if d.is_finite() and d == d.to_integral_value():
        return int(d)
    return float(d)


_TEXT = pa.string()
_ARROW_OF_OID: dict[int, pa.DataType] = {
    16: pa.bool_(), 21: pa.int16(), 23: pa.int32(), 20: pa.int64(), 26: pa.int64(),
    700: pa.float32(), 701: pa.float64(), 1700: pa.float64(),
    25: _TEXT, 1043: _TEXT, 1042: _TEXT, 19: _TEXT, 705: _TEXT,
    1082: pa.date32(), 1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"), 1083: pa.time64("us"),
    1009: pa.list_(_TEXT), 1015: pa.list_(_TEXT), 1182: pa.list_(pa.date32()), 1016: pa.list_(pa.int64()),
    1007: pa.list_(pa.int32()), 1022: pa.list_(pa.float64()), 1000: pa.list_(pa.bool_()),
    1185: pa.list_(pa.timestamp("us", tz="UTC")),
}


def _pg_type(t: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow type (text compared bytewise, as in DuckDB)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return 'TEXT COLLATE "C"'
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return "SMALLINT"
    if pa.types.is_int32(t) or pa.types.is_uint8(t) or pa.types.is_uint16(t):
        return "INTEGER"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_float32(t):
        return "REAL"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE PRECISION"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _pg_type(t.value_type)
        return inner.replace(' COLLATE "C"', '') + '[] COLLATE "C"' if "TEXT" in inner else inner + "[]"
    raise TypeError(f"no PostgreSQL column type for Arrow {t}")


def _array_literal(values: list[Any] | None) -> str | None:
    if values is None:
        return None
    items = []
    for v in values:
        if v is None:
            items.append("NULL")
        else:
            s = str(v)
            items.append('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"


def _csv_ready(table: pa.Table) -> pa.Table:
    """Arrow columns as PostgreSQL reads them from CSV: lists as array literals."""
    cols = []
    for col in table.columns:
        t = col.type
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            col = pa.array([_array_literal(v) for v in col.to_pylist()], _TEXT)
        elif pa.types.is_null(t):
            col = pa.nulls(len(col), _TEXT)
        elif pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _copy_in(cur: psycopg.Cursor[Any], table: str, data: pa.Table) -> None:
    """Bulk-load Arrow rows into a PostgreSQL table by COPY (CSV written by pyarrow)."""
    if data.num_rows == 0:
        return
    cols = ", ".join(f'"{c}"' for c in data.column_names)
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
        for batch in _csv_ready(data).to_batches(max_chunksize=20_000):
            buf = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches([batch]), buf,
                            pacsv.WriteOptions(include_header=False, quoting_style="needed"))
            copy.write(buf.getvalue())


def _param(value: Any) -> Any:
    """A Python value psycopg can send, from what DuckDB's API accepts (numpy, pandas)."""
    if value is None or isinstance(value, (str, bool, int, float, date, datetime, Decimal)):
        if isinstance(value, pd.Timestamp):
            return None if pd.isna(value) else value.to_pydatetime()
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [_param(v) for v in list(value)]
    if value is pd.NaT:
        return None
    return value


_DUCK: duckdb.DuckDBPyConnection | None = None
_DUCK_LOCK = threading.Lock()


@contextmanager
def _duck() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of one in-memory DuckDB that turns Arrow results into DuckDB's Python values.
    (One process-wide database: per-thread ones would be destroyed in a forked child, whose
    DuckDB then waits for threads that do not exist there.)"""
    global _DUCK
    with _DUCK_LOCK:
        if _DUCK is None:
            _DUCK = duckdb.connect()
            _DUCK.execute(QUIET)
        cur = _DUCK.cursor()
    try:
        cur.execute("SET TimeZone = 'UTC'")
        yield cur
    finally:
        cur.close()


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    with _duck() as duck:
        return duck.from_arrow(table).df()


def _to_numpy(table: pa.Table) -> dict[str, np.ndarray]:
    with _duck() as duck:
        return duck.from_arrow(table).fetchnumpy()


class _Result:
    """One statement's rows, as DuckDB's API would hand them over."""

    def __init__(self, description: Sequence[Any] | None, rows: list[tuple[Any, ...]]) -> None:
        self.description = description
        self.rows = rows
        self._arrow: pa.Table | None = None

    def arrow(self) -> pa.Table:
        if self._arrow is None:
            if not self.description:
                self._arrow = pa.table({})
            else:
                names = [d.name for d in self.description]
                cols = list(zip(*self.rows, strict=True)) if self.rows else [[] for _ in names]
                arrays = []
                for d, values in zip(self.description, cols, strict=True):
                    t = _ARROW_OF_OID.get(d.type_code)
                    try:
                        arrays.append(pa.array(list(values), t) if t is not None else pa.array(list(values)))
                    except (pa.ArrowInvalid, pa.ArrowTypeError):
                        arrays.append(pa.array([None if v is None else str(v) for v in values], _TEXT))
                self._arrow = pa.table(arrays, names=_unique(names))
        return self._arrow


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k}")
    return out


class _Relation:
    """What ``con.sql(...)`` returns, as far as the modules use it."""

    def __init__(self, result: _Result) -> None:
        self._result = result

    def to_arrow_table(self) -> pa.Table:
        return self._result.arrow()

    arrow = to_arrow_table

    def df(self) -> pd.DataFrame:
        return _to_pandas(self._result.arrow())

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._result.rows)


class PgConnection:
    """DuckDB's connection API over one PostgreSQL connection inside a store transaction."""

    kind = "postgres"

    def __init__(self, conn: psycopg.Connection[Any], secrets: list[str]) -> None:
        self._conn = conn
        self._secrets = secrets
        self._result: _Result | None = None
        self._inline: dict[str, tuple[tuple[tuple[str, str], ...], dict[str, list[Any]]]] = {}
        self._temp: set[str] = set()
        self._columns: dict[str, tuple[str, ...]] = {}  # registered tables' columns
        self._parquet: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = {}

    # -- running SQL ------------------------------------------------------------------

    def _inline_spec(self) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        return tuple(sorted((name, cols) for name, (cols, _) in self._inline.items()))

    def _bind(self, stmt: Statement, params: Any) -> list[Any]:
        out = []
        for ref in stmt.params:
            if ref[0] == "pos":
                out.append(_param(params[ref[1]]))
            elif ref[0] == "name":
                out.append(_param(params[ref[1]]))
            else:
                out.append(self._inline[str(ref[1])][1][str(ref[2])])
        return out

    def execute(self, sql: str, params: Any = None) -> PgConnection:
        statements = translate(sql, self._inline_spec(), null_keys(params), tuple(sorted(self._columns.items())))
        result = None
        with self._conn.cursor(binary=True) as cur:
            for stmt in statements:
                for glob, table in stmt.parquet:
                    self._load_parquet(cur, glob, table)
                if "TEMP" in stmt.text:
                    _USED_TEMP.add(id(self._conn))
                try:
                    cur.execute(stmt.text, self._bind(stmt, params) or None)
                except psycopg.Error as e:
                    raise _store_error(e, self._secrets, stmt.text) from None
                result = _Result(cur.description, cur.fetchall() if cur.description else [])
        self._result = result
        return self

    def executemany(self, sql: str, rows: Sequence[Any]) -> PgConnection:
        for row in rows:  # one statement per row: its NULLs are part of its translation
            self.execute(sql, row)
        self._result = None
        return self

    def sql(self, sql: str) -> _Relation:
        self.execute(sql)
        assert self._result is not None
        return _Relation(self._result)

    def _rows(self) -> _Result:
        if self._result is None:
            raise RuntimeError("no result: execute a query first")
        return self._result

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows().rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._rows().rows
        return rows[0] if rows else None

    def df(self) -> pd.DataFrame:
        return _to_pandas(self._rows().arrow())

    def fetchdf(self) -> pd.DataFrame:
        return self.df()

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        return _to_numpy(self._rows().arrow())

    def to_arrow_table(self) -> pa.Table:
        return self._rows().arrow()

    arrow = fetch_arrow_table = to_arrow_table

    # -- tables from Python -------------------------------------------------------------

    def register(self, name: str, data: pa.Table | pd.DataFrame) -> PgConnection:
        """``data`` readable as table ``name``: inline arrays when small, else a temp table."""
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        self.unregister(name)
        nested = any(pa.types.is_nested(t) for t in table.schema.types)  # no ragged arrays in PostgreSQL
        if not nested and (table.num_rows <= INLINE_MAX or self._read_only()):
            cols = tuple((c, _pg_type(t).replace(' COLLATE "C"', "")) for c, t in zip(
                table.column_names, table.schema.types, strict=True))
            values = {c: table.column(c).to_pylist() for c in table.column_names}
            self._inline[name] = (cols, values)
        else:
            with self._conn.cursor() as cur:
                self._create_temp(cur, name, table)
            self._temp.add(name)
        self._columns[name] = tuple(table.column_names)
        return self

    def _read_only(self) -> bool:
        """A read-only transaction (a reader role with default_transaction_read_only) may not
        create even a temporary table."""
        with self._conn.cursor() as cur:
            cur.execute("SHOW transaction_read_only")
            return cur.fetchone()[0] == "on"

    def unregister(self, name: str) -> PgConnection:
        self._inline.pop(name, None)
        self._columns.pop(name, None)
        if name in self._temp:
            self._temp.discard(name)
            with self._conn.cursor() as cur:
                cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        return self

    def _create_temp(self, cur: psycopg.Cursor[Any], name: str, table: pa.Table) -> None:
        cols = ", ".join(f'"{c}" {_pg_type(t)}' for c, t in zip(table.column_names, table.schema.types,
                                                                strict=True))
        _USED_TEMP.add(id(self._conn))
        try:
            cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
            cur.execute(f'CREATE TEMP TABLE "{name}" ({cols})')
            _copy_in(cur, f'pg_temp."{name}"', table)
            cur.execute(f'ANALYZE pg_temp."{name}"')  # temporary tables get no statistics otherwise
        except psycopg.Error as e:
            raise _store_error(e, self._secrets, f"loading {name}") from None

    def _load_parquet(self, cur: psycopg.Cursor[Any], glob: str, table: str) -> None:
        files = sorted(Path(glob).parent.glob(Path(glob).name))
        if not files:
            raise FileNotFoundError(f"no files match {glob}")
        signature = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        if self._parquet.get(glob, ((), ""))[0] == signature:
            return
        data = pa.concat_tables([pq.read_table(f) for f in files])
        self._create_temp(cur, table, data)
        self._parquet[glob] = (signature, table)

    # -- DuckDB API the store does not need here -----------------------------------------

    def cursor(self) -> PgConnection:
        return self

    def close(self) -> None:
        pass

    def begin(self) -> None:
        raise NotImplementedError("a PostgreSQL store's transactions are its read() and write() blocks")

    commit = rollback = begin

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Python functions run in DuckDB: wrap the step in store.local_duckdb")

    remove_function = create_function

    # -- whole tables, for local_duckdb --------------------------------------------------

    def table_arrow(self, table: str, columns: Sequence[str] | None) -> pa.Table:
        cols = ", ".join(columns) if columns else "*"
        return self.execute(f"SELECT {cols} FROM {table}").to_arrow_table()

    def replace_rows(self, table: str, keys: Mapping[str, Sequence[Any]], data: pa.Table) -> None:
        """Replace the rows of ``table`` where some column of ``keys`` has one of its values
        with ``data`` (deleted, then copied in)."""
        where = " OR ".join(f"{c} = ANY(${i})" for i, c in enumerate(keys, 1))
        with self._conn.cursor() as cur:
            try:
                cur.execute(f"DELETE FROM {table} WHERE {where}", [list(v) for v in keys.values()])
                _copy_in(cur, table, data)
            except psycopg.Error as e:
                raise _store_error(e, self._secrets, f"writing {table}") from None

    def replace_table(self, table: str, data: pa.Table) -> None:
        """Make ``table`` hold exactly ``data`` (rows deleted, not truncated: readers go on)."""
        with self._conn.cursor() as cur:
            try:
                cur.execute(f"DELETE FROM {table}")
                _copy_in(cur, table, data)
            except psycopg.Error as e:
                raise _store_error(e, self._secrets, f"writing {table}") from None


def _store_error(e: psycopg.Error, secrets: list[str], what: str) -> Exception:
    """A database error as a sentence without secrets (the SQL that failed, in short)."""
    message = scrub(str(e).strip(), secrets)
    if isinstance(e, (pgerrors.InsufficientPrivilege, pgerrors.ReadOnlySqlTransaction)):
        return StoreUnavailable(f"the PostgreSQL role may not do this (a role that may only read?): {message}")
    if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError)):
        return StoreUnavailable(f"the PostgreSQL store failed: {message}")
    out = type(e)(f"{message}\n(in: {what[:300]})")
    return out


# --- the DuckDB engine for derived tables ------------------------------------------------

@contextmanager
def local_duckdb(con: PgConnection, reads: Mapping[str, Sequence[str] | None],
                 writes: Sequence[str] | Mapping[str, Mapping[str, Sequence[Any]] | None]
                 ) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB holding the store's tables (the columns in ``reads``; a table the
    store layer does not define, such as a temporary one, needs its columns named); on success
    the ``writes`` tables are written back inside the caller's transaction: whole, or (a
    mapping, which the block may fill in) only the rows where some column has one of the
    values given for it, which replace the store's such rows."""
    from dashboard.store.duckdb import SCHEMA

    duck = duckdb.connect()
    try:
        duck.execute(f"SET TimeZone = 'UTC'; SET preserve_insertion_order = false; {QUIET}")
        duck.execute(SCHEMA)
        for table, columns in reads.items():
            data = con.table_arrow(table, columns)
            duck.register("_pulled", data)
            if columns is None:  # the whole table, into its own definition
                duck.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _pulled")
            else:  # only the columns the step reads
                duck.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} AS SELECT * FROM _pulled")
            duck.unregister("_pulled")
        yield duck
        for table in writes:
            keys = writes.get(table) if isinstance(writes, Mapping) else None
            if keys is None:
                con.replace_table(table, duck.sql(f"SELECT * FROM {table}").to_arrow_table())
                continue
            keys = {c: list(v) for c, v in keys.items() if len(v)}
            if not keys:
                continue  # no rows to replace
            where = " OR ".join(f"{c} IN (SELECT unnest(${c}))" for c in keys)
            con.replace_rows(table, keys, duck.sql(f"SELECT * FROM {table} WHERE {where}",
                                                   params=keys).to_arrow_table())
    finally:
        duck.close()


# --- the store ---------------------------------------------------------------------------

def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", _Number)
    conn.adapters.register_loader("numeric", _NumberBinary)
    conn.execute("SET TimeZone = 'UTC'")


_USED_TEMP: set[int] = set()  # connections (by id) that made temporary tables


def _reset(conn: psycopg.Connection[Any]) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    if id(conn) in _USED_TEMP:
        _USED_TEMP.discard(id(conn))
        conn.execute("DISCARD TEMP")


class _RedactingFilter(logging.Filter):
    """Hides every open store's password in what psycopg and its pool log."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = scrub(record.getMessage(), sorted(self.secrets, key=len, reverse=True))
            record.args = None
        return True


_FILTER = _RedactingFilter()
for _name in ("psycopg", "psycopg.pool"):
    logging.getLogger(_name).addFilter(_FILTER)


class PgStore:
    """A store in a PostgreSQL database, named by a ``postgresql://`` URL."""

    kind = "postgres"

    def __init__(self, url: str, lock_timeout: float = 60.0, pool_size: int = 8) -> None:
        self._url = url.strip()
        self.lock_timeout = lock_timeout
        self._pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._secrets = secrets_of(self._url)
        self._schema_ready = False
        self.writes = 0  # writes this process committed (a read view then looks at once)
        _RedactingFilter.secrets.update(self._secrets)

    @property
    def label(self) -> str:
        return redact(self._url)

    def __repr__(self) -> str:
        return f"PgStore({self.label!r})"

    __str__ = __repr__

    @property
    def work_dir(self) -> Path:
        key = hashlib.blake2b(self.label.encode(), digest_size=6).hexdigest()
        path = Path(tempfile.gettempdir()) / f"dashboard-pg-{key}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- connections --------------------------------------------------------------------

    def _error(self, e: BaseException) -> StoreUnavailable:
        reason = scrub(str(e).strip(), self._secrets)
        return StoreUnavailable(f"cannot use the PostgreSQL store {self.label}: {reason}")

    def _open_pool(self) -> Any:
        from psycopg_pool import ConnectionPool

        with self._pool_lock:
            if self._pool is None:
                try:  # a plain connection first: a wrong URL fails at once, with the server's reason
                    psycopg.connect(self._url, connect_timeout=10).close()
                except psycopg.Error as e:
                    raise self._error(e) from None
                self._pool = ConnectionPool(
                    self._url, min_size=1, max_size=self._pool_size, open=True, timeout=30,
                    kwargs={"autocommit": True, "cursor_factory": psycopg.RawCursor},
                    configure=_configure, reset=_reset, check=ConnectionPool.check_connection,
                    name="dashboard-store")
                atexit.register(self.close)
        return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._open_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as e:
            raise self._error(e) from None
        except Exception as e:
            if type(e).__name__ == "PoolTimeout":
                raise self._error(e) from None
            raise

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # -- state --------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        with self._connection() as conn:
            return conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]

    def _version(self, conn: psycopg.Connection[Any]) -> int | None:
        if not conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def generation(self) -> PgGeneration:
        with self._connection() as conn:
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            except pgerrors.UndefinedTable:
                return PgGeneration(-1)
            return PgGeneration(int(row[0]) if row else 0)

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def write(self, timeout: float | None = None) -> Iterator[PgConnection]:
        """One transaction; other writers wait for it; committed only if the block succeeds."""
        timeout = self.lock_timeout if timeout is None else timeout
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                conn.execute(f"SET LOCAL lock_timeout = '{max(int(timeout * 1000), 1)}ms'")
                try:
                    conn.execute("SELECT pg_advisory_xact_lock($1)", [WRITE_LOCK])
                except pgerrors.LockNotAvailable:
                    raise StoreBusy(f"the store {self.label} is being written by another process "
                                    f"(an ingest or price fetch) and stayed busy for {timeout:.0f} s; "
                                    "try again") from None
                conn.execute(f"SET LOCAL lock_timeout = 0; SET LOCAL work_mem = '{WRITE_WORK_MEM}'")
                con = PgConnection(conn, self._secrets)
                self._ensure_schema(conn, con)
                yield con
                conn.execute("UPDATE meta SET value = (value::BIGINT + 1)::TEXT WHERE key = 'generation'")
                conn.execute("COMMIT")
                self.writes += 1
            except BaseException:
                try:
                    if not conn.closed:
                        conn.execute("ROLLBACK")
                except psycopg.Error:  # the connection broke: the server rolls back by itself
                    pass
                raise

    @contextmanager
    def read(self, timeout: float | None = None) -> Iterator[PgConnection]:
        """A consistent read (one REPEATABLE READ transaction, rolled back at the end)."""
        with self._connection() as conn:
            self._require_schema(conn)
            conn.execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL work_mem = '{READ_WORK_MEM}'")
            try:
                yield PgConnection(conn, self._secrets)
            finally:
                try:
                    if not conn.closed:
                        conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass

    def _require_schema(self, conn: psycopg.Connection[Any]) -> None:
        if self._schema_ready:
            return
        from dashboard.store.duckdb import SCHEMA_VERSION

        version = self._version(conn)
        if version is None or version < SCHEMA_VERSION:
            try:  # create or bring up to date (needs a role that may write)
                with self.write():
                    pass
            except StoreUnavailable as e:
                state = "has no tables yet" if version is None else f"is at schema version {version}"
                raise StoreUnavailable(
                    f"the PostgreSQL store {self.label} {state}, and this role cannot create them: run "
                    "`python -m dashboard ingest ...` (or any writing command) against it with a role that "
                    f"may write ({e})") from None
        elif _pending_migrations(conn):  # only data to tidy: a role that may only read, or a busy
            try:                         # store, reads it as it is (as a DuckDB store does)
                with self.write(timeout=0):
                    pass
            except (StoreUnavailable, StoreBusy):
                pass
        self._schema_ready = True

    def _ensure_schema(self, conn: psycopg.Connection[Any], con: PgConnection) -> None:
        from dashboard.store.duckdb import MIGRATIONS, SCHEMA, SCHEMA_VERSION

        version = self._version(conn)
        if version is not None and version >= SCHEMA_VERSION:
            _run_pending_migrations(con, conn)  # data migrations added since (none, mostly)
            return
        try:
            if version is not None:
                _migrate(con, conn)
            conn.execute(schema_for_postgres(SCHEMA))
            conn.execute(PG_INDEXES)
            _create_views(conn)
            conn.execute("INSERT INTO meta VALUES ('schema_version', $1) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", [str(SCHEMA_VERSION)])
            conn.execute("INSERT INTO meta VALUES ('generation', '0') ON CONFLICT (key) DO NOTHING")
            for key, _ in MIGRATIONS:  # a new database has every column already
                conn.execute("INSERT INTO meta VALUES ($1, 'done') ON CONFLICT (key) DO NOTHING",
                             [f"migration:{key}"])
        except pgerrors.InsufficientPrivilege as e:
            raise StoreUnavailable(f"the PostgreSQL role may not create the store's tables: "
                                   f"{scrub(str(e), self._secrets)}") from None

    def snapshot(self, timeout: float | None = None) -> PgSnapshot:
        """A consistent view for a long-running reader: an exported snapshot, held open."""
        pool = self._open_pool()
        with self._connection() as conn:
            self._require_schema(conn)
        try:
            holder = pool.getconn()
        except Exception as e:
            raise self._error(e) from None
        try:
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot_id, number = holder.execute(
                "SELECT pg_export_snapshot(), (SELECT value FROM meta WHERE key = 'generation')").fetchone()
        except psycopg.Error as e:
            pool.putconn(holder)
            raise self._error(e) from None
        return PgSnapshot(self, holder, snapshot_id, PgGeneration(int(number or 0)))


def _pending_migrations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """The migrations (``duckdb.MIGRATIONS``) the store has not had yet."""
    from dashboard.store.duckdb import MIGRATIONS

    done = {k for (k,) in conn.execute("SELECT key FROM meta WHERE key LIKE 'migration:%'").fetchall()}
    return [(key, sql) for key, sql in MIGRATIONS if f"migration:{key}" not in done]


def _run_pending_migrations(con: PgConnection, conn: psycopg.Connection[Any]) -> None:
    for key, sql in _pending_migrations(conn):
        con.execute(sql)
        conn.execute("INSERT INTO meta VALUES ($1, 'done')", [f"migration:{key}"])


def _migrate(con: PgConnection, conn: psycopg.Connection[Any]) -> None:
    """An older store: its derived caches dropped and rebuilt, other changes applied."""
    from dashboard.config import DEFAULT_BENCHMARKS
    from dashboard.reactions import refresh_reactions
    from dashboard.store.duckdb import SCHEMA, derived_drops

    used = dict(con.execute(
        "SELECT DISTINCT s.market, d.benchmark FROM daily_returns d JOIN securities s USING (symbol) "
        "WHERE s.market IS NOT NULL AND d.benchmark IS NOT NULL").fetchall())
    _run_pending_migrations(con, conn)
    kinds = conn.execute("SELECT table_name, table_type FROM information_schema.tables "
                         "WHERE table_schema = current_schema()").fetchall()
    for statement in derived_drops(dict(kinds)):
        conn.execute(statement)
    conn.execute(schema_for_postgres(SCHEMA))
    conn.execute(PG_INDEXES)
    _create_views(conn)
    refresh_reactions(con, {**DEFAULT_BENCHMARKS, **used})


def _create_views(conn: psycopg.Connection[Any]) -> None:
    from dashboard.store.duckdb import STORE_VIEWS

    for statement in translate(STORE_VIEWS):
        conn.execute(statement.text)


class PgSnapshot(SnapshotQueries):
    """One consistent state of the shared store, for every query of a long-running reader."""

    def __init__(self, store: PgStore, holder: psycopg.Connection[Any], snapshot_id: str,
                 generation: PgGeneration) -> None:
        self.store = store
        self.generation = generation
        self._holder = holder
        self._id = snapshot_id
        self._lock = threading.Lock()
        self.stale = False  # the holding transaction is gone: take a new snapshot

    def cursor(self) -> _SnapshotCursor:
        return _SnapshotCursor(self)

    def close(self) -> None:
        with self._lock:
            holder, self._holder = self._holder, None
        if holder is not None and self.store._pool is not None:
            try:
                if not holder.closed:
                    holder.execute("ROLLBACK")
            except psycopg.Error:
                pass
            self.store._pool.putconn(holder)


class _SnapshotCursor(PgConnection):
    """A pooled connection reading the snapshot's state (until ``close``)."""

    def __init__(self, snap: PgSnapshot) -> None:
        store = snap.store
        pool = store._open_pool()
        conn = pool.getconn()
        super().__init__(conn, store._secrets)
        self._pool = pool
        try:
            try:  # one round trip
                conn.execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{snap._id}'; "
                             f"SET LOCAL work_mem = '{READ_WORK_MEM}'")
            except psycopg.Error:  # the holder is gone (server restart, idle timeout): read the present
                conn.execute("ROLLBACK")
                conn.execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL work_mem = '{READ_WORK_MEM}'")
                snap.stale = True
        except psycopg.Error as e:
            pool.putconn(conn)
            raise store._error(e) from None

    def close(self) -> None:
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is not None:
            try:
                if not conn.closed:
                    conn.execute("ROLLBACK")
            finally:
                self._pool.putconn(conn)


class PgReadView(CountedReaders):
    """The app's view of a shared store: one exported snapshot per generation, re-taken when a
    write has moved the generation on (looked up at most every ``poll`` seconds, and at once
    after a write by this process); a replaced snapshot is closed when its last query is done.
    The same interface as ``duckdb.ReadView``."""

    busy = False  # PostgreSQL readers never wait for writers
    IDLE_SECONDS = 120.0  # a snapshot nobody read for this long is let go (it holds back VACUUM)

    def __init__(self, store: PgStore, poll: float = 1.0) -> None:
        self.store = store
        self.poll = poll
        self._lock = threading.RLock()
        self._current: PgSnapshot | None = None
        self._checked = (-1e9, -1)  # (monotonic time, store.writes) of the last generation lookup
        self._used = time.monotonic()
        self._readers: dict[int, int] = {}
        self._retired: dict[int, PgSnapshot] = {}
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._let_go_when_idle, name="dashboard-pg-view", daemon=True)
        self._reaper.start()
        atexit.register(self.close)

    def _let_go_when_idle(self) -> None:
        while not self._stop.wait(self.IDLE_SECONDS / 4):
            with self._lock:
                snap = self._current
                if (snap is not None and not self._readers.get(id(snap))
                        and time.monotonic() - self._used > self.IDLE_SECONDS):
                    self._current = None
                    snap.close()

    def current(self) -> PgSnapshot:
        with self._lock:
            snap = self._current
            now = time.monotonic()
            self._used = now
            if (snap is not None and not snap.stale and now - self._checked[0] < self.poll
                    and self._checked[1] == self.store.writes):
                return snap
            generation = self.store.generation()
            self._checked = (now, self.store.writes)
            if snap is None or snap.stale or snap.generation != generation:
                fresh = self.store.snapshot()
                self._current = fresh
                if snap is not None:
                    if self._readers.get(id(snap), 0):
                        self._retired[id(snap)] = snap
                    else:
                        snap.close()
            assert self._current is not None
            return self._current

    def refresh(self, wait: float = 10.0) -> PgSnapshot:
        """The store's latest state, looked up now (after a write by another process, such as
        the app's own background child, so what the user just did shows). PostgreSQL readers
        never wait for writers: ``wait`` is accepted for the same interface as ``ReadView``."""
        with self._lock:
            self._checked = (-1e9, -1)
            return self.current()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for snap in [self._current, *self._retired.values()]:
                if snap is not None:
                    snap.close()
            self._current, self._retired = None, {}
