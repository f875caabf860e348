"""The store's price cache: what it holds, what to ask a source for, and writing answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from dashboard.markets import info_for
from dashboard.names import name_securities
from dashboard.prices import COLUMNS, FetchResult, PriceFailure, PriceSource, drop_impossible
from dashboard.prices.csvfiles import PriceFileError, read_price_csv
from dashboard.reactions import refresh_reactions
from dashboard.securities import parse_symbol
from dashboard.store import Store


@dataclass
class FetchReport:
    requested: list[str] = field(default_factory=list)  # symbols asked of the source
    cached: list[str] = field(default_factory=list)  # symbols the store already covered
    stored: dict[str, int] = field(default_factory=dict)  # symbol -> rows written
    failures: dict[str, PriceFailure] = field(default_factory=dict)
    skipped: dict[str, PriceFailure] = field(default_factory=dict)  # failed recently; not re-asked
    warnings: list[str] = field(default_factory=list)  # e.g. impossible rows a source sent, dropped
    sources: dict[str, str] = field(default_factory=dict)  # symbol -> the source that answered


def ensure_securities(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> None:
    """Give price-only symbols (benchmarks, imports) a row in securities, and a name."""
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return
    parsed = [parse_symbol(s) for s in symbols]
    con.register("priced_securities", pa.table({
        "symbol": pa.array(symbols, pa.string()),
        "code": pa.array([sec.code if sec else s for s, sec in zip(symbols, parsed, strict=True)]),
        "canonical": pa.array([sec.canonical if sec else s for s, sec in zip(symbols, parsed, strict=True)]),
        "market": pa.array([sec.market if sec else None for sec in parsed], pa.string()),
        "kind": pa.array([sec.kind if sec else None for sec in parsed], pa.string())}))
    con.execute("INSERT INTO securities SELECT symbol, code, canonical, market, kind, NULL, NULL "
                "FROM priced_securities WHERE symbol NOT IN (SELECT symbol FROM securities)")
    con.unregister("priced_securities")
    name_securities(con, symbols)


@dataclass(frozen=True)
class PriceWrite:
    """One answer to store: a symbol's rows, where they came from, the span they answer for."""

    symbol: str
    frame: pd.DataFrame
    source: str
    covered: tuple[date, date]


def write_prices(con: duckdb.DuckDBPyConnection, symbol: str, frame: pd.DataFrame, source: str,
                 covered: tuple[date, date]) -> int:
    """Replace the symbol's rows for the dates given; extend its coverage; clear its failure.
    (The caller refreshes the reactions: ``refresh_reactions(con, symbols=[symbol])``.)"""
    return write_many_prices(con, [PriceWrite(symbol, frame, source, covered)])[0][0]


def _dates(index: pd.Index) -> pa.Array:
    days = pa.array(list(index))
    return days if pa.types.is_date32(days.type) else days.cast(pa.date32(), safe=False)


def write_many_prices(con: duckdb.DuckDBPyConnection,
                      writes: Sequence[PriceWrite]) -> tuple[list[int], list[str]]:
    """``write_prices`` for each write, in a few statements: a later write of the same symbol
    and date replaces an earlier one. Returns the rows each wrote, and the symbols whose rows
    that reactions are measured on changed (a new date, another adjusted close or volume):
    the others need no reaction refresh."""
    rows = [len(w.frame) for w in writes]
    parts = [w for w in writes if not w.frame.empty]
    if not parts:
        return rows, []
    con.register("new_prices", pa.concat_tables([pa.table({
        "k": pa.array([k] * len(w.frame), pa.int64()),
        "symbol": pa.array([w.symbol] * len(w.frame), pa.string()),
        "date": _dates(w.frame.index),
        **{c: pa.array(w.frame[c].to_numpy(), pa.float64()) for c in COLUMNS},
        "source": pa.array([w.source] * len(w.frame), pa.string()),
    }) for k, w in enumerate(parts)]))
    con.register("new_coverage", pa.table({
        "k": pa.array(range(len(parts)), pa.int64()),
        "symbol": pa.array([w.symbol for w in parts], pa.string()),
        "start_date": pa.array([w.covered[0] for w in parts], pa.date32()),
        "end_date": pa.array([w.covered[1] for w in parts], pa.date32()),
        "source": pa.array([w.source for w in parts], pa.string())}))
    con.execute("""
        CREATE OR REPLACE TEMP TABLE incoming_prices AS
        SELECT * EXCLUDE (k) FROM new_prices
        QUALIFY row_number() OVER (PARTITION BY symbol, date ORDER BY k DESC) = 1
    """)
    changed = [s for (s,) in con.execute("""
        SELECT DISTINCT n.symbol FROM incoming_prices n
        LEFT JOIN prices p ON p.symbol = n.symbol AND p.date = n.date
        WHERE p.date IS NULL OR p.adj_close IS DISTINCT FROM n.adj_close OR p.volume IS DISTINCT FROM n.volume
        ORDER BY 1
    """).fetchall()]
    con.execute("""
        DELETE FROM prices p USING incoming_prices n WHERE p.symbol = n.symbol AND p.date = n.date;
        INSERT INTO prices SELECT symbol, date, open, high, low, close, adj_close, volume, source, now()
        FROM incoming_prices;
        CREATE OR REPLACE TEMP TABLE incoming_coverage AS
        SELECT symbol, min(start_date) AS start_date, max(end_date) AS end_date, arg_max(source, k) AS source
        FROM new_coverage GROUP BY symbol;
        INSERT INTO price_coverage SELECT symbol, start_date, end_date, source, now() FROM incoming_coverage
        WHERE symbol NOT IN (SELECT symbol FROM price_coverage);
        UPDATE price_coverage c SET start_date = least(c.start_date, n.start_date),
               end_date = greatest(c.end_date, n.end_date), source = n.source, updated_at = now()
        FROM incoming_coverage n WHERE c.symbol = n.symbol;
        DELETE FROM price_failures WHERE symbol IN (SELECT symbol FROM incoming_coverage);
        DROP TABLE incoming_prices; DROP TABLE incoming_coverage;
    """)
    con.unregister("new_prices")
    con.unregister("new_coverage")
    return rows, changed


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

    The network is asked outside any store transaction, every batch first; then all the
    answers are written in one transaction with one reaction refresh (for the securities
    whose prices changed). A failure never touches rows already stored.
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
    answers: list[tuple[list[str], date, date, FetchResult]] = []
    done = 0
    try:
        for batch, start, end in _batches(wanted, batch_size):
            report.requested += batch
            answers.append((batch, start, end, source.fetch(batch, start, end)))
            done += len(batch)
            if progress is not None:
                progress(done, len(wanted))
    finally:  # what was fetched is kept, even when a later batch raised
        if answers:
            _store_answers(store, source.name, answers, have, wanted, report, benchmarks)
    return report


def _store_answers(store: Store, source_name: str, answers: list[tuple[list[str], date, date, FetchResult]],
                   have: dict[str, Coverage], wanted: dict[str, tuple[date, date]], report: FetchReport,
                   benchmarks: dict[str, str] | None) -> None:
    """Write every batch's answer in one transaction, with one reaction refresh for the
    securities whose prices changed."""
    with store.write() as con:
        ensure_securities(con, [s for batch, _, _, _ in answers for s in batch])
        writes = []
        for _, start, end, answer in answers:
            for symbol, frame in answer.frames.items():
                frame, dropped = drop_impossible(frame, symbol)
                if dropped:
                    report.warnings.append(dropped)
                answered_by = answer.sources.get(symbol, source_name)  # a fallback's member
                report.sources[symbol] = answered_by
                writes.append(PriceWrite(symbol, frame, answered_by, (start, end)))
        rows, changed = write_many_prices(con, writes)
        report.stored.update((w.symbol, n) for w, n in zip(writes, rows, strict=True))
        for _, start, end, answer in answers:
            for symbol, failure in answer.failures.items():
                if failure.kind == "no_data" and symbol in have and _no_sessions(symbol, *wanted[symbol]):
                    # nothing to price: the gap was a weekend or holiday, not a failure
                    extend_coverage(con, symbol, wanted[symbol], source_name)
                    report.cached.append(symbol)
                    continue
                report.failures[symbol] = failure
                record_failure(con, failure, start, end)
        if changed:
            refresh_reactions(con, benchmarks, symbols=changed)


def import_csvs(store: Store, files: Sequence[str | Path], symbol: str | None = None,
                benchmarks: dict[str, str] | None = None
                ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]]]:
    """Import yfinance CSV exports in one transaction with one reaction refresh. Each file is
    all or nothing: one that cannot be read is refused whole, with the reason, and the others
    import. ``symbol`` names the symbol of every file (for one whose name does not say it).

    Returns the imported files as (file, symbol, rows) and the refused ones as (file, message),
    each in the order given. Re-importing the same files changes nothing.
    """
    read: list[tuple[str, str, pd.DataFrame]] = []
    failed: list[tuple[str, str]] = []
    for path in files:  # read every file before the write, so the store is held only briefly
        try:
            sym, frame = read_price_csv(path, symbol)
            if frame.empty:
                raise PriceFileError(f"{path}: has no price rows")
        except PriceFileError as e:
            failed.append((str(path), str(e)))
            continue
        read.append((str(path), sym, frame))
    if not read:
        return [], failed
    with store.write() as con:
        ensure_securities(con, [sym for _, sym, _ in read])
        rows, changed = write_many_prices(con, [
            PriceWrite(sym, frame, f"csv:{Path(path).name}", (frame.index.min(), frame.index.max()))
            for path, sym, frame in read])
        if changed:
            refresh_reactions(con, benchmarks, symbols=changed)
    return [(path, sym, n) for (path, sym, _), n in zip(read, rows, strict=True)], failed


def import_csv(store: Store, path: str | Path, symbol: str | None = None,
               benchmarks: dict[str, str] | None = None) -> tuple[str, int]:
    """Import one CSV export; all or nothing; re-importing the same file changes nothing."""
    imported, failed = import_csvs(store, [path], symbol, benchmarks)
    if failed:
        raise PriceFileError(failed[0][1])
    return imported[0][1], imported[0][2]


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
                   strftime(max(date), '%Y-%m-%d') AS last_price,
                   string_agg(DISTINCT source, ', ' ORDER BY source) AS sources
            FROM prices GROUP BY symbol)
        SELECT s.symbol, s.name, coalesce(art.articles, 0) AS articles,
               art.first_article, art.last_article,
               coalesce(px.price_rows, 0) AS price_rows, px.first_price, px.last_price,
               coalesce(px.sources, c.source) AS price_source,
               f.reason_kind AS failure, f.reason AS failure_reason,
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
