"""Event sessions and reaction measures, checked against values worked out from the real CSVs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.reactions import average_reaction, largest_moves, reactions_for
from dashboard.store import Store
from tests.conftest import write_post

SEED_27 = "202112272227521160"  # 2021-12-27 23:33 +08:00
SEED_29 = "202112292228912369"  # 2021-12-29 05:58 +08:00


@pytest.fixture
def seeded(tmp_path: Path, shared_posts: Path, shared_prices: Path) -> Store:
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, shared_posts / "seeds")
    for f in ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv"):
        import_csv(store, shared_prices / f)
    return store


def by_article(store: Store, symbol: str) -> pd.DataFrame:
    with store.read() as con:
        return reactions_for(con, symbol).set_index("article_id")


def csv_returns(path: Path) -> pd.DataFrame:
    """An independent calculation: the CSV's adjusted closes and simple returns by date."""
    df = pd.read_csv(path)
    close = df["Adj Close"] if "Adj Close" in df else df["Close"]
    out = pd.DataFrame({"close": close.to_numpy(), "volume": df["Volume"].to_numpy()},
                       index=pd.to_datetime(df["Date"].str[:10]))
    out["ret"] = out["close"].pct_change()
    return out


def test_sessions_of_the_seed_articles(seeded: Store) -> None:
    r = by_article(seeded, "3690.HK")
    # after the close, and 12-27 was a Hong Kong holiday -> the 28th; before the open -> same day
    assert r.loc[SEED_27, "session"] == pd.Timestamp("2021-12-28")
    assert r.loc[SEED_29, "session"] == pd.Timestamp("2021-12-29")


def test_day0_returns_of_the_seeds(seeded: Store) -> None:
    r = by_article(seeded, "3690.HK")
    # the exports hold float32 closes (223.39999389648438): equal to 1e-6, not exactly
    assert r.loc[SEED_27, "day0_return"] == pytest.approx(223.4 / 226.0 - 1, abs=1e-6)
    assert r.loc[SEED_29, "day0_return"] == pytest.approx(216.0 / 223.4 - 1, abs=1e-6)
    assert round(r.loc[SEED_27, "day0_return"] * 100, 2) == -1.15
    assert round(r.loc[SEED_29, "day0_return"] * 100, 2) == -3.31


def test_measures_match_hand_calculation(seeded: Store, shared_prices: Path) -> None:
    stock = csv_returns(shared_prices / "hsi-constituents" / "3690.HK.csv")
    hsi = csv_returns(shared_prices / "download-format" / "^HSI.csv")
    joined = stock.merge(hsi, left_index=True, right_index=True, how="left", suffixes=("", "_m"))
    joined["ar"] = joined["ret"] - joined["ret_m"]
    dates = list(joined.index)
    r = by_article(seeded, "3690.HK")
    for article, day0 in ((SEED_27, "2021-12-28"), (SEED_29, "2021-12-29")):
        i = dates.index(pd.Timestamp(day0))
        win = joined.iloc[i - 1:i + 2]
        assert r.loc[article, "day0_abnormal"] == pytest.approx(joined["ar"].iloc[i], abs=1e-12)
        assert r.loc[article, "car_m1_p1"] == pytest.approx(win["ar"].sum(), abs=1e-12)
        assert r.loc[article, "car_0_p5"] == pytest.approx(joined["ar"].iloc[i:i + 6].sum(), abs=1e-12)
        assert r.loc[article, "cr_m1_p1"] == pytest.approx(
            joined["close"].iloc[i + 1] / joined["close"].iloc[i - 2] - 1, abs=1e-12)
        assert r.loc[article, "cr_0_p5"] == pytest.approx(
            joined["close"].iloc[i + 5] / joined["close"].iloc[i - 1] - 1, abs=1e-12)
        assert r.loc[article, "volume_ratio"] == pytest.approx(
            joined["volume"].iloc[i] / joined["volume"].iloc[i - 20:i].mean())
        # market model: OLS over the 120 sessions ending 10 before day 0
        est = joined.iloc[i - 130:i - 10].dropna(subset=["ret", "ret_m"])
        beta, alpha = np.polyfit(est["ret_m"], est["ret"], 1)
        w = joined.iloc[i - 1:i + 2]
        assert r.loc[article, "car_m1_p1_mm"] == pytest.approx(
            (w["ret"] - alpha - beta * w["ret_m"]).sum(), abs=1e-9)
    # and one figure worked out by hand: 12-24, 12-28, 12-29 against the Hang Seng Index
    by_hand = ((226.0 / 226.6000061035156 - 1) - (23223.759766 / 23193.640625 - 1)
               + (223.4 / 226.0 - 1) - (23280.560547 / 23223.759766 - 1)
               + (216.0 / 223.4 - 1) - (23086.539063 / 23280.560547 - 1))
    assert r.loc[SEED_27, "car_m1_p1"] == pytest.approx(by_hand, abs=1e-6)


def test_windows_past_the_data_are_missing_not_zero(tmp_path: Path, shared_posts: Path,
                                                    shared_prices: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, shared_posts / "seeds")
    full = pd.read_csv(shared_prices / "hsi-constituents" / "3690.HK.csv")
    cut = tmp_path / "3690.HK.csv"
    full[full["Date"] < "2021-12-31"].to_csv(cut, index=False)  # last row: 2021-12-30
    import_csv(store, cut)
    import_csv(store, shared_prices / "download-format" / "^HSI.csv")
    r = by_article(store, "3690.HK")
    assert r.loc[SEED_29, "car_m1_p1"] == pytest.approx(r.loc[SEED_29, "car_m1_p1"])  # 28, 29, 30: there
    assert pd.isna(r.loc[SEED_29, "car_0_p5"]) and pd.isna(r.loc[SEED_29, "cr_0_p5"])
    assert pd.isna(r.loc[SEED_27, "car_0_p5"])
    assert not pd.isna(r.loc[SEED_29, "day0_return"])


def test_no_benchmark_means_no_abnormal_return(tmp_path: Path, shared_posts: Path,
                                               shared_prices: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, shared_posts / "seeds")
    import_csv(store, shared_prices / "hsi-constituents" / "3690.HK.csv")
    r = by_article(store, "3690.HK")
    assert r.loc[SEED_27, "day0_return"] == pytest.approx(223.4 / 226.0 - 1, abs=1e-6)
    assert pd.isna(r.loc[SEED_27, "car_m1_p1"]) and pd.isna(r.loc[SEED_27, "day0_abnormal"])


@pytest.mark.parametrize(
    ("published", "session"),
    [
        ("2021-12-24 11:00:00 +0800", "2021-12-24"),  # Christmas Eve half day closes at noon
        ("2021-12-24 13:00:00 +0800", "2021-12-28"),  # after that close; 25-27 closed
        ("2021-12-28 16:00:00 +0800", "2021-12-29"),  # at the close is after it
        ("2021-12-28 15:59:59 +0800", "2021-12-28"),
        ("2021-12-25 10:00:00 +0800", "2021-12-28"),  # a Saturday
        ("2021-12-28 08:30:00 +0000", "2021-12-29"),  # 16:30 in Hong Kong
        ("2021-12-28 07:30:00 +0000", "2021-12-28"),  # 15:30 in Hong Kong
        ("2025-06-03 10:00:00 +0800", "2025-06-03"),  # past the prices (end 2025-05-22): calendar
        ("2025-05-30 20:00:00 +0800", "2025-06-03"),  # ... after the close on Friday; Monday 06-02
    ],                                                # was not a holiday, but 05-31 Tuen Ng fell on a
)                                                     # Saturday: XHKG trades 06-02 -- checked below
def test_event_session_rules(tmp_path: Path, shared_prices: Path, published: str, session: str) -> None:
    import exchange_calendars as xcals

    store = Store(tmp_path / "s.duckdb")
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。", date=published)
    ingest_folder(store, folder)
    import_csv(store, shared_prices / "hsi-constituents" / "3690.HK.csv")
    got = by_article(store, "3690.HK")["session"].iloc[0].date()
    if published.startswith("2025-05-30"):
        cal = xcals.get_calendar("XHKG")
        session = str(cal.next_session("2025-05-30").date())
    assert str(got) == session


def test_us_articles_are_compared_in_new_york_time(tmp_path: Path, shared_prices: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    folder = tmp_path / "posts"
    # 03:00 in Beijing on the 28th is 14:00 on the 27th in New York: before that day's close
    write_post(folder, "a.md", "苹果(AAPL.O)。", date="2021-12-28 03:00:00 +0800")
    write_post(folder, "b.md", "亚马逊(AMZN.O)。", date="2021-12-28 06:00:00 +0800")  # 17:00 NY
    ingest_folder(store, folder)
    import_csv(store, shared_prices / "download-format" / "AAPL.csv")
    import_csv(store, shared_prices / "download-format" / "AMZN.csv")
    assert by_article(store, "AAPL")["session"].iloc[0] == pd.Timestamp("2021-12-27")
    assert by_article(store, "AMZN")["session"].iloc[0] == pd.Timestamp("2021-12-28")


def test_a_suspended_day_rolls_to_the_next_price_row(tmp_path: Path, shared_prices: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。", date="2021-12-28 10:00:00 +0800")
    ingest_folder(store, folder)
    df = pd.read_csv(shared_prices / "hsi-constituents" / "3690.HK.csv")
    suspended = tmp_path / "3690.HK.csv"
    df[~df["Date"].str.startswith("2021-12-28")].to_csv(suspended, index=False)
    import_csv(store, suspended)
    assert by_article(store, "3690.HK")["session"].iloc[0] == pd.Timestamp("2021-12-29")


def test_reactions_follow_new_articles_and_prices(tmp_path: Path, shared_prices: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    import_csv(store, shared_prices / "hsi-constituents" / "3690.HK.csv")
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。", date="2021-12-28 10:00:00 +0800")
    ingest_folder(store, folder)
    r = by_article(store, "3690.HK")
    assert r["day0_return"].iloc[0] == pytest.approx(223.4 / 226.0 - 1, abs=1e-6)
    assert pd.isna(r["car_m1_p1"].iloc[0])
    import_csv(store, shared_prices / "download-format" / "^HSI.csv")  # the benchmark arrives
    assert not pd.isna(by_article(store, "3690.HK")["car_m1_p1"].iloc[0])


def test_average_reaction_matches_the_events(seeded: Store, shared_prices: Path) -> None:
    with seeded.read() as con:
        events = pd.DataFrame({"symbol": ["3690.HK", "3690.HK"],
                               "session": [date(2021, 12, 28), date(2021, 12, 29)]})
        caar = average_reaction(con, events).set_index("day")
    assert list(caar.index) == list(range(-5, 11)) and set(caar["n"]) == {2}
    stock = csv_returns(shared_prices / "hsi-constituents" / "3690.HK.csv")
    hsi = csv_returns(shared_prices / "download-format" / "^HSI.csv")
    ar = (stock["ret"] - hsi["ret"].reindex(stock.index)).dropna()
    paths = []
    for day0 in ("2021-12-28", "2021-12-29"):
        i = list(ar.index).index(pd.Timestamp(day0))
        paths.append(ar.iloc[i - 5:i + 11].cumsum().to_numpy())
    mean = np.mean(paths, axis=0)
    se = np.std(paths, axis=0, ddof=1) / np.sqrt(2)
    assert caar["caar"].to_numpy() == pytest.approx(mean, abs=1e-12)
    assert caar["high"].to_numpy() == pytest.approx(mean + 1.96 * se, abs=1e-12)


def test_largest_moves_and_their_stories(seeded: Store) -> None:
    with seeded.read() as con:
        moves = largest_moves(con, "3690.HK", date(2021, 12, 20), date(2021, 12, 31), limit=20)
    assert len(moves) == 9  # every session of the range, largest |abnormal return| first
    assert list(moves["ar"].abs()) == sorted(moves["ar"].abs(), reverse=True)
    stories = {row.date.date(): row.articles for row in moves.itertuples()}
    ids = lambda d: sorted(a["article_id"] for a in stories[d])  # noqa: E731
    assert ids(date(2021, 12, 28)) == [SEED_27]
    assert ids(date(2021, 12, 29)) == [SEED_27, SEED_29]  # the day before counts (lookback 1)
    assert ids(date(2021, 12, 22)) == []  # no coverage found


def test_average_reaction_under_the_market_model(seeded: Store, shared_prices: Path) -> None:
    stock = csv_returns(shared_prices / "hsi-constituents" / "3690.HK.csv")
    hsi = csv_returns(shared_prices / "download-format" / "^HSI.csv")
    j = stock.merge(hsi, left_index=True, right_index=True, how="left", suffixes=("", "_m"))
    dates = list(j.index)
    paths = []
    for day0 in ("2021-12-28", "2021-12-29"):
        i = dates.index(pd.Timestamp(day0))
        est = j.iloc[i - 130:i - 10].dropna(subset=["ret", "ret_m"])
        beta, alpha = np.polyfit(est["ret_m"], est["ret"], 1)
        w = j.iloc[i - 5:i + 11]
        paths.append((w["ret"] - alpha - beta * w["ret_m"]).cumsum().to_numpy())
    with seeded.read() as con:
        events = pd.DataFrame({"symbol": ["3690.HK"] * 2, "session": [date(2021, 12, 28), date(2021, 12, 29)]})
        caar = average_reaction(con, events, model="mm")
        moves = largest_moves(con, "3690.HK", date(2021, 12, 28), date(2021, 12, 28), model="mm")
    assert caar["caar"].to_numpy() == pytest.approx(np.mean(paths, axis=0), abs=1e-9)
    i = dates.index(pd.Timestamp("2021-12-28"))
    est = j.iloc[i - 130:i - 10].dropna(subset=["ret", "ret_m"])
    beta, alpha = np.polyfit(est["ret_m"], est["ret"], 1)
    assert moves["ar"].iloc[0] == pytest.approx(j["ret"].iloc[i] - alpha - beta * j["ret_m"].iloc[i], abs=1e-9)
    with pytest.raises(ValueError, match="unknown model"):
        with seeded.read() as con:
            average_reaction(con, events, model="capm")
