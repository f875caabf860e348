"""The eastmoney source (akshare): shapes, adjustment on real dividends and splits, politeness,
failures, the per-market fallback, and the real offline behaviour.

akshare is stubbed at its boundary (its history functions, ``tests/akstub.py``) with frames built
the way akshare builds them; the first tests check each stub against the real function fed the
same K-lines through a fake HTTP response. Nothing here reaches the network, except the one
test of the real offline behaviour, which runs only when eastmoney cannot be reached.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("akshare", reason="akshare is optional: pip install -r requirements-dev.txt")

import akshare  # noqa: E402
import requests  # noqa: E402

from dashboard.prices import (  # noqa: E402
    AkshareSource,
    FallbackSource,
    PriceFailure,
    YFinanceSource,
    import_csv,
    stored_prices,
    update_prices,
)
from dashboard.prices.eastmoney import adjusted_close, request_for  # noqa: E402
from dashboard.store import Store  # noqa: E402
from tests import akstub  # noqa: E402
from tests.akstub import FakeEastmoney, Listing  # noqa: E402

# akshare's own deprecation noise under pandas 3, from the real functions the stubs are checked against
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning",
                                        "ignore:The inplace keyword")

TODAY = date(2026, 11, 21)
FUNCTIONS = ["stock_zh_a_hist", "stock_hk_hist", "stock_zh_index_daily_em", "index_global_hist_em"]


@dataclass
class FakeClock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def source(clock: FakeClock | None = None, **kw: Any) -> AkshareSource:
    clock = clock or FakeClock()
    return AkshareSource(sleep=clock.sleep, clock=clock, **kw)


@pytest.fixture
def hist(shared_prices: Path) -> Path:
    return shared_prices / "hsi-constituents"


@pytest.fixture
def dl(shared_prices: Path) -> Path:
    return shared_prices / "download-format"


def index_listing(path: Path, decimals: int = 2) -> Listing:
    df = pd.read_csv(path, index_col="Date", parse_dates=True)
    raw = df[["Open", "High", "Low", "Close", "Volume"]].rename(columns=str.lower).round(decimals)
    return Listing(raw.assign(amount=raw["volume"] * 10.0), None, decimals)  # as eastmoney quotes it


def row_sources(con: Any) -> dict[str, str]:
    return dict(con.execute("SELECT symbol, string_agg(DISTINCT source) FROM prices GROUP BY 1").fetchall())


def returns(store: Store, symbol: str) -> pd.DataFrame:
    with store.read() as con:
        df = stored_prices(con, symbol).set_index("date")
    return df.assign(ret=df["adj_close"].pct_change())


# --- the stubs are akshare's own shapes -------------------------------------------------------


class FakeResponse:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def json(self) -> dict[str, Any]:
        return self.payload


def real(monkeypatch: pytest.MonkeyPatch, function: str, payload: dict[str, Any], **kwargs: Any) -> Any:
    """The real akshare function, answered ``payload`` by a fake eastmoney."""
    monkeypatch.setattr(requests, "get", lambda *a, **k: FakeResponse(payload))
    return getattr(akshare, function)(**kwargs)


def sample(decimals: int = 2) -> Listing:
    idx = pd.DatetimeIndex(["2021-12-28", "2021-12-29", "2021-12-30"], name="Date")
    raw = pd.DataFrame({"open": [1738.0, 2047.5, 2050.01], "high": [1750.5, 2060.0, 2066.0],
                        "low": [1730.25, 2030.0, 2041.0], "close": [1745.0, 2049.0, 2062.0],
                        "volume": [21000.0, 23500.0, 19000.0], "amount": [3.6e9, 4.8e9, 3.9e9]}, index=idx)
    return Listing(raw, raw * 1.5, decimals, name="样本")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_stub_signatures_are_akshares(function: str) -> None:
    theirs = inspect.signature(getattr(akshare, function)).parameters
    ours = inspect.signature(getattr(FakeEastmoney(), function)).parameters
    assert [(p.name, p.default) for p in theirs.values()] == [(p.name, p.default) for p in ours.values()]


DEC = {"start_date": "20211201", "end_date": "20211231"}


@pytest.mark.parametrize(("function", "kwargs", "secid", "fields"), [
    ("stock_zh_a_hist", {"symbol": "600519", **DEC}, "1.600519", 11),
    ("stock_hk_hist", {"symbol": "03690", **DEC}, "116.03690", 11),
    ("stock_zh_index_daily_em", {"symbol": "sh000300", **DEC}, "1.000300", 8),
    ("index_global_hist_em", {"symbol": "恒生指数"}, "100.HSI", 14),
])
def test_stub_frames_equal_akshares_own(monkeypatch: pytest.MonkeyPatch, function: str,
                                        kwargs: dict[str, Any], secid: str, fields: int) -> None:
    listing = sample(3 if function == "stock_hk_hist" else 2)
    payload = akstub.body(listing.lines("", fields), secid.split(".")[1], listing.name)
    theirs = real(monkeypatch, function, payload, **kwargs)
    ours = getattr(FakeEastmoney({secid: listing}), function)(**kwargs)
    pd.testing.assert_frame_equal(ours, theirs)
    assert len(ours) == 3
    # the shapes the source reads: dates as datetime.date objects, or a string for the index
    first = ours.iloc[0, 0]
    assert isinstance(first, date) or (function == "stock_zh_index_daily_em" and isinstance(first, str))


@pytest.mark.parametrize(("function", "kwargs"), [
    ("stock_zh_a_hist", {"symbol": "600000"}),
    ("stock_hk_hist", {"symbol": "99999"}),
    ("stock_zh_index_daily_em", {"symbol": "sh000999"}),
    ("index_global_hist_em", {"symbol": "恒生指数"}),
])
def test_stub_unknown_code_behaves_as_akshare(monkeypatch: pytest.MonkeyPatch, function: str,
                                              kwargs: dict[str, Any]) -> None:
    """eastmoney sends "data": null for a code it lacks: akshare returns an empty frame from
    stock_zh_a_hist and fails subscripting None everywhere else."""
    outcomes = []
    for call in (lambda: real(monkeypatch, function, akstub.body(None), **kwargs),
                 lambda: getattr(FakeEastmoney(), function)(**kwargs)):
        try:
            out = call()
            outcomes.append(("frame", out.shape, list(out.columns)))
        except Exception as e:
            outcomes.append((type(e).__name__, str(e)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == ("frame" if function == "stock_zh_a_hist" else "TypeError")


@pytest.mark.parametrize(("function", "kwargs"), [
    ("stock_zh_a_hist", {"symbol": "600519", "start_date": "20300101"}),
    ("stock_hk_hist", {"symbol": "03690", "start_date": "20300101"}),
    ("stock_zh_index_daily_em", {"symbol": "sh000300", "start_date": "20300101"}),
    ("index_global_hist_em", {"symbol": "恒生指数"}),
])
def test_stub_empty_range_behaves_as_akshare(monkeypatch: pytest.MonkeyPatch, function: str,
                                             kwargs: dict[str, Any]) -> None:
    outcomes = []
    for call in (lambda: real(monkeypatch, function, akstub.body([], "x", "x"), **kwargs),
                 lambda: getattr(FakeEastmoney({s: Listing(sample().raw.iloc[:0], None)
                                                for s in ("1.600519", "116.03690", "1.000300", "100.HSI")}),
                                 function)(**kwargs)):
        try:
            out = call()
            outcomes.append(("frame", out.shape))
        except Exception as e:
            outcomes.append((type(e).__name__, str(e)))
    assert outcomes[0] == outcomes[1]
    # an empty answer is an empty frame, except index_global_hist_em's length mismatch
    assert outcomes[0] == (("ValueError", outcomes[0][1]) if function == "index_global_hist_em"
                           else ("frame", (0, 0)))


def test_real_akshare_offline_raises_connection_error_like_the_stub() -> None:
    """The exception the stubs raise for "offline" is what akshare raises here, for real."""
    import socket

    try:
        socket.create_connection(("push2his.eastmoney.com", 443), timeout=3).close()
        pytest.skip("eastmoney is reachable from here")
    except OSError:
        pass
    with pytest.raises(requests.exceptions.ConnectionError) as real_error:
        akshare.stock_zh_a_hist(symbol="600519", start_date="20211201", end_date="20211231", timeout=5)
    assert "NameResolutionError" in str(real_error.value) or "Failed to" in str(real_error.value)
    assert "NameResolutionError" in str(akstub.offline_error())


# --- symbols --------------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "call"), [
    ("600519.SS", "stock_zh_a_hist('600519')"),
    ("000858.SZ", "stock_zh_a_hist('000858')"),
    ("830799.BJ", "stock_zh_a_hist('830799')"),
    ("3690.HK", "stock_hk_hist('03690')"),
    ("0700.HK", "stock_hk_hist('00700')"),
    ("000001.SS", "stock_zh_index_daily_em('sh000001')"),
    ("000300.SS", "stock_zh_index_daily_em('sh000300')"),
    ("399001.SZ", "stock_zh_index_daily_em('sz399001')"),
    ("^HSI", "index_global_hist_em('恒生指数')"),
    ("^GSPC", "index_global_hist_em('标普500')"),
])
def test_yahoo_symbols_map_to_akshare_calls(symbol: str, call: str) -> None:
    request = request_for(symbol)
    assert not isinstance(request, PriceFailure) and request.call == call


@pytest.mark.parametrize(("symbol", "words"), [
    ("NIO", "not NIO: ask Yahoo Finance"),
    ("^IXIC", "not ^IXIC"),
    ("510300.SS", "Shanghai shares (codes 6xxxxx) only"),
])
def test_symbols_akshare_cannot_serve_are_unknown(symbol: str, words: str) -> None:
    request = request_for(symbol)
    assert isinstance(request, PriceFailure) and request.kind == "unknown_symbol" and words in request.reason


# --- adjustment, on real dividends and splits ------------------------------------------------


def fetch_into(store: Store, fake: FakeEastmoney, monkeypatch: pytest.MonkeyPatch,
               spans: dict[str, tuple[date, date]]) -> Any:
    fake.install(monkeypatch)
    return update_prices(store, source(), spans, today=TODAY)


@pytest.mark.parametrize("model", ["additive", "multiplicative"])
@pytest.mark.parametrize(("file", "symbol", "secid", "span", "ex_dates"), [
    # Tencent's HK$1.60 dividend, ex 2021-05-24
    ("0700.HK.csv", "0700.HK", "116.00700", (date(2021, 5, 1), date(2021, 6, 30)), ["2021-05-24"]),
    # HSBC: nine dividends in two years, one of them HK$2.43 (with the special), ex 2024-03-07
    ("0005.HK.csv", "0005.HK", "116.00005", (date(2023, 6, 1), date(2025, 5, 22)),
     ["2023-08-10", "2024-03-07", "2025-03-06"]),
])
def test_hong_kong_dividends_give_yahoos_returns(monkeypatch: pytest.MonkeyPatch, store: Store, hist: Path,
                                                 model: str, file: str, symbol: str, secid: str,
                                                 span: tuple[date, date], ex_dates: list[str]) -> None:
    real_sec = akstub.from_history_export(hist / file)
    listing = akstub.eastmoney_view(real_sec, 3, model, a0=1.0, b0=35.0)
    report = fetch_into(store, FakeEastmoney({secid: listing}), monkeypatch, {symbol: span})
    assert report.failures == {} and report.sources == {symbol: "akshare"}
    got = returns(store, symbol)
    yahoo = real_sec.adjusted.loc[str(span[0]):str(span[1])]
    days = pd.DatetimeIndex(got.index)
    assert list(days) == list(yahoo.index)
    # stored: the unadjusted close, as traded ...
    assert got["close"].to_numpy() == pytest.approx(listing.raw["close"].loc[days].to_numpy(), abs=1e-9)
    # ... and an adjusted close at Yahoo's level, whose returns are Yahoo's on every day
    assert got["adj_close"].to_numpy() == pytest.approx(yahoo.to_numpy(), rel=2e-5)
    want = yahoo.pct_change().to_numpy()
    rounding = 1.5e-3 / got["close"].min()  # eastmoney's 0.001 on the raw prices rebuilt from Yahoo's
    assert np.nanmax(np.abs(got["ret"].to_numpy() - want)) < rounding
    # the alternatives are wrong: raw closes drop by the dividend; an additive hfq damps every day
    raw_ret = got["close"].pct_change()
    for ex in ex_dates:
        i = list(days).index(pd.Timestamp(ex))
        assert abs(raw_ret.iloc[i] - want[i]) > 1e-3
    hfq_ret = listing.hfq["close"].loc[days].pct_change().to_numpy()
    if model == "additive":
        assert np.nanmax(np.abs(hfq_ret - want)) > 1e-3


def test_a_real_split_keeps_returns_and_the_traded_price(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                         hist: Path) -> None:
    """WuXi Biologics: one share became three on 2020-11-16 (two flat, untraded days on Yahoo)."""
    real_sec = akstub.from_history_export(hist / "2269.HK.csv")
    listing = akstub.eastmoney_view(real_sec, 3, "additive", a0=1.0, b0=0.4)
    fetch_into(store, FakeEastmoney({"116.02269": listing}), monkeypatch,
               {"2269.HK": (date(2020, 10, 1), date(2020, 12, 31))})
    got = returns(store, "2269.HK")
    yahoo = real_sec.adjusted.loc["2020-10-01":"2020-12-31"]
    before = pd.Timestamp("2020-11-13")
    assert got.loc[before, "close"] == pytest.approx(3 * yahoo[before], abs=1e-3)  # as traded
    rounding = 1.5e-3 / got["close"].min()  # eastmoney's 0.001 on prices rebuilt from Yahoo's
    assert got.loc[pd.Timestamp("2020-11-16"), "ret"] == pytest.approx(0.0, abs=rounding)
    assert got["close"].pct_change().loc[pd.Timestamp("2020-11-16")] == pytest.approx(-2 / 3, abs=1e-4)
    assert np.nanmax(np.abs(got["ret"].to_numpy() - yahoo.pct_change().to_numpy())) < rounding
    assert got["adj_close"].to_numpy() == pytest.approx(yahoo.to_numpy(), rel=2e-5)


@pytest.mark.parametrize("model", ["additive", "multiplicative"])
def test_an_a_share_dividend_gives_yahoos_returns(monkeypatch: pytest.MonkeyPatch, store: Store, dl: Path,
                                                  model: str) -> None:
    """中南传媒 601098: a CNY 0.63 dividend on a CNY 9.55 share, ex 2021-06-25; eastmoney quotes
    A-shares to 0.01 and counts volume in lots of 100."""
    real_sec = akstub.from_download_export(dl / "601098.SS.csv")
    listing = akstub.eastmoney_view(real_sec, 2, model, a0=1.0, b0=3.1, lots=True)
    report = fetch_into(store, FakeEastmoney({"1.601098": listing}), monkeypatch,
                        {"601098.SS": (date(2021, 6, 1), date(2021, 7, 31))})
    assert report.failures == {}
    got = returns(store, "601098.SS")
    days = pd.DatetimeIndex(got.index)
    yahoo = real_sec.adjusted.loc[days]
    want = yahoo.pct_change()
    ex = pd.Timestamp("2021-06-25")
    assert got.loc[ex, "close"] == 8.83 and got["close"].pct_change()[ex] == pytest.approx(8.83 / 9.55 - 1)
    # the ex-date return: from the reference price 9.55 - 0.63, to eastmoney's rounding of hfq
    worst = 0.005 / (9.55 - 0.63)  # half a cent of rounding on one hfq close
    assert got.loc[ex, "ret"] == pytest.approx(want[ex], abs=worst)
    assert got.loc[ex, "ret"] == pytest.approx(8.83 / (9.55 - 0.63) - 1, abs=worst)
    others = days != ex
    assert np.nanmax(np.abs(got["ret"][others] - want.to_numpy()[others])) < 1e-6
    assert got["adj_close"].to_numpy() == pytest.approx(yahoo.to_numpy(), rel=1e-3)
    # volume in shares, as Yahoo counts it
    assert got["volume"].to_numpy() == pytest.approx(real_sec.raw["volume"].loc[days].to_numpy(), abs=50)


@pytest.mark.parametrize("model", ["additive", "multiplicative"])
def test_every_real_action_is_found_on_its_day_with_yahoos_factor(hist: Path, model: str) -> None:
    """HSBC 2020-2025: 14 dividends (none in 2020); Yahoo's multiplier is 1 - dividend / previous close."""
    from dashboard.prices.eastmoney import action_factors

    real_sec = akstub.from_history_export(hist / "0005.HK.csv")
    listing = akstub.eastmoney_view(real_sec, 3, model, a0=1.3, b0=20.0)
    found = action_factors(listing.raw, listing.hfq)  # type: ignore[arg-type]
    found = found[found != 1.0]
    prev = listing.raw["close"].shift(1)
    want = pd.Series({a.day: 1 - a.cash / prev[a.day] for a in real_sec.actions})
    assert list(found.index) == list(want.index) and len(found) == 14
    assert found.to_numpy() == pytest.approx(want.to_numpy(), abs=2e-5)


def test_an_hfq_that_is_not_dividends_and_splits_is_refused(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                            dl: Path) -> None:
    listing = a_shares(dl)["1.601098"]
    noise = np.random.default_rng(7).normal(1.0, 0.01, len(listing.raw))
    listing.hfq = listing.raw.assign(**{c: (listing.raw[c] * noise).round(2)
                                        for c in ("open", "high", "low", "close")})
    FakeEastmoney({"1.601098": listing}).install(monkeypatch)
    report = update_prices(store, source(), {"601098.SS": JUNE}, today=TODAY)
    failure = report.failures["601098.SS"]
    assert failure.kind == "error" and "cannot be adjusted" in failure.reason and report.stored == {}


def test_no_actions_means_adjusted_equals_close() -> None:
    listing = sample()
    out = adjusted_close(listing.raw, listing.raw * 1.7 + 3)
    assert list(out) == list(listing.raw["close"])


# --- politeness ---------------------------------------------------------------------------------


def a_shares(dl: Path) -> dict[str, Listing]:
    cn, sz = (akstub.from_download_export(dl / f) for f in ("601098.SS.csv", "000065.SZ.csv"))
    return {"1.601098": akstub.eastmoney_view(cn, 2, lots=True, b0=3.1),
            "0.000065": akstub.eastmoney_view(sz, 2, lots=True),
            "1.000001": index_listing(dl / "000001.SS.csv")}


JUNE = (date(2021, 6, 1), date(2021, 6, 30))
THREE = {"601098.SS": JUNE, "000065.SZ": JUNE, "000001.SS": JUNE}


def test_requests_are_spaced_by_the_minimum_interval(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                     dl: Path) -> None:
    clock = FakeClock()
    fake = FakeEastmoney(a_shares(dl), clock=clock).install(monkeypatch)
    report = update_prices(store, source(clock, min_interval=1.5), THREE, today=TODAY)
    assert sorted(report.stored) == sorted(THREE)
    # two requests a share (unadjusted, hfq), one for the index
    assert [(c["function"], c["adjust"]) for c in fake.calls].count(("stock_zh_a_hist", "hfq")) == 2
    assert len(fake.calls) == 5
    at = [c["at"] for c in fake.calls]
    assert all(later - earlier >= 1.5 for earlier, later in zip(at, at[1:], strict=False))
    assert at[0] == 1000.0  # the first request waits for nothing
    # a share asks to the latest day (its adjusted close is anchored there), an index its span only
    spans = {f: {(c["start_date"], c["end_date"]) for c in fake.asked(f)}
             for f in ("stock_zh_a_hist", "stock_zh_index_daily_em")}
    assert spans == {"stock_zh_a_hist": {("20210601", "20500101")},
                     "stock_zh_index_daily_em": {("20210601", "20210630")}}
    assert {c["timeout"] for c in fake.asked("stock_zh_a_hist")} == {15.0}


@pytest.mark.parametrize("ban", [akstub.ban_error, akstub.html_answer_error])
def test_a_ban_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch, store: Store, dl: Path,
                                       ban: Any) -> None:
    clock = FakeClock()
    fake = FakeEastmoney(a_shares(dl), errors={"1.601098": [ban(), ban()]}, clock=clock).install(monkeypatch)
    report = update_prices(store, source(clock, min_interval=0, backoff=2), {"601098.SS": JUNE}, today=TODAY)
    assert report.stored == {"601098.SS": 21} and report.failures == {}
    assert clock.slept == [2, 4] and len(fake.calls) == 4


def test_ban_retries_are_bounded_and_then_eastmoney_is_left_alone(monkeypatch: pytest.MonkeyPatch,
                                                                  store: Store, dl: Path) -> None:
    clock = FakeClock()
    errors = {"1.601098": [akstub.ban_error() for _ in range(10)]}
    fake = FakeEastmoney(a_shares(dl), errors=errors, clock=clock).install(monkeypatch)
    report = update_prices(store, source(clock, min_interval=0, backoff=1, max_retries=3), THREE, today=TODAY)
    asked = {c["secid"] for c in fake.calls}
    assert len(fake.calls) == 4 and clock.slept == [1, 2, 4]  # the first symbol asked; then no more
    assert len(asked) == 1
    assert {s: f.kind for s, f in report.failures.items()} == {s: "rate_limited" for s in THREE}
    assert "blocks clients that ask too often" in report.failures["000001.SS"].reason
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM prices").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM price_failures WHERE reason_kind = 'rate_limited'"
                           ).fetchone() == (3,)


def test_no_network_asks_once_and_keeps_cached_rows(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                    hist: Path) -> None:
    import_csv(store, hist / "0700.HK.csv")
    with store.read() as con:
        before = stored_prices(con, "0700.HK")
        cov = con.execute("SELECT start_date, end_date, source FROM price_coverage").fetchall()
    fake = FakeEastmoney(errors={s: [akstub.offline_error()] for s in ("116.00700", "116.03690", "100.HSI")})
    fake.install(monkeypatch)
    report = update_prices(store, source(), {"0700.HK": (date(2021, 5, 1), date(2021, 6, 30)),
                                             "3690.HK": JUNE, "^HSI": JUNE}, today=TODAY, force=True)
    assert len(fake.calls) == 1
    assert {f.kind for f in report.failures.values()} == {"network"} and len(report.failures) == 3
    assert report.failures["^HSI"].reason == ("eastmoney (akshare) could not be reached "
                                              "(no network connection?)")
    with store.read() as con:
        pd.testing.assert_frame_equal(stored_prices(con, "0700.HK"), before)
        assert con.execute("SELECT start_date, end_date, source FROM price_coverage").fetchall() == cov
        assert con.execute("SELECT symbol, reason_kind FROM price_failures ORDER BY 1").fetchall() == [
            ("0700.HK", "network"), ("3690.HK", "network"), ("^HSI", "network")]


def test_a_silent_server_runs_into_the_deadline(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    release = threading.Event()

    def hangs(**kwargs: Any) -> pd.DataFrame:
        release.wait(10)
        return pd.DataFrame()

    monkeypatch.setattr(akshare, "stock_hk_hist", hangs)
    try:
        report = update_prices(store, source(deadline=0.2), {"0700.HK": JUNE}, today=TODAY)
    finally:
        release.set()
    assert report.failures["0700.HK"].kind == "network"
    assert "did not answer in time" in report.failures["0700.HK"].reason


def test_unknown_codes_and_empty_ranges(monkeypatch: pytest.MonkeyPatch, store: Store, dl: Path) -> None:
    FakeEastmoney(a_shares(dl)).install(monkeypatch)
    report = update_prices(store, source(), {"9999.HK": JUNE, "000999.SS": JUNE, "600000.SS": JUNE,
                                             "NIO": JUNE}, today=TODAY)
    later = update_prices(store, source(), {"601098.SS": (date(2030, 1, 1), date(2030, 1, 31))},
                          today=date(2031, 1, 1))
    kinds = {s: f.kind for s, f in {**report.failures, **later.failures}.items()}
    assert kinds == {"9999.HK": "unknown_symbol", "000999.SS": "unknown_symbol", "600000.SS": "no_data",
                     "601098.SS": "no_data", "NIO": "unknown_symbol"}
    assert report.failures["9999.HK"].reason == ("eastmoney does not know 09999 "
                                                 "(asked akshare's stock_hk_hist('09999'))")
    # stock_zh_a_hist cannot tell an unknown code from an empty range: both are "no prices"
    assert report.failures["600000.SS"].reason == ("eastmoney has no prices for 600000.SS "
                                                   "from 2021-06-01 to 2021-06-30")


def test_unadjusted_prices_without_hfq_are_not_stored(monkeypatch: pytest.MonkeyPatch, store: Store,
                                                      dl: Path) -> None:
    """Half an answer (raw, then a ban on the hfq request) stores nothing: its adjusted close
    would be wrong across the dividend."""
    clock = FakeClock()
    fake = FakeEastmoney(a_shares(dl), clock=clock).install(monkeypatch)
    original = fake.stock_zh_a_hist

    def banned_hfq(**kwargs: Any) -> pd.DataFrame:
        if kwargs.get("adjust") == "hfq":
            raise akstub.ban_error()
        return original(**kwargs)

    monkeypatch.setattr(akshare, "stock_zh_a_hist", banned_hfq)
    report = update_prices(store, source(clock, max_retries=1), {"601098.SS": JUNE}, today=TODAY)
    assert report.failures["601098.SS"].kind == "rate_limited" and report.stored == {}
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM prices").fetchone() == (0,)


# --- into the store, and the reactions ----------------------------------------------------------


def by_hand(closes: pd.Series, actions: dict[pd.Timestamp, float]) -> pd.Series:
    """Daily returns from the unadjusted closes eastmoney sends and the dividends: on an
    ex-date, against the previous close less the dividend."""
    prev = closes.shift(1)
    for day, cash in actions.items():
        if day in prev.index:
            prev[day] -= cash
    return closes / prev - 1


def test_a_share_hk_and_index_histories_give_reactions_as_by_hand(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dl: Path, hist: Path) -> None:
    from dashboard.ingest import ingest_folder
    from dashboard.reactions import reactions_for
    from tests.conftest import write_post

    folder = tmp_path / "posts"
    write_post(folder, "a.md", "中南传媒(601098)：每10股派6.3元。", title="中南传媒分红",
               date="2021-06-24 10:00:00 +0800")
    write_post(folder, "b.md", "腾讯控股(00700.HK)：末期股息1.6港元。", title="腾讯派息",
               date="2021-05-21 10:00:00 +0800")
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, folder)
    cn = akstub.from_download_export(dl / "601098.SS.csv")
    hk = akstub.from_history_export(hist / "0700.HK.csv")
    listings = {"1.601098": akstub.eastmoney_view(cn, 2, lots=True, b0=3.1),
                "116.00700": akstub.eastmoney_view(hk, 3, b0=35.0),
                "1.000001": index_listing(dl / "000001.SS.csv"),
                "100.HSI": index_listing(dl / "^HSI.csv")}
    fake = FakeEastmoney(listings).install(monkeypatch)
    year = (date(2021, 1, 4), date(2021, 12, 31))
    spans = {"601098.SS": year, "0700.HK": year, "000001.SS": year, "^HSI": year}
    report = update_prices(store, source(), spans, today=TODAY)
    assert sorted(report.stored) == sorted(spans) and report.failures == {}
    assert {c["function"] for c in fake.calls} == set(FUNCTIONS)
    with store.read() as con:
        sources = row_sources(con)
        cn_got = reactions_for(con, "601098.SS").iloc[0]
        hk_got = reactions_for(con, "0700.HK").iloc[0]
    assert sources == {s: "akshare" for s in spans}

    for got, listing, sec, bench, day0, ex, tol in (
            (cn_got, listings["1.601098"], cn, listings["1.000001"], "2021-06-24", "2021-06-25",
             0.005 / 8.9),  # eastmoney's half-cent on one hfq close around the ex-date
            (hk_got, listings["116.00700"], hk, listings["100.HSI"], "2021-05-21", "2021-05-24", 1e-5)):
        raw = listing.raw.loc["2021-01-04":"2021-12-31"]
        ret = by_hand(raw["close"], {a.day: a.cash for a in sec.actions})
        rm = bench.raw["close"].pct_change().reindex(raw.index)
        ar = ret - rm
        days = list(raw.index)
        i = days.index(pd.Timestamp(day0))
        assert pd.Timestamp(ex) in days[i - 1:i + 6]  # the windows span the ex-date
        assert got["session"] == pd.Timestamp(day0)
        assert got["day0_return"] == pytest.approx(ret.iloc[i], abs=1e-12)
        assert got["day0_abnormal"] == pytest.approx(ar.iloc[i], abs=1e-9)
        assert got["car_m1_p1"] == pytest.approx(ar.iloc[i - 1:i + 2].sum(), abs=tol)
        assert got["car_0_p5"] == pytest.approx(ar.iloc[i:i + 6].sum(), abs=tol)
        assert got["cr_m1_p1"] == pytest.approx((1 + ret.iloc[i - 1:i + 2]).prod() - 1, abs=tol)
        assert got["cr_0_p5"] == pytest.approx((1 + ret.iloc[i:i + 6]).prod() - 1, abs=tol)
        volume = raw["volume"]
        assert got["volume_ratio"] == pytest.approx(volume.iloc[i] / volume.iloc[i - 20:i].mean())
        # what unadjusted closes would have said instead: off by the dividend
        naive = raw["close"].pct_change() - rm
        assert abs(naive.iloc[i:i + 6].sum() - got["car_0_p5"]) > 10 * tol


# --- the per-market fallback ------------------------------------------------------------------


def yahoo_answering(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path],  # type: ignore[no-untyped-def]
                    errors: dict[str, str] | None = None):
    import yfinance

    from tests.yfstub import FakeDownload, history_frame

    def answer(symbols, start, end, call):  # type: ignore[no-untyped-def]
        frames = {s: history_frame(files[s], str(start), str(end)) for s in symbols if s in files}
        return frames, {s: e for s, e in (errors or {}).items() if s in symbols}

    fake = FakeDownload(answer)
    monkeypatch.setattr(yfinance, "download", fake)
    return fake


def test_fallback_per_market_keeps_who_answered(monkeypatch: pytest.MonkeyPatch, store: Store, dl: Path,
                                                hist: Path) -> None:
    """Mainland and Hong Kong ask eastmoney first and Yahoo for what it lacks; the US asks Yahoo."""
    from dashboard.cli import status_summary

    ak = FakeEastmoney(a_shares(dl)).install(monkeypatch)  # eastmoney lacks 3690.HK here
    yahoo = yahoo_answering(monkeypatch, {"3690.HK": hist / "3690.HK.csv", "AAPL": dl / "AAPL.csv"})
    akshare_source, yahoo_source = source(), YFinanceSource()
    both = FallbackSource({"SH": [akshare_source, yahoo_source], "HK": [akshare_source, yahoo_source],
                           "US": [yahoo_source]})
    dec = (date(2021, 12, 1), date(2021, 12, 31))
    report = update_prices(store, both, {"601098.SS": dec, "3690.HK": dec, "AAPL": dec}, today=TODAY)
    assert report.failures == {}
    assert report.sources == {"601098.SS": "akshare", "3690.HK": "yfinance", "AAPL": "yfinance"}
    assert {c["secid"] for c in ak.calls} == {"1.601098", "116.03690"}  # never asked for AAPL
    assert [sorted(c["tickers"]) for c in yahoo.calls] == [["AAPL"], ["3690.HK"]]  # one per round
    with store.read() as con:
        rows = row_sources(con)
        shown = {r["symbol"]: r["source"] for r in status_summary(con, "Asia/Shanghai")["securities"]}
    assert rows == shown == {"601098.SS": "akshare", "3690.HK": "yfinance", "AAPL": "yfinance"}


def test_when_every_source_fails_both_reasons_are_kept(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    from tests.yfstub import DNS

    FakeEastmoney(errors={"116.03690": [akstub.offline_error()]}).install(monkeypatch)
    yahoo_answering(monkeypatch, {}, {"3690.HK": DNS})
    both = FallbackSource({"HK": [source(), YFinanceSource()]})
    report = update_prices(store, both, {"3690.HK": JUNE}, today=TODAY)
    failure = report.failures["3690.HK"]
    assert failure.kind == "network"
    assert failure.reason == ("eastmoney (akshare) could not be reached (no network connection?); "
                              "Yahoo Finance could not be reached (no network connection?)")


def test_sources_and_a_mixed_history_are_shown(monkeypatch: pytest.MonkeyPatch, store: Store,
                                               hist: Path) -> None:
    """A symbol priced by two sources over the years shows both."""
    from dashboard.prices import coverage_report

    import_csv(store, hist / "0700.HK.csv")
    FakeEastmoney({"116.00700": akstub.eastmoney_view(akstub.from_history_export(hist / "0700.HK.csv"), 3)}
                  ).install(monkeypatch)
    may = {"0700.HK": (date(2021, 5, 1), date(2021, 5, 31))}
    update_prices(store, source(), may, today=TODAY, force=True)
    with store.read() as con:
        report = coverage_report(con).set_index("symbol")
        per_source = dict(con.execute("SELECT source, count(*) FROM prices GROUP BY 1").fetchall())
    assert per_source == {"akshare": 20, "csv:0700.HK.csv": 1323 - 20}
    assert report.loc["0700.HK", "price_source"] == "akshare, csv:0700.HK.csv"


def test_configured_fallback_and_akshare_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.config import DEFAULT_PRICE_SOURCES
    from dashboard.prices import configured_source, fallback

    chosen, notes = configured_source(DEFAULT_PRICE_SOURCES)
    assert [s.name for s in chosen.sources_for("600519.SS")] == ["akshare", "yfinance"]
    assert [s.name for s in chosen.sources_for("3690.HK")] == ["akshare", "yfinance"]
    assert [s.name for s in chosen.sources_for("AAPL")] == ["yfinance"] and notes == []
    assert chosen.sources_for("3690.HK")[1] is chosen.sources_for("AAPL")[0]  # one Yahoo, one throttle
    monkeypatch.setattr(fallback, "akshare_available", lambda: False)
    chosen, notes = configured_source(DEFAULT_PRICE_SOURCES)
    assert [s.name for s in chosen.sources_for("600519.SS")] == ["yfinance"]
    assert notes == ["HK, SH, SZ, BJ prices skip eastmoney: the akshare source needs the akshare package, "
                     "which is not installed: python -m pip install 'akshare>=1.19,<2'"]
    with pytest.raises(ValueError, match="price_sources.HK names an unknown price source 'sina'"):
        configured_source({"HK": ["sina"]})


def test_akshare_missing_is_a_sentence_not_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    import dashboard.prices
    from dashboard.cli import main

    monkeypatch.setitem(sys.modules, "akshare", None)  # import akshare -> ImportError
    failures = AkshareSource().fetch(["600519.SS"], *JUNE).failures
    assert failures["600519.SS"].kind == "error"
    assert failures["600519.SS"].reason.endswith("python -m pip install 'akshare>=1.19,<2'")
    monkeypatch.setattr(dashboard.prices, "akshare_available", lambda: False)
    db = tmp_path / "s.duckdb"
    assert main(["prices", "fetch", "600519.SS", "--source", "akshare", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: the akshare source needs the akshare package, which is not installed: "
                   "python -m pip install 'akshare>=1.19,<2'\n")
    assert not db.exists()  # nothing else happened


def test_price_sources_come_from_dashboard_toml(tmp_path: Path) -> None:
    from dashboard.config import load_settings

    toml = tmp_path / "dashboard.toml"
    toml.write_text('[price_sources]\nHK = ["yfinance"]\nus = ["yfinance", "akshare"]\n')
    s = load_settings({"DASHBOARD_CONFIG": str(toml)})
    assert s.price_sources["HK"] == ["yfinance"] and s.price_sources["US"] == ["yfinance", "akshare"]
    assert s.price_sources["SH"] == ["akshare", "yfinance"]  # the default for the rest


# --- the real thing, offline ----------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_real_akshare_offline_fetch_records_network_and_changes_nothing_else(tmp_path: Path,
                                                                             hist: Path) -> None:
    """No stub: this machine cannot reach eastmoney, and that must read as a network failure,
    quickly, with the store otherwise as it was."""
    import socket

    from tests.test_cli import run

    try:
        socket.create_connection(("push2his.eastmoney.com", 443), timeout=3).close()
        pytest.skip("eastmoney is reachable from here")
    except OSError:
        pass
    db = tmp_path / "s.duckdb"
    assert run("prices", "import", str(hist / "3690.HK.csv"), db=db).returncode == 0

    def snapshot() -> tuple[Any, ...]:
        with Store(db).read() as con:
            return (con.execute("SELECT * FROM prices ORDER BY symbol, date").fetchall(),
                    con.execute("SELECT * FROM price_coverage ORDER BY symbol").fetchall(),
                    con.execute("SELECT * FROM reactions").fetchall())

    before = snapshot()
    out = run("prices", "fetch", "600519.SS", "--source", "akshare", db=db)
    assert out.returncode == 1, out.stderr
    reason = "eastmoney (akshare) could not be reached (no network connection?)"
    assert f"failed   600519.SS: {reason}" in out.stdout
    assert "Traceback" not in out.stderr
    status = run("status", db=db)
    assert f"600519.SS: {reason}" in status.stdout
    assert "(network)" in status.stdout  # the kind, in the price-span column
    assert "csv:3690.HK.csv" in status.stdout  # the source of the rows that were there
    assert snapshot() == before
    with Store(db).read() as con:
        failures = con.execute("SELECT symbol, reason_kind FROM price_failures").fetchall()
    assert failures == [("600519.SS", "network")]
