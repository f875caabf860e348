"""A stand-in for ``yfinance.download`` that answers with frames shaped exactly like its own.

yfinance 1.x, for daily data with ``group_by="column"``: per-symbol frames are concatenated
with keys (names ``Ticker``, ``Price``), the levels swapped and sorted, so the columns are a
(``Price``, ``Ticker``) MultiIndex even for one symbol; the index is named ``Date``,
``datetime64[s]``, tz-naive (``ignore_tz`` defaults to True for daily data); a symbol that
failed contributes an all-NaN block; errors are only logged, on the ``yfinance`` logger,
as ``['SYM', ...]: message``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

FIELDS_RAW = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
FIELDS_ADJUSTED = ["Open", "High", "Low", "Close", "Volume"]


def history_frame(csv: Path, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """One symbol's frame as yfinance builds it internally, from a real CSV export."""
    df = pd.read_csv(csv)
    idx = pd.to_datetime(df["Date"].str[:10])
    out = df.drop(columns=[c for c in ("Date", "Dividends", "Stock Splits") if c in df])
    if "Adj Close" not in out:
        out["Adj Close"] = out["Close"]
    out.index = pd.DatetimeIndex(idx, name="Date").as_unit("s")
    if start:
        out = out[out.index >= start]
    if end:
        out = out[out.index < end]  # end is exclusive
    return out[FIELDS_RAW]


def empty_block() -> pd.DataFrame:
    """yfinance's utils.empty_df(): what a failed symbol contributes."""
    return pd.DataFrame(columns=FIELDS_RAW, index=pd.DatetimeIndex([], name="Date").as_unit("s"))


def download_frame(per_symbol: dict[str, pd.DataFrame | None], auto_adjust: bool = False,
                   tz: str | None = None) -> pd.DataFrame:
    """Assemble per-symbol frames the way yf.download does (multi.py)."""
    frames = {s.upper(): (f if f is not None else empty_block()) for s, f in per_symbol.items()}
    union = sorted(set().union(*(f.index for f in frames.values())))
    index = pd.DatetimeIndex(union, name="Date").as_unit("s")
    if tz is not None:  # ignore_tz=False, or Ticker.history(): exchange-local, tz-aware
        index = index.tz_localize(tz)
    blocks = {}
    for s, f in frames.items():
        f = f.copy()
        if tz is not None and len(f):
            f.index = f.index.tz_localize(tz)
        f = f.reindex(index)
        if auto_adjust:
            f = f[FIELDS_ADJUSTED]
        blocks[s] = f.astype("float64") if f.isna().all().all() else f
    data = pd.concat(blocks.values(), axis=1, sort=True, keys=blocks.keys(), names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    data = data.sort_index(level=0, axis=1)
    data.index.name = "Date"
    return data


@dataclass
class FakeDownload:
    """Patched in for yfinance.download: records each call and answers from ``answer``."""

    answer: Callable[[list[str], date, date, int], tuple[dict[str, pd.DataFrame | None], dict[str, str]]]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, tickers: Any = None, start: str | None = None, end: str | None = None,
                 **kwargs: Any) -> pd.DataFrame:
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        self.calls.append({"tickers": symbols, "start": start, "end": end, **kwargs})
        frames, errors = self.answer(symbols, date.fromisoformat(start or "1900-01-01"),
                                     date.fromisoformat(end or "2999-01-01"), len(self.calls))
        log = logging.getLogger("yfinance")
        if errors:
            log.error("\n%.f Failed download%s:", len(errors), "s" if len(errors) > 1 else "")
            grouped: dict[str, list[str]] = {}
            for sym, err in errors.items():
                grouped.setdefault(err, []).append(sym)
            for err, syms in grouped.items():
                log.error(f"{syms}: " + err)
        return download_frame({s: frames.get(s) for s in symbols},
                              auto_adjust=kwargs.get("auto_adjust", True))


DNS = ("DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com. "
       "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.')")
NO_TZ = "YFTzMissingError('possibly delisted; no timezone found')"
RATE = "YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"


def no_price_data(start: date, end: date) -> str:
    return f"YFPricesMissingError('possibly delisted; no price data found  (1d {start} -> {end})')"
