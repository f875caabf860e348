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


OTHER_WRITER = """
import sys
from dashboard.store import open_store
with open_store(sys.argv[1]).write() as con:
    con.execute("INSERT INTO securities (symbol) VALUES ('C')")
"""


def test_the_read_view_refreshed_after_another_process_wrote_shows_it_at_once(store: Any) -> None:
    """After the app's own ingest or fetch (done by its background child, another process), the
    page asks its read view for the latest state: it has it at once, not a poll period later."""
    import subprocess
    import sys

    from dashboard.store import read_view
    from tests.conftest import ROOT

    with store.write() as con:
        con.execute("INSERT INTO securities (symbol) VALUES ('A')")
    view = read_view(store)
    try:
        if store.kind == "postgres":  # it would otherwise look the generation up again within a second
            view.poll = 3600.0
        with view.reading() as snap:
            first = snap.generation
        done = subprocess.run([sys.executable, "-c", OTHER_WRITER, target_of(store)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        snap = view.refresh()
        assert snap.generation != first
        with view.reading() as snap:
            assert list(snap.query("SELECT symbol FROM securities ORDER BY 1")["symbol"]) == ["A", "C"]
    finally:
        view.close()


def test_duckdb_only_sql_gives_the_same_rows_on_both(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the modules write in DuckDB's SQL and the adapter rewrites for PostgreSQL: SEMI and
    ANTI JOIN ... USING, ``* EXCLUDE`` of a store table and of a registered one (small: inline
    arrays, large: a temporary table), regexp_extract, a top-n ``min_by``."""
    import dashboard.store.postgres as pg

    with store.write() as con:
        con.execute("INSERT INTO securities (symbol, market) VALUES ('A', 'HK'), ('B', 'US'), ('C', NULL)")
        con.execute("INSERT INTO files (path, status) VALUES ('/p/x/a.md', 'ok'), ('/p/b.md', 'ok')")
    for inline_max in (1000, 1):  # a registered table inline, then as a temporary table
        monkeypatch.setattr(pg, "INLINE_MAX", inline_max)
        with store.read() as con:
            con.register("present", pa.table({"path": ["/p/x/a.md", "/p/c.md", "/p/d.md"],
                                              "k": [1, 2, 3], "symbol": ["A", "Z", "B"]}))
            assert con.execute("SELECT path FROM present ANTI JOIN files USING (path) ORDER BY 1"
                               ).fetchall() == [("/p/c.md",), ("/p/d.md",)]
            assert con.execute("SELECT p.path FROM present p SEMI JOIN securities USING (symbol) ORDER BY 1"
                               ).fetchall() == [("/p/d.md",), ("/p/x/a.md",)]
            assert con.execute("SELECT count(*) FROM (SELECT symbol FROM securities) s "
                               "ANTI JOIN present USING (symbol)").fetchall() == [(1,)]
            assert con.execute("SELECT * EXCLUDE (k) FROM present ORDER BY path").fetchall() == [
                ("/p/c.md", "Z"), ("/p/d.md", "B"), ("/p/x/a.md", "A")]
            assert con.execute("SELECT p.* EXCLUDE (path, k), s.market FROM present p "
                               "JOIN securities s USING (symbol) ORDER BY 1").fetchall() == [
                ("A", "HK"), ("B", "US")]
            con.unregister("present")
    with store.read() as con:
        assert con.execute("SELECT * EXCLUDE (name, name_en, kind, code, canonical) FROM securities "
                           "ORDER BY symbol").fetchall() == [("A", "HK"), ("B", "US"), ("C", None)]
        # a top-n aggregate, ordered by a struct's fields in turn (the chart's hover headlines)
        assert con.execute("SELECT min_by(path, {'n': length(path), 'p': path}, 2), "
                           "min_by(path, {'n': -length(path), 'p': path}, 1) FROM files").fetchall() == [
            (["/p/b.md", "/p/x/a.md"], ["/p/x/a.md"])]
        assert con.execute("SELECT regexp_extract(path, '[^/]*$'), regexp_extract(path, '/(x)/', 1), "
                           "regexp_extract(path, 'zz') FROM files ORDER BY path").fetchall() == [
            ("b.md", "", ""), ("a.md", "x", "")]
