"""Daily prices: one small interface, several sources, cached in the store.

A source answers ``fetch(symbols, start, end)`` (``end`` inclusive) with a frame per symbol
that it could price (trading date, open, high, low, close, adj_close, volume) and a
:class:`PriceFailure` for each one it could not, with the reason in plain words. A failed
fetch never deletes or overwrites stored rows; an empty answer is a failure, never "no
prices".

``yahoo`` (yfinance), ``eastmoney`` (akshare, optional) and ``csvfiles`` (yfinance CSV exports)
are the sources, and ``fallback`` tries them in order per market; ``cache`` keeps what they
answer in the store and asks them only for what it lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from dashboard.markets import info_for

COLUMNS = ["open", "high", "low", "close", "adj_close", "volume"]
FailureKind = Literal["network", "rate_limited", "unknown_symbol", "no_data", "bad_file", "error"]


@dataclass(frozen=True, slots=True)
class PriceFailure:
    symbol: str
    kind: FailureKind
    reason: str  # plain words, for the user


@dataclass
class FetchResult:
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    failures: dict[str, PriceFailure] = field(default_factory=dict)
    # symbol -> the source that answered, where it is not the one asked (a fallback's members)
    sources: dict[str, str] = field(default_factory=dict)


class PriceSource(Protocol):
    name: str

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult: ...


def normalize(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """A source's daily frame as trading dates (in the exchange's zone) and our columns."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
    if "adj_close" not in frame:
        frame = frame.assign(adj_close=frame["close"])
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_convert(info_for(symbol).timezone).tz_localize(None)
    out = frame[COLUMNS].astype("float64")
    out.index = pd.Index(index.normalize().date, name="date")
    return out[out["close"].notna()].sort_index()


EARLIEST_PRICE = date(1970, 1, 1)  # price rows before this, or after tomorrow, are refused


def impossible_rows(frame: pd.DataFrame, today: date | None = None) -> pd.Series:
    """Why each row of a normalized frame cannot be a day's trading, or None where it can:
    prices that are not positive and finite, a volume that is negative or infinite, a high
    below the low, a date outside 1970 … tomorrow, or a weekend (no supported exchange trades
    then)."""
    latest = (today or date.today()) + timedelta(days=1)
    days = pd.DatetimeIndex(pd.to_datetime(pd.Index(frame.index), errors="coerce"))
    prices = frame[["open", "high", "low", "close", "adj_close"]].to_numpy(dtype="float64")
    volume = frame["volume"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        bad_price = ((prices <= 0) | np.isinf(prices)).any(axis=1) | np.isnan(prices[:, 3])
        bad_volume = (volume < 0) | np.isinf(volume)
        inverted = frame["high"].to_numpy() < frame["low"].to_numpy()
    out_of_range = days.isna() | (days < pd.Timestamp(EARLIEST_PRICE)) | (days > pd.Timestamp(latest))
    weekend = days.day_of_week >= 5
    reasons = np.select(
        [bad_price, bad_volume, inverted, out_of_range, weekend],
        ["a price that is not a positive finite number", "a negative or infinite volume",
         "high below low", f"a date outside {EARLIEST_PRICE} … {latest}", "a weekend date"],
        default="")
    return pd.Series(np.where(reasons == "", None, reasons), index=frame.index, dtype=object)


def drop_impossible(frame: pd.DataFrame, symbol: str) -> tuple[pd.DataFrame, str | None]:
    """A source's frame without its impossible rows, and a sentence about what was dropped."""
    why = impossible_rows(frame)
    bad = why.notna()
    if not bad.any():
        return frame, None
    first = why[bad].index[0]
    return frame[~bad.to_numpy()], (f"{symbol}: dropped {int(bad.sum())} impossible rows "
                                    f"(first {first}: {why[bad].iloc[0]})")




from dashboard.prices.cache import (  # noqa: E402 - the cache builds on the interface above
    Coverage,
    FetchReport,
    PriceWrite,
    coverage,
    coverage_report,
    default_spans,
    ensure_securities,
    extend_coverage,
    import_csv,
    import_csvs,
    missing_range,
    record_failure,
    stored_prices,
    update_prices,
    write_many_prices,
    write_prices,
)
from dashboard.prices.csvfiles import CsvFolderSource, PriceFileError, read_price_csv  # noqa: E402
from dashboard.prices.eastmoney import AkshareSource, akshare_available  # noqa: E402
from dashboard.prices.fallback import (  # noqa: E402
    SOURCE_NAMES,
    FallbackSource,
    configured_source,
    make_source,
)
from dashboard.prices.yahoo import YFinanceSource, classify  # noqa: E402

__all__ = [
    "COLUMNS", "EARLIEST_PRICE", "SOURCE_NAMES", "AkshareSource", "Coverage", "CsvFolderSource",
    "FailureKind", "FallbackSource", "FetchReport", "FetchResult", "PriceFailure", "PriceFileError",
    "PriceSource", "PriceWrite", "YFinanceSource", "akshare_available", "classify", "configured_source",
    "coverage", "coverage_report", "default_spans", "drop_impossible", "ensure_securities",
    "extend_coverage", "import_csv", "import_csvs", "impossible_rows", "make_source", "missing_range",
    "normalize", "read_price_csv", "record_failure", "stored_prices", "update_prices",
    "write_many_prices", "write_prices",
]
