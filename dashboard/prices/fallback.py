"""Several sources behind one: per market an ordered list, each symbol asked of the next source
only when the ones before could not price it; the answer says which source priced each symbol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from dashboard.markets import market_of
from dashboard.prices import FetchResult, PriceFailure, PriceSource
from dashboard.prices.eastmoney import MISSING, AkshareSource, akshare_available
from dashboard.prices.yahoo import YFinanceSource

SOURCE_NAMES = ("akshare", "yfinance")

# The kind a symbol's failure takes when every source failed: a passing trouble (worth a retry)
# before a lasting one, and "no data" before "unknown symbol" (one source may not serve it).
_PRECEDENCE = ("rate_limited", "network", "error", "bad_file", "no_data", "unknown_symbol")


def make_source(name: str) -> PriceSource:
    if name == "akshare":
        return AkshareSource()
    if name == "yfinance":
        return YFinanceSource()
    raise ValueError(f"unknown price source {name!r} (known: {', '.join(SOURCE_NAMES)})")


def combined(symbol: str, failures: Sequence[PriceFailure]) -> PriceFailure:
    """One failure for a symbol every source failed: the most transient kind, every reason."""
    if len(failures) == 1:
        return failures[0]
    kind = min((f.kind for f in failures), key=_PRECEDENCE.index)
    return PriceFailure(symbol, kind, "; ".join(dict.fromkeys(f.reason for f in failures)))


class FallbackSource:
    """Asks each market's sources in order; ``FetchResult.sources`` names the one that answered."""

    name = "auto"

    def __init__(self, order: Mapping[str, Sequence[PriceSource]],
                 default: Sequence[PriceSource] = ()) -> None:
        self.order = {m.upper(): list(chain) for m, chain in order.items()}
        self.default = list(default)

    def sources_for(self, symbol: str) -> list[PriceSource]:
        return self.order.get(market_of(symbol), self.default)

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        result = FetchResult()
        chains = {s: list(self.sources_for(s)) for s in dict.fromkeys(symbols)}
        tried: dict[str, list[PriceFailure]] = {s: [] for s in chains}
        while True:
            # one request per source and round, for every symbol whose next source it is
            rounds: dict[int, tuple[PriceSource, list[str]]] = {}
            for symbol, chain in chains.items():
                if chain:
                    rounds.setdefault(id(chain[0]), (chain[0], []))[1].append(symbol)
            if not rounds:
                break
            for source, batch in rounds.values():
                answer = source.fetch(batch, start, end)
                for symbol in batch:
                    chains[symbol].pop(0)
                    if symbol in answer.frames:
                        result.frames[symbol] = answer.frames[symbol]
                        result.sources[symbol] = answer.sources.get(symbol, source.name)
                        chains[symbol] = []
                    else:
                        tried[symbol].append(answer.failures.get(symbol) or PriceFailure(
                            symbol, "no_data", f"{source.name} answered nothing for {symbol}"))
        for symbol, failures in tried.items():
            if symbol in result.frames:
                continue
            result.failures[symbol] = combined(symbol, failures) if failures else PriceFailure(
                symbol, "error", f"no price source is configured for {symbol}'s market "
                                 f"({market_of(symbol)}): see price_sources in dashboard.toml")
        return result


def configured_source(price_sources: Mapping[str, Sequence[str]],
                      default: Sequence[str] = ("yfinance",)) -> tuple[FallbackSource, list[str]]:
    """The fallback the settings describe (``Settings.price_sources``), and notes for the user:
    without akshare installed, its markets fall back on their other sources."""
    instances: dict[str, PriceSource] = {}
    have_akshare = akshare_available()
    without: list[str] = []

    def chain(market: str, names: Sequence[str]) -> list[PriceSource]:
        out = []
        for n in names:
            if n not in SOURCE_NAMES:
                raise ValueError(f"price_sources.{market} names an unknown price source {n!r} "
                                 f"(known: {', '.join(SOURCE_NAMES)})")
            if n == "akshare" and not have_akshare:
                without.append(market)
                continue
            out.append(instances.setdefault(n, make_source(n)))
        return out

    source = FallbackSource({m: chain(m, names) for m, names in price_sources.items()},
                            chain("default", default))
    notes = []
    if without:
        notes.append(f"{', '.join(without)} prices skip eastmoney: {MISSING}")
    return source, notes
