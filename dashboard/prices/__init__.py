"""Daily prices: one small interface, several sources, cached in the store.

A source answers ``fetch(symbols, start, end)`` (``end`` inclusive) with a frame per symbol
that it could price (trading date, open, high, low, close, adj_close, volume) and a
:class:`PriceFailure` for each one it could not, with the reason in plain words. A failed
fetch never deletes or overwrites stored rows; an empty answer is a failure, never "no
prices".

``yahoo`` (yfinance) and ``csvfiles`` (yfinance CSV exports) are the sources; ``cache``
keeps what they answer in the store and asks them only for what it lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

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




from dashboard.prices.cache import (  # noqa: E402 - the cache builds on the interface above
    Coverage,
    FetchReport,
    coverage,
    coverage_report,
    default_spans,
    ensure_securities,
    extend_coverage,
    import_csv,
    missing_range,
    record_failure,
    stored_prices,
    update_prices,
    write_prices,
)
from dashboard.prices.csvfiles import CsvFolderSource, PriceFileError, read_price_csv  # noqa: E402
from dashboard.prices.yahoo import YFinanceSource, classify  # noqa: E402

__all__ = [
    "COLUMNS", "Coverage", "CsvFolderSource", "FailureKind", "FetchReport", "FetchResult", "PriceFailure",
    "PriceFileError", "PriceSource", "YFinanceSource", "classify", "coverage", "coverage_report",
    "default_spans", "ensure_securities", "extend_coverage", "import_csv", "missing_range", "normalize",
    "read_price_csv", "record_failure", "stored_prices", "update_prices", "write_prices",
]
