"""A stand-in for akshare's eastmoney history functions, answering with frames shaped exactly like
its own (read from akshare 1.19.5; ``test_eastmoney`` checks every stub against the real function
fed the same K-lines through a fake HTTP response).

eastmoney answers ``/api/qt/stock/kline/get`` with ``{"data": {"code", "name", "klines": [...]}}``,
each K-line one comma-separated string (``date,open,close,high,low,volume,amount,amplitude,
pct,change,turnover[,...]``), or ``{"data": null}`` for a security it does not know. akshare:

* ``stock_zh_a_hist``: secid ``1.`` for codes starting with 6, else ``0.``; 11 fields;
  ``{"data": null}`` or no K-lines -> an empty ``pd.DataFrame()``; 日期 as ``datetime.date``
  objects; adds 股票代码; volume (成交量) in lots of 100 shares, int64;
* ``stock_hk_hist``: secid ``116.`` + 5 digits; the whole history, then sliced by date;
  ``{"data": null}`` -> ``TypeError: 'NoneType' object is not subscriptable``; empty -> ``pd.DataFrame()``;
* ``stock_zh_index_daily_em``: ``sh``/``sz``/``bj``/``csi`` + code (anything else -> empty frame);
  8 fields, English column names, the date left a string; ``{"data": null}`` -> ``TypeError``;
* ``index_global_hist_em``: by Chinese name (unknown -> ``KeyError``); 14 fields; no volume;
  ``{"data": null}`` -> ``TypeError``, no K-lines -> ``ValueError`` (length mismatch).

Offline, every one raises ``requests.exceptions.ConnectionError`` (NameResolutionError); a ban
drops the connection (``RemoteDisconnected``) or answers an HTML page (``JSONDecodeError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from typing import Any

import pandas as pd
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, ProtocolError

GLOBAL_SECIDS = {"恒生指数": "100.HSI", "国企指数": "100.HSCEI", "标普500": "100.SPX", "道琼斯": "100.DJIA",
                 "纳斯达克": "100.NDX", "日经225": "100.N225"}
_CN = ["日期", "开盘", "收盘", "最高", "最低", "成交量", "成交额", "振幅", "涨跌幅", "涨跌额", "换手率"]
_NUMERIC = _CN[1:]


# --- eastmoney's K-lines --------------------------------------------------------------------


def klines(frame: pd.DataFrame, decimals: int, fields: int = 11) -> list[str]:
    """K-line strings from a frame of open, high, low, close, volume, amount by date, with
    eastmoney's own change columns (amplitude, pct, change vs the previous close, turnover)."""
    prev = frame["close"].shift(1).fillna(frame["open"])
    price = f"{{:.{decimals}f}}".format
    columns = [
        pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d").to_series(index=frame.index),
        frame["open"].map(price), frame["close"].map(price), frame["high"].map(price),
        frame["low"].map(price), frame["volume"].astype("int64").astype(str),
        frame["amount"].map("{:.1f}".format),
        ((frame["high"] - frame["low"]) / prev * 100).map("{:.2f}".format),
        ((frame["close"] / prev - 1) * 100).map("{:.2f}".format), (frame["close"] - prev).map(price),
    ]
    columns += [pd.Series("0.25", index=frame.index)] + [pd.Series("-", index=frame.index)] * 3
    joined = columns[0].astype(str)
    for c in columns[1:fields]:
        joined = joined + "," + c.astype(str)
    return list(joined)


def body(lines: list[str] | None, code: str = "", name: str = "") -> dict[str, Any]:
    """eastmoney's JSON answer."""
    if lines is None:
        return {"rc": 0, "rt": 17, "svr": 181669437, "lt": 1, "full": 0, "dlmkts": "", "data": None}
    return {"rc": 0, "rt": 17, "data": {"code": code, "market": 1, "name": name, "decimal": 2,
                                        "dktotal": len(lines), "preKPrice": 0.0, "klines": lines}}


# --- akshare's frames, built as akshare 1.19.5 builds them ------------------------------------


def _split(lines: list[str]) -> pd.DataFrame:
    return pd.DataFrame([item.split(",") for item in lines])


def a_share_frame(data: dict[str, Any], symbol: str) -> pd.DataFrame:
    if not (data["data"] and data["data"]["klines"]):
        return pd.DataFrame()
    df = _split(data["data"]["klines"])
    df["股票代码"] = symbol
    df.columns = [*_CN, "股票代码"]
    df["日期"] = pd.to_datetime(df["日期"], errors="coerce").dt.date
    for c in _NUMERIC:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df[["日期", "股票代码", *_NUMERIC]]


def hk_frame(data: dict[str, Any], start_date: str, end_date: str) -> pd.DataFrame:
    df = _split(data["data"]["klines"])  # TypeError when eastmoney sends "data": null
    if df.empty:
        return pd.DataFrame()
    df.columns = _CN
    df.index = pd.to_datetime(df["日期"], errors="coerce")
    df = df[start_date:end_date]
    if df.empty:
        return pd.DataFrame()
    df = df.reset_index(drop=True)
    for c in _NUMERIC:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["日期"] = pd.to_datetime(df["日期"], errors="coerce").dt.date
    return df


def index_frame(data: dict[str, Any]) -> pd.DataFrame:
    df = _split(data["data"]["klines"])
    if df.empty:
        return pd.DataFrame()
    df.columns = ["date", "open", "close", "high", "low", "volume", "amount", "_"]
    df = df[["date", "open", "close", "high", "low", "volume", "amount"]].copy()
    for c in ["open", "close", "high", "low", "volume", "amount"]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def global_frame(data: dict[str, Any]) -> pd.DataFrame:
    df = _split(data["data"]["klines"])
    df["code"] = data["data"]["code"]
    df["name"] = data["data"]["name"]
    df.columns = ["日期", "今开", "最新价", "最高", "最低", "-", "-", "振幅", "-", "-", "-", "-", "-", "-",
                  "代码", "名称"]  # ValueError (length mismatch) when there are no K-lines
    df = df[["日期", "代码", "名称", "今开", "最新价", "最高", "最低", "振幅"]].copy()
    df["日期"] = pd.to_datetime(df["日期"], errors="coerce").dt.date
    for c in ["今开", "最新价", "最高", "最低", "振幅"]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


# --- the stand-in -----------------------------------------------------------------------------


@dataclass
class Listing:
    """One security as eastmoney holds it: its K-lines unadjusted and 后复权 (hfq)."""

    raw: pd.DataFrame  # open, high, low, close, volume, amount by date
    hfq: pd.DataFrame | None = None
    decimals: int = 2
    name: str = ""
    _lines: dict[tuple[bool, int], list[str]] = field(default_factory=dict, repr=False)

    def lines(self, adjust: str, fields: int = 11) -> list[str]:
        key = (adjust == "hfq" and self.hfq is not None, fields)
        if key not in self._lines:
            self._lines[key] = klines(self.hfq if key[0] else self.raw, self.decimals, fields)  # type: ignore[arg-type]
        return list(self._lines[key])


def offline_error(host: str = "push2his.eastmoney.com") -> requests.exceptions.ConnectionError:
    """What requests raises (through akshare) when DNS cannot resolve eastmoney."""
    reason = NameResolutionError(host, None, OSError(-3, "Temporary failure in name resolution"))  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/api/qt/stock/kline/get", reason))  # type: ignore[arg-type]


def ban_error() -> requests.exceptions.ConnectionError:
    """What requests raises when eastmoney drops a client that asks too often."""
    dropped = RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", dropped))


def html_answer_error() -> requests.exceptions.JSONDecodeError:
    """What ``r.json()`` raises when eastmoney answers an HTML or empty page."""
    return requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0)


@dataclass
class FakeEastmoney:
    """Patched in for akshare's history functions (``install``); answers from ``listings`` by
    eastmoney secid (``1.600519``, ``116.00700``, ``1.000001``, ``100.HSI``). ``errors`` maps a
    secid to exceptions raised on its successive calls, before it answers."""

    listings: dict[str, Listing] = field(default_factory=dict)
    errors: dict[str, list[BaseException]] = field(default_factory=dict)
    clock: Callable[[], float] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def _answer(self, function: str, secid: str, adjust: str = "", fields: int = 11,
                **kw: Any) -> dict[str, Any]:
        self.calls.append({"function": function, "secid": secid, "adjust": adjust,
                           "at": self.clock() if self.clock else None, **kw})
        pending = self.errors.get(secid)
        if pending:
            raise pending.pop(0)
        listing = self.listings.get(secid)
        if listing is None:
            return body(None)
        return body(listing.lines(adjust, fields), secid.split(".")[1], listing.name)

    def stock_zh_a_hist(self, symbol: str = "000001", period: str = "daily", start_date: str = "19700101",
                        end_date: str = "20500101", adjust: str = "",
                        timeout: float | None = None) -> pd.DataFrame:
        secid = f"{1 if symbol.startswith('6') else 0}.{symbol}"
        data = self._answer("stock_zh_a_hist", secid, adjust, start_date=start_date, end_date=end_date,
                            timeout=timeout)
        if data["data"]:  # eastmoney filters by beg/end itself
            data["data"]["klines"] = [k for k in data["data"]["klines"]
                                      if start_date <= k[:10].replace("-", "") <= end_date]
        return a_share_frame(data, symbol)

    def stock_hk_hist(self, symbol: str = "00593", period: str = "daily", start_date: str = "19700101",
                      end_date: str = "22220101", adjust: str = "") -> pd.DataFrame:
        data = self._answer("stock_hk_hist", f"116.{symbol}", adjust, start_date=start_date,
                            end_date=end_date)
        return hk_frame(data, start_date, end_date)

    def stock_zh_index_daily_em(self, symbol: str = "csi931151", start_date: str = "19900101",
                                end_date: str = "20500101") -> pd.DataFrame:
        markets = {"sz": "0", "bj": "0", "sh": "1", "csi": "2"}
        prefix = next((p for p in ("sz", "bj", "sh", "csi") if p in symbol), None)
        if prefix is None:
            return pd.DataFrame()
        secid = f"{markets[prefix]}.{symbol.replace(prefix, '')}"
        data = self._answer("stock_zh_index_daily_em", secid, fields=8, start_date=start_date,
                            end_date=end_date)
        if data["data"]:
            data["data"]["klines"] = [k for k in data["data"]["klines"]
                                      if start_date <= k[:10].replace("-", "") <= end_date]
        return index_frame(data)

    def index_global_hist_em(self, symbol: str = "美元指数") -> pd.DataFrame:
        secid = GLOBAL_SECIDS[symbol]  # KeyError for a name akshare's map lacks
        return global_frame(self._answer("index_global_hist_em", secid, fields=14))

    def install(self, monkeypatch: Any) -> FakeEastmoney:
        import akshare

        for name in ("stock_zh_a_hist", "stock_hk_hist", "stock_zh_index_daily_em", "index_global_hist_em"):
            monkeypatch.setattr(akshare, name, getattr(self, name))
        return self

    def asked(self, function: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.calls if function is None or c["function"] == function]


# --- eastmoney's view of a real security, from a real yfinance export ---------------------------


@dataclass(frozen=True)
class Action:
    """A corporate action as the exchange applies it on its ex-date: cash per share (in the
    prices of the day) and a split ratio (3.0: one share became three)."""

    day: pd.Timestamp
    cash: float = 0.0
    split: float = 1.0


@dataclass
class RealSecurity:
    raw: pd.DataFrame  # unadjusted open, high, low, close, volume (shares), amount
    adjusted: pd.Series  # Yahoo's adjusted close, the reference
    actions: list[Action]


def from_download_export(path: Any) -> RealSecurity:
    """``yf.download`` shape (Close unadjusted for dividends, Adj Close): the dividends are
    where Adj Close / Close steps."""
    df = pd.read_csv(path, index_col="Date", parse_dates=True)
    ratio = df["Adj Close"] / df["Close"]
    step = ratio.shift(1) / ratio  # Yahoo's multiplier 1 - D / previous close, on ex-dates
    actions = [Action(day, cash=float(df["Close"].shift(1)[day] * (1 - step[day])))
               for day in df.index[(step - 1).abs() > 1e-6]]
    raw = df[["Open", "High", "Low", "Close", "Volume"]].rename(columns=str.lower)
    return RealSecurity(raw.assign(amount=raw["volume"] * raw["close"]), df["Adj Close"], actions)


def from_history_export(path: Any) -> RealSecurity:
    """``Ticker.history()`` shape (every price adjusted; Dividends, Stock Splits): the raw prices
    undone from Yahoo's multipliers (1 - D / previous close) and split ratios."""
    df = pd.read_csv(path)
    df.index = pd.DatetimeIndex(pd.to_datetime(df["Date"].str[:10]), name="Date")
    adj = df["Close"].to_numpy()
    cash, splits = df["Dividends"].to_numpy(), df["Stock Splits"].to_numpy()
    n = len(df)
    mult, later_splits = [1.0] * n, [1.0] * n  # Π over actions after each day
    for t in range(n - 2, -1, -1):
        m = 1.0 / (1.0 + cash[t + 1] * mult[t + 1] / adj[t]) if cash[t + 1] else 1.0
        mult[t] = mult[t + 1] * m
        later_splits[t] = later_splits[t + 1] * (splits[t + 1] or 1.0)
    undo = pd.Series(later_splits, index=df.index) / pd.Series(mult, index=df.index)
    raw = df[["Open", "High", "Low", "Close"]].rename(columns=str.lower).mul(undo, axis=0)
    volume = df["Volume"] / pd.Series(later_splits, index=df.index)
    actions = [Action(day, cash=float(cash[t] * later_splits[t]), split=float(splits[t] or 1.0))
               for t, day in enumerate(df.index) if cash[t] or splits[t]]
    return RealSecurity(raw.assign(volume=volume, amount=volume * raw["close"]), df["Close"], actions)


def eastmoney_view(sec: RealSecurity, decimals: int, model: str = "additive", a0: float = 1.0,
                   b0: float = 0.0, lots: bool = False) -> Listing:
    """The K-lines eastmoney would serve: raw prices rounded to its decimals (volume in lots of
    100 for A-shares), and 后复权 as trading software computes it: ``additive`` adds each
    dividend back (hfq = a·raw + b; b += a·cash, a *= split), ``multiplicative`` scales by the
    running factor. ``a0``, ``b0``: the state the actions before the export left."""
    raw = sec.raw.copy()
    raw[["open", "high", "low", "close"]] = raw[["open", "high", "low", "close"]].round(decimals)
    by_day = {a.day: a for a in sec.actions}
    a, b = a0, b0
    slopes, offsets = [], []
    prev_close = None
    for day, close in raw["close"].items():
        act = by_day.get(day)
        if act is not None and prev_close is not None:
            if model == "additive":
                b += a * act.cash
                a *= act.split
            else:  # the factor grows by previous close over the ex-reference price
                a *= prev_close / ((prev_close - act.cash) / act.split)
        slopes.append(a)
        offsets.append(b)
        prev_close = close
    slope, offset = pd.Series(slopes, index=raw.index), pd.Series(offsets, index=raw.index)
    hfq = raw.copy()
    for c in ("open", "high", "low", "close"):
        hfq[c] = (raw[c] * slope + offset).round(decimals)
    if lots:
        for f in (raw, hfq):
            f["volume"] = (f["volume"] / 100).round()
    return Listing(raw, hfq, decimals)
