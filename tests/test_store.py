"""The store's interface on both backends: transactions, snapshots, generations, and what the
PostgreSQL adapter must give back exactly as DuckDB does."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from dashboard.store import is_url, open_store, redact
from tests.conftest import target_of


def test_a_write_commits_only_when_its_block_succeeds(store: Any) -> None:
    with store.write() as con:
        con.execute("INSERT INTO securities (symbol, market) VALUES (?, ?)", ["3690.HK", "HK"])
    with pytest.raises(RuntimeError, match="boom"):
        with store.write() as con:
            con.execute("INSERT INTO securities (symbol, market) VALUES (?, ?)", ["0700.HK", "HK"])
            raise RuntimeError("boom")
    with store.read() as con:
        assert con.execute("SELECT symbol FROM securities ORDER BY symbol").fetchall() == [("3690.HK",)]


def test_every_write_moves_the_generation_and_a_snapshot_keeps_its_state(store: Any) -> None:
    with store.write() as con:
        con.execute("INSERT INTO securities (symbol) VALUES ('A')")
    before = store.generation()
    snap = store.snapshot()
    try:
        assert snap.generation == before
        with store.write() as con:
            con.execute("INSERT INTO securities (symbol) VALUES ('B')")
        assert store.generation() != before
        assert list(snap.query("SELECT symbol FROM securities ORDER BY 1")["symbol"]) == ["A"]
        cur = snap.cursor()
        try:
            assert cur.execute("SELECT count(*) FROM securities").fetchall() == [(1,)]
        finally:
            cur.close()
    finally:
        snap.close()
    fresh = store.snapshot()
    try:
        assert list(fresh.query("SELECT symbol FROM securities ORDER BY 1")["symbol"]) == ["A", "B"]
    finally:
        fresh.close()


def test_results_have_the_same_python_and_pandas_types(new_store: Any, backend: str) -> None:
    store = new_store()
    with store.write() as con:
        con.execute("INSERT INTO articles (article_id, title, published_at, categories, tags) VALUES "
                    "('a1', '标题', TIMESTAMPTZ '2021-12-28 02:00:00+00', ['港股', 'x'], [])")
        con.execute("INSERT INTO prices (symbol, date, close, volume) "
                    "VALUES ('A', DATE '2021-12-28', 1.5, NULL)")
    with store.read() as con:
        row = con.execute("""
            SELECT a.article_id, a.published_at, a.published_at AT TIME ZONE $tz AS local, a.categories,
                   p.date, p.close, p.volume, count(*) OVER () AS n, 7 / 2 AS half
            FROM articles a, prices p
        """, {"tz": "Asia/Shanghai"}).fetchall()[0]
        df = con.execute("SELECT a.published_at, p.date, p.volume, a.categories "
                         "FROM articles a, prices p").df()
    assert row[0] == "a1"
    assert row[1] == datetime(2021, 12, 28, 2, tzinfo=UTC)
    assert row[2] == datetime(2021, 12, 28, 10)
    assert row[3] == ["港股", "x"]
    assert row[4] == date(2021, 12, 28)
    assert row[5] == 1.5 and row[6] is None and row[7] == 1
    assert row[8] == 3.5  # DuckDB divides integers exactly
    assert str(df["published_at"].dtype) == "datetime64[us, UTC]"
    assert str(df["date"].dtype) == "datetime64[us]"
    assert list(df["categories"][0]) == ["港股", "x"]


def test_registered_arrow_tables_small_and_large(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboard.store.postgres as pg

    monkeypatch.setattr(pg, "INLINE_MAX", 3)  # the large path (a temporary table) with a few rows
    for n in (2, 5):
        rows = pa.table({"symbol": [f"S{i}" for i in range(n)],
                         "session": pa.array([date(2021, 1, 1 + i) for i in range(n)], pa.date32()),
                         "tags": pa.array([["a", 'b"c'], None, [], ["d"], ["e"]][:n], pa.list_(pa.string()))})
        with store.read() as con:
            con.register("chosen", rows)
            got = con.execute("SELECT symbol, session, tags FROM chosen ORDER BY symbol").fetchall()
            con.unregister("chosen")
        assert got == [(r["symbol"], r["session"], r["tags"]) for r in rows.to_pylist()]


def test_urls_and_paths_choose_the_backend(tmp_path: Any) -> None:
    assert is_url("postgresql://u:p@h/db") and is_url("postgres://h/db")
    assert not is_url(str(tmp_path / "x.duckdb"))
    assert open_store(tmp_path / "x.duckdb").kind == "duckdb"
    assert redact("postgresql://reader:s3cret@db.example:5432/news?sslmode=require") == \
        "postgresql://reader:***@db.example:5432/news?sslmode=require"
    assert "s3cret" not in redact("postgresql://reader@h/news?password=s3cret")


BUSY_WRITER = """
import sys
from dashboard.store import StoreBusy, open_store
try:
    with open_store(sys.argv[1], lock_timeout=0.5).write():
        pass
except StoreBusy as e:
    print(e)
    sys.exit(3)
"""


def test_a_second_writer_waits_then_gives_up(store: Any) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    with store.write():
        pass
    with store.write():
        busy = subprocess.run([sys.executable, "-c", BUSY_WRITER, target_of(store)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert busy.returncode == 3, busy.stderr
    assert "try again" in busy.stdout
    done = subprocess.run([sys.executable, "-c", BUSY_WRITER, target_of(store)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_apps_read_view_follows_writes(store: Any) -> None:
    from dashboard.store import read_view

    with store.write() as con:
        con.execute("INSERT INTO securities (symbol) VALUES ('A')")
    view = read_view(store)
    try:
        with view.reading() as snap:
            first = snap.generation
            assert list(snap.query("SELECT symbol FROM securities ORDER BY 1")["symbol"]) == ["A"]
        with store.write() as con:
            con.execute("INSERT INTO securities (symbol) VALUES ('B')")
        with view.reading() as snap:
            assert snap.generation != first
            assert list(snap.query("SELECT symbol FROM securities ORDER BY 1")["symbol"]) == ["A", "B"]
    finally:
        view.close()


def test_an_unread_snapshot_is_let_go(new_store: Any, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL snapshot is an open transaction, which holds back VACUUM: nobody reading for
    a while, it is closed (and the next read takes a new one)."""
    if backend != "postgres":
        pytest.skip("a DuckDB read view holds no transaction")
    import time

    from dashboard.store import read_view
    from dashboard.store.postgres import PgReadView

    monkeypatch.setattr(PgReadView, "IDLE_SECONDS", 0.4)
    store = new_store()
    with store.write():
        pass
    view = read_view(store)

    def open_transactions() -> int:
        with store.read() as con:
            return con.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND state = 'idle in transaction'").fetchall()[0][0]

    try:
        view.current()
        assert open_transactions() == 1
        deadline = time.monotonic() + 10
        while open_transactions() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_transactions() == 0
        with view.reading() as snap:
            assert snap.query("SELECT count(*) AS n FROM articles")["n"][0] == 0
    finally:
        view.close()
