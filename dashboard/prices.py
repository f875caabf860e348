"""Daily prices: one small interface, two sources (yfinance, CSV files), cached in the store.

A source answers ``fetch(symbols, start, end)`` (``end`` inclusive) with a frame per symbol
that it could price (trading date, open, high, low, close, adj_close, volume) and a
:class:`PriceFailure` for each one it could not, with the reason in plain words. A failed
fetch never deletes or overwrites stored rows; an empty answer is a failure, never "no
prices".
"""

from __future__ import annotations

import io
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from dashboard.markets import info_for
from dashboard.reactions import refresh_reactions
from dashboard.securities import parse_symbol, reference_list
from dashboard.store import Store

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


# --- yfinance ----------------------------------------------------------------------

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


# --- CSV files -----------------------------------------------------------------------


class PriceFileError(ValueError):
    """A price CSV that cannot be imported; nothing of it is stored."""


_HISTORY = {"Date", "Open", "High", "Low", "Close", "Volume"}
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}")


def symbol_from_filename(path: Path) -> str:
    return path.name.removesuffix(".csv").removesuffix(".CSV")


def read_price_csv(path: str | Path, symbol: str | None = None) -> tuple[str, pd.DataFrame]:
    """A yfinance CSV export, either shape, as (symbol, normalized frame).

    Shapes: ``Ticker.history()`` (``Date,Open,High,Low,Close,Volume,Dividends,Stock Splits``,
    dates like ``2020-01-02 00:00:00+08:00``, closes already adjusted) and ``download()``
    (``Date,Open,High,Low,Close,Adj Close,Volume``), including download's two-row
    ``Price``/``Ticker`` header. The symbol comes from the file name unless given.
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise PriceFileError(f"{p}: cannot read: {e}") from None
    lines = raw.splitlines()
    header_rows = 1
    if len(lines) >= 2 and lines[0].startswith("Price,") and lines[1].startswith("Ticker,"):
        tickers = {t for t in lines[1].split(",")[1:] if t}
        if len(tickers) != 1:
            raise PriceFileError(f"{p}: holds several tickers ({', '.join(sorted(tickers))}); "
                                 "export one symbol per file")
        symbol = symbol or tickers.pop()
        lines = ["Date" + lines[0][len("Price"):]] + [ln for ln in lines[2:] if not ln.startswith("Date,")]
        header_rows = 3
    symbol = symbol or symbol_from_filename(p)
    if parse_symbol(symbol) is None:
        raise PriceFileError(f"{p}: '{symbol}' is not a symbol; pass --symbol")
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise PriceFileError(f"{p}: not a CSV file: {e}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("Date", "Open", "High", "Low", "Close", "Volume") if c not in df.columns]
    if missing:
        raise PriceFileError(f"{p}: missing columns: {', '.join(missing)} "
                             f"(expected yfinance's Date,Open,High,Low,Close[,Adj Close],Volume)")
    if df.empty:
        raise PriceFileError(f"{p}: has no rows")
    line_of = pd.Series(range(header_rows + 1, header_rows + 1 + len(df)), index=df.index)

    bad_dates = ~df["Date"].str.strip().str.match(_DATE_PREFIX)
    if bad_dates.any():
        i = bad_dates.idxmax()
        raise PriceFileError(f"{p}: bad date {df.at[i, 'Date']!r} at line {line_of[i]}")
    dates = pd.to_datetime(df["Date"].str.strip().str[:10], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = dates.isna().idxmax()
        raise PriceFileError(f"{p}: bad date {df.at[i, 'Date']!r} at line {line_of[i]}")

    value_cols = ["Open", "High", "Low", "Close", "Volume"] + (["Adj Close"] if "Adj Close" in df else [])
    numbers = {}
    for col in value_cols:
        text = df[col].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & (text != "") & ~text.str.lower().isin(["nan", "null"])
        if bad.any():
            i = bad.idxmax()
            raise PriceFileError(f"{p}: bad number {df.at[i, col]!r} in column {col} at line {line_of[i]}")
        numbers[col] = values
    frame = pd.DataFrame(numbers)
    frame["Date"] = dates.dt.date
    frame = frame[frame["Close"].notna()]  # holidays exported as empty rows
    dup = frame["Date"].duplicated(keep=False)
    if dup.any():
        first = frame.loc[dup, "Date"].iloc[0]
        lines_dup = ", ".join(str(line_of[i]) for i in frame.index[frame["Date"] == first])
        raise PriceFileError(f"{p}: duplicate date {first} (lines {lines_dup})")
    out = frame.set_index("Date")
    out.index = pd.DatetimeIndex(out.index)
    return symbol.upper() if not symbol.startswith("^") else symbol, normalize(out, symbol)


class CsvFolderSource:
    """Prices from a folder of yfinance CSV exports named by symbol (``3690.HK.csv``)."""

    name = "csv"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.files = {symbol_from_filename(p).upper(): p for p in self.folder.glob("*.csv")}

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        result = FetchResult()
        for symbol in dict.fromkeys(symbols):
            path = self.files.get(symbol.upper())
            if path is None:
                result.failures[symbol] = PriceFailure(symbol, "no_data", f"no file {symbol}.csv in {self.folder}")
                continue
            try:
                _, frame = read_price_csv(path, symbol)
            except PriceFileError as e:
                result.failures[symbol] = PriceFailure(symbol, "bad_file", str(e))
                continue
            part = frame[(frame.index >= start) & (frame.index <= end)]
            if part.empty:
                result.failures[symbol] = PriceFailure(symbol, "no_data",
                                                       f"{path.name} has no prices from {start} to {end}")
            else:
                result.frames[symbol] = part
        return result


# --- the cache in the store -----------------------------------------------------------


@dataclass
class FetchReport:
    requested: list[str] = field(default_factory=list)  # symbols asked of the source
    cached: list[str] = field(default_factory=list)  # symbols the store already covered
    stored: dict[str, int] = field(default_factory=dict)  # symbol -> rows written
    failures: dict[str, PriceFailure] = field(default_factory=dict)
    skipped: dict[str, PriceFailure] = field(default_factory=dict)  # failed recently; not re-asked


def ensure_securities(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> None:
    """Give price-only symbols (benchmarks, imports) a row in securities."""
    refs = reference_list()
    rows = []
    for s in symbols:
        sec = parse_symbol(s)
        ref = refs.get(s)
        rows.append((s, sec.code if sec else s, sec.canonical if sec else s,
                     sec.market if sec else None, sec.kind if sec else None,
                     ref.name if ref else None, ref.name_en if ref else None))
    if rows:
        con.executemany(
            "INSERT INTO securities SELECT ?, ?, ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM securities WHERE symbol = ?)",
            [(*r, r[0]) for r in rows],
        )


def write_prices(con: duckdb.DuckDBPyConnection, symbol: str, frame: pd.DataFrame, source: str,
                 covered: tuple[date, date]) -> int:
    """Replace the symbol's rows for the dates given; extend its coverage; clear its failure."""
    if frame.empty:
        return 0
    table = pa.table({
        "symbol": [symbol] * len(frame),
        "date": list(frame.index),
        **{c: frame[c].to_numpy() for c in COLUMNS},
    })
    con.register("new_prices", table)
    con.execute("DELETE FROM prices WHERE symbol = ? AND date IN (SELECT date FROM new_prices)", [symbol])
    con.execute("INSERT INTO prices SELECT symbol, date, open, high, low, close, adj_close, volume, "
                "?, now() FROM new_prices", [source])
    con.unregister("new_prices")
    extend_coverage(con, symbol, covered, source)
    return len(frame)


def extend_coverage(con: duckdb.DuckDBPyConnection, symbol: str, covered: tuple[date, date],
                    source: str) -> None:
    """Record that the store answers for ``symbol`` over ``covered``; clear its failure."""
    start, end = covered
    con.execute("INSERT INTO price_coverage SELECT ?, ?, ?, ?, now() "
                "WHERE NOT EXISTS (SELECT 1 FROM price_coverage WHERE symbol = ?)",
                [symbol, start, end, source, symbol])
    con.execute("UPDATE price_coverage SET start_date = least(start_date, ?), "
                "end_date = greatest(end_date, ?), source = ?, updated_at = now() WHERE symbol = ?",
                [start, end, source, symbol])
    con.execute("DELETE FROM price_failures WHERE symbol = ?", [symbol])


def _no_sessions(symbol: str, start: date, end: date) -> bool:
    """True when the exchange did not trade at all in [start, end] (a weekend, a holiday)."""
    from dashboard.sessions import calendar_sessions

    try:
        return calendar_sessions(info_for(symbol).calendar, start, end).empty
    except Exception:  # a calendar that cannot say: keep the failure
        return False


def record_failure(con: duckdb.DuckDBPyConnection, f: PriceFailure, start: date | None,
                   end: date | None) -> None:
    con.execute("DELETE FROM price_failures WHERE symbol = ?", [f.symbol])
    con.execute("INSERT INTO price_failures VALUES (?, ?, ?, ?, ?, now())",
                [f.symbol, start, end, f.kind, f.reason])


@dataclass(frozen=True)
class Coverage:
    start: date
    end: date
    updated_at: datetime


def coverage(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> dict[str, Coverage]:
    rows = con.execute(
        "SELECT symbol, start_date, end_date, updated_at FROM price_coverage "
        "WHERE symbol IN (SELECT unnest(?::VARCHAR[]))", [list(symbols)]).fetchall()
    return {s: Coverage(a, b, u) for s, a, b, u in rows}


def missing_range(have: Coverage | None, start: date, end: date, today: date, *,
                  refresh_days: int = 5, refresh_after: timedelta = timedelta(hours=12),
                  now: datetime | None = None, force: bool = False) -> tuple[date, date] | None:
    """The span to ask the source for, or None when the store already answers [start, end].

    Asks for what the store lacks, plus the most recent days (which can still change)
    when the last fetch is older than ``refresh_after``.
    """
    end = min(end, today)
    if start > end:
        return None
    if force or have is None:
        return start, end
    lo, hi = None, None
    if start < have.start:
        lo, hi = start, have.start - timedelta(days=1)
    if end > have.end:
        lo, hi = lo or have.end + timedelta(days=1), end
    now = now or datetime.now(UTC)
    if end >= today - timedelta(days=refresh_days) and now - have.updated_at > refresh_after:
        lo = min(lo or today, max(start, have.end - timedelta(days=refresh_days)))
        hi = end
    return (lo, hi) if lo is not None and hi is not None else None


def _batches(wanted: dict[str, tuple[date, date]], size: int) -> Iterator[tuple[list[str], date, date]]:
    """Symbols in batches of similar ranges: each batch asks for the hull of its members'."""
    ordered = sorted(wanted, key=lambda s: wanted[s])
    for i in range(0, len(ordered), size):
        batch = ordered[i:i + size]
        yield batch, min(wanted[s][0] for s in batch), max(wanted[s][1] for s in batch)


def update_prices(store: Store, source: PriceSource, spans: dict[str, tuple[date, date]], *,
                  force: bool = False, today: date | None = None, refresh_days: int = 5,
                  refresh_after: timedelta = timedelta(hours=12),
                  retry_failed_after: timedelta = timedelta(hours=1),
                  batch_size: int = 40, benchmarks: dict[str, str] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> FetchReport:
    """Bring the store's prices up to ``spans`` (symbol -> [start, end]), asking only for gaps.

    The network is asked outside any store transaction; each batch's answer is written in
    one transaction of its own, so a failure never touches rows already stored.
    """
    today = today or date.today()
    now = datetime.now(UTC)
    report = FetchReport()
    with store.read() as con:
        have = coverage(con, list(spans))
        recent_failures = {
            s: (PriceFailure(s, k, r), at)
            for s, k, r, at in con.execute(
                "SELECT symbol, reason_kind, reason, attempted_at FROM price_failures").fetchall()
        }
    wanted: dict[str, tuple[date, date]] = {}
    for symbol, (start, end) in spans.items():
        gap = missing_range(have.get(symbol), start, end, today, refresh_days=refresh_days,
                            refresh_after=refresh_after, now=now, force=force)
        if gap is None:
            report.cached.append(symbol)
            continue
        failed = recent_failures.get(symbol)
        if not force and failed is not None and now - failed[1] < retry_failed_after:
            report.skipped[symbol] = failed[0]
            continue
        wanted[symbol] = gap
    done = 0
    for batch, start, end in _batches(wanted, batch_size):
        report.requested += batch
        answer = source.fetch(batch, start, end)
        with store.write() as con:
            ensure_securities(con, batch)
            for symbol, frame in answer.frames.items():
                report.stored[symbol] = write_prices(con, symbol, frame, source.name, (start, end))
            for symbol, failure in answer.failures.items():
                if failure.kind == "no_data" and symbol in have and _no_sessions(symbol, *wanted[symbol]):
                    # nothing to price: the gap was a weekend or holiday, not a failure
                    extend_coverage(con, symbol, wanted[symbol], source.name)
                    report.cached.append(symbol)
                    continue
                report.failures[symbol] = failure
                record_failure(con, failure, start, end)
            if answer.frames:
                refresh_reactions(con, benchmarks)
        done += len(batch)
        if progress is not None:
            progress(done, len(wanted))
    return report


def import_csv(store: Store, path: str | Path, symbol: str | None = None,
               benchmarks: dict[str, str] | None = None) -> tuple[str, int]:
    """Import one CSV export; all or nothing; re-importing the same file changes nothing."""
    symbol, frame = read_price_csv(path, symbol)
    if frame.empty:
        raise PriceFileError(f"{path}: has no price rows")
    span = (frame.index.min(), frame.index.max())
    with store.write() as con:
        ensure_securities(con, [symbol])
        rows = write_prices(con, symbol, frame, f"csv:{Path(path).name}", span)
        refresh_reactions(con, benchmarks)
    return symbol, rows


def stored_prices(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None = None,
                  end: date | None = None) -> pd.DataFrame:
    return con.execute(
        "SELECT date, open, high, low, close, adj_close, volume FROM prices "
        "WHERE symbol = ? AND date >= coalesce(?, DATE '1900-01-01') "
        "AND date <= coalesce(?, DATE '2999-12-31') ORDER BY date",
        [symbol, start, end]).df()


def default_spans(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str], *,
                  symbols: Sequence[str] | None = None, since: date | None = None,
                  until: date | None = None, margin_days: int = 30, today: date | None = None,
                  with_benchmarks: bool | None = None) -> dict[str, tuple[date, date]]:
    """What to fetch: each security over its articles' span with a margin on both sides,
    and each market's benchmark over the span of that market's securities.

    ``since``/``until`` replace the spans; named ``symbols`` limit the set (a symbol with no
    articles is fetched from ``since`` or a year back), and bring their markets' benchmarks
    only when ``with_benchmarks`` says so (by default, only without named symbols).
    """
    today = today or date.today()
    rows = con.execute("""
        SELECT m.symbol, s.market, min(a.published_at)::DATE, max(a.published_at)::DATE
        FROM mentions m JOIN articles a USING (article_id) LEFT JOIN securities s USING (symbol)
        GROUP BY ALL
    """).fetchall()  # UTC dates: the margin covers the few hours' difference
    margin = timedelta(days=margin_days)
    spans: dict[str, tuple[date, date]] = {}
    markets: dict[str, tuple[date, date]] = {}
    for symbol, market, first, last in rows:
        if symbols is not None and symbol not in symbols:
            continue
        span = (since or first - margin, min(until or last + margin, today))
        spans[symbol] = span
        if market in benchmarks:
            lo, hi = markets.get(market, span)
            markets[market] = (min(lo, span[0]), max(hi, span[1]))
    for symbol in symbols or []:
        if symbol not in spans:
            spans[symbol] = (since or today - timedelta(days=365), until or today)
    if with_benchmarks if with_benchmarks is not None else symbols is None:
        for market, span in markets.items():
            bench = benchmarks[market]
            lo, hi = spans.get(bench, span)
            spans[bench] = (min(lo, span[0]), max(hi, span[1]))
    return spans


def coverage_report(con: duckdb.DuckDBPyConnection, site_tz: str = "Asia/Shanghai") -> pd.DataFrame:
    """Per security: coverage by articles and by prices, and what is missing and why."""
    return con.execute("""
        WITH art AS (
            SELECT m.symbol, count(*) AS articles,
                   strftime(min(a.published_at AT TIME ZONE $tz), '%Y-%m-%d') AS first_article,
                   strftime(max(a.published_at AT TIME ZONE $tz), '%Y-%m-%d') AS last_article
            FROM mentions m JOIN articles a USING (article_id) GROUP BY m.symbol),
        px AS (
            SELECT symbol, count(*) AS price_rows, strftime(min(date), '%Y-%m-%d') AS first_price,
                   strftime(max(date), '%Y-%m-%d') AS last_price
            FROM prices GROUP BY symbol)
        SELECT s.symbol, s.name, coalesce(art.articles, 0) AS articles,
               art.first_article, art.last_article,
               coalesce(px.price_rows, 0) AS price_rows, px.first_price, px.last_price,
               c.source AS price_source, f.reason_kind AS failure, f.reason AS failure_reason,
               f.attempted_at AS failed_at,
               CASE WHEN px.price_rows IS NULL THEN 'no prices'
                    WHEN art.first_article < px.first_price OR art.last_article > px.last_price
                         THEN 'partial'
                    ELSE 'ok' END AS state
        FROM securities s
        LEFT JOIN art USING (symbol) LEFT JOIN px USING (symbol)
        LEFT JOIN price_coverage c USING (symbol) LEFT JOIN price_failures f USING (symbol)
        ORDER BY articles DESC, s.symbol
    """, {"tz": site_tz}).df()
