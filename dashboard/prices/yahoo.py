"""Yahoo Finance through yfinance: batched, explicit about adjustment, retrying rate limits."""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta

import pandas as pd

from dashboard.prices import FetchResult, PriceFailure, normalize

_NETWORK = re.compile(r"resolve host|curl: \(\d+\)|connect|timed? ?out|DNSError|network|SSL", re.I)
_RATE = re.compile(r"rate ?limit|too many requests|YFRateLimitError|\b429\b", re.I)
_UNKNOWN = re.compile(r"no timezone found|symbol may be delisted|YFTzMissingError|quote not found|"
                      r"\b404\b|No data found, symbol", re.I)
_NO_DATA = re.compile(r"no price data found|YFPricesMissingError|data doesn't exist|"
                      r"No data found for this date range", re.I)


def classify(message: str, symbol: str, start: date, end: date) -> PriceFailure:
    """A yfinance error message, as the kind of failure it is and a sentence for the user."""
    if _RATE.search(message):
        return PriceFailure(symbol, "rate_limited",
                            "Yahoo Finance is rate limiting requests; wait a few minutes and retry")
    if _NETWORK.search(message):
        return PriceFailure(symbol, "network",
                            "Yahoo Finance could not be reached (no network connection?)")
    if _UNKNOWN.search(message):
        return PriceFailure(symbol, "unknown_symbol",
                            f"Yahoo Finance does not know the symbol {symbol} "
                            "(mistyped, or delisted)")
    if _NO_DATA.search(message):
        return PriceFailure(symbol, "no_data",
                            f"Yahoo Finance has no prices for {symbol} from {start} to {end}")
    return PriceFailure(symbol, "error", f"Yahoo Finance failed: {message.strip()[:200]}")


class _Capture(logging.Handler):
    """Collects the per-symbol errors yfinance logs (download() reports them no other way)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def reason_for(self, symbol: str) -> str | None:
        found = None
        for msg in self.messages:
            if f"'{symbol}'" in msg or f"{symbol}:" in msg or f'"{symbol}"' in msg:
                found = msg
        return found


@contextmanager
def _capture_yfinance_errors() -> Iterator[_Capture]:
    logger = logging.getLogger("yfinance")
    handler = _Capture()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _per_symbol(frame: pd.DataFrame, symbol: str) -> pd.DataFrame | None:
    """One symbol's columns out of yf.download's (Price, Ticker) MultiIndex frame."""
    if frame is None or frame.empty:
        return None
    if isinstance(frame.columns, pd.MultiIndex):
        names = list(frame.columns.names)
        level = names.index("Ticker") if "Ticker" in names else 1
        if symbol not in frame.columns.get_level_values(level):
            return None
        part = frame.xs(symbol, axis=1, level=level)
    else:
        part = frame
    if "Close" not in part or part["Close"].dropna().empty:
        return None
    return part


class YFinanceSource:
    """Yahoo Finance through yfinance: batched, explicit about adjustment, retrying rate limits."""

    name = "yfinance"

    def __init__(self, batch_size: int = 40, max_retries: int = 3, backoff: float = 5.0,
                 timeout: float = 15.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep

    def _download(self, symbols: list[str], start: date, end: date) -> tuple[pd.DataFrame, _Capture]:
        import yfinance as yf

        with _capture_yfinance_errors() as errors, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yfinance's own deprecation noise under pandas 3
            try:
                frame = yf.download(
                    tickers=symbols, start=start.isoformat(),
                    end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                    interval="1d", auto_adjust=False, actions=False, group_by="column",
                    multi_level_index=True, progress=False, threads=True, timeout=self.timeout,
                )
            except Exception as e:  # yfinance mostly logs, but may raise
                errors.messages.append(f"{symbols}: {type(e).__name__}: {e}")
                frame = pd.DataFrame()
        return frame, errors

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        result = FetchResult()
        pending = list(dict.fromkeys(symbols))
        for attempt in range(self.max_retries + 1):
            limited: list[str] = []
            for i in range(0, len(pending), self.batch_size):
                batch = pending[i:i + self.batch_size]
                frame, errors = self._download(batch, start, end)
                network_down = any(_NETWORK.search(m) for m in errors.messages)
                for symbol in batch:
                    part = _per_symbol(frame, symbol)
                    if part is not None:
                        result.frames[symbol] = normalize(part, symbol)
                        result.failures.pop(symbol, None)
                        continue
                    message = errors.reason_for(symbol) or " ".join(errors.messages) or ""
                    failure = classify(message, symbol, start, end) if message else PriceFailure(
                        symbol, "no_data", f"Yahoo Finance returned no prices for {symbol} "
                                           f"from {start} to {end}")
                    # yfinance's own timezone lookup gives up after two network errors and
                    # then calls every symbol unknown; with the network down, it is the network
                    if network_down and failure.kind in ("unknown_symbol", "no_data"):
                        failure = classify("network", symbol, start, end)
                    result.failures[symbol] = failure
                    if failure.kind == "rate_limited":
                        limited.append(symbol)
            if not limited or attempt == self.max_retries:
                break
            self.sleep(self.backoff * 2**attempt)
            pending = limited
        return result
