"""Prices: yfinance behind the store's cache, CSV import, and behaviour when the source fails.

yfinance is stubbed at its boundary (``yfinance.download``) with frames shaped like its
own, built from the real exports in ../shared/prices.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dashboard.prices import (
    Coverage,
    PriceFileError,
    YFinanceSource,
    import_csv,
    missing_range,
    read_price_csv,
    stored_prices,
    update_prices,
)
from dashboard.store import Store
from tests.yfstub import DNS, NO_TZ, RATE, FakeDownload, download_frame, history_frame, no_price_data

DEC = (date(2021, 12, 20), date(2021, 12, 31))


@pytest.fixture
def hist(shared_prices: Path) -> Path:
    return shared_prices / "hsi-constituents"


@pytest.fixture
def dl(shared_prices: Path) -> Path:
    return shared_prices / "download-format"


def patch_download(monkeypatch: pytest.MonkeyPatch, answer) -> FakeDownload:  # type: ignore[no-untyped-def]
    import yfinance

    fake = FakeDownload(answer)
    monkeypatch.setattr(yfinance, "download", fake)
    return fake


def real_answer(files: dict[str, Path], errors: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    def answer(symbols, start, end, call):  # type: ignore[no-untyped-def]
        frames = {s: history_frame(files[s], str(start), str(end)) for s in symbols if s in files}
        return frames, {s: e for s, e in (errors or {}).items() if s in symbols}
    return answer


def closes(store: Store, symbol: str) -> dict[date, float]:
    with store.read() as con:
        df = stored_prices(con, symbol)
    return dict(zip(df["date"].dt.date, df["close"].round(4), strict=True))


# --- yfinance, used correctly -------------------------------------------------------------


def test_the_stub_matches_yfinance_shapes(hist: Path) -> None:
    one = download_frame({"3690.HK": history_frame(hist / "3690.HK.csv", "2021-12-20", "2022-01-01")})
    assert one.columns.names == ["Price", "Ticker"]
    assert list(one.columns.get_level_values(0)) == ["Adj Close", "Close", "High", "Low", "Open", "Volume"]
    assert one.index.name == "Date" and one.index.tz is None and str(one.index.dtype) == "datetime64[s]"


def test_one_symbol(monkeypatch: pytest.MonkeyPatch, store: Store, hist: Path) -> None:
    fake = patch_download(monkeypatch, real_answer({"3690.HK": hist / "3690.HK.csv"}))
    report = update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21))
    assert report.stored == {"3690.HK": 9} and report.failures == {}
    (call,) = fake.calls
    assert call["tickers"] == ["3690.HK"]
    assert call["auto_adjust"] is False  # explicit, so both closes arrive
    assert (call["start"], call["end"]) == ("2021-12-20", "2022-01-01")  # end is exclusive
    got = closes(store, "3690.HK")
    assert got[date(2021, 12, 28)] == 223.4 and got[date(2021, 12, 29)] == 216.0
    assert date(2021, 12, 27) not in got  # a Hong Kong holiday


def test_several_symbols_in_one_request_keep_raw_and_adjusted_close(
        monkeypatch: pytest.MonkeyPatch, store: Store, dl: Path) -> None:
    files = {"AAPL": dl / "AAPL.csv", "^HSI": dl / "^HSI.csv", "0031.HK": dl / "0031.HK.csv"}
    fake = patch_download(monkeypatch, real_answer(files))
    report = update_prices(store, YFinanceSource(), {s: DEC for s in files}, today=date(2026, 11, 21))
    assert len(fake.calls) == 1 and sorted(fake.calls[0]["tickers"]) == sorted(files)
    assert report.stored == {"AAPL": 9, "^HSI": 9, "0031.HK": 9}
    with store.read() as con:
        aapl = stored_prices(con, "AAPL").set_index("date")
        hsi = stored_prices(con, "^HSI")
    row = aapl.loc[pd.Timestamp("2021-12-28")]
    assert row["close"] == pytest.approx(179.289993) and row["adj_close"] == pytest.approx(177.498154)
    # the union index has NaN rows where one market was closed: they are not prices
    assert pd.Timestamp("2021-12-24") not in aapl.index  # NYSE shut on Christmas Eve 2021
    assert pd.Timestamp("2021-12-24") in set(hsi["date"])  # Hong Kong traded a half day


def test_tz_aware_index_becomes_exchange_trading_dates() -> None:
    idx = pd.DatetimeIndex(["2021-12-28", "2021-12-29"], name="Date").as_unit("s")
    part = pd.DataFrame({"Open": [1.0, 2], "High": [1.0, 2], "Low": [1.0, 2], "Close": [1.0, 2],
                         "Adj Close": [1.0, 2], "Volume": [10, 20]}, index=idx)
    from dashboard.prices import normalize

    hk = download_frame({"3690.HK": part}, tz="Asia/Hong_Kong")
    ny = download_frame({"AAPL": part}, tz="America/New_York")
    # the same instants seen from UTC fall on the previous day for Hong Kong
    hk_utc = hk.tz_convert("UTC")
    assert hk_utc.index[0].day == 27
    assert list(normalize(hk_utc.xs("3690.HK", axis=1, level="Ticker"), "3690.HK").index) == [
        date(2021, 12, 28), date(2021, 12, 29)]
    assert list(normalize(ny.xs("AAPL", axis=1, level="Ticker"), "AAPL").index) == [
        date(2021, 12, 28), date(2021, 12, 29)]


# --- failures -----------------------------------------------------------------------------


def offline(symbols, start, end, call):  # type: ignore[no-untyped-def]
    # yfinance offline: the first two symbols fail on DNS, then its timezone lookup gives up
    return {}, {s: (DNS if i < 2 else NO_TZ) for i, s in enumerate(symbols)}


def test_no_network_keeps_cached_rows_and_says_why(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                   hist: Path) -> None:
    import_csv(store, hist / "3690.HK.csv")
    before = closes(store, "3690.HK")
    fake = patch_download(monkeypatch, offline)
    report = update_prices(store, YFinanceSource(), {"3690.HK": (date(2025, 5, 1), date(2025, 6, 30)),
                                                    "1024.HK": DEC, "0700.HK": DEC},
                           today=date(2026, 11, 21), force=True)
    assert len(fake.calls) == 1
    assert {s: f.kind for s, f in report.failures.items()} == {
        "3690.HK": "network", "1024.HK": "network", "0700.HK": "network"}
    assert "could not be reached" in report.failures["0700.HK"].reason
    assert closes(store, "3690.HK") == before
    with store.read() as con:
        failures = con.execute("SELECT symbol, reason_kind FROM price_failures ORDER BY 1").fetchall()
        cov = con.execute("SELECT count(*) FROM price_coverage WHERE symbol = '1024.HK'").fetchone()
    assert failures == [("0700.HK", "network"), ("1024.HK", "network"), ("3690.HK", "network")]
    assert cov == (0,)  # an empty answer is not cached as "no prices"


def test_real_yfinance_offline_is_reported_as_network(store: Store) -> None:
    """No stub: this machine cannot reach Yahoo, and that must read as a network failure."""
    import socket

    try:
        socket.create_connection(("query2.finance.yahoo.com", 443), timeout=3).close()
        pytest.skip("Yahoo Finance is reachable from here")
    except OSError:
        pass
    report = update_prices(store, YFinanceSource(timeout=5), {"3690.HK": DEC, "^HSI": DEC, "NIO": DEC},
                           today=date(2026, 11, 21))
    assert {f.kind for f in report.failures.values()} == {"network"}
    assert report.stored == {}


def test_rate_limited_then_succeeding(monkeypatch: pytest.MonkeyPatch, store: Store, hist: Path) -> None:
    files = {"3690.HK": hist / "3690.HK.csv"}

    def answer(symbols, start, end, call):  # type: ignore[no-untyped-def]
        if call == 1:
            return {}, {s: RATE for s in symbols}
        return real_answer(files)(symbols, start, end, call)

    fake = patch_download(monkeypatch, answer)
    waits: list[float] = []
    report = update_prices(store, YFinanceSource(sleep=waits.append, backoff=2), {"3690.HK": DEC},
                           today=date(2026, 11, 21))
    assert len(fake.calls) == 2 and waits == [2]
    assert report.stored == {"3690.HK": 9} and report.failures == {}


def test_rate_limit_retries_are_bounded(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    fake = patch_download(monkeypatch, lambda s, a, b, c: ({}, {x: RATE for x in s}))
    waits: list[float] = []
    report = update_prices(store, YFinanceSource(sleep=waits.append, backoff=1, max_retries=3),
                           {"3690.HK": DEC}, today=date(2026, 11, 21))
    assert len(fake.calls) == 4 and waits == [1, 2, 4]
    assert report.failures["3690.HK"].kind == "rate_limited"


def test_partial_batch_unknown_symbol_and_no_data(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                  hist: Path) -> None:
    errors = {"NOSUCH": NO_TZ, "1024.HK": no_price_data(date(2019, 1, 1), date(2019, 2, 1))}
    patch_download(monkeypatch, real_answer({"3690.HK": hist / "3690.HK.csv"}, errors))
    report = update_prices(store, YFinanceSource(), {"3690.HK": DEC, "NOSUCH": DEC, "1024.HK": DEC},
                           today=date(2026, 11, 21))
    assert report.stored == {"3690.HK": 9}
    assert report.failures["NOSUCH"].kind == "unknown_symbol"
    assert "does not know the symbol NOSUCH" in report.failures["NOSUCH"].reason
    assert report.failures["1024.HK"].kind == "no_data"


# --- the cache ----------------------------------------------------------------------------


def test_second_view_makes_no_request_and_force_refreshes(monkeypatch: pytest.MonkeyPatch,
                                                          store: Store, hist: Path) -> None:
    fake = patch_download(monkeypatch, real_answer({"3690.HK": hist / "3690.HK.csv"}))
    update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21))
    again = update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21))
    assert len(fake.calls) == 1 and again.cached == ["3690.HK"]
    wider = update_prices(store, YFinanceSource(), {"3690.HK": (date(2021, 12, 1), date(2021, 12, 31))},
                          today=date(2026, 11, 21))
    assert (fake.calls[-1]["start"], fake.calls[-1]["end"]) == ("2021-12-01", "2021-12-20")  # only the gap
    assert wider.stored == {"3690.HK": 13}
    update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21), force=True)
    assert len(fake.calls) == 3


def test_recent_days_are_refreshed_but_not_too_often() -> None:
    now = datetime(2022, 1, 5, 12, tzinfo=UTC)
    have = Coverage(date(2021, 12, 1), date(2022, 1, 4), now - timedelta(hours=20))
    gap = missing_range(have, date(2021, 12, 1), date(2022, 1, 5), date(2022, 1, 5), now=now)
    assert gap == (date(2021, 12, 30), date(2022, 1, 5))
    fresh = Coverage(date(2021, 12, 1), date(2022, 1, 5), now - timedelta(hours=1))
    assert missing_range(fresh, date(2021, 12, 1), date(2022, 1, 5), date(2022, 1, 5), now=now) is None
    old = Coverage(date(2021, 12, 1), date(2021, 12, 31), now - timedelta(days=300))
    assert missing_range(old, date(2021, 12, 5), date(2021, 12, 20), date(2022, 1, 5), now=now) is None


def test_a_recent_failure_is_not_retried_on_every_view(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    fake = patch_download(monkeypatch, offline)
    update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21))
    again = update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21))
    assert len(fake.calls) == 1 and again.skipped["3690.HK"].kind == "network"
    update_prices(store, YFinanceSource(), {"3690.HK": DEC}, today=date(2026, 11, 21), force=True)
    assert len(fake.calls) == 2


# --- CSV import ---------------------------------------------------------------------------


def test_import_both_shapes(store: Store, hist: Path, dl: Path) -> None:
    assert import_csv(store, hist / "3690.HK.csv") == ("3690.HK", 1323)
    assert import_csv(store, hist / "1024.HK.csv")[0] == "1024.HK"
    assert import_csv(store, dl / "^HSI.csv")[0] == "^HSI"
    got = closes(store, "3690.HK")
    assert got[date(2021, 12, 28)] == 223.4 and got[date(2021, 12, 29)] == 216.0
    assert got[date(2020, 1, 2)] == 103.5  # '2020-01-02 00:00:00+08:00' is that day in Hong Kong
    with store.read() as con:
        hsi = stored_prices(con, "^HSI", date(2021, 12, 28), date(2021, 12, 28))
        cov = con.execute("SELECT start_date, end_date FROM price_coverage WHERE symbol = '1024.HK'").fetchone()
        names = dict(con.execute("SELECT symbol, name FROM securities").fetchall())
    assert hsi["close"].iloc[0] == pytest.approx(23280.560547)
    assert cov == (date(2021, 2, 5), date(2025, 5, 22))
    assert names["^HSI"] == "恒生指数"


def test_reimport_is_idempotent(store: Store, hist: Path) -> None:
    import_csv(store, hist / "3690.HK.csv")
    import_csv(store, hist / "3690.HK.csv")
    with store.read() as con:
        assert con.execute("SELECT count(*), count(DISTINCT date) FROM prices").fetchone() == (1323, 1323)


def test_symbol_given_or_from_yfinance_two_row_header(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text("Price,Adj Close,Close,High,Low,Open,Volume\nTicker,NIO,NIO,NIO,NIO,NIO,NIO\n"
                 "Date,,,,,,\n2022-05-25,13.1,13.2,13.5,12.9,13.0,1000\n2022-05-26,14.0,14.1,14.3,13.1,13.2,2000\n")
    assert import_csv(store, f) == ("NIO", 2)
    g = tmp_path / "whatever.csv"
    g.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-05-26,1,2,0.5,1.5,1.5,10\n")
    assert import_csv(store, g, symbol="TSLA") == ("TSLA", 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Date,Open,High,Close,Volume\n2021-12-28,1,2,1.5,10\n", "missing columns: Low"),
        ("Date,Open,High,Low,Close,Volume\n2021-12-28,1,2,0.5,abc,10\n",
         "bad number 'abc' in column Close at line 2"),
        ("Date,Open,High,Low,Close,Volume\n2021-12-28,1,2,0.5,1.5,10\n2021-12-29,1,2,0.5,1.6,10\n"
         "2021-12-28 00:00:00+08:00,1,2,0.5,1.7,10\n", "duplicate date 2021-12-28 (lines 2, 4)"),
        ("Date,Open,High,Low,Close,Volume\n28/12/2021,1,2,0.5,1.5,10\n", "bad date '28/12/2021' at line 2"),
        ("Date,Open,High,Low,Close,Volume\n", "has no rows"),
    ],
)
def test_bad_csv_is_refused_whole(store: Store, hist: Path, tmp_path: Path, content: str,
                                  message: str) -> None:
    import_csv(store, hist / "3690.HK.csv")
    before = closes(store, "3690.HK")
    bad = tmp_path / "3690.HK.csv"
    bad.write_text(content)
    with pytest.raises(PriceFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_csv(store, bad)
    assert closes(store, "3690.HK") == before


def test_read_price_csv_history_shape_uses_close_as_adjusted(hist: Path) -> None:
    symbol, frame = read_price_csv(hist / "0700.HK.csv")
    assert symbol == "0700.HK"
    assert (frame["adj_close"] == frame["close"]).all()  # history() exports are adjusted already
    assert list(frame.columns) == ["open", "high", "low", "close", "adj_close", "volume"]


def test_csv_folder_is_a_source_like_yfinance(store: Store, hist: Path, dl: Path, tmp_path: Path) -> None:
    from dashboard.prices import CsvFolderSource

    folder = tmp_path / "exports"
    folder.mkdir()
    for f in (hist / "3690.HK.csv", dl / "^HSI.csv"):
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "0700.HK.csv").write_text("Date,Open,High,Close,Volume\n2021-12-28,1,2,1.5,10\n")
    report = update_prices(store, CsvFolderSource(folder), {"3690.HK": DEC, "^HSI": DEC, "0700.HK": DEC,
                                                            "NIO": DEC}, today=date(2026, 11, 21))
    assert report.stored == {"3690.HK": 9, "^HSI": 9}
    assert report.failures["0700.HK"].kind == "bad_file" and "missing columns: Low" in report.failures["0700.HK"].reason
    assert report.failures["NIO"].kind == "no_data"
    assert closes(store, "3690.HK")[date(2021, 12, 28)] == 223.4
    again = update_prices(store, CsvFolderSource(folder), {"3690.HK": DEC}, today=date(2026, 11, 21))
    assert again.cached == ["3690.HK"]  # the cache answers, as for yfinance


def test_a_gap_with_no_trading_day_is_not_a_failure(store: Store, dl: Path, tmp_path: Path) -> None:
    from dashboard.prices import CsvFolderSource

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "AAPL.csv").write_bytes((dl / "AAPL.csv").read_bytes())  # ends Monday 2023-08-28
    source = CsvFolderSource(folder)
    update_prices(store, source, {"AAPL": (date(2023, 8, 1), date(2023, 8, 25))}, today=date(2026, 11, 21))
    weekend = update_prices(store, source, {"AAPL": (date(2023, 8, 1), date(2023, 8, 27))},
                            today=date(2026, 11, 21))
    assert weekend.failures == {} and weekend.cached == ["AAPL"]
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM price_failures").fetchone() == (0,)
        assert con.execute("SELECT end_date FROM price_coverage").fetchone() == (date(2023, 8, 27),)
    beyond = update_prices(store, source, {"AAPL": (date(2023, 8, 1), date(2023, 9, 5))},
                           today=date(2026, 11, 21))
    assert beyond.stored == {"AAPL": 1}  # Monday the 28th; the rest is past the file


def test_default_spans_bring_benchmarks_for_named_securities_when_asked(store: Store, shared_posts: Path) -> None:
    from dashboard.config import DEFAULT_BENCHMARKS
    from dashboard.ingest import ingest_folder
    from dashboard.prices import default_spans

    ingest_folder(store, shared_posts / "seeds")
    with store.read() as con:
        everything = default_spans(con, DEFAULT_BENCHMARKS, today=date(2026, 11, 21))
        named = default_spans(con, DEFAULT_BENCHMARKS, symbols=["3690.HK"], today=date(2026, 11, 21))
        with_bench = default_spans(con, DEFAULT_BENCHMARKS, symbols=["3690.HK"], with_benchmarks=True,
                                   today=date(2026, 11, 21))
    assert set(everything) == {"3690.HK", "1024.HK", "^HSI"}
    assert set(named) == {"3690.HK"}
    assert set(with_bench) == {"3690.HK", "^HSI"}
    assert with_bench["^HSI"] == with_bench["3690.HK"] == (date(2021, 11, 27), date(2022, 1, 27))
