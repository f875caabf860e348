"""Work the app does away from its pages: ingesting the posts folder and fetching prices, in
a child process that the server can always stop.

In a thread of the server this work outlived the server: on SIGTERM the interpreter
finalized while the thread was inside yfinance or DuckDB, which aborts the process (exit
134), and an ingest's pool workers, forked from the server, inherited its listening socket
and its signal handlers, so they ignored SIGTERM and kept the port.

Here the work runs in a freshly started interpreter (``python -m dashboard.background``:
no inherited sockets, default signal handlers) that leads a process group of its own, so
the child and its ingest's pool workers stop together: :meth:`Work.stop` sends the group
SIGTERM and, after a short grace, SIGKILL. The server stops every running :class:`Work`
when it exits (``atexit``: on SIGTERM Streamlit leaves its event loop and the interpreter
exits normally), and a child also stops by itself when the server is gone (it is handed
to another parent), even after ``kill -9``. Progress and the result
come back in a small JSON status file that the child replaces atomically.

A stopped or killed child loses nothing: each store write is one transaction, and the
stage folder a killed ingest leaves is removed by the next ingest.
"""

from __future__ import annotations

import atexit
import dataclasses
import faulthandler
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dashboard.config import Settings
from dashboard.errors import Failure, explain, log

STOP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PROGRESS_EVERY = 0.5  # seconds between progress updates in the status file
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_running: set[Work] = set()
_running_lock = threading.Lock()
_shutting_down = threading.Event()  # set as the server stops, or at exit
_server_stopped = threading.Event()  # set by the server's signal handler only


@dataclass
class Status:
    """What a child reported: its phase, the reports of what it did, and its failures."""

    phase: str = "starting"  # starting | ingesting | importing | fetching | done | stopped | failed
    progress: tuple[int, int] | None = None  # files parsed of files to parse
    ingested: Any = None  # an ingest.IngestReport
    fetched: Any = None  # a prices.cache.FetchReport
    errors: list[Failure] = field(default_factory=list)


class Work:
    """A running (or finished) child: its status, waiting for it, stopping it."""

    def __init__(self, proc: subprocess.Popen[bytes], folder: Path, stage_root: Path | None = None) -> None:
        self.proc = proc
        self.folder = folder
        self.stage_root = stage_root  # where its ingest stages files, to clean up after a kill
        self._status = Status()
        self._seen: tuple[int, int] | None = None
        self._final: Status | None = None
        self._stopping = False
        self._lock = threading.RLock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _exited(self) -> bool:
        """Whether the child has ended, without reaping it: until it is reaped, its pid (the
        group's id) cannot be reused, so signalling the group stays safe."""
        if self.proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
        except ChildProcessError:  # reaped by someone else: its pid is no longer ours to signal
            self.proc.returncode = -1
            return True

    @property
    def running(self) -> bool:
        return not self._exited()

    def status(self) -> Status:
        """The child's last report; once it has ended, its final one."""
        if self._final is not None:
            return self._final
        ended = self._exited()  # before reading: an ended child's file is its last word
        path = self.folder / "status.json"
        try:
            st = path.stat()
            seen = (st.st_mtime_ns, st.st_size)
            if seen != self._seen:
                self._status = _status_from_json(json.loads(path.read_text(encoding="utf-8")))
                self._seen = seen
        except (OSError, ValueError):
            pass  # not written yet (or being replaced): the last one read stands
        if not ended:
            return self._status
        with self._lock:
            if self._final is None:
                self._reap()
                self._final = self._closing_status()
        self._release()
        return self._final

    def _reap(self) -> None:
        """Kill what is left of the ended child's group (a pool worker), then reap the child:
        only then may its pid, the group's id, be reused."""
        if self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end
                log.error("background work %d did not end after SIGKILL", self.proc.pid)
                return
            if self.stage_root is not None:  # a SIGKILL before its own cleanup leaves its stage
                from dashboard.ingest import clean_stale_stages

                clean_stale_stages(self.stage_root, of_pid=self.proc.pid)

    def _closing_status(self) -> Status:
        status = self._status
        if status.phase not in ("done", "stopped"):
            if _shutting_down.is_set() or self._stopping:
                status.phase = "stopped"
            else:
                why = (f"the background work ended unexpectedly (exit code {self.proc.returncode}) "
                       f"while {status.phase}; the server's log has the details")
                status.errors.append(Failure("bug", why, "Updating the data failed; the server's log has "
                                                         "the details.", expected=False))
                status.phase = "failed"
        return status

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the child ends (True) or ``timeout`` passes (False). In a server that is
        shutting down this never returns: the thread waiting (a page's) must not go on into
        DuckDB while the interpreter finalizes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._exited():
            if _shutting_down.is_set():
                park()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        if _shutting_down.is_set():  # it ended because the server is stopping (stop_all): no further
            park()
        self.status()
        return True

    def stop(self, grace: float = STOP_GRACE) -> None:
        """End the child and its pool: SIGTERM to its process group, SIGKILL after ``grace``."""
        self._stopping = True
        with self._lock:
            if self.proc.returncode is None and not self._exited():
                _signal_group(self.proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while not self._exited() and time.monotonic() < deadline:
                    time.sleep(0.02)
            self._reap()  # SIGKILL to what is left of the group (the child too, if it is late)
        self.status()

    def _release(self) -> None:
        with _running_lock:
            _running.discard(self)
        if self.proc.returncode is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def server_stopping() -> None:
    """The server has been asked to stop: from now on a wait, or a page that fails, parks (the
    store's connections close as the interpreter exits, under a page still running), and the
    process ends after its exit handlers without finalizing the interpreter."""
    _shutting_down.set()
    _server_stopped.set()


def _end_without_finalizing() -> None:
    """A stopped server's last exit handler (registered before every other of ours, so it runs
    after them: the children are stopped, the snapshots closed). A page thread may still be
    inside DuckDB; one that wakes there once the interpreter finalizes is unwound by
    ``pthread_exit`` through DuckDB's C++ catch-all, which aborts the process ("terminate
    called ... FATAL: exception not rethrown", exit 134). Ending here, nothing finalizes."""
    if not _server_stopped.is_set():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


atexit.register(_end_without_finalizing)


def stopping() -> bool:
    return _shutting_down.is_set()


def park() -> None:
    while True:  # a daemon thread sleeping here is harmless while the interpreter exits
        time.sleep(3600)


def start(settings: Settings, folder: Path | None = None, fetch: bool = False,
          symbols: list[str] | None = None, force: bool = False, demo_prices: bool = False) -> Work:
    """Start a child that ingests ``folder`` (when given), imports the shipped sample prices
    into a store without prices (``demo_prices``), then fetches prices (when ``fetch``: for
    ``symbols``, or every security in the store and its benchmarks)."""
    job = {"settings": _settings_to_json(settings), "folder": None if folder is None else str(folder),
           "fetch": fetch, "symbols": symbols, "force": force, "demo_prices": demo_prices}
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-background-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(PROJECT_ROOT)) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.background", str(workdir / "status.json"), str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=None, env=env, close_fds=True,
        start_new_session=True)
    stage_root = None
    if folder is not None:
        from dashboard.store import open_store

        stage_root = open_store(settings.store_target).work_dir
    work = Work(proc, workdir, stage_root)
    with _running_lock:
        _running.add(work)
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:  # it died at once; its status says so
        pass
    return work


def run(settings: Settings, folder: Path | None = None, fetch: bool = False, symbols: list[str] | None = None,
        force: bool = False) -> Status:
    """Do the same work and wait for it (a page's "Ingest" or "Fetch prices" button): the
    server itself then never forks a pool or writes the store, so it can always stop."""
    work = start(settings, folder, fetch=fetch, symbols=symbols, force=force)
    work.wait()
    return work.status()


def start_first_run(settings: Settings, demo_prices: bool = False) -> Work | None:
    """The app's first start: ingest the configured posts folder, import the sample prices
    (``demo_prices``), then fetch what prices it can (when ``fetch_on_start``). None when
    there is nothing to do."""
    folder = settings.posts_dir if settings.posts_dir.is_dir() else None
    if folder is None and not settings.fetch_on_start and not demo_prices:
        return None
    return start(settings, folder, fetch=settings.fetch_on_start, demo_prices=demo_prices)


def stop_all(grace: float = STOP_GRACE) -> None:
    """Stop every running child (SIGTERM to all at once, then SIGKILL to what is left).
    Registered with ``atexit``; from then on :meth:`Work.wait` parks its caller."""
    _shutting_down.set()
    with _running_lock:
        works = list(_running)
    for w in works:
        if not w._exited():
            _signal_group(w.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(not w._exited() for w in works) and time.monotonic() < deadline:
        time.sleep(0.02)
    for w in works:
        w.stop(grace=0)


atexit.register(stop_all)


# --- the child ------------------------------------------------------------------------


def _settings_to_json(s: Settings) -> dict[str, Any]:
    return {f.name: (str(v.expanduser().absolute()) if isinstance(v, Path) else v)
            for f in dataclasses.fields(s) for v in [getattr(s, f.name)]}


def _settings_from_json(d: dict[str, Any]) -> Settings:
    return Settings(**{**d, "db_path": Path(d["db_path"]), "posts_dir": Path(d["posts_dir"])})


def _status_to_json(status: Status) -> dict[str, Any]:
    return {
        "phase": status.phase, "progress": status.progress,
        "ingested": None if status.ingested is None else dataclasses.asdict(status.ingested),
        "fetched": None if status.fetched is None else dataclasses.asdict(status.fetched),
        "errors": [dataclasses.asdict(f) for f in status.errors],
    }


def _status_from_json(d: dict[str, Any]) -> Status:
    ingested = fetched = None
    if d.get("ingested") is not None:
        from dashboard.ingest import IngestReport

        r = dict(d["ingested"])
        r["rejected"] = [tuple(x) for x in r.get("rejected", [])]
        r["warnings"] = [tuple(x) for x in r.get("warnings", [])]
        ingested = IngestReport(**r)
    if d.get("fetched") is not None:
        from dashboard.prices import PriceFailure
        from dashboard.prices.cache import FetchReport

        r = dict(d["fetched"])
        for key in ("failures", "skipped"):
            r[key] = {s: PriceFailure(**f) for s, f in r.get(key, {}).items()}
        fetched = FetchReport(**r)
    progress = d.get("progress")
    return Status(phase=d.get("phase", "starting"), progress=None if progress is None else tuple(progress),
                  ingested=ingested, fetched=fetched, errors=[Failure(**f) for f in d.get("errors", [])])


class _Stopped(BaseException):
    """Raised in the child's main thread by SIGTERM: unwinds the work (a write in progress
    rolls back, an ingest terminates its pool and removes its stage folder)."""

    requested = False  # set by the signal: DuckDB turns an exception raised inside a query
                       # (one reading a Python stream) into an error of its own


def _write_status(path: Path, status: Status) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(_status_to_json(status), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:  # the folder is gone (the server is), or the disk is full: say it to the log
        log.warning("could not write the background status %s: %s", path, e)


def _watch_parent(server: int, status_path: Path) -> None:
    """Stop when the server is gone (we are handed to another parent), even after kill -9,
    and take the status folder along: nobody will read it. (Not by reading a pipe: a pool
    worker forked while this thread held stdin's lock would hang on it for ever.)"""
    while os.getppid() == server:
        time.sleep(0.25)
    if status_path.parent.name.startswith("dashboard-background-"):
        shutil.rmtree(status_path.parent, ignore_errors=True)
    _signal_group(os.getpgrp(), signal.SIGTERM)
    time.sleep(STOP_GRACE)
    _signal_group(os.getpgrp(), signal.SIGKILL)


def _run(job: dict[str, Any], status_path: Path) -> int:
    settings = _settings_from_json(job["settings"])
    status = Status()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        status.progress = (done, total)
        if time.monotonic() - last[0] >= PROGRESS_EVERY:
            last[0] = time.monotonic()
            _write_status(status_path, status)

    def step(phase: str, fn: Any) -> Any:
        status.phase = phase
        _write_status(status_path, status)
        try:
            return fn()
        except Exception as e:  # a sentence for the page, the traceback for the log
            if _Stopped.requested:
                raise _Stopped() from e
            failure = explain(e, settings.store_label)
            log.error("background %s failed: %s", phase, failure.message, exc_info=e)
            status.errors.append(failure)
            return None

    try:
        if job["folder"] is not None:
            from dashboard.ingest import ingest_folder

            status.ingested = step("ingesting", lambda: ingest_folder(
                _store(settings), job["folder"], settings.site_timezone, max_bytes=settings.max_post_bytes,
                benchmarks=settings.benchmarks, progress=progress))
        if job.get("demo_prices"):
            from dashboard.prices.demo import import_demo_prices

            step("importing", lambda: import_demo_prices(_store(settings), benchmarks=settings.benchmarks))
        if job["fetch"]:
            status.fetched = step("fetching", lambda: fetch_prices(settings, job["symbols"], job["force"]))
        status.phase = "done"
        _write_status(status_path, status)
        return 0
    except _Stopped:
        status.phase = "stopped"
        _write_status(status_path, status)
        return 143


def _store(settings: Settings) -> Any:
    from dashboard.store import open_store

    return open_store(settings.store_target, lock_timeout=settings.lock_timeout)


def fetch_prices(settings: Settings, symbols: list[str] | None = None, force: bool = False,
                 store: Any = None) -> Any:
    """Fetch what the store lacks for ``symbols`` (default: every security in the store), with
    their benchmarks, from the sources ``price_sources`` names for each market (eastmoney, then
    Yahoo, for Hong Kong and the mainland by default); None when the store names no security yet."""
    from dashboard.prices import YFinanceSource, default_spans, update_prices
    from dashboard.prices.fallback import configured_source

    store = store or _store(settings)
    with store.read() as con:  # a chosen security's benchmark comes along
        spans = default_spans(con, settings.benchmarks, symbols=symbols,
                              margin_days=settings.price_margin_days, with_benchmarks=True)
    if not spans:
        return None
    source: Any
    try:
        source, notes = configured_source(settings.price_sources)
    except ValueError as e:  # a misconfigured dashboard.toml must not stop the fetch
        source, notes = YFinanceSource(), [f"dashboard.toml: {e}; fetching from Yahoo alone"]
    for note in notes:
        log.warning("%s", note)
    return update_prices(store, source, spans, force=force, refresh_days=settings.refresh_days,
                         refresh_after=timedelta(hours=settings.refresh_after_hours),
                         benchmarks=settings.benchmarks)


def _child_main(argv: list[str]) -> int:
    from dashboard.errors import log_to_stderr

    def stopped(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the unwinding must not be cut short
        _Stopped.requested = True
        raise _Stopped()

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's terminal is not ours to obey
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` logs where the work is
    try:
        log_to_stderr()
        server = int(argv[1])
        if os.getppid() != server:
            return 0  # the server went away before we started
        threading.Thread(target=_watch_parent, args=(server, Path(argv[0])), name="watch-server",
                         daemon=True).start()
        job = sys.stdin.buffer.read()
        code = _run(json.loads(job), Path(argv[0]))
    except _Stopped:
        code = 143
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # not waiting for threads a library may have left (yfinance's downloads)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
