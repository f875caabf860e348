"""Candles by interval, moving averages, the range summary and the markers' candles, on real
prices (3690.HK, 1024.HK, ^HSI from ../shared) and the seed posts, checked against pandas."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import candles as C
from dashboard import coverage
from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.store import Store, open_store
from tests.conftest import BACKENDS, SHARED

SITE_TZ = "Asia/Shanghai"
FILES = ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv")


@pytest.fixture(scope="module", params=BACKENDS)
def real_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    if not (SHARED / "prices").exists() or not (SHARED / "posts" / "seeds").exists():
        pytest.skip(f"real data not available: {SHARED} is absent")
    if request.param == "duckdb":
        store = Store(Path(tmp_path_factory.mktemp("candles")) / "store.duckdb")
    else:
        server = request.getfixturevalue("pg_server")
        store = open_store(server.url(server.create_database()))
    ingest_folder(store, SHARED / "posts" / "seeds")
    for f in FILES:
        import_csv(store, SHARED / "prices" / f)
    return store


@pytest.fixture(scope="module")
def con(real_store: Store):  # type: ignore[no-untyped-def]
    with real_store.read() as c:
        yield c


def daily(con, symbol: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    frame = coverage.price_history(con, symbol)
    return frame.assign(date=pd.to_datetime(frame["date"]))


def resampled(days: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Candles the pandas way: group the sessions by calendar week (Monday start) or month."""
    key = days["date"].dt.to_period(freq).dt.start_time
    g = days.groupby(key)
    return pd.DataFrame({
        "first_session": g["date"].min(), "last_session": g["date"].max(), "sessions": g.size(),
        "open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(), "close": g["close"].last(),
        "adj_close": g["adj_close"].last(), "volume": g["volume"].sum()}).rename_axis("date").reset_index()


COLS = ["date", "first_session", "last_session", "sessions", "open", "high", "low", "close", "adj_close",
        "volume"]


@pytest.mark.parametrize("symbol", ["3690.HK", "1024.HK", "^HSI"])
@pytest.mark.parametrize(("interval", "freq"), [("week", "W-SUN"), ("month", "M")])
def test_weekly_and_monthly_candles_match_pandas(con, symbol: str, interval: str, freq: str) -> None:
    start, end = date(2021, 3, 10), date(2023, 2, 15)  # a Wednesday and a mid-month day: partial edges
    days = daily(con, symbol)
    days = days[(days["date"] >= pd.Timestamp(start)) & (days["date"] <= pd.Timestamp(end))]
    want = resampled(days, freq)
    got = C.candles(con, symbol, start, end, interval)
    assert set(got["interval"]) == {interval}
    assert len(got) == len(want) > 20
    pd.testing.assert_frame_equal(got[COLS].reset_index(drop=True), want[COLS], check_dtype=False)
    # the partial first candle starts at the range's first session, but is drawn at its period
    assert got["first_session"].iloc[0] == days["date"].iloc[0]
    assert got["date"].iloc[0] <= pd.Timestamp(start)


def test_daily_candles_are_the_sessions(con) -> None:
    got = C.candles(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31), "day")
    days = daily(con, "3690.HK")
    days = days[(days["date"] >= "2021-12-01") & (days["date"] <= "2021-12-31")].reset_index(drop=True)
    assert list(got["date"]) == list(days["date"]) == list(got["first_session"]) == list(got["last_session"])
    assert pd.Timestamp("2021-12-27") not in set(got["date"])  # the holiday
    np.testing.assert_allclose(got[["open", "high", "low", "close", "volume"]], days[["open", "high", "low",
                                                                                       "close", "volume"]])


@pytest.mark.parametrize(("interval", "freq"), [("day", None), ("week", "W-SUN"), ("month", "M")])
def test_moving_averages_match_pandas_rolling_from_the_first_candle(con, interval: str,
                                                                    freq: str | None) -> None:
    start, end = date(2022, 1, 3), date(2023, 6, 30)
    days = daily(con, "3690.HK")
    full = days if freq is None else resampled(days, freq)  # every candle, from before the range too
    got = C.candles(con, "3690.HK", start, end, interval, moving_averages=(5, 20, 60))
    want = full.set_index("date").loc[got["date"].iloc[0]:got["date"].iloc[-1]]
    for n in (5, 20, 60):
        rolling = full.set_index("date")["close"].rolling(n).mean().loc[want.index]
        np.testing.assert_allclose(got[f"ma{n}"].to_numpy(dtype=float), rolling.to_numpy(), rtol=1e-9)
    # warm-up came from before the range: even MA60 is drawn from the first candle on daily
    # and weekly candles; 60 months of history are not there (prices start 2020-01)
    if interval != "month":
        assert got["ma60"].notna().all()
    else:
        assert got["ma5"].notna().all() and got["ma60"].isna().all()


def test_moving_averages_stay_empty_without_enough_candles(con) -> None:
    got = C.candles(con, "1024.HK", date(2021, 1, 1), date(2021, 6, 30), "day", moving_averages=(20,))
    assert got["date"].iloc[0] == pd.Timestamp("2021-02-05")  # listed that day
    assert got["ma20"].iloc[:19].isna().all() and got["ma20"].iloc[19:].notna().all()
    assert got["ma20"].iloc[19] == pytest.approx(got["close"].iloc[:20].mean())


def test_bad_moving_average_or_interval_is_refused(con) -> None:
    with pytest.raises(ValueError, match="moving averages"):
        C.candles(con, "3690.HK", date(2021, 1, 1), date(2021, 6, 30), "day", moving_averages=(1,))
    with pytest.raises(ValueError, match="interval must be"):
        C.candles(con, "3690.HK", date(2021, 1, 1), date(2021, 6, 30), "hour")


def test_auto_interval_follows_the_span_prices_cover(con) -> None:
    assert C.choose_interval(date(2021, 1, 1), date(2022, 2, 1)) == "day"  # 396 days
    assert C.choose_interval(date(2021, 1, 1), date(2022, 3, 1)) == "week"
    assert C.choose_interval(date(2021, 1, 1), date(2025, 1, 1)) == "week"  # 1461 days
    assert C.choose_interval(date(2020, 1, 1), date(2025, 1, 1)) == "month"
    assert set(C.candles(con, "3690.HK", date(2021, 10, 1), date(2021, 12, 31))["interval"]) == {"day"}
    assert set(C.candles(con, "3690.HK", date(2021, 1, 1), date(2023, 1, 1))["interval"]) == {"week"}
    five = C.candles(con, "3690.HK", date(2020, 1, 1), date(2025, 5, 22))
    assert set(five["interval"]) == {"month"} and 60 <= len(five) <= 66
    # a wide range over few prices: 1024.HK listed 2021-02-05, so Jan 2010 .. Jun 2021 is daily
    assert set(C.candles(con, "1024.HK", date(2010, 1, 1), date(2021, 6, 30))["interval"]) == {"day"}
    # several securities: one interval for all, from the span any of them covers
    both = C.candles_many(con, ["1024.HK", "3690.HK"], date(2010, 1, 1), date(2021, 6, 30))
    assert set(both["interval"]) == {"week"} and set(both["symbol"]) == {"1024.HK", "3690.HK"}


def test_range_summary_against_the_daily_rows(con) -> None:
    s = C.range_summary(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31))
    days = daily(con, "3690.HK").set_index("date")
    dec = days.loc["2021-12-01":"2021-12-31"]
    before = days.loc[:"2021-11-30"].iloc[-1]
    assert s is not None
    assert s.last_session == date(2021, 12, 31) and s.last_close == pytest.approx(dec["close"].iloc[-1])
    assert s.base_session == date(2021, 11, 30) and s.base_close == pytest.approx(before["close"])
    assert s.change_pct == pytest.approx(dec["adj_close"].iloc[-1] / before["adj_close"] - 1)
    assert s.change == pytest.approx(dec["close"].iloc[-1] - before["close"])  # no split in December
    assert s.high == pytest.approx(dec["high"].max()) and s.low == pytest.approx(dec["low"].min())
    assert s.high_session == dec["high"].idxmax().date() and s.low_session == dec["low"].idxmin().date()
    assert s.sessions == len(dec) == 22


def test_range_summary_where_prices_start_inside_the_range(con) -> None:
    s = C.range_summary(con, "1024.HK", date(2021, 1, 1), date(2021, 3, 31))
    assert s is not None and s.base_session == s.first_session == date(2021, 2, 5)
    assert C.range_summary(con, "1024.HK", date(2019, 1, 1), date(2019, 12, 31)) is None
    many = C.range_summaries(con, ["3690.HK", "^HSI", "0700.HK"], date(2021, 12, 1), date(2021, 12, 31))
    assert set(many) == {"3690.HK", "^HSI"}


def test_seed_articles_fall_in_one_weekly_candle(con) -> None:
    sessions = coverage.session_markers(con, "3690.HK", None, None, SITE_TZ)
    # 2021-12-27 was a Hong Kong holiday: its evening article moves the 28th, the other the 29th
    assert [d.date() for d in pd.to_datetime(sessions["session"])] == [date(2021, 12, 28), date(2021, 12, 29)]
    week = C.candles(con, "3690.HK", date(2021, 10, 1), date(2022, 3, 31), "week")
    m = C.markers_for(week, sessions)
    assert len(m) == 1
    (row,) = m.itertuples()
    assert row.date == pd.Timestamp("2021-12-27") and row.articles == 2 and row.counts == [1, 1]
    assert week["date"].iloc[row.pos] == row.date
    assert [d.date() for d in row.sessions] == [date(2021, 12, 28), date(2021, 12, 29)]
    assert row.high >= week.loc[row.pos, "high"]


def test_markers_merge_by_spacing_on_a_long_daily_range(con) -> None:
    sessions = coverage.session_markers(con, "3690.HK", None, None, SITE_TZ)
    month = C.candles(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31), "day")
    assert C.marker_spacing(len(month)) == 1
    assert len(C.markers_for(month, sessions)) == 2  # a month: one marker per session
    year = C.candles(con, "3690.HK", date(2021, 1, 1), date(2021, 12, 31), "day")
    assert len(year) == 247 and C.marker_spacing(len(year)) == 7
    (merged,) = C.markers_for(year, sessions).itertuples()
    assert merged.articles == 2 and merged.first_session == pd.Timestamp("2021-12-28")
    assert merged.last_session == pd.Timestamp("2021-12-29") and len(merged.lines) == 2
    assert len(C.markers_for(year, sessions, min_gap=1)) == 2


def test_marker_spacing_keeps_groups_apart(con) -> None:
    year = C.candles(con, "3690.HK", date(2021, 1, 1), date(2021, 12, 31), "day")
    picks = year["date"].iloc[[0, 3, 6, 7, 20, 40, 41, 42, 43, 44, 45, 46, 47]]
    sessions = pd.DataFrame({"session": picks.dt.date, "articles": 1,
                             "lines": [[f"line {k}"] for k in range(len(picks))]})
    m = C.markers_for(year, sessions)  # spacing 7: groups start at candles 0, 7, 20, 40, 47
    assert list(m["pos"]) == [0, 7, 20, 40, 47]
    assert list(m["articles"]) == [3, 1, 1, 7, 1] and m["articles"].sum() == len(picks)
    assert np.diff(m["pos"]).min() >= C.marker_spacing(len(year))
    assert m["lines"].iloc[0] == [["line 0"], ["line 1"], ["line 2"]]


def test_markers_off_the_candles_are_left_out(con) -> None:
    sessions = coverage.session_markers(con, "3690.HK", None, None, SITE_TZ)
    nov = C.candles(con, "3690.HK", date(2021, 11, 1), date(2021, 11, 30), "day")
    assert C.markers_for(nov, sessions).empty
    month = C.candles(con, "3690.HK", date(2021, 1, 1), date(2023, 12, 31), "month")
    (m,) = C.markers_for(month, sessions).itertuples()
    assert m.date == pd.Timestamp("2021-12-01") and m.articles == 2


def test_daily_price_rows_work_as_candles(con) -> None:
    """``coverage.price_history`` frames (no interval column) map as daily candles."""
    sessions = coverage.session_markers(con, "3690.HK", None, None, SITE_TZ)
    rows = coverage.price_history(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31))
    assert list(C.markers_for(rows, sessions)["pos"]) == [18, 19]


def test_calendar_gaps_are_weekday_holidays(con) -> None:
    dec = C.candles(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31), "day")
    assert C.calendar_gaps(dec) == ["2021-12-27"]


def test_gaps_in_a_row_and_no_prices_at_all(store: Store) -> None:
    """A row without open/high/low (some exports have them) still draws from its close; a
    security or range without prices gives no candles, no summary and no markers."""
    from dashboard.prices import ensure_securities, write_prices

    days = pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-11"]).date
    frame = pd.DataFrame({"open": [10.0, np.nan, 11.0, 12.0], "high": [11.0, np.nan, 12.0, 12.5],
                          "low": [9.5, np.nan, 10.5, 11.5], "close": [10.5, 10.8, 11.5, 12.2],
                          "adj_close": [10.5, 10.8, 11.5, 12.2], "volume": [100.0, np.nan, 300.0, 400.0]},
                         index=pd.Index(days, name="date"))
    with store.write() as c:
        ensure_securities(c, ["0001.HK"])
        write_prices(c, "0001.HK", frame, "test", (days[0], days[-1]))
    with store.read() as c:
        day = C.candles(c, "0001.HK", None, None, "day")
        assert list(day["open"]) == [10.0, 10.8, 11.0, 12.0] and day["volume"].iloc[1] == 0
        assert day["high"].iloc[1] == day["low"].iloc[1] == 10.8
        week = C.candles(c, "0001.HK", None, None, "week")
        assert list(week["open"]) == [10.0, 12.0] and list(week["high"]) == [12.0, 12.5]
        assert list(week["volume"]) == [400.0, 400.0] and list(week["sessions"]) == [3, 1]
        s = C.range_summary(c, "0001.HK", date(2024, 3, 5), None)
        assert s is not None and s.base_close == 10.5 and s.high == 12.5 and s.sessions == 3
        empty = C.candles(c, "0001.HK", date(2025, 1, 1), date(2025, 2, 1), "auto", (5,))
        assert empty.empty and "ma5" in empty.columns
        assert C.range_summary(c, "9999.HK") is None
        assert C.markers_for(empty, coverage.session_markers(c, "0001.HK", None, None, SITE_TZ)).empty


def test_a_high_or_low_reached_twice_is_dated_by_its_first_session(store: Store) -> None:
    """Equal highs (or lows) on several sessions: the summary names the first, however the rows
    were written (newest first here, as a batch import may store them), on either store."""
    from dashboard.prices import ensure_securities, write_prices

    days = pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]).date
    frame = pd.DataFrame({"open": [10.0, 10.0, 10.0, 10.0], "high": [11.0, 12.0, 11.0, 12.0],
                          "low": [9.0, 9.5, 9.0, 9.5], "close": [10.5, 10.8, 10.6, 10.9],
                          "adj_close": [10.5, 10.8, 10.6, 10.9], "volume": [100.0, 200.0, 300.0, 400.0]},
                         index=pd.Index(days, name="date")).iloc[::-1]
    with store.write() as c:
        ensure_securities(c, ["0002.HK"])
        for day in frame.index:  # one row at a time, the last session first
            write_prices(c, "0002.HK", frame.loc[[day]], "test", (day, day))
    with store.read() as c:
        s = C.range_summary(c, "0002.HK", None, None)
    assert s is not None
    assert (s.high, s.high_session) == (12.0, date(2024, 3, 5))
    assert (s.low, s.low_session) == (9.0, date(2024, 3, 4))
