"""What the dashboard knows about each market: its time zone, exchange calendar and close."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time

from dashboard.securities import Market, parse_symbol


@dataclass(frozen=True, slots=True)
class MarketInfo:
    code: str
    timezone: str
    calendar: str  # exchange-calendars code
    close: time  # regular close, local time


MARKETS: dict[str, MarketInfo] = {
    "HK": MarketInfo("HK", "Asia/Hong_Kong", "XHKG", time(16, 0)),
    "SH": MarketInfo("SH", "Asia/Shanghai", "XSHG", time(15, 0)),
    # exchange-calendars has no Shenzhen calendar; Shenzhen keeps Shanghai's holidays
    "SZ": MarketInfo("SZ", "Asia/Shanghai", "XSHG", time(15, 0)),
    "BJ": MarketInfo("BJ", "Asia/Shanghai", "XSHG", time(15, 0)),
    "US": MarketInfo("US", "America/New_York", "XNYS", time(16, 0)),
    "JP": MarketInfo("JP", "Asia/Tokyo", "XTKS", time(15, 30)),
}


def market_of(symbol: str) -> Market:
    """The market a Yahoo symbol trades in (US when nothing says otherwise)."""
    sec = parse_symbol(symbol)
    return sec.market if sec is not None else "US"


def info_for(symbol: str) -> MarketInfo:
    return MARKETS[market_of(symbol)]


def benchmarks_for(symbols: Sequence[str], benchmarks: Mapping[str, str]) -> list[str]:
    """The benchmark of each market among ``symbols`` (in their order, once each), except
    those that are themselves among ``symbols``."""
    out: list[str] = []
    for symbol in symbols:
        bench = benchmarks.get(market_of(symbol))
        if bench and bench not in out and bench not in symbols:
            out.append(bench)
    return out
