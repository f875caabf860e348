"""Trading sessions: which session an article could first move a security in.

An article published before an exchange's close on a trading day falls on that day's
session; after the close, or on a weekend or holiday, on the next one. The security's own
price rows decide which days traded (a suspension is a day it could not move); outside
them, the exchange's calendar (exchange-calendars, with its half days) decides. The
comparison is of instants, so time zones cannot confuse it.
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from dashboard.articles import EARLIEST_PUBLISHED, LATEST_PUBLISHED
from dashboard.markets import MARKETS


def calendar_sessions(calendar: str, start: date, end: date) -> pd.DataFrame:
    """An exchange's sessions with their closing instants (half days included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exchange-calendars' deprecation noise under pandas 3
        import exchange_calendars as xcals

        cal = xcals.get_calendar(calendar)
    first, last = cal.first_session.date(), cal.last_session.date()
    start, end = max(start, first), min(end, last)
    if start > end:
        return pd.DataFrame({"session": [], "close_utc": []})
    closes = cal.schedule.loc[str(start):str(end), "close"]
    return pd.DataFrame({"session": closes.index.date, "close_utc": closes.dt.tz_convert("UTC").array})


def ensure_calendars(con: duckdb.DuckDBPyConnection, calendars: set[str], start: date, end: date) -> None:
    """Make ``calendar_sessions`` cover [start, end] for each calendar (only what is missing)."""
    have = {
        cal: (lo, hi)
        for cal, lo, hi in con.execute(
            "SELECT calendar, min(session), max(session) FROM calendar_sessions GROUP BY 1").fetchall()
    }
    for cal in sorted(calendars):
        lo, hi = have.get(cal, (None, None))
        if lo is not None and lo <= start and hi >= end:
            continue
        want_lo = min(start, lo) if lo else start
        want_hi = max(end, hi) if hi else end
        frame = calendar_sessions(cal, want_lo - timedelta(days=7), want_hi + timedelta(days=7))
        table = pa.table({"session": pa.array(frame["session"], pa.date32()),
                          "close_utc": pa.array(frame["close_utc"], pa.timestamp("us", tz="UTC"))})
        con.register("new_sessions", table)
        con.execute("DELETE FROM calendar_sessions WHERE calendar = ?", [cal])
        con.execute("INSERT INTO calendar_sessions SELECT ?, session, close_utc FROM new_sessions", [cal])
        con.unregister("new_sessions")


def markets_table() -> pa.Table:
    """The market facts as a table SQL can join: market, time zone, calendar, close."""
    rows = list(MARKETS.values())
    return pa.table({
        "market": [m.code for m in rows],
        "tz": [m.timezone for m in rows],
        "calendar": [m.calendar for m in rows],
        "close_local": pa.array([m.close for m in rows], pa.time64("us")),
    })


# The sessions each priced security could react in: its own price rows (closing at the
# calendar's close for that day, or the market's regular close), and the calendar's
# sessions outside the span its prices cover. Needs `markets`, `calendar_sessions` and
# `event_pairs` (only the securities those pairs name are built).
SECURITY_SESSIONS = """
CREATE OR REPLACE TEMP TABLE security_sessions AS
WITH priced AS (
    SELECT p.symbol, min(p.date) AS lo, max(p.date) AS hi
    FROM prices p WHERE p.symbol IN (SELECT symbol FROM event_pairs) GROUP BY p.symbol
),
sec AS (
    SELECT s.symbol, m.tz, m.calendar, m.close_local, priced.lo, priced.hi
    FROM securities s JOIN markets m ON m.market = coalesce(s.market, 'US')
    JOIN priced USING (symbol)
)
SELECT p.symbol, p.date AS session,
       coalesce(c.close_utc, timezone(sec.tz, p.date + sec.close_local)) AS close_utc
FROM prices p JOIN sec USING (symbol)
LEFT JOIN calendar_sessions c ON c.calendar = sec.calendar AND c.session = p.date
UNION ALL
SELECT sec.symbol, c.session, c.close_utc
FROM sec JOIN calendar_sessions c ON c.calendar = sec.calendar
WHERE c.session < sec.lo OR c.session > sec.hi
"""

# The (article, priced security) pairs to place: all, or those naming a security in
# {symbols} (a list of literals, which mentions' zone maps can use, or a subquery) or being an
# article in the table {articles}, each pair once.
EVENT_PAIRS = """
CREATE OR REPLACE TEMP TABLE event_pairs AS
SELECT article_id, symbol, published_at FROM mentions
WHERE symbol IN (SELECT symbol FROM prices)
"""
SCOPED_PAIRS = """
CREATE OR REPLACE TEMP TABLE event_pairs AS
SELECT article_id, symbol, published_at FROM mentions
WHERE symbol IN {symbols} AND symbol IN (SELECT symbol FROM prices)
UNION ALL
SELECT article_id, symbol, published_at FROM mentions
WHERE article_id IN (SELECT article_id FROM {articles}) AND symbol NOT IN {symbols}
  AND symbol IN (SELECT symbol FROM prices)
"""

# Each (article, security) pair's event session: the first session closing after it. An
# article dated outside the supported range (a store from before such dates were refused)
# has none, rather than the first session of the calendar.
EVENT_SESSIONS = """
CREATE OR REPLACE TEMP TABLE event_sessions AS
SELECT e.article_id, e.symbol, e.published_at,
       CASE WHEN e.published_at >= $earliest AND e.published_at < $latest THEN s.session END AS session
FROM (SELECT * FROM event_pairs WHERE symbol IN (SELECT DISTINCT symbol FROM security_sessions)) e
ASOF LEFT JOIN security_sessions s ON e.symbol = s.symbol AND e.published_at < s.close_utc
"""


def build_event_sessions(con: duckdb.DuckDBPyConnection, scope: tuple[str, str] | None = None) -> None:
    """Temp tables ``security_sessions`` and ``event_sessions`` for the priced securities:
    every article naming one, or (``scope``: the symbols, as a parenthesized SQL list or
    subquery, and the name of a table of article ids) only the pairs naming one of those
    securities or being one of those articles.

    The calendars are made to cover the pairs' articles (with a margin either side), which
    is all an article's first session depends on: a scoped build places its pairs exactly as
    a full one does."""
    bounds = {"earliest": EARLIEST_PUBLISHED, "latest": LATEST_PUBLISHED}
    con.execute(EVENT_PAIRS if scope is None else SCOPED_PAIRS.format(symbols=scope[0], articles=scope[1]))
    span = con.execute("""
        SELECT min(published_at)::DATE, max(published_at)::DATE FROM event_pairs
        WHERE published_at >= $earliest AND published_at < $latest
    """, bounds).fetchall()[0]
    calendars = {
        cal for (cal,) in con.execute(
            "SELECT DISTINCT m.calendar FROM securities s JOIN markets m ON m.market = coalesce(s.market, "
            "'US') WHERE s.symbol IN (SELECT DISTINCT symbol FROM event_pairs)").fetchall()
    } if span[0] is not None else set()
    if calendars:
        ensure_calendars(con, calendars, span[0] - timedelta(days=10), span[1] + timedelta(days=40))
    con.execute(SECURITY_SESSIONS)
    con.execute(EVENT_SESSIONS, bounds)
    con.execute("DROP TABLE event_pairs")
