"""The mentions table (the per-security access path) is written in order of symbol and time a
bounded group at a time, so a large ingest or a re-clustering never sorts the whole corpus's
text at once (which DuckDB cannot do in the store's 256 MB at 100k posts)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

import dashboard.store.duckdb as store_mod
from dashboard.ingest import ingest_folder
from dashboard.store import Store
from tests.conftest import write_post

CODES = ["03690.HK", "01024.HK", "00700.HK", "09988.HK", "600519", "000001.SZ", "AAPL.O"]


def write_news(folder: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for k in range(n):
        named = "，".join(f"公司{i}({c})" for i, c in enumerate(rng.sample(CODES, rng.randint(1, 4))))
        when = pd.Timestamp("2021-01-01") + pd.Timedelta(minutes=rng.randrange(60 * 24 * 700))
        write_post(folder, f"{seed}-{k:04d}.md", f"{named}发布公告{k}。", title=f"快讯{seed}-{k}",
                   date=f"{when:%Y-%m-%d %H:%M:%S} +0800")


def mentions(store: Store) -> pd.DataFrame:
    with store.read() as con:
        return con.execute("SELECT * FROM mentions ORDER BY rowid").df()


def in_order(df: pd.DataFrame) -> bool:
    keys = list(zip(df["symbol"], df["published_at"], strict=True))
    return keys == sorted(keys)


def test_a_large_batch_is_written_in_order_group_by_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "posts"
    write_news(folder, 120, seed=1)
    whole = Store(tmp_path / "whole.duckdb")
    ingest_folder(whole, folder)
    monkeypatch.setattr(store_mod, "SORT_GROUP", 2000)  # bytes: many groups, boundaries inside symbols
    grouped = Store(tmp_path / "grouped.duckdb")
    ingest_folder(grouped, folder)
    got, want = mentions(grouped), mentions(whole)
    assert len(want) > 120 and in_order(want) and in_order(got)
    key = ["article_id", "symbol"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True))
    # what each row carries: its article's fields, and the securities it names, main subjects first
    with grouped.read() as con:
        wrong = con.execute("""
            SELECT count(*) FROM mentions m JOIN articles a USING (article_id)
            WHERE m.published_at <> a.published_at OR m.title <> a.title OR m.text <> a.text
               OR m.named <> (SELECT list(symbol ORDER BY symbol) FROM mentions x WHERE x.article_id = m.article_id)
        """).fetchall()[0][0]
    assert wrong == 0  # (inline mentions all: ordered by symbol)


def test_reclustering_rewrites_in_order_group_by_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "posts"
    write_news(folder, 60, seed=2)
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, folder)
    write_news(folder, 60, seed=3)
    ingest_folder(store, folder)  # appended: the table is two sorted runs, not one
    before = mentions(store)
    assert not in_order(before)
    monkeypatch.setattr(store_mod, "SORT_GROUP", 1500)
    with store.write() as con:
        con.execute("UPDATE meta SET value = '-1000000' WHERE key = 'mentions_clustered'")  # long overdue
        assert store_mod.cluster_mentions(con)
    after = mentions(store)
    assert in_order(after) and len(after) == len(before)
    key = ["article_id", "symbol"]
    pd.testing.assert_frame_equal(after.sort_values(key).reset_index(drop=True),
                                  before.sort_values(key).reset_index(drop=True))


def test_the_group_bounds_never_hold_the_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 30,000 rows of 2 KB text (60 MB) in a 24 MB memory limit: only sizes may reach the windows
    import duckdb

    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    con.execute("""
        CREATE TABLE src AS SELECT ['A', 'B', 'C', 'D'][1 + i % 4] AS symbol,
               TIMESTAMPTZ '2021-01-01 00:00:00+00' + to_minutes(i) AS published_at,
               md5(i::VARCHAR) || repeat(chr(65 + (i % 26)::INTEGER), 2000) AS text
        FROM range(30000) t(i)""")
    con.execute("CREATE TABLE dst AS SELECT * FROM src LIMIT 0")
    con.execute("CHECKPOINT; SET memory_limit = '24MB'; SET threads = 2")
    monkeypatch.setattr(store_mod, "SORT_GROUP", 4 * 2**20)
    assert store_mod.append_sorted(con, "dst", "src", columns="symbol, published_at, text") == 30000
    got = con.execute("SELECT symbol, published_at FROM dst ORDER BY rowid").fetchall()
    assert got == sorted(got)


def row_groups(store: Store, table: str) -> list[int]:
    with store.read() as con:
        return [n for (n,) in con.execute(f"""
            SELECT sum(count) FROM pragma_storage_info('{table}') WHERE column_name = 'symbol' AND segment_type <> 'VALIDITY'
            GROUP BY row_group_id ORDER BY row_group_id""").fetchall()]


def test_writers_keep_row_groups_small(tmp_path: Path) -> None:
    """Every write, and the checkpoint after it, keeps the store's row groups at
    ROW_GROUP_SIZE rows (DuckDB's default would merge them back into 122,880-row groups,
    some 200 MB of mentions' text each, more than the write's memory)."""
    store = Store(tmp_path / "s.duckdb")
    size = store_mod.ROW_GROUP_SIZE
    for k in range(3):
        with store.write() as con:
            con.execute("""
                INSERT INTO prices (symbol, date, close)
                SELECT 'S' || (i % 7), DATE '2000-01-01' + (i // 7)::INTEGER + $k * 100000, i FROM range(50000) r(i)
            """, {"k": k})
    groups = row_groups(store, "prices")
    assert sum(groups) == 150_000
    assert max(groups) <= size and len(groups) >= 150_000 // size


@pytest.mark.parametrize("fails", ["articles insert", "spread"])
def test_a_failure_on_either_side_of_the_overlapped_merge_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    """The articles are inserted while another thread spreads the mentions to their groups: a
    failure of either is the ingest's error, the other side is waited for, and the store keeps
    what it held (one transaction)."""
    import threading

    import dashboard.ingest as ingest_mod

    folder = tmp_path / "posts"
    write_news(folder, 40, seed=3)
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, folder)
    before = mentions(store)
    write_news(folder, 40, seed=4)
    real = store_mod.append_sorted_files

    def failing_articles(*args: object, meanwhile: object = None, **kwargs: object) -> int:
        def then_fail() -> None:
            meanwhile()  # type: ignore[operator]
            raise RuntimeError("disk full")
        return real(*args, meanwhile=then_fail, **kwargs)  # type: ignore[arg-type]

    def failing_spread(*args: object) -> object:
        raise RuntimeError("disk full")

    if fails == "articles insert":
        monkeypatch.setattr(ingest_mod, "append_sorted_files", failing_articles)
    else:
        monkeypatch.setattr(store_mod, "_group_of", failing_spread)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_folder(store, folder)
    assert not [t for t in threading.enumerate() if t.name.startswith("append-spread")]
    pd.testing.assert_frame_equal(mentions(store), before)
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 40
    monkeypatch.undo()
    assert ingest_folder(store, folder).new == 40  # and the next run does it all
    assert len(mentions(store)) > len(before)
