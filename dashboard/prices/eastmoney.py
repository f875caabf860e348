"""Eastmoney's daily K-lines through akshare: A-shares, Hong Kong shares and their indices.

The posts come from eastmoney, whose K-line service is often reachable where Yahoo Finance is
not (and has Shenzhen and Beijing listings Yahoo is thin on). akshare (MIT, token-free) wraps it.
It is optional: imported only when this source is asked, installed with ``INSTALL``.

What is asked, per Yahoo symbol (read from akshare 1.19.5's source):

* A-shares (``600519.SS``, ``000858.SZ``, ``830799.BJ``): ``stock_zh_a_hist(code)``, unadjusted
  and 后复权 (``adjust="hfq"``);
* Hong Kong shares (``3690.HK``): ``stock_hk_hist("03690")``, the same two ways;
* mainland indices (``000001.SS``, ``000300.SS``, ``399001.SZ``): ``stock_zh_index_daily_em
  ("sh000300")``: one request naming the exchange, where ``index_zh_a_hist`` first pages through
  eastmoney's whole index list to guess it;
* Hang Seng, HSCEI and a few world indices (``^HSI``): ``index_global_hist_em("恒生指数")``.

Stored: the unadjusted open/high/low/close, the volume in shares (A-share K-lines count lots of
100), and an adjusted close in Yahoo's convention (see :func:`adjusted_close`).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd

from dashboard.prices import FailureKind, FetchResult, PriceFailure, normalize
from dashboard.securities import parse_symbol

TESTED_VERSION = "1.19.5"
INSTALL = "python -m pip install 'akshare>=1.19,<2'"
MISSING = f"the akshare source needs the akshare package, which is not installed: {INSTALL}"
LATEST = "20500101"  # eastmoney's "until today"

# index_global_hist_em's names (akshare.index.cons.index_global_em_symbol_map) by Yahoo symbol
GLOBAL_INDEX_NAMES: dict[str, str] = {
    "^HSI": "恒生指数",
    "^HSCE": "国企指数",
    "^GSPC": "标普500",
    "^SPX": "标普500",
    "^DJI": "道琼斯",
    "^NDX": "纳斯达克",  # its code is NDX: the Nasdaq-100, not the composite (^IXIC)
    "^N225": "日经225",
}

# column names of each function's frame -> ours
_CN = {"日期": "date", "开盘": "open", "最高": "high", "最低": "low", "收盘": "close", "成交量": "volume",
       "成交额": "amount"}
_GLOBAL = {"日期": "date", "今开": "open", "最高": "high", "最低": "low", "最新价": "close"}
_EN = {"date": "date", "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
       "amount": "amount"}
_COLUMNS = {"stock_zh_a_hist": _CN, "stock_hk_hist": _CN, "stock_zh_index_daily_em": _EN,
            "index_global_hist_em": _GLOBAL}
_PRICES = ["open", "high", "low", "close"]


class _Failed(Exception):
    """Why one symbol could not be priced: a failure kind and a sentence."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


class AkshareMissing(RuntimeError):
    """akshare is not installed; the message says how to install it."""


def akshare_available() -> bool:
    """Whether akshare can be imported, without importing it (that takes a second or two)."""
    try:
        return importlib.util.find_spec("akshare") is not None
    except (ImportError, ValueError):
        return False


def _akshare() -> ModuleType:
    try:
        return importlib.import_module("akshare")
    except ImportError as e:
        raise AkshareMissing(MISSING) from e


@dataclass(frozen=True, slots=True)
class AkshareRequest:
    """What to ask akshare for one security."""

    function: str
    symbol: str  # the function's own symbol argument
    kind: Literal["stock", "index"]

    @property
    def call(self) -> str:
        return f"{self.function}({self.symbol!r})"


def request_for(symbol: str) -> AkshareRequest | PriceFailure:
    """The akshare call for a Yahoo symbol, or why akshare cannot price it."""
    if symbol in GLOBAL_INDEX_NAMES:
        return AkshareRequest("index_global_hist_em", GLOBAL_INDEX_NAMES[symbol], "index")
    sec = parse_symbol(symbol)
    if sec is not None and sec.market == "HK" and sec.kind == "stock":
        return AkshareRequest("stock_hk_hist", sec.code, "stock")
    if sec is not None and sec.market in ("SH", "SZ", "BJ"):
        if sec.kind == "index":
            return AkshareRequest("stock_zh_index_daily_em", f"{sec.market.lower()}{sec.code}", "index")
        if sec.market == "SH" and not sec.code.startswith("6"):
            # stock_zh_a_hist sends every code not starting with 6 to Shenzhen's market (0.)
            return PriceFailure(symbol, "unknown_symbol",
                                f"the akshare source reads Shanghai shares (codes 6xxxxx) only; "
                                f"{symbol} is a fund, bond or B share: ask Yahoo Finance for it")
        return AkshareRequest("stock_zh_a_hist", sec.code, "stock")
    return PriceFailure(symbol, "unknown_symbol",
                        f"the akshare source reads mainland and Hong Kong shares, mainland indices and "
                        f"the Hang Seng indices, not {symbol}: ask Yahoo Finance for it")


# --- adjustment ---------------------------------------------------------------------------


def _tick(values: np.ndarray) -> float:
    """The step prices are quoted in: 0.01 for A-shares, 0.001 for Hong Kong (0 if unrounded)."""
    v = np.abs(values[np.isfinite(values)])
    for decimals in range(5):
        scaled = v * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, scaled)):
            return 10.0**-decimals
    return 0.0


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line y = a x + b through the points; its largest residual."""
    mx, my = x.mean(), y.mean()
    vx = ((x - mx) ** 2).sum()
    a = float(((x - mx) * (y - my)).sum() / vx) if vx > 1e-12 * max(1.0, mx * mx) * x.size else 0.0
    b = float(my - a * mx)
    return a, b, float(np.abs(y - a * x - b).max())


def _best_split(x: np.ndarray, y: np.ndarray) -> int:
    """The day boundary (1 … days-1) that best splits the days into two lines (least squares)."""
    x, y = x - x.mean(), y - y.mean()  # centred, so the running sums below keep their precision
    per_day = np.stack([np.full(len(x), x.shape[1], dtype=float), x.sum(1), y.sum(1), (x * x).sum(1),
                        (x * y).sum(1), (y * y).sum(1)])
    cum = np.cumsum(per_day, axis=1)
    left, right = cum[:, :-1], cum[:, -1:] - cum[:, :-1]

    def sse(s: np.ndarray) -> np.ndarray:
        n, sx, sy, sxx, sxy, syy = s
        vx, vy, cxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(vx > 1e-12, vy - cxy * cxy / vx, vy)

    return int(np.argmin(sse(left) + sse(right))) + 1


def _regime_starts(x: np.ndarray, y: np.ndarray, tol: Callable[[float], float]) -> list[int]:
    """Days where the line from raw to hfq prices changes: binary segmentation until every
    stretch of days lies on one line within the rounding, then neighbours that still share a
    line merged again (a split can fall between two actions, not on one)."""

    def fits(i: int, j: int) -> bool:
        a, _, worst = _fit(x[i:j].ravel(), y[i:j].ravel())
        return worst <= tol(a)

    starts: list[int] = []
    todo = [(0, len(x))]
    while todo:
        i, j = todo.pop()
        if j - i < 2 or fits(i, j):
            continue
        k = i + _best_split(x[i:j], y[i:j])
        starts.append(k)
        todo += [(i, k), (k, j)]
    bounds = [0, *sorted(starts), len(x)]
    k = 1
    while k < len(bounds) - 1:
        if fits(bounds[k - 1], bounds[k + 1]):
            del bounds[k]
        else:
            k += 1
    return bounds[1:-1]


class AdjustmentError(ValueError):
    """The 后复权 series cannot be read as dividends and splits."""


def action_factors(raw: pd.DataFrame, hfq: pd.DataFrame) -> pd.Series:
    """Per day, the factor of the corporate action that took effect that day (1 on most days),
    as Yahoo's multiplier: the ex-reference price over the previous raw close."""
    both = raw[_PRICES].join(hfq[_PRICES].add_suffix("_h"), how="inner").dropna()
    factors = pd.Series(1.0, index=raw.index)
    if len(both) < 2:
        return factors
    x = both[_PRICES].to_numpy(dtype=float)
    y = both[[c + "_h" for c in _PRICES]].to_numpy(dtype=float)
    tick_x, tick_y = _tick(x), _tick(y)
    scale = 1e-9 * float(np.abs(y).max())

    def tol(a: float) -> float:  # raw prices are exact ticks; hfq ones rounded to theirs
        return tick_y + abs(a) * tick_x / 2 + scale

    starts = _regime_starts(x, y, tol)
    if len(starts) > max(3, len(x) // 20):  # real actions come a few times a year
        raise AdjustmentError(f"its 后复权 prices do not move with its unadjusted ones as dividends "
                              f"and splits would ({len(starts)} breaks in {len(x)} days)")
    bounds = [0, *starts, len(x)]
    lines: list[tuple[float, float] | None] = []
    for i, j in zip(bounds, bounds[1:], strict=False):
        a, b, _ = _fit(x[i:j].ravel(), y[i:j].ravel())
        determined = np.ptp(x[i:j]) >= 10 * max(tick_x, 1e-9 * float(np.abs(x).max()))
        lines.append((a, b) if determined and a > 0 else None)
    close, close_h = x[:, 3], y[:, 3]
    for k, start in enumerate(starts, start=1):
        line = lines[k]
        if line is None:  # a day or two too flat to give a slope: the neighbours' slope
            near = [lines[m] for m in (k + 1, k - 1) if 0 <= m < len(lines) and lines[m] is not None]
            if not near:
                continue
            a = near[0][0]  # type: ignore[index]
            seg = slice(bounds[k], bounds[k + 1])
            line = (a, float((y[seg] - a * x[seg]).mean()))
        a, b = line
        # yesterday's hfq close, in today's raw terms: the ex-reference price
        f = (close_h[start - 1] - b) / a / close[start - 1]
        if np.isfinite(f) and f > 0:
            factors[both.index[start]] = float(f)
    return factors


def adjusted_close(raw: pd.DataFrame, hfq: pd.DataFrame) -> pd.Series:
    """An adjusted close comparable to Yahoo's: the raw close times the factors of every
    corporate action after that day (so the last day's adjusted close is its close).

    eastmoney's 后复权 is not a factor: like trading software it adds dividends back to the
    price (``hfq = a·raw + b``, ``b`` growing with each dividend, ``a`` with each bonus issue
    or split), so its daily returns are damped and its 前复权 twin goes negative on long
    histories. Between two actions every hfq price lies on one such line; at an action the
    line changes overnight. The raw price that yesterday's hfq close stands for on today's
    line is the ex-reference price; over yesterday's raw close it is the action's factor.
    A multiplicative hfq (``b = 0``) gives the same factors.
    """
    factors = action_factors(raw, hfq)
    after = factors[::-1].cumprod()[::-1].shift(-1, fill_value=1.0)
    return raw["close"] * after


def _in_shares(frame: pd.DataFrame) -> pd.Series:
    """Volume in shares: A-share K-lines count lots of 100 (成交额 / 成交量 is 100 times a price)."""
    volume = frame["volume"]
    if "amount" not in frame:
        return volume
    ok = (volume > 0) & (frame["amount"] > 0) & (frame["close"] > 0)
    if not ok.any():
        return volume
    per_unit = float((frame["amount"][ok] / (volume[ok] * frame["close"][ok])).median())
    return volume * 100 if 30 <= per_unit <= 300 else volume


def _frame(df: pd.DataFrame, function: str) -> pd.DataFrame:
    """akshare's frame as ours: a DatetimeIndex and open, high, low, close, volume (, amount)."""
    names = _COLUMNS[function]
    required = ["date", *_PRICES]
    have = {ours: theirs for theirs, ours in names.items() if theirs in df.columns}
    missing = [c for c in required if c not in have]
    if missing:
        raise _Failed("error", f"akshare's {function} answered without the columns "
                               f"{', '.join(k for k, v in names.items() if v in missing)} (a changed "
                               f"akshare? the source was tested with {TESTED_VERSION})")
    out = pd.DataFrame({ours: pd.to_numeric(df[theirs], errors="coerce") for ours, theirs in have.items()
                        if ours != "date"})
    out.index = pd.DatetimeIndex(pd.to_datetime(df[have["date"]].astype(str), errors="coerce"), name="Date")
    if "volume" not in out:
        out["volume"] = np.nan  # index_global_hist_em has none
    out = out[out.index.notna()]
    return out[~out.index.duplicated(keep="last")].sort_index()


# --- talking to eastmoney -----------------------------------------------------------------


_BANNED = ("RemoteDisconnected", "Connection aborted", "reset by peer", "ConnectionResetError",
           "Remote end closed")


def classify_error(e: BaseException, request: AkshareRequest) -> tuple[FailureKind, str]:
    """An exception from an akshare call, as the kind of failure it is and a sentence."""
    import requests

    message = f"{type(e).__name__}: {e}"
    if isinstance(e, requests.exceptions.JSONDecodeError | json.JSONDecodeError):
        # eastmoney answers a ban with an empty or HTML page where JSON was expected
        return "rate_limited", ("eastmoney answered without prices (it blocks clients that ask too "
                                "often); wait a few minutes and retry")
    if isinstance(e, requests.exceptions.ConnectionError) and any(b in str(e) for b in _BANNED):
        return "rate_limited", ("eastmoney closed the connection (it blocks clients that ask too "
                                "often); wait a few minutes and retry")
    if isinstance(e, TimeoutError | requests.exceptions.Timeout):
        return "network", "eastmoney (akshare) did not answer in time (no network connection?)"
    if isinstance(e, requests.exceptions.RequestException | OSError):
        return "network", "eastmoney (akshare) could not be reached (no network connection?)"
    if request.function == "index_global_hist_em" and "Length mismatch" in str(e):
        return "no_data", f"eastmoney sent no prices for {request.symbol}"  # how it says "none"
    if isinstance(e, TypeError) and "NoneType" in str(e) and "subscriptable" in str(e):
        # akshare reads data_json["data"]["klines"]; eastmoney sends "data": null for codes it lacks
        return "unknown_symbol", f"eastmoney does not know {request.symbol} (asked akshare's {request.call})"
    return "error", f"eastmoney (akshare's {request.call}) failed: {message.strip()[:200]}"


def _with_deadline(fn: Callable[..., Any], kwargs: dict[str, Any], seconds: float) -> Any:
    """fn(**kwargs), or TimeoutError after ``seconds``: not every akshare function takes a
    timeout, and a silently dropped connection would otherwise hang for minutes."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(**kwargs)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=run, name="akshare-request", daemon=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # akshare's own deprecation noise under pandas 3
        worker.start()
        worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class AkshareSource:
    """Daily prices from eastmoney through akshare, politely: at most one request every
    ``min_interval`` seconds, rate limits and bans retried with exponential backoff up to
    ``max_retries`` times, and no more requests once eastmoney is unreachable or refusing."""

    min_interval: float = 1.0
    max_retries: int = 3
    backoff: float = 5.0
    timeout: float = 15.0  # per HTTP request, where akshare takes one
    deadline: float = 30.0  # per akshare call, whatever it does inside
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    name: str = field(default="akshare", init=False)
    _last: float | None = field(default=None, init=False, repr=False)

    def _throttle(self) -> None:
        if self._last is not None:
            wait = self._last + self.min_interval - self.clock()
            if wait > 0:
                self.sleep(wait)
        self._last = self.clock()

    def _ask(self, ak: ModuleType, request: AkshareRequest, **kwargs: Any) -> pd.DataFrame:
        fn = getattr(ak, request.function)
        if request.function == "stock_zh_a_hist":
            kwargs["timeout"] = self.timeout
        for attempt in range(self.max_retries + 1):
            self._throttle()
            try:
                answer = _with_deadline(fn, {"symbol": request.symbol, **kwargs}, self.deadline)
            except Exception as e:
                kind, reason = classify_error(e, request)
                if kind == "rate_limited" and attempt < self.max_retries:
                    self.sleep(self.backoff * 2**attempt)
                    continue
                raise _Failed(kind, reason) from e
            if not isinstance(answer, pd.DataFrame):
                raise _Failed("error", f"akshare's {request.call} answered {type(answer).__name__}, "
                                       "not a table")
            return answer
        raise AssertionError("unreachable")

    def history(self, ak: ModuleType, request: AkshareRequest, start: date, end: date) -> pd.DataFrame:
        """Unadjusted prices and the adjusted close from ``start``: to ``end`` for indices, to the
        latest day for shares (their adjusted close is anchored there, as Yahoo's is)."""
        since = f"{start:%Y%m%d}"
        if request.function == "index_global_hist_em":
            frame = _frame_or_empty(self._ask(ak, request), request.function)
            return frame[frame.index >= pd.Timestamp(start)].assign(adj_close=lambda f: f["close"])
        if request.kind == "index":
            frame = _frame_or_empty(self._ask(ak, request, start_date=since, end_date=f"{end:%Y%m%d}"),
                                    request.function)
            return frame.assign(adj_close=frame["close"])
        raw = _frame_or_empty(self._ask(ak, request, period="daily", start_date=since, end_date=LATEST,
                                        adjust=""), request.function)
        if raw.empty:
            return raw.assign(adj_close=raw["close"])
        hfq = _frame_or_empty(self._ask(ak, request, period="daily", start_date=since, end_date=LATEST,
                                        adjust="hfq"), request.function)
        if hfq.empty:
            raise _Failed("error", f"eastmoney sent unadjusted prices but no 后复权 ones for "
                                   f"{request.symbol}, so dividends and splits cannot be allowed for")
        try:
            adj_close = adjusted_close(raw, hfq)
        except AdjustmentError as e:
            raise _Failed("error", f"eastmoney's prices for {request.symbol} cannot be adjusted: {e}; "
                                   "nothing stored") from e
        return raw.assign(volume=_in_shares(raw), adj_close=adj_close)

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        result = FetchResult()
        try:
            ak = _akshare()
        except AkshareMissing as e:
            for symbol in dict.fromkeys(symbols):
                result.failures[symbol] = PriceFailure(symbol, "error", str(e))
            return result
        stopped: _Failed | None = None  # eastmoney unreachable or refusing: ask no more
        for symbol in dict.fromkeys(symbols):
            request = request_for(symbol)
            if isinstance(request, PriceFailure):
                result.failures[symbol] = request
                continue
            if stopped is not None:
                result.failures[symbol] = PriceFailure(symbol, stopped.kind, stopped.reason)
                continue
            try:
                frame = self.history(ak, request, start, end)
            except _Failed as e:
                result.failures[symbol] = PriceFailure(symbol, e.kind, e.reason)
                if e.kind in ("network", "rate_limited"):
                    stopped = e
                continue
            frame = frame[(frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))]
            if frame.empty or frame["close"].dropna().empty:
                result.failures[symbol] = PriceFailure(
                    symbol, "no_data", f"eastmoney has no prices for {symbol} from {start} to {end}")
                continue
            result.frames[symbol] = normalize(frame, symbol)
        return result


def _frame_or_empty(df: pd.DataFrame, function: str) -> pd.DataFrame:
    if df.empty:  # akshare's answer for an empty range, and for some unknown codes
        return pd.DataFrame(columns=["open", "high", "low", "close", "volume"],
                            index=pd.DatetimeIndex([], name="Date"), dtype=float)
    return _frame(df, function)
