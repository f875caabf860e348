"""What every store offers, whatever holds it: the interface, its errors, and hiding secrets."""

from __future__ import annotations

import re
import threading
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class StoreBusy(RuntimeError):
    """Another process is writing the store and did not finish in time."""


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or used (a server down, a wrong password, a missing grant)."""


URL_SCHEMES = ("postgresql://", "postgres://")
# DuckDB draws a progress bar on stdout for any query over 2 s: noise in the CLI's output, and
# glued to whatever a caller reads from it
QUIET = "SET enable_progress_bar = false"


def is_url(target: object) -> bool:
    """Whether a store target names a PostgreSQL database rather than a DuckDB file."""
    return isinstance(target, str) and target.strip().lower().startswith(URL_SCHEMES)


_SECRET_KEYS = {"password", "passfile", "sslpassword", "sslkey"}
_DSN_SECRET = re.compile(r"\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(url: str) -> str:
    """A connection URL fit to show: without its password (``postgresql://user:***@host/db``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode([(k, "***" if k.lower() in _SECRET_KEYS else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secrets_of(url: str) -> list[str]:
    """The secret strings in a connection URL (to scrub from messages)."""
    out = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    if parts.password:
        out.append(parts.password)
        from urllib.parse import unquote

        out.append(unquote(parts.password))
    out += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_KEYS and v]
    return sorted({s for s in out if s}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced, and any ``password=...`` left by a driver hidden."""
    for s in secrets:
        text = text.replace(s, "***")
    return _DSN_SECRET.sub(lambda m: f"{m.group(1)}=***", text)


class Snapshot(Protocol):
    """A consistent read view of the store for a long-running reader (the app)."""

    generation: Hashable

    def query(self, sql: str, params: Any = None) -> Any: ...

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


class SnapshotQueries:
    """A snapshot's ``query``: one statement on a cursor of its own, as a DataFrame (the
    backends' snapshots differ in their cursors, not in this)."""

    def cursor(self) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Any = None) -> Any:
        cur = self.cursor()
        try:
            return cur.execute(sql, params).df()
        finally:
            cur.close()


class Store(Protocol):
    """Where articles, securities, prices and reactions live (see ``open_store``).

    ``read()`` and ``write()`` yield a connection that speaks DuckDB's Python API and SQL
    (``execute(sql, params).fetchall()/.df()``, ``register(name, arrow)``); ``write()`` is one
    transaction, committed only if its block succeeds; ``snapshot()`` is a consistent view a
    long-running reader re-takes when ``generation()`` changes."""

    kind: str  # "duckdb" | "postgres"
    lock_timeout: float

    @property
    def exists(self) -> bool: ...

    @property
    def label(self) -> str: ...  # what to call the store in messages (never a password)

    @property
    def work_dir(self) -> Path: ...  # where a writer may stage files

    def generation(self) -> Hashable: ...

    def read(self, timeout: float | None = None) -> AbstractContextManager[Any]: ...

    def write(self, timeout: float | None = None) -> AbstractContextManager[Any]: ...

    def snapshot(self, timeout: float | None = None) -> Snapshot: ...


class CountedReaders:
    """What both read views share: each query holds the view's current snapshot for the length
    of a block (``reading()``), and a snapshot the view has replaced meanwhile (put in
    ``_retired``) is closed by its last reader. Subclasses set ``_lock``, ``_readers``
    (id of a snapshot -> queries running on it) and ``_retired``, and define ``current()``."""

    _lock: threading.RLock
    _readers: dict[int, int]
    _retired: dict[int, Any]

    def current(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """The current view of the store, kept open until the block ends."""
        with self._lock:
            snap = self.current()
            self._readers[id(snap)] = self._readers.get(id(snap), 0) + 1
        try:
            yield snap
        finally:
            with self._lock:
                left = self._readers[id(snap)] - 1
                if left:
                    self._readers[id(snap)] = left
                else:
                    del self._readers[id(snap)]
                    retired = self._retired.pop(id(snap), None)
                    if retired is not None:
                        retired.close()
