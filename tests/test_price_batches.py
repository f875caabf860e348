"""Many price exports, or many fetched symbols, written in one transaction with one reaction
refresh; a bad file is refused whole and the others still import. On both backends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboard.ingest import ingest_folder
from dashboard.prices import (
    FetchResult,
    PriceFailure,
    import_csv,
    import_csvs,
    read_price_csv,
    stored_prices,
    update_prices,
)
from tests.conftest import write_post
from tests.test_cli import run

FILES = ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv")


def bad_csv(folder: Path) -> Path:
    bad = folder / "0700.HK.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("Date,Open,High,Close,Volume\n2021-12-28,1,2,1.5,10\n")
    return bad


def table(store: Any, sql: str) -> pd.DataFrame:
    with store.read() as con:
        return con.execute(sql).df()


def test_a_batch_imports_what_one_file_at_a_time_would(tmp_path: Path, shared_posts: Path,
                                                       shared_prices: Path, new_store: Any) -> None:
    files = [shared_prices / f for f in FILES]
    one_by_one, batch = new_store("one"), new_store("batch")
    for store in (one_by_one, batch):
        ingest_folder(store, shared_posts / "seeds")
    for f in files:
        import_csv(one_by_one, f)
    bad = bad_csv(tmp_path / "x")
    imported, failed = import_csvs(batch, [files[0], bad, *files[1:]])
    assert imported == [(str(f), s, len(read_price_csv(f)[1]))
                        for f, s in zip(files, ("3690.HK", "1024.HK", "^HSI"), strict=True)]
    assert failed == [(str(bad), f"{bad}: missing columns: Low (expected yfinance's "
                                 "Date,Open,High,Low,Close[,Adj Close],Volume)")]
    for sql in ("SELECT * EXCLUDE (fetched_at) FROM prices ORDER BY symbol, date",
                "SELECT symbol, start_date, end_date, source FROM price_coverage ORDER BY symbol",
                "SELECT * FROM daily_returns ORDER BY symbol, date",
                "SELECT * FROM reactions ORDER BY article_id, symbol",
                "SELECT symbol, name FROM securities ORDER BY symbol"):
        pd.testing.assert_frame_equal(table(batch, sql), table(one_by_one, sql))
    # one transaction: now() is its start, the same for every row
    assert table(batch, "SELECT count(DISTINCT fetched_at) AS n FROM prices")["n"][0] == 1
    assert table(one_by_one, "SELECT count(DISTINCT fetched_at) AS n FROM prices")["n"][0] == 3


def test_the_last_file_of_a_symbol_wins(tmp_path: Path, shared_prices: Path, store: Any) -> None:
    src = pd.read_csv(shared_prices / "hsi-constituents" / "3690.HK.csv")
    early, late = tmp_path / "a" / "3690.HK.csv", tmp_path / "b" / "3690.HK.csv"
    early.parent.mkdir()
    late.parent.mkdir()
    src[src["Date"] < "2022"].to_csv(early, index=False)
    changed = src[src["Date"] >= "2021-12"].copy()
    changed["Close"] = changed["Close"] * 2
    changed.to_csv(late, index=False)
    import_csvs(store, [early, late])
    with store.read() as con:
        px = stored_prices(con, "3690.HK").set_index("date")["close"]
        cov = con.execute("SELECT start_date, end_date, source FROM price_coverage").fetchall()
    assert px[pd.Timestamp("2021-11-30")] == read_price_csv(early)[1].loc[date(2021, 11, 30), "close"]
    assert px[pd.Timestamp("2021-12-28")] == pytest.approx(223.4 * 2, rel=1e-6)
    assert cov == [(date(2020, 1, 2), date(2025, 5, 22), "csv:3690.HK.csv")]


def test_prices_import_reports_each_file_in_order(tmp_path: Path, shared_prices: Path, db_target: str) -> None:
    files = [str(shared_prices / f) for f in FILES[:2]]
    bad = str(bad_csv(tmp_path / "x"))
    out = run("prices", "import", files[0], bad, files[1], db=db_target)
    assert out.returncode == 1
    rows = len(read_price_csv(files[1])[1])
    assert out.stdout.splitlines() == [f"imported {files[0]}: 3690.HK, 1323 rows",
                                       f"imported {files[1]}: 1024.HK, {rows} rows"]
    assert out.stderr.splitlines() == [f"error: {bad}: missing columns: Low (expected yfinance's "
                                       "Date,Open,High,Low,Close[,Adj Close],Volume)"]


class ExportsSource:
    """A price source answering from real exports, one batch at a time; ``fail_on`` raises
    (as a source's bug would) on that batch."""

    name = "exports"

    def __init__(self, files: dict[str, Path], fail_on: int | None = None) -> None:
        self.files, self.fail_on, self.calls = files, fail_on, 0

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("the source broke")
        out = FetchResult()
        for s in symbols:
            if s not in self.files:
                out.failures[s] = PriceFailure(s, "unknown_symbol", f"no such symbol {s}")
                continue
            frame = read_price_csv(self.files[s])[1]
            out.frames[s] = frame[(frame.index >= start) & (frame.index <= end)]
        return out


DEC = (date(2021, 12, 1), date(2021, 12, 31))
SPANS = {"3690.HK": DEC, "1024.HK": DEC, "NOSUCH": DEC}


def test_a_fetch_of_many_batches_is_one_write(tmp_path: Path, shared_prices: Path, store: Any) -> None:
    files = {s: shared_prices / "hsi-constituents" / f"{s}.csv" for s in ("3690.HK", "1024.HK")}
    seen = []
    report = update_prices(store, ExportsSource(files), SPANS, batch_size=1, today=date(2026, 11, 21),
                           progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert report.stored == {"3690.HK": 22, "1024.HK": 22} and set(report.failures) == {"NOSUCH"}
    assert table(store, "SELECT count(DISTINCT fetched_at) AS n FROM prices")["n"][0] == 1
    assert table(store, "SELECT symbol FROM price_failures")["symbol"].tolist() == ["NOSUCH"]


def test_a_source_that_breaks_keeps_the_batches_before(tmp_path: Path, shared_prices: Path,
                                                      store: Any) -> None:
    files = {s: shared_prices / "hsi-constituents" / f"{s}.csv" for s in ("3690.HK", "1024.HK")}
    with pytest.raises(RuntimeError, match="the source broke"):
        update_prices(store, ExportsSource(files, fail_on=2), SPANS, batch_size=1, today=date(2026, 11, 21))
    # the first batch (3690.HK) was answered before the second broke: it is stored
    assert table(store, "SELECT DISTINCT symbol FROM prices")["symbol"].tolist() == ["3690.HK"]


ARTICLES_SESSION = "(symbol, session) IN (SELECT symbol, session FROM article_sessions)"


def test_unchanged_prices_leave_the_reactions_alone(tmp_path: Path, shared_prices: Path, store: Any) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。", date="2021-12-28 10:00:00 +0800")
    ingest_folder(store, folder)
    files = [shared_prices / f for f in FILES]
    import_csvs(store, files)
    before = table(store, "SELECT * FROM reactions")
    with store.write() as con:  # mark the cache, to see whether anything rewrites it
        con.execute(f"UPDATE session_reactions SET volume_ratio = -1 WHERE {ARTICLES_SESSION}")
    imported, failed = import_csvs(store, files)
    assert len(imported) == 3 and not failed
    assert table(store, "SELECT volume_ratio FROM reactions")["volume_ratio"].tolist() == [-1.0]
    with store.write() as con:
        con.execute(f"UPDATE session_reactions SET volume_ratio = ? WHERE {ARTICLES_SESSION}",
                    [before["volume_ratio"][0]])
    changed = tmp_path / "c" / "3690.HK.csv"
    changed.parent.mkdir()
    src = pd.read_csv(files[0])
    src.loc[src["Date"].str.startswith("2021-12-28"), "Volume"] *= 3
    src.to_csv(changed, index=False)
    import_csv(store, changed)  # another volume: the reaction follows
    after = table(store, "SELECT * FROM reactions")
    assert after["volume_ratio"][0] != before["volume_ratio"][0]
    assert after["day0_return"][0] == before["day0_return"][0]
