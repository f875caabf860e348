"""Event sessions and reaction measures, checked against values worked out from the real CSVs."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.reactions import average_reaction, largest_moves, reactions_for
from dashboard.store import Store, open_store
from tests.conftest import target_of, write_post

SEED_27 = "202112272227521160"  # 2021-12-27 23:33 +08:00
SEED_29 = "202112292228912369"  # 2021-12-29 05:58 +08:00


@pytest.fixture
def seeded(new_store: Any, tmp_path: Path, shared_posts: Path, shared_prices: Path) -> Store:
    store = new_store()
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


def test_windows_past_the_data_are_missing_not_zero(new_store: Any, tmp_path: Path, shared_posts: Path,
                                                    shared_prices: Path) -> None:
    store = new_store()
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


def test_no_benchmark_means_no_abnormal_return(new_store: Any, tmp_path: Path, shared_posts: Path,
                                               shared_prices: Path) -> None:
    store = new_store()
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
def test_event_session_rules(new_store: Any, tmp_path: Path, shared_prices: Path, published: str, session: str) -> None:
    import exchange_calendars as xcals

    store = new_store()
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。", date=published)
    ingest_folder(store, folder)
    import_csv(store, shared_prices / "hsi-constituents" / "3690.HK.csv")
    got = by_article(store, "3690.HK")["session"].iloc[0].date()
    if published.startswith("2025-05-30"):
        cal = xcals.get_calendar("XHKG")
        session = str(cal.next_session("2025-05-30").date())
    assert str(got) == session


def test_us_articles_are_compared_in_new_york_time(new_store: Any, tmp_path: Path, shared_prices: Path) -> None:
    store = new_store()
    folder = tmp_path / "posts"
    # 03:00 in Beijing on the 28th is 14:00 on the 27th in New York: before that day's close
    write_post(folder, "a.md", "苹果(AAPL.O)。", date="2021-12-28 03:00:00 +0800")
    write_post(folder, "b.md", "亚马逊(AMZN.O)。", date="2021-12-28 06:00:00 +0800")  # 17:00 NY
    ingest_folder(store, folder)
    import_csv(store, shared_prices / "download-format" / "AAPL.csv")
    import_csv(store, shared_prices / "download-format" / "AMZN.csv")
    assert by_article(store, "AAPL")["session"].iloc[0] == pd.Timestamp("2021-12-27")
    assert by_article(store, "AMZN")["session"].iloc[0] == pd.Timestamp("2021-12-28")


def test_a_suspended_day_rolls_to_the_next_price_row(new_store: Any, tmp_path: Path, shared_prices: Path) -> None:
    store = new_store()
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。", date="2021-12-28 10:00:00 +0800")
    ingest_folder(store, folder)
    df = pd.read_csv(shared_prices / "hsi-constituents" / "3690.HK.csv")
    suspended = tmp_path / "3690.HK.csv"
    df[~df["Date"].str.startswith("2021-12-28")].to_csv(suspended, index=False)
    import_csv(store, suspended)
    assert by_article(store, "3690.HK")["session"].iloc[0] == pd.Timestamp("2021-12-29")


def test_reactions_follow_new_articles_and_prices(new_store: Any, tmp_path: Path, shared_prices: Path) -> None:
    store = new_store()
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
        caar = average_reaction(con, events).days.set_index("day")
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
    assert caar["se"].to_numpy() == pytest.approx(se, abs=1e-12)
    # two events: no band (it would need at least 5), said in a sentence, and no test
    assert caar["low"].isna().all() and caar["high"].isna().all()


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
        caar = average_reaction(con, events, model="mm").days
        moves = largest_moves(con, "3690.HK", date(2021, 12, 28), date(2021, 12, 28), model="mm")
    assert caar["caar"].to_numpy() == pytest.approx(np.mean(paths, axis=0), abs=1e-9)
    i = dates.index(pd.Timestamp("2021-12-28"))
    est = j.iloc[i - 130:i - 10].dropna(subset=["ret", "ret_m"])
    beta, alpha = np.polyfit(est["ret_m"], est["ret"], 1)
    assert moves["ar"].iloc[0] == pytest.approx(j["ret"].iloc[i] - alpha - beta * j["ret_m"].iloc[i], abs=1e-9)
    with pytest.raises(ValueError, match="unknown model"):
        with seeded.read() as con:
            average_reaction(con, events, model="capm")


# --- significance: each statistic against an independent calculation from the CSVs -----------

WINDOWS = {"m1_p1": (-1, 1), "0_p1": (0, 1), "0_p2": (0, 2), "0_p5": (0, 5)}


def against_the_index(shared_prices: Path, symbol: str) -> pd.DataFrame:
    """The stock's returns beside the Hang Seng Index's on the stock's dates, from the CSVs."""
    stock = csv_returns(shared_prices / "hsi-constituents" / f"{symbol}.csv")
    hsi = csv_returns(shared_prices / "download-format" / "^HSI.csv")
    j = stock.merge(hsi, left_index=True, right_index=True, how="left", suffixes=("", "_m"))
    j["ar"] = j["ret"] - j["ret_m"]
    return j


def expected(j: pd.DataFrame, day0: str, model: str, first: int = -1, last: int = 1) -> dict[str, float]:
    """An event study by the textbook, in numpy/scipy: the estimation window is rows 130..11
    before day 0; sigma of the abnormal returns there (market model: of the OLS residuals,
    ddof 2); SE = sigma sqrt(L); t = CAR / SE; p two-sided from Student's t."""
    from scipy import stats

    i = j.index.get_loc(pd.Timestamp(day0))
    est = j.iloc[max(i - 130, 0):i - 10].dropna(subset=["ret", "ret_m"])
    n = len(est)
    beta, alpha = np.polyfit(est["ret_m"], est["ret"], 1)
    if model == "market":
        ar, est_ar = j["ar"], est["ar"]
        sigma, dof = est_ar.std(ddof=1), n - 1
    else:
        ar = j["ret"] - alpha - beta * j["ret_m"]
        est_ar = est["ret"] - alpha - beta * est["ret_m"]
        sigma, dof = np.sqrt((est_ar ** 2).sum() / (n - 2)), n - 2
    length = last - first + 1
    car = ar.iloc[i + first:i + last + 1].sum()
    t = car / (sigma * np.sqrt(length))
    return {"car": car, "sigma": sigma, "n": n, "se": sigma * np.sqrt(length), "t": t,
            "p": 2 * stats.t.sf(abs(t), dof), "positive_share": (est_ar > 0).mean(),
            "path": ar.iloc[i - 5:i + 11].cumsum().to_numpy()}


@pytest.mark.parametrize("symbol", ["3690.HK", "1024.HK"])
def test_significance_of_each_window_matches_an_independent_calculation(
        seeded: Store, shared_prices: Path, symbol: str) -> None:
    j = against_the_index(shared_prices, symbol)
    r = by_article(seeded, symbol)
    for article, day0 in ((SEED_27, "2021-12-28"), (SEED_29, "2021-12-29")):
        row = r.loc[article]
        for model, sfx in (("market", ""), ("mm", "_mm")):
            for w, (first, last) in WINDOWS.items():
                want = expected(j, day0, model, first, last)
                assert want["n"] == 120 and row["n_est"] == 120
                assert row[f"car_{w}{sfx}"] == pytest.approx(want["car"], abs=1e-9)
                assert row[f"se_car_{w}{sfx}"] == pytest.approx(want["se"], rel=1e-9)
                assert row[f"t_car_{w}{sfx}"] == pytest.approx(want["t"], rel=1e-8)
                assert row[f"p_car_{w}{sfx}"] == pytest.approx(want["p"], abs=1e-9)
            assert row["sigma" + sfx] == pytest.approx(want["sigma"], rel=1e-9)
    if symbol == "3690.HK":  # the one unusual move: Meituan after 12-29, [0,+5], market model
        assert r.loc[SEED_29, "p_car_0_p5_mm"] == pytest.approx(0.046225, abs=1e-6)


def test_too_few_estimation_sessions_give_no_test(new_store: Any, tmp_path: Path, shared_prices: Path) -> None:
    # Kuaishou listed 2021-02-05: on 05-24 its estimation window has 59 sessions, on 05-25 60
    store = new_store()
    folder = tmp_path / "posts"
    for name, day in (("listing.md", "2021-02-05"), ("a.md", "2021-05-24"), ("b.md", "2021-05-25")):
        write_post(folder, name, "快手-W(01024.HK)。", title=day, date=f"{day} 10:00:00 +0800")
    ingest_folder(store, folder)
    import_csv(store, shared_prices / "hsi-constituents" / "1024.HK.csv")
    import_csv(store, shared_prices / "download-format" / "^HSI.csv")
    with store.read() as con:
        r = reactions_for(con, "1024.HK").set_index("title")
    j = against_the_index(shared_prices, "1024.HK")
    assert expected(j, "2021-05-24", "market")["n"] == 59 and r.loc["2021-05-24", "n_est"] == 59
    short = r.loc["2021-05-24"]
    assert not pd.isna(short["car_m1_p1"])  # the move itself is known ...
    stats = ["sigma", "sigma_mm"] + [f"{s}_car_{w}{m}" for s in ("se", "t", "p") for w in WINDOWS
                                     for m in ("", "_mm")] + [f"car_{w}_mm" for w in WINDOWS]
    assert short[stats].isna().all()  # ... how unusual it is is not: null, never zero
    assert r.loc["2021-02-05", "n_est"] == 0 and r.loc["2021-02-05", stats].isna().all()
    enough, want = r.loc["2021-05-25"], expected(j, "2021-05-25", "market")
    assert enough["n_est"] == 60 and want["n"] == 60
    assert enough["t_car_m1_p1"] == pytest.approx(want["t"], rel=1e-8)
    assert enough["p_car_m1_p1"] == pytest.approx(want["p"], abs=1e-9)
    want = expected(j, "2021-05-25", "mm", 0, 5)
    assert enough["p_car_0_p5_mm"] == pytest.approx(want["p"], abs=1e-9)


def test_the_benchmark_has_no_noise_against_itself(seeded: Store) -> None:
    with seeded.read() as con:
        rows = con.execute("SELECT count(*), count(sigma), count(sigma_mm), count(*) FILTER (n_est >= 60) "
                           "FROM daily_returns WHERE symbol = '^HSI'").fetchall()[0]
    total, sigma, sigma_mm, estimated = rows
    assert estimated > 400 and sigma == 0 and sigma_mm == 0  # its abnormal return is 0: no sigma


def test_sentences_an_investor_reads(seeded: Store) -> None:
    from dashboard.i18n import reaction_sentence
    from dashboard.reactions import describe_reaction

    r = by_article(seeded, "3690.HK").reset_index()
    late = r[r["article_id"] == SEED_29].iloc[0].to_dict()
    assert describe_reaction(late, "en", "0_p5", "mm") == "−10.2% abnormal over 6 days, unusual: p = 0.046"
    assert describe_reaction(late, "zh", "0_p5", "mm") == "6日超额收益 −10.2%，显著（p = 0.046）"
    assert describe_reaction(late, "en") == "−2.9% abnormal over 3 days, within normal noise: p = 0.59"
    assert describe_reaction(late, "zh") == "3日超额收益 −2.9%，属正常波动（p = 0.59）"
    assert reaction_sentence(-0.0432, 0.0123, 3, "en") == "−4.3% abnormal over 3 days, unusual: p = 0.012"
    assert reaction_sentence(0.008, 0.0496, 3, "en").endswith("unusual: p = 0.0496")  # not rounded to 0.05
    assert reaction_sentence(0.008, 0.0004, 2, "zh") == "2日超额收益 +0.8%，显著（p < 0.001）"
    assert (reaction_sentence(0.05, None, 3, "en")
            == "+5.0% abnormal over 3 days; too little price history to judge")
    assert reaction_sentence(None, None, 3, "zh") == "缺少行情或基准指数，无法计算超额收益"


def test_coverage_filters_on_significance(seeded: Store) -> None:
    from dashboard.coverage import article, related_coverage

    with seeded.read() as con:
        every = related_coverage(con, ["3690.HK"], "Asia/Shanghai")
        unusual = related_coverage(con, ["3690.HK"], "Asia/Shanghai", significant_at=0.05, window="0_p5",
                                   model="mm")
        none = related_coverage(con, ["3690.HK"], "Asia/Shanghai", significant_at=0.05)
        pane = article(con, SEED_29, "Asia/Shanghai")
        with pytest.raises(ValueError, match="unknown window"):
            related_coverage(con, ["3690.HK"], "Asia/Shanghai", significant_at=0.05, window="0_p9")
    assert len(every) == 2 and list(unusual["article_id"]) == [SEED_29] and none.empty
    assert unusual["p_car_0_p5_mm"].iloc[0] == pytest.approx(0.046225, abs=1e-6)
    secs = pane["securities"].set_index("symbol")
    assert secs.loc["3690.HK", "p_car_0_p5_mm"] == pytest.approx(0.046225, abs=1e-6)
    assert {"t_car_0_p2", "p_car_0_p1", "sigma", "n_est"} <= set(every.columns)


# --- average reaction ---------------------------------------------------------------------

# Sessions a month or more apart: no window overlaps another, no two share a day 0.
SPREAD = [("3690.HK", "2022-03-15"), ("1024.HK", "2022-03-22"), ("3690.HK", "2022-05-10"),
          ("1024.HK", "2022-06-20"), ("3690.HK", "2022-08-01"), ("1024.HK", "2022-09-05"),
          ("3690.HK", "2022-10-24")]


def pooled(events: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [s for s, _ in events],
                         "session": [date.fromisoformat(d) for _, d in events]})


@pytest.mark.parametrize("model", ["market", "mm"])
def test_average_band_and_tests_match_an_independent_calculation(seeded: Store, shared_prices: Path,
                                                                 model: str) -> None:
    from scipy import stats

    frames = {s: against_the_index(shared_prices, s) for s in ("3690.HK", "1024.HK")}
    ev = [expected(frames[s], d, model) for s, d in SPREAD]
    with seeded.read() as con:
        got = average_reaction(con, pooled(SPREAD), model=model)
    n = len(SPREAD)
    paths = np.array([e["path"] for e in ev])
    mean, se = paths.mean(axis=0), paths.std(axis=0, ddof=1) / np.sqrt(n)
    q = stats.t.ppf(0.975, n - 1)
    days = got.days
    assert list(days["day"]) == list(range(-5, 11)) and set(days["n"]) == {n}
    assert days["caar"].to_numpy() == pytest.approx(mean, abs=1e-12)
    assert days["low"].to_numpy() == pytest.approx(mean - q * se, abs=1e-12)
    assert days["high"].to_numpy() == pytest.approx(mean + q * se, abs=1e-12)
    # Boehmer-Musumeci-Poulsen: the t of the standardized CARs' mean, N - 1 degrees of freedom
    scar = np.array([e["t"] for e in ev])
    bmp_t = scar.mean() / (scar.std(ddof=1) / np.sqrt(n))
    assert got.tested == n and got.bmp_t == pytest.approx(bmp_t, rel=1e-9)
    assert got.bmp_p == pytest.approx(2 * stats.t.sf(abs(bmp_t), n - 1), abs=1e-12)
    # Cowan's generalized sign test: positive CARs against the estimation windows' share
    share = np.mean([e["positive_share"] for e in ev])
    positive = sum(e["car"] > 0 for e in ev)
    z = (positive - n * share) / np.sqrt(n * share * (1 - share))
    assert got.positive == positive and got.expected_positive == pytest.approx(share, abs=1e-12)
    assert got.sign_z == pytest.approx(z, rel=1e-12)
    assert got.sign_p == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-12)
    assert got.car == pytest.approx(np.mean([e["car"] for e in ev]), abs=1e-12)
    assert got.warnings == () and got.notes == ()  # independent events, a band everywhere


def test_the_band_stops_where_fewer_than_five_events_remain(seeded: Store, shared_prices: Path) -> None:
    from dashboard.figures import average_reaction_chart

    # the index's prices end 2023-08-28: an event on 08-21 has abnormal returns to day +5 only
    events = SPREAD[:4] + [("3690.HK", "2023-08-21")]
    with seeded.read() as con:
        got = average_reaction(con, pooled(events))
    days = got.days.set_index("day")
    assert list(days.index) == list(range(-5, 11))
    assert (days.loc[:5, "n"] == 5).all() and (days.loc[6:, "n"] == 4).all()
    assert days.loc[:5, "low"].notna().all() and days.loc[6:, ["low", "high"]].isna().all().all()
    frames = {s: against_the_index(shared_prices, s) for s in ("3690.HK", "1024.HK")}
    paths = [expected(frames[s], d, "market")["path"] for s, d in events]  # the last: NaN after day +5
    assert days.loc[5, "caar"] == pytest.approx(np.mean([p[10] for p in paths]), abs=1e-12)
    assert days.loc[6, "caar"] == pytest.approx(np.mean([p[11] for p in paths[:4]]), abs=1e-12)
    assert ("avg_band_partial", {"min": 5, "day": 6}) in got.notes and got.tested == 5
    fig = average_reaction_chart(got, labels={"caar": "CAAR", "band": "95%", "day": "day"})
    band = [tr for tr in fig.data if tr.fill == "toself"]
    assert len(band) == 1 and sorted(set(band[0].x)) == list(range(-5, 6))
    line = next(tr for tr in fig.data if tr.mode == "lines+markers")
    assert list(line.x) == list(range(-5, 11))  # the points go on where the band stops


def test_few_events_get_points_without_band_or_test(seeded: Store) -> None:
    from dashboard.figures import average_reaction_chart
    from dashboard.i18n import average_sentences

    with seeded.read() as con:
        got = average_reaction(con, pooled(SPREAD[:4]))
    assert set(got.days["n"]) == {4} and got.days[["low", "high"]].isna().all().all()
    assert got.bmp_t is None and got.sign_p is None and got.tested == 4
    assert [k for k, _ in got.notes] == ["avg_band_none", "avg_untested"]
    fig = average_reaction_chart(got, labels={"caar": "CAAR", "band": "95%", "day": "day"})
    assert [tr.mode for tr in fig.data] == ["lines+markers"]
    assert average_sentences(got, "en") == [
        "No band: at most 4 events behind any day, and a spread needs at least 5.",
        "No significance test: 4 events have enough price history around them, at least 5 needed."]


def test_clustered_and_overlapping_events_are_flagged(seeded: Store) -> None:
    import pickle

    from dashboard.i18n import average_sentences

    # the seeds name both Meituan and Kuaishou: pooled, 4 events on 2 sessions, one day apart
    seeds = [("3690.HK", "2021-12-28"), ("1024.HK", "2021-12-28"), ("3690.HK", "2021-12-29"),
             ("1024.HK", "2021-12-29"), ("3690.HK", "2021-12-28")]  # a second article, same session
    with seeded.read() as con:
        got = average_reaction(con, pooled(seeds))
        alone = average_reaction(con, pooled(seeds[:1]))
    assert got.articles == 5 and got.events == 4
    assert ("avg_duplicates", {"articles": 5, "n": 4}) in got.notes
    assert got.warnings == (("avg_clustered", {"n": 4, "sessions": 2}),
                            ("avg_overlapping", {"n": 4, "span": 15}))
    assert alone.warnings == () and alone.events == 1
    zh = average_sentences(got, "zh")
    assert "4 个事件与其他证券的事件同在一个交易日（共 2 个交易日）：它们并不独立，检验会高估显著性。" in zh
    copy = pickle.loads(pickle.dumps(got))  # Streamlit caches it
    assert copy.warnings == got.warnings and copy.days.equals(got.days)


def test_average_with_tests_in_words(seeded: Store) -> None:
    from dashboard.i18n import average_sentences

    with seeded.read() as con:
        got = average_reaction(con, pooled(SPREAD))
    en = average_sentences(got, "en")[0]
    mean = f"{got.car * 100:+.2f}%".replace("-", "−")
    assert en.startswith(f"Mean CAR {mean} over sessions −1…+1 of 7 events: BMP t = {got.bmp_t:.2f}")
    assert f"{got.positive} of 7 positive" in en and "BMP t = " in en


# --- an older store -----------------------------------------------------------------------

V1_CACHES = """
DROP VIEW reactions; DROP TABLE article_sessions; DROP TABLE session_reactions; DROP TABLE daily_returns;
CREATE TABLE daily_returns (symbol VARCHAR NOT NULL, date DATE NOT NULL, i BIGINT, benchmark VARCHAR,
    adj_close DOUBLE, volume DOUBLE, ret DOUBLE, rm DOUBLE, ar DOUBLE, alpha DOUBLE, beta DOUBLE,
    n_est BIGINT);
CREATE TABLE reactions (article_id VARCHAR NOT NULL, symbol VARCHAR NOT NULL, session DATE, benchmark VARCHAR,
    day0_return DOUBLE, day0_abnormal DOUBLE, cr_m1_p1 DOUBLE, car_m1_p1 DOUBLE, cr_0_p5 DOUBLE,
    car_0_p5 DOUBLE,
    car_m1_p1_mm DOUBLE, car_0_p5_mm DOUBLE, volume_ratio DOUBLE);
INSERT INTO reactions (article_id, symbol, car_m1_p1) VALUES ('stale', '3690.HK', 0.5);
UPDATE meta SET value = '1' WHERE key = 'schema_version';
"""


@pytest.mark.parametrize("opened_by", ["read", "write"])
def test_an_older_store_gets_its_caches_rebuilt(seeded: Store, opened_by: str) -> None:
    import duckdb

    from dashboard.store import SCHEMA_VERSION

    with seeded.read() as con:
        want = reactions_for(con, "3690.HK").set_index("article_id")
    if seeded.kind == "duckdb":
        con = duckdb.connect(str(seeded.path))  # the caches as version 1 wrote them
        con.execute(V1_CACHES)
        con.close()
    else:
        import psycopg

        from dashboard.store.dialect import translate

        with psycopg.connect(target_of(seeded), autocommit=True) as pg:
            for stmt in translate(V1_CACHES):
                pg.execute(stmt.text)
        seeded = open_store(target_of(seeded))  # a process that has not seen this store yet
    if opened_by == "write":
        with seeded.write() as con:
            pass
    with seeded.read() as con:
        got = reactions_for(con, "3690.HK").set_index("article_id")
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
        stale = con.execute("SELECT count(*) FROM reactions WHERE article_id = 'stale'").fetchall()[0][0]
    assert version == str(SCHEMA_VERSION) and stale == 0
    pd.testing.assert_frame_equal(got, want)
