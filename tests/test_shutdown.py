"""The real server (`streamlit run app.py`, headless) stops cleanly on SIGTERM at any point of
its start: within 5 s, not with exit 134, leaving no process behind, the port free and the
store readable.

The start-up work runs in a child process (dashboard.background); its price fetch asks a
stand-in yfinance (tests/fake_yfinance, first on the server's PYTHONPATH) that answers like
a machine without a network, as slowly as a test asks. Pages are requested the way a
browser does, over Streamlit's websocket (no browser needed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.store import Store
from tests.conftest import ROOT, need_shared

FAKE_YFINANCE = ROOT / "tests" / "fake_yfinance"
EXIT_WITHIN = 5.0

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Proc = tuple[int, int]  # pid, start time: a pid alone may name another process once reused


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state, start time) of every process."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(rest[1]), rest[0], int(rest[19]))
    return out


def descendants(pid: int) -> set[Proc]:
    procs = _processes()
    children: dict[int, list[int]] = {}
    for p, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(p)
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return {(p, procs[p][2]) for p in found}


def alive(seen: set[Proc]) -> set[Proc]:
    procs = _processes()
    return {(p, t) for p, t in seen if p in procs and procs[p][2] == t and procs[p][1] != "Z"}


def background_of(server_pid: int) -> set[Proc]:
    """Processes of the server's background work, found by their command line (the child
    and its forked pool workers carry the server's pid as their last argument)."""
    out = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dashboard.background" in argv and str(server_pid).encode() in argv:
            out.add(int(entry.name))
    procs = _processes()
    return alive({(p, procs[p][2]) for p in out if p in procs})


def listening(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # LISTEN
                return True
    return False


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    seen: set[Proc] = field(default_factory=set)  # every descendant seen while it ran
    pages: list[Any] = field(default_factory=list)  # open websockets
    _stop: threading.Event = field(default_factory=threading.Event)

    def track(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            self.seen |= descendants(self.proc.pid)
            time.sleep(0.05)

    def open_page(self, query: str = "") -> None:
        """A session, as a browser opens one: the websocket, then a request to run the page.
        The connection stays open until the server goes."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from websockets.sync.client import connect

        ws = connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],
                     open_timeout=20).__enter__()
        self.pages.append(ws)
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_script_hash = ""
        ws.send(msg.SerializeToString())

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_server(tmp: Path, db: Path, posts: Path, *, fetch: bool = False, yahoo_delay: float = 0,
                   calls: Path | None = None) -> Iterator[Server]:
    port = _free_port()
    env = {**os.environ, "DASHBOARD_DB": str(db), "DASHBOARD_POSTS": str(posts),
           "DASHBOARD_FETCH_ON_START": "true" if fetch else "false",
           "PYTHONPATH": os.pathsep.join([str(FAKE_YFINANCE), str(ROOT)]),
           "FAKE_YFINANCE_DELAY": str(yahoo_delay), "FAKE_YFINANCE_CALLS": str(calls or tmp / "calls.jsonl")}
    env.pop("DASHBOARD_HOSTED", None)
    log = tmp / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(proc, port, log)
    tracker = threading.Thread(target=srv.track, daemon=True)
    tracker.start()
    try:
        deadline = time.monotonic() + 60
        health = f"http://127.0.0.1:{port}/_stcore/health"
        while True:
            try:
                if urllib.request.urlopen(health, timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"streamlit did not start:\n{srv.output()}")
            time.sleep(0.2)
        yield srv
    finally:
        srv._stop.set()
        tracker.join()
        for ws in srv.pages:
            ws.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, _ in alive(srv.seen | background_of(proc.pid)):  # never leave one to later tests
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop_and_check(srv: Server, store: Path) -> float:
    """SIGTERM, then everything the issue asks of a stop; returns how long it took."""
    srv.seen |= descendants(srv.proc.pid)
    began = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(EXIT_WITHIN + 10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {EXIT_WITHIN + 10} s of SIGTERM:\n{srv.output()[-3000:]}")
    took = time.monotonic() - began
    out = srv.output()
    assert took < EXIT_WITHIN, f"took {took:.1f} s to exit"
    assert code != 134 and "terminate called" not in out and "FATAL" not in out, out[-3000:]
    assert code == 0, f"exit code {code}:\n{out[-3000:]}"
    time.sleep(0.3)  # a SIGKILLed process is gone a moment after its signal
    assert not alive(srv.seen), f"left behind: {alive(srv.seen)} (server {srv.proc.pid})"
    assert not background_of(srv.proc.pid)
    assert not listening(srv.port), f"port {srv.port} is still bound"
    with socket.socket() as s:  # and a new server could take it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", srv.port))
    assert "Traceback" not in out, out[-3000:]
    store_is_whole(store)
    print(f"exit {took:.2f} s after SIGTERM")
    return took


def store_is_whole(path: Path) -> None:
    """Every table reads to its end, and the store takes a write."""
    if not path.exists():
        return
    store = Store(path, lock_timeout=10)
    with store.read() as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")
                  .fetchall()]
        for t in tables:
            con.execute(f"SELECT count(*) FROM {t}").fetchall()
        con.execute("SELECT count(*), sum(length(text)), max(published_at) FROM articles").fetchall()
    with store.write() as con:
        con.execute("INSERT INTO meta VALUES ('shutdown-test', 'ok') ON CONFLICT (key) DO NOTHING")


@pytest.fixture
def big_folder(corpus_20k: Path) -> Path:
    return corpus_20k


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A store holding the real seed posts (no prices): the start-up work runs in the background."""
    posts = need_shared("posts", "seeds")
    db = tmp_path / "store.duckdb"
    ingest_folder(Store(db), posts)
    return db


def test_sigterm_before_the_first_request(tmp_path: Path, big_folder: Path) -> None:
    db = tmp_path / "store.duckdb"
    with running_server(tmp_path, db, big_folder) as srv:
        stop_and_check(srv, db)


def test_the_server_draws_the_page_once_as_it_starts(tmp_path: Path) -> None:
    """Before anyone opens it, the server draws the page once, for nobody (dashboard.ui.server):
    the first start's ingest of the posts folder runs, and the first visitor finds the page's
    imports and reads done. A SIGTERM after it is as clean as ever."""
    db = tmp_path / "store.duckdb"

    def ingested() -> bool:
        try:
            with Store(db, lock_timeout=0.2).read() as con:
                return con.execute("SELECT count(*) FROM articles").fetchall()[0][0] > 0
        except Exception:  # not created yet, or the ingest holds it
            return False

    with running_server(tmp_path, db, ROOT / "data" / "posts") as srv:
        wait_for("the start-up ingest, with no page open", ingested)
        assert not srv.pages
        srv.open_page()  # and a visitor's page still runs on the warmed server
        time.sleep(1)
        stop_and_check(srv, db)


def test_sigterm_during_the_start_up_ingest_of_a_big_folder(tmp_path: Path, big_folder: Path) -> None:
    db = tmp_path / "store.duckdb"
    with running_server(tmp_path, db, big_folder) as srv:
        srv.open_page()
        wait_for("the start-up ingest", lambda: any(tmp_path.glob(".ingest-*")))
        time.sleep(1.5)  # well into parsing, in a pool of workers
        stop_and_check(srv, db)
    # the run was cut short: nothing of it is stored, and its stage folder went with it
    with Store(db).read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 0
    assert not list(tmp_path.glob(".ingest-*"))


def test_sigterm_during_a_slow_price_fetch_in_the_background(tmp_path: Path, seeded: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    with running_server(tmp_path, seeded, need_shared("posts", "seeds"), fetch=True, yahoo_delay=120,
                        calls=calls) as srv:
        srv.open_page("s=3690.HK")
        wait_for("the price fetch", calls.exists)
        stop_and_check(srv, seeded)


def test_sigterm_while_the_first_page_waits_for_prices(tmp_path: Path) -> None:
    """An empty store: the page waits for the first ingest and fetch, and is stopped in it."""
    calls = tmp_path / "calls.jsonl"
    db = tmp_path / "store.duckdb"
    with running_server(tmp_path, db, need_shared("posts", "seeds"), fetch=True, yahoo_delay=120,
                        calls=calls) as srv:
        srv.open_page()
        wait_for("the price fetch", calls.exists)
        stop_and_check(srv, db)
    with Store(db).read() as con:  # the ingest before the fetch was committed
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 2


@pytest.mark.parametrize("after", [0.3, 1.5])
def test_sigterm_while_pages_render(tmp_path: Path, seeded: Path, after: float) -> None:
    prices = need_shared("prices")
    for f in ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv"):
        import_csv(Store(seeded), prices / f)
    with running_server(tmp_path, seeded, need_shared("posts", "seeds")) as srv:
        for _ in range(3):
            srv.open_page("s=3690.HK&from=2021-12-01&to=2021-12-31")
        time.sleep(after)
        stop_and_check(srv, seeded)

def test_a_killed_server_leaves_no_background_work(tmp_path: Path, big_folder: Path) -> None:
    """kill -9 runs no exit hook: the background work notices it lost its server, and stops."""
    db = tmp_path / "store.duckdb"
    with running_server(tmp_path, db, big_folder) as srv:
        srv.open_page()
        wait_for("the start-up ingest", lambda: len(background_of(srv.proc.pid)) >= 2)
        work = background_of(srv.proc.pid)
        srv.proc.kill()
        srv.proc.wait()
        wait_for("the background work to stop", lambda: not alive(work), timeout=EXIT_WITHIN)
        assert not listening(srv.port)
    store_is_whole(db)


APP_THEN_EXIT = """
import sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=120)
at.query_params.update({"s": "3690.HK"})
at.run()
assert not at.exception, at.exception
print("page done", flush=True)
time.sleep(float(sys.argv[2]))  # then exit, the start-up fetch still in yfinance or just past it
"""


def test_a_process_running_the_app_exits_cleanly_mid_fetch(tmp_path: Path, seeded: Path) -> None:
    """The AppTest crash: the start-up fetch, in a thread, was inside yfinance when the process
    exited and went on into DuckDB while Python finalized (exit 134, "terminate called ...").
    Exits at moments around the end of a 2 s fetch; each must be clean, and leave nothing."""
    script = tmp_path / "app_then_exit.py"
    script.write_text(APP_THEN_EXIT)
    env = {**os.environ, "DASHBOARD_DB": str(seeded), "DASHBOARD_POSTS": str(need_shared("posts", "seeds")),
           "DASHBOARD_FETCH_ON_START": "true", "FAKE_YFINANCE_DELAY": "2.0",
           "FAKE_YFINANCE_CALLS": str(tmp_path / "calls.jsonl"),
           "PYTHONPATH": os.pathsep.join([str(FAKE_YFINANCE), str(ROOT)])}
    env.pop("DASHBOARD_HOSTED", None)
    for after in (1.7, 1.9, 2.0, 2.1, 2.3):
        proc = subprocess.Popen([sys.executable, str(script), str(ROOT / "page.py"), str(after)], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "terminate called" not in err, (after, proc.returncode, err[-2000:])
        assert "page done" in out
        assert not background_of(proc.pid)
    store_is_whole(seeded)

