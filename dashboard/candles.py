"""What a chart draws from prices: candles of a day, a week or a month, their moving averages,
the range's summary for a header, and the news markers placed on the candle holding their session.

Candles and moving averages are computed in DuckDB from the stored daily rows. A week is
Monday to Sunday, a month the calendar month; a candle takes the first open, the highest high,
the lowest low, the last close (and adjusted close) and the summed volume of its sessions in
the range, and is drawn at its period's first day (the session itself for daily candles).

``interval="auto"`` chooses from the span the prices cover within the range asked for:
daily up to ``DAILY_MAX_DAYS`` (about 13 months, at most ~280 candles), weekly up to
``WEEKLY_MAX_DAYS`` (about 4 years, at most ~215 candles), monthly beyond (60 for 5 years).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

Interval = Literal["day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")
DAILY_MAX_DAYS = 400
WEEKLY_MAX_DAYS = 1500
MOVING_AVERAGES = (5, 20, 60)  # the usual MA5 / MA20 / MA60 of Chinese trading software
# A marker is 17-30 px wide on a chart about 1000 px wide: markers closer than 1/40 of the
# candles shown would overlap, so they are merged into one.
CANDLES_PER_MARKER = 40

COLUMNS = ["symbol", "date", "first_session", "last_session", "sessions", "open", "high", "low", "close",
           "adj_close", "volume", "interval"]


def choose_interval(start: date, end: date) -> Interval:
    """Daily candles up to ``DAILY_MAX_DAYS`` days, weekly up to ``WEEKLY_MAX_DAYS``, then monthly."""
    days = (end - start).days
    return "day" if days <= DAILY_MAX_DAYS else "week" if days <= WEEKLY_MAX_DAYS else "month"


def price_span(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date | None = None,
               end: date | None = None) -> tuple[date, date] | None:
    """The first and last session any of ``symbols`` has prices for within [start, end]."""
    row = con.execute("""
        SELECT min(date), max(date) FROM prices
        WHERE symbol IN (SELECT unnest($symbols::VARCHAR[]))
          AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
    """, {"symbols": list(symbols), "start": start, "end": end}).fetchall()[0]
    return None if row[0] is None else (row[0], row[1])


def resolve_interval(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date | None,
                     end: date | None, interval: str = "auto") -> Interval:
    """``interval`` itself, or for "auto" the one ``choose_interval`` picks for the span the
    prices of ``symbols`` cover in the range (so every chart of several securities agrees)."""
    if interval in INTERVALS:
        return interval  # type: ignore[return-value]
    if interval != "auto":
        raise ValueError(f"interval must be auto, day, week or month, not {interval!r}")
    span = price_span(con, symbols, start, end)
    return "day" if span is None else choose_interval(*span)


def _windows(moving_averages: Sequence[int]) -> list[int]:
    out = sorted({int(n) for n in moving_averages})
    if any(n < 2 or n > 1000 for n in out):
        raise ValueError(f"moving averages span 2 to 1000 candles, not {list(moving_averages)}")
    return out


def candles_many(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date | None = None,
                 end: date | None = None, interval: str = "auto",
                 moving_averages: Sequence[int] = ()) -> pd.DataFrame:
    """The candles of several securities at one interval (resolved once for all of them),
    ordered by symbol and date; ``ma<N>`` columns hold the mean close of the last N candles,
    counting candles before ``start``, and are empty where fewer than N exist."""
    chosen = resolve_interval(con, symbols, start, end, interval)
    windows = _windows(moving_averages)
    period = {"day": "date", "week": "date_trunc('week', date)::DATE",
              "month": "date_trunc('month', date)::DATE"}[chosen]
    # Without moving averages nothing before the range is read; with them, every earlier
    # candle may be needed (a long suspension leaves few sessions in any fixed span).
    frame = con.execute(f"""
        WITH px AS (
            SELECT symbol, date, {period} AS period, date >= coalesce($start, DATE '0001-01-01') AS shown,
                   CASE WHEN isfinite(open) THEN open END AS open,
                   CASE WHEN isfinite(high) THEN high END AS high,
                   CASE WHEN isfinite(low) THEN low END AS low,
                   close, adj_close,
                   CASE WHEN isfinite(volume) THEN volume END AS volume
            FROM prices
            WHERE symbol IN (SELECT unnest($symbols::VARCHAR[]))
              AND ($warm OR $start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
              AND close IS NOT NULL AND isfinite(close)
        ),
        c AS (
            SELECT symbol, period AS date,
                   min(date) FILTER (WHERE shown) AS first_session,
                   max(date) FILTER (WHERE shown) AS last_session,
                   count(*) FILTER (WHERE shown) AS sessions,
                   arg_min(open, date) FILTER (WHERE shown AND open IS NOT NULL) AS open,
                   max(high) FILTER (WHERE shown) AS high,
                   min(low) FILTER (WHERE shown) AS low,
                   arg_max(close, date) AS close,
                   arg_max(adj_close, date) FILTER (WHERE adj_close IS NOT NULL) AS adj_close,
                   sum(volume) FILTER (WHERE shown) AS volume,
                   bool_or(shown) AS any_shown
            FROM px GROUP BY symbol, period
        )
        SELECT symbol, date, first_session, last_session, sessions,
               coalesce(open, close) AS open, coalesce(high, greatest(open, close)) AS high,
               coalesce(low, least(open, close)) AS low, close, coalesce(adj_close, close) AS adj_close,
               coalesce(volume, 0) AS volume, $interval AS "interval", any_shown
        FROM c ORDER BY symbol, date
    """, {"symbols": list(symbols), "start": start, "end": end, "warm": bool(windows),
          "interval": chosen}).df()
    # moving averages in pandas: the same digits from either store (windowed sums differ in the last)
    for n in windows:
        frame[f"ma{n}"] = frame.groupby("symbol", sort=False)["close"].transform(
            lambda close, n=n: close.rolling(n).mean()) if not frame.empty else pd.Series(dtype=float)
    frame = frame[frame["any_shown"].astype(bool)].drop(columns="any_shown").reset_index(drop=True)
    for col in ("date", "first_session", "last_session"):
        frame[col] = pd.to_datetime(frame[col])
    return frame


def candles(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None = None, end: date | None = None,
            interval: str = "auto", moving_averages: Sequence[int] = ()) -> pd.DataFrame:
    """One security's candles over [start, end]: columns ``date`` (where the candle is drawn:
    the session, or the week's Monday, or the month's first day), ``first_session``,
    ``last_session``, ``sessions``, open, high, low, close, adj_close, volume, ``interval`` and
    one ``ma<N>`` per moving average asked for."""
    return candles_many(con, [symbol], start, end, interval, moving_averages).reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class RangeSummary:
    """What a chart's header says: the last close and how far the range moved it."""

    symbol: str
    last_session: date
    last_close: float
    base_session: date  # the close the change is measured from: the session before the range,
    base_close: float   # or the range's first session when prices start inside it
    change: float       # in the last close's units (split- and dividend-adjusted)
    change_pct: float   # from adjusted closes
    high: float
    high_session: date
    low: float
    low_session: date
    first_session: date
    sessions: int


def range_summaries(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date | None = None,
                    end: date | None = None) -> dict[str, RangeSummary]:
    """Each of ``symbols``' summary over [start, end] (absent where it has no prices there)."""
    rows = con.execute("""
        WITH px AS (
            SELECT symbol, date, high, low, close, coalesce(adj_close, close) AS adj,
                   $start IS NULL OR date >= $start AS shown
            FROM prices
            WHERE symbol IN (SELECT unnest($symbols::VARCHAR[])) AND ($end IS NULL OR date <= $end)
              AND close IS NOT NULL AND isfinite(close)
        ),
        shown AS (
            SELECT symbol, max(date) AS last_session, arg_max(close, date) AS last_close,
                   arg_max(adj, date) AS last_adj, min(date) AS first_session,
                   arg_min(close, date) AS first_close, arg_min(adj, date) AS first_adj,
                   max(high) FILTER (WHERE isfinite(high)) AS high,
                   min(low) FILTER (WHERE isfinite(low)) AS low,
                   count(*) AS sessions
            FROM px WHERE shown GROUP BY symbol
        ),
        extremes AS (  -- the session of the high and of the low: of equal ones the first, whatever
            SELECT p.symbol,  -- the order the rows are stored in (arg_max kept the first it met)
                   min(p.date) FILTER (WHERE p.high = s.high) AS high_session,
                   min(p.date) FILTER (WHERE p.low = s.low) AS low_session
            FROM px p JOIN shown s USING (symbol) WHERE p.shown GROUP BY p.symbol
        ),
        before AS (
            SELECT symbol, max(date) AS base_session, arg_max(close, date) AS base_close,
                   arg_max(adj, date) AS base_adj
            FROM px WHERE NOT shown GROUP BY symbol
        )
        SELECT s.symbol, s.last_session, s.last_close, s.last_adj,
               coalesce(b.base_session, s.first_session), coalesce(b.base_close, s.first_close),
               coalesce(b.base_adj, s.first_adj),
               coalesce(s.high, greatest(s.last_close, s.first_close)),
               coalesce(e.high_session, s.last_session),
               coalesce(s.low, least(s.last_close, s.first_close)),
               coalesce(e.low_session, s.last_session),
               s.first_session, s.sessions
        FROM shown s LEFT JOIN before b USING (symbol) JOIN extremes e USING (symbol)
    """, {"symbols": list(symbols), "start": start, "end": end}).fetchall()
    out = {}
    for (sym, last_s, last_c, last_a, base_s, base_c, base_a, hi, hi_s, lo, lo_s, first_s, n) in rows:
        pct = last_a / base_a - 1 if base_a else 0.0
        out[sym] = RangeSummary(sym, last_s, float(last_c), base_s, float(base_c),
                                float(last_c - last_c / (1 + pct)) if pct > -1 else float(last_c - base_c),
                                float(pct), float(hi), hi_s, float(lo), lo_s, first_s, int(n))
    return out


def range_summary(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None = None,
                  end: date | None = None) -> RangeSummary | None:
    """The last close, its change (and %) from the close before the range, the range's high
    and low, and the last session; None when the security has no prices in the range."""
    return range_summaries(con, [symbol], start, end).get(symbol)


def marker_spacing(n_candles: int) -> int:
    """The fewest candles two markers must lie apart to be drawn separately."""
    return max(1, math.ceil(n_candles / CANDLES_PER_MARKER))


def _period_of(sessions: pd.Series, interval: str) -> pd.Series:
    days = pd.to_datetime(sessions).dt.normalize()
    if interval == "week":
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    if interval == "month":
        return days.dt.to_period("M").dt.start_time
    return days


MARKER_COLUMNS = ["date", "pos", "first_session", "last_session", "sessions", "counts", "articles", "lines",
                  "high"]


def markers_for(candles: pd.DataFrame, session_markers: pd.DataFrame,
                min_gap: int | None = None) -> pd.DataFrame:
    """The news markers of one security's candles: each session's articles go to the candle
    holding that session (a weekly candle gathers its week's), and markers fewer than
    ``min_gap`` candles apart (by default ``marker_spacing`` of the candles shown) become one,
    drawn at its first candle and listing every session's articles.

    ``candles`` is a frame of ``candles()`` (or daily prices with ``date`` and ``high``);
    ``session_markers`` one of ``coverage.session_markers`` (session, articles, lines).
    Returns one row per marker: ``date`` and ``pos`` of the candle it is drawn
    at, its ``first_session`` and ``last_session``, per session ``sessions``/``counts``/
    ``lines``, the total ``articles``, and ``high``, the highest high of
    the candles it covers (where it sits above)."""
    if candles.empty or session_markers.empty:
        return pd.DataFrame({c: [] for c in MARKER_COLUMNS})
    interval = str(candles["interval"].iloc[0]) if "interval" in candles else "day"
    keys = pd.DatetimeIndex(pd.to_datetime(candles["date"]).dt.normalize())
    where = pd.Series(np.arange(len(keys)), index=keys)
    sm = session_markers.sort_values("session").reset_index(drop=True)
    period = _period_of(sm["session"], interval)
    on_chart = period.isin(keys).to_numpy()
    sm, period = sm[on_chart].reset_index(drop=True), period[on_chart]
    if sm.empty:
        return pd.DataFrame({c: [] for c in MARKER_COLUMNS})
    pos = where.loc[period].to_numpy()
    gap = marker_spacing(len(candles)) if min_gap is None else max(1, int(min_gap))
    highs = candles["high"].to_numpy(dtype="float64")
    # plain lists: pandas indexing per marker cost more than the rest of the chart's build
    sessions = list(pd.to_datetime(sm["session"]).dt.normalize())
    counts = [int(c) for c in sm["articles"]]
    lines = [list(x) for x in sm["lines"]]
    rows = []
    k = 0
    while k < len(sm):
        j = k
        while j + 1 < len(sm) and pos[j + 1] - pos[k] < gap:
            j += 1
        first, last = int(pos[k]), int(pos[j])
        # the group's candles, widened by half a marker's spacing each side, so the marker clears them
        lo, hi = max(0, first - gap // 2), min(len(highs), last + gap // 2 + 1)
        rows.append({
            "date": keys[first], "pos": first, "first_session": sessions[k], "last_session": sessions[j],
            "sessions": sessions[k:j + 1], "counts": counts[k:j + 1], "articles": sum(counts[k:j + 1]),
            "lines": lines[k:j + 1], "high": float(np.nanmax(highs[lo:hi])),
        })
        k = j + 1
    return pd.DataFrame(rows, columns=MARKER_COLUMNS)


def calendar_gaps(candles: pd.DataFrame) -> list[str]:
    """The weekdays between the first and last daily candle on which none traded (holidays,
    suspensions): with weekends, what a daily chart's axis leaves out."""
    if candles.empty:
        return []
    traded = pd.DatetimeIndex(pd.to_datetime(candles["date"]).dt.normalize().unique())
    every = pd.bdate_range(traded.min(), traded.max())
    return [d.strftime("%Y-%m-%d") for d in every.difference(traded)]


__all__ = ["CANDLES_PER_MARKER", "DAILY_MAX_DAYS", "INTERVALS", "MOVING_AVERAGES", "WEEKLY_MAX_DAYS",
           "Interval", "RangeSummary", "calendar_gaps", "candles", "candles_many", "choose_interval",
           "marker_spacing", "markers_for", "price_span", "range_summaries", "range_summary",
           "resolve_interval"]
