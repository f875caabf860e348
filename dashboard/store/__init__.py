"""The store: where articles, securities, prices and reactions live.

``duckdb`` is the embedded store a local dashboard uses (one file beside the app);
``postgres`` the shared one many app processes read and scheduled jobs write. Both offer
the same interface (``base.Store``) and yield connections that speak DuckDB's API and SQL,
so the modules keep one body of queries; ``dialect`` translates them for PostgreSQL.
``open_store`` picks the backend from what it is given: a ``postgresql://`` URL or a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dashboard.store.base import StoreBusy, StoreUnavailable, is_url, redact
from dashboard.store.duckdb import (
    SCHEMA,
    SCHEMA_VERSION,
    Generation,
    NotAStore,
    ReadView,
    Snapshot,
    Store,
    ensure_schema,
)


def open_store(target: str | os.PathLike[str], lock_timeout: float = 60.0) -> Any:
    """The store a setting names: PostgreSQL for a ``postgresql://`` URL, else a DuckDB file."""
    if is_url(target):
        from dashboard.store.postgres import PgStore

        return PgStore(str(target), lock_timeout=lock_timeout)
    return Store(target, lock_timeout=lock_timeout)


def read_view(store: Any) -> Any:
    """A long-running reader's view of ``store`` (the app's): ``current()``, ``reading()``."""
    if store.kind == "postgres":
        from dashboard.store.postgres import PgReadView

        return PgReadView(store)
    return ReadView(store)


@contextmanager
def local_duckdb(con: Any, reads: Mapping[str, Sequence[str] | None],
                 writes: Sequence[str] | Mapping[str, Mapping[str, Sequence[Any]] | None]) -> Iterator[Any]:
    """A DuckDB connection for a step written in DuckDB's own SQL (as-of joins, Python
    functions): the connection itself on a DuckDB store; on PostgreSQL an in-memory DuckDB
    holding the ``reads`` tables (only the columns named), whose ``writes`` tables replace
    the store's when the block succeeds, in the same transaction. ``writes`` may map a table
    to the rows it replaces, ``{column: values}`` (rows where some column has one of its
    values), which the block may fill in as it learns them; None (or a plain list of
    tables): the whole table. The numbers are DuckDB's either way."""
    if getattr(con, "kind", None) != "postgres":
        yield con
        return
    from dashboard.store.postgres import local_duckdb as pg_local

    with pg_local(con, reads, writes) as duck:
        yield duck


__all__ = ["SCHEMA", "SCHEMA_VERSION", "Generation", "NotAStore", "ReadView", "Snapshot", "Store", "StoreBusy",
           "StoreUnavailable",
           "ensure_schema", "is_url", "local_duckdb", "open_store", "read_view", "redact"]
