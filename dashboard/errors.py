"""What a failure means to the person who meets it: one sentence; the details go to the log.

The command line and the app both turn an exception they did not expect into a
:class:`Failure` with :func:`explain`: ``message`` names the store or file (for the person
running the dashboard); ``public`` names nothing of the server (for a hosted app's
visitors). Neither ever holds a traceback: that goes to the ``dashboard`` logger.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger("dashboard")

_DISK_FULL = re.compile(r"no space left on device|disk (is )?full|quota exceeded", re.I)
_DAMAGED = [  # DuckDB's words for a file that is not (or no longer) a database, and ours
    (re.compile(r"not a valid DuckDB database file", re.I), "not a DuckDB database file"),
    (re.compile(r"could not read enough bytes|file is too small|unexpected end of file", re.I),
     "truncated: the file ends before its data does"),
    (re.compile(r"checksum|corrupt", re.I), "a block of it fails its checksum"),
    (re.compile(r"(version number|newer|older) .*DuckDB|DuckDB .*version", re.I),
     "written by another version of DuckDB"),
    (re.compile(r"serializ|deserializ|failed to read (database )?header", re.I),
     "its contents cannot be read"),
]
_PERMISSION = re.compile(r"permission denied|operation not permitted", re.I)
_READ_ONLY = re.compile(r"read-only file ?system", re.I)


@dataclass(frozen=True)
class Failure:
    """One failure, said for the local user (``message``) and for a visitor (``public``).
    ``expected`` is False for a bug (worth a report) and True for a fault of the
    environment (a full disk, a damaged file) that the user can fix."""

    kind: str  # disk_full | damaged | not_a_store | permission | read_only | memory | busy | os | bug
    message: str
    public: str
    expected: bool = True

    def sentence(self, public: bool = False) -> str:
        """The message as a sentence on its own (capitalized, with its full stop)."""
        text = self.public if public else self.message
        text = text[:1].upper() + text[1:]
        return text if text.endswith((".", "?", "!")) else text + "."


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and the ones it was raised from or during (a checkpoint's cause, ...)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _errno(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    m = re.search(r"\[errno (\d+)\]", str(exc), re.I)  # pyarrow's OSError text carries it
    return int(m.group(1)) if m else None


def _strip(text: str, *paths: str) -> str:
    """DuckDB's message without its category prefix and without the paths it names."""
    first = text.strip().splitlines()[0] if text.strip() else text
    first = re.sub(r"^(IO|FATAL|INTERNAL|Serialization|Catalog|Invalid Input) Error: ", "", first)
    for p in paths:
        if p:
            first = first.replace(f'"{p}"', "the file").replace(p, "the file")
    return first.strip()


def explain(exc: BaseException, store: str | os.PathLike[str] | None = None) -> Failure:
    """The failure ``exc`` is, as a sentence naming ``store`` (the store file in use)."""
    # (the store imports nothing of this module)
    from dashboard.store import NotAStore, StoreBusy, StoreUnavailable, is_url, redact

    where = None if store is None else redact(str(store)) if is_url(store) else str(Path(store).expanduser())
    chain = _chain(exc)
    text = " | ".join(str(e) for e in chain)
    codes = {_errno(e) for e in chain} - {None}
    filename = next((str(e.filename) for e in chain if isinstance(e, OSError) and e.filename), None)
    target = where or filename

    if any(isinstance(e, StoreBusy) for e in chain):
        busy = next(e for e in chain if isinstance(e, StoreBusy))
        return Failure("busy", str(busy), "The data is being updated; try again in a minute.")
    if any(isinstance(e, StoreUnavailable) for e in chain):  # a shared store: down, refused, not set up
        gone = next(e for e in chain if isinstance(e, StoreUnavailable))
        return Failure("unavailable", str(gone),
                       "The dashboard's data store cannot be reached right now; try again in a minute.")
    if codes & {errno.ENOSPC, errno.EDQUOT} or _DISK_FULL.search(text):
        place = f"the disk holding {target}" if target else "the disk"
        return Failure("disk_full", f"{place} is full; free space and run again",
                       "The server's disk is full; the dashboard cannot save data until space is freed.")
    if any(isinstance(e, NotAStore) for e in chain):
        return Failure("not_a_store", f"{where or 'the file'} is not a dashboard store ({_strip(str(exc))}); "
                                      "give another path with --db or DASHBOARD_DB",
                       "The dashboard's data store could not be opened.")
    if any(isinstance(e, duckdb.Error) for e in chain):
        for pattern, why in _DAMAGED:
            if pattern.search(text):
                return Failure(
                    "damaged", f"{where or 'the store'} is damaged or not a dashboard store ({why}); "
                               "restore it from a backup, or move it aside and ingest the posts again",
                    "The dashboard's data store is damaged; the details are in the server's log.")
    if codes & {errno.EROFS} or _READ_ONLY.search(text):
        return Failure("read_only", f"{target or 'the store'} is on a read-only file system",
                       "The dashboard cannot save data on this server.")
    if codes & {errno.EACCES, errno.EPERM} or _PERMISSION.search(text):
        return Failure("permission", f"permission denied: cannot open {target or 'a file it needs'}",
                       "The dashboard may not open its data on this server.")
    if any(isinstance(e, MemoryError | duckdb.OutOfMemoryException) for e in chain):
        return Failure("memory", "the dashboard ran out of memory; close other programs, or set "
                                 "DASHBOARD_WRITE_MEMORY lower, and run again",
                       "The server ran out of memory; try again later.")
    if isinstance(exc, OSError):
        return Failure("os", f"{target + ': ' if target else ''}{exc.strerror or exc}",
                       "The server could not read or write its data; the details are in its log.")
    if isinstance(exc, duckdb.Error):  # an SQL error we did not foresee: a bug, or a foreign file
        detail = _strip(str(exc), where or "")
        return Failure("bug", f"the store {where or ''} could not be used: {detail}".replace("  ", " "),
                       "Something went wrong; the details are in the server's log.", expected=False)
    return Failure("bug", f"unexpected error: {type(exc).__name__}: {exc}",
                   "Something went wrong; the details are in the server's log.", expected=False)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (as logging's last resort does)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def log_to_stderr(verbose: bool = False) -> None:
    """Send the ``dashboard`` logger to stderr: warnings and errors (with their tracebacks),
    or with ``verbose`` everything. Once per process (a later call only sets the level)."""
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
