"""The app's background work (dashboard.background): a child process that ingests and fetches,
reports back, and always stops when asked, its pool with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dashboard import background, ingest
from dashboard.config import load_settings
from dashboard.store import Store
from tests.conftest import ROOT, need_shared


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests" / "fake_yfinance"), str(ROOT)]))


def settings(db: Path, posts: Path | None = None, fetch: bool = False):  # type: ignore[no-untyped-def]
    return load_settings({"DASHBOARD_DB": str(db), "DASHBOARD_POSTS": str(posts or db.parent / "none"),
                          "DASHBOARD_FETCH_ON_START": "true" if fetch else "false",
                          "DASHBOARD_CONFIG": str(db.parent / "no.toml")})


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_ingests_and_reports(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    posts = need_shared("posts", "seeds")
    first = background.run(settings(db, posts), posts)
    assert first.phase == "done" and not first.errors
    assert (first.ingested.new, first.ingested.run_id) == (2, 1)
    again = background.run(settings(db, posts), posts)
    assert (again.ingested.new, again.ingested.unchanged) == (0, 2)
    with Store(db).read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 2


def test_the_fetch_reports_why_prices_are_missing(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    posts = need_shared("posts", "seeds")
    status = background.run(settings(db, posts, fetch=True), posts, fetch=True)
    assert status.phase == "done"
    failures = status.fetched.failures
    assert failures["3690.HK"].kind == "network"  # the stand-ins for akshare and yfinance: no network
    # Hong Kong asks eastmoney first, then Yahoo (price_sources' default), and says why each failed
    assert "eastmoney" in failures["3690.HK"].reason and "Yahoo" in failures["3690.HK"].reason


def test_the_fetch_asks_the_sources_dashboard_toml_names(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    posts = need_shared("posts", "seeds")
    (tmp_path / "dashboard.toml").write_text('[price_sources]\nHK = ["yfinance"]\n', encoding="utf-8")
    chosen = load_settings({"DASHBOARD_DB": str(db), "DASHBOARD_POSTS": str(posts),
                            "DASHBOARD_CONFIG": str(tmp_path / "dashboard.toml")})
    status = background.run(chosen, posts, fetch=True)
    reason = status.fetched.failures["3690.HK"].reason
    assert "Yahoo" in reason and "eastmoney" not in reason


def test_failures_come_back_as_sentences(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    db.write_bytes(os.urandom(4096))
    status = background.run(settings(db), need_shared("posts", "seeds"))
    assert status.phase == "done" and status.ingested is None
    (failure,) = status.errors
    assert failure.sentence() == (f"{str(db)[0].upper()}{str(db)[1:]} is damaged or not a dashboard store "
                                  "(not a DuckDB database file); restore it from a backup, or move it aside "
                                  "and ingest the posts again.")
    assert str(tmp_path) not in failure.sentence(public=True)


def test_stop_ends_the_child_and_its_pool_and_loses_nothing(tmp_path: Path, corpus_20k: Path) -> None:
    db = tmp_path / "store.duckdb"
    background.run(settings(db, need_shared("posts", "seeds")), need_shared("posts", "seeds"))
    work = background.start(settings(db, corpus_20k), corpus_20k)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".ingest-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # parsing, in its pool
    assert work.running
    began = time.monotonic()
    work.stop()
    assert time.monotonic() - began < background.STOP_GRACE + 1
    assert not work.running and work.status().phase == "stopped"
    assert not group_alive(work.pid)  # the child and every worker
    assert not list(tmp_path.glob(".ingest-*"))
    with Store(db).read() as con:  # the run was not half-stored
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 2
        assert con.execute("SELECT count(*) FROM ingest_runs").fetchall()[0][0] == 1


def test_a_stop_without_grace_still_takes_the_stage_folder(tmp_path: Path, corpus_20k: Path) -> None:
    """SIGKILL lands before the child can remove its stage folder (a loaded machine, a slow
    pool): the server removes it once the child is gone, and another ingest's stays."""
    db = tmp_path / "store.duckdb"
    other = tmp_path / f"{ingest.STAGE_PREFIX}{os.getpid()}-busy"
    other.mkdir()  # a live process's stage (this one's)
    work = background.start(settings(db, corpus_20k), corpus_20k)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob(".ingest-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert any(p.name.startswith(f"{ingest.STAGE_PREFIX}{work.pid}-") for p in tmp_path.glob(".ingest-*"))
    work.stop(grace=0)
    assert not work.running and work.status().phase == "stopped"
    assert list(tmp_path.glob(".ingest-*")) == [other]


def test_a_child_that_dies_says_so(tmp_path: Path, corpus_20k: Path) -> None:
    work = background.start(settings(tmp_path / "store.duckdb", corpus_20k), corpus_20k)
    time.sleep(0.5)
    os.killpg(work.pid, signal.SIGKILL)  # as the OOM killer would
    assert work.wait(10)
    status = work.status()
    assert status.phase == "failed"
    assert status.errors[0].message.startswith("the background work ended unexpectedly (exit code -9)")


def test_a_page_waiting_when_the_server_stops_goes_no_further(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A page waits for the first start's work; the server stops, and its exit (stop_all) ends
    the child. The wait must not return then, even though the child has ended: the page would go
    on into DuckDB while the interpreter finalizes, which aborts the process (it did, one stop in
    six, when the wait saw the child end before it saw the server stopping)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # the child has ended ...
    work = background.Work(proc, tmp_path / "work")  # (its own folder: a Work removes it when done)
    monkeypatch.setattr(background, "_shutting_down", threading.Event())
    background._shutting_down.set()  # ... because the server is stopping
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (work.wait(), returned.set()), daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and not returned.is_set()  # parked for good


def test_a_page_that_fails_while_the_server_stops_says_nothing(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The server's exit closes the store's connections under a page still running; its next
    query fails ('Connection already closed'). That is not a failure to show or log with a
    traceback: the page goes no further. Before the stop, a failure is still a sentence."""
    from dashboard.ui.failures import guarded

    def page() -> None:
        con = duckdb.connect()
        con.close()
        con.execute("SELECT 1")  # duckdb.ConnectionException: Connection already closed!

    monkeypatch.setattr(background, "_shutting_down", threading.Event())
    monkeypatch.setattr(background, "_server_stopped", threading.Event())  # or pytest itself ends at exit
    background.server_stopping()
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (guarded(page)(), returned.set()), daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and not returned.is_set()  # parked for good
    assert not [r for r in caplog.records if r.name == "dashboard.ui"]


STOPPED_UNDER_QUERIES = """
import threading, time
import duckdb
from dashboard import background

con = duckdb.connect()
con.execute("CREATE TABLE t AS SELECT i, i::VARCHAR AS s FROM range(200000) r(i)")

def page():
    cur = con.cursor()
    while True:
        try:
            cur.execute("SELECT s, i FROM t WHERE i % 7 = 1").fetchdf()
        except Exception:
            pass

for _ in range(8):
    threading.Thread(target=page, daemon=True).start()
time.sleep(0.3)
background.server_stopping()  # as the server's SIGTERM handler does
print("leaving", flush=True)
"""


@pytest.mark.parametrize("run", range(3))
def test_a_stopped_server_exits_cleanly_with_pages_inside_duckdb(run: int) -> None:
    """Page threads still querying DuckDB as the server exits: the interpreter's finalization
    unwinds a thread that wakes there through DuckDB's C++, and the process aborts ('terminate
    called ... FATAL: exception not rethrown', exit 134; CI: test_sigterm_while_pages_render).
    A server stopped by a signal ends after its exit handlers instead, with status 0."""
    done = subprocess.run([sys.executable, "-c", STOPPED_UNDER_QUERIES], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "leaving" in done.stdout and "terminate called" not in done.stderr
