"""How prices reacted to each article: returns, abnormal returns, volume, and the reverse view.

Per (article, security), at the article's event session (day 0; see ``sessions``):

* ``day0_return``: simple return of the adjusted close from the previous session;
* ``cr_*``: cumulative (compounded) return over [-1,+1] and [0,+5] sessions;
* ``car_*``: cumulative abnormal return, the sum of daily abnormal returns over the window,
  where abnormal = security return - benchmark return (market-adjusted), and ``car_*_mm``
  the same under the market model (alpha, beta by least squares over the 120 sessions
  ending 10 sessions before day 0; at least 60 needed);
* ``volume_ratio``: day-0 volume over the average of the 20 sessions before.

A measure whose window reaches past the stored prices is missing (NULL), never zero.
Everything is computed in DuckDB with window functions and as-of joins, cached in the
``reactions`` table, and recomputed whenever articles or prices change.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from dashboard.config import DEFAULT_BENCHMARKS
from dashboard.sessions import build_event_sessions, markets_table

ESTIMATION = (130, 11)  # rows before day 0: the market model's estimation window
MIN_ESTIMATION = 60
BENCHMARK_STALE_DAYS = 7  # a benchmark close older than this does not price a day

# Daily returns of every priced security, beside its benchmark's over the same interval.
DAILY = f"""
DELETE FROM daily_returns;
INSERT INTO daily_returns
WITH px AS (
    SELECT p.symbol, p.date, p.adj_close, p.volume, b.benchmark,
           row_number() OVER w AS i,
           p.adj_close / lag(p.adj_close) OVER w - 1 AS ret
    FROM prices p
    JOIN securities s USING (symbol)
    LEFT JOIN benchmarks b ON b.market = s.market
    WINDOW w AS (PARTITION BY p.symbol ORDER BY p.date)
),
bench AS (SELECT symbol AS benchmark, date AS bdate, adj_close AS bclose FROM prices),
bench_end AS (SELECT benchmark, max(bdate) AS bmax FROM bench GROUP BY ALL),
joined AS (
    SELECT px.*, CASE WHEN b.bdate >= px.date - INTERVAL {BENCHMARK_STALE_DAYS} DAY
                       AND px.date <= e.bmax THEN b.bclose END AS bclose
    FROM px
    ASOF LEFT JOIN bench b ON px.benchmark = b.benchmark AND px.date >= b.bdate
    LEFT JOIN bench_end e ON e.benchmark = px.benchmark
)
SELECT symbol, date, i, benchmark, adj_close, volume, ret, rm, ret - rm AS ar,
       regr_intercept(ret, rm) OVER est AS alpha,
       regr_slope(ret, rm) OVER est AS beta,
       regr_count(ret, rm) OVER est AS n_est
FROM (
    SELECT *, bclose / lag(bclose) OVER (PARTITION BY symbol ORDER BY i) - 1 AS rm FROM joined
)
WINDOW est AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN {ESTIMATION[0]} PRECEDING
               AND {ESTIMATION[1]} PRECEDING)
"""

# Per day: the window measures that day 0 at that row would have.
MEASURES = """
CREATE OR REPLACE TEMP TABLE day_measures AS
SELECT symbol, date, i, benchmark, ret, rm, ar, adj_close, volume, alpha, beta, n_est,
       sum(ar) OVER m1p1 AS car_m1_p1, count(ar) OVER m1p1 AS n_m1p1,
       sum(ar) OVER p0p5 AS car_0_p5, count(ar) OVER p0p5 AS n_p0p5,
       sum(ret) OVER m1p1 AS sret_m1p1, sum(rm) OVER m1p1 AS srm_m1p1,
       sum(ret) OVER p0p5 AS sret_p0p5, sum(rm) OVER p0p5 AS srm_p0p5,
       lead(adj_close, 1) OVER w / lag(adj_close, 2) OVER w - 1 AS cr_m1_p1,
       lead(adj_close, 5) OVER w / lag(adj_close, 1) OVER w - 1 AS cr_0_p5,
       avg(volume) OVER v20 AS volume_avg20, count(volume) OVER v20 AS n_v20
FROM daily_returns
WINDOW w AS (PARTITION BY symbol ORDER BY i),
       m1p1 AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING),
       p0p5 AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN CURRENT ROW AND 5 FOLLOWING),
       v20 AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING)
"""

REACTIONS = f"""
DELETE FROM reactions;
INSERT INTO reactions
SELECT e.article_id, e.symbol, e.session, d.benchmark,
       d.ret AS day0_return,
       d.ar AS day0_abnormal,
       d.cr_m1_p1,
       CASE WHEN d.n_m1p1 = 3 THEN d.car_m1_p1 END,
       d.cr_0_p5,
       CASE WHEN d.n_p0p5 = 6 THEN d.car_0_p5 END,
       CASE WHEN d.n_m1p1 = 3 AND d.n_est >= {MIN_ESTIMATION}
            THEN d.sret_m1p1 - 3 * d.alpha - d.beta * d.srm_m1p1 END,
       CASE WHEN d.n_p0p5 = 6 AND d.n_est >= {MIN_ESTIMATION}
            THEN d.sret_p0p5 - 6 * d.alpha - d.beta * d.srm_p0p5 END,
       CASE WHEN d.n_v20 = 20 AND d.volume_avg20 > 0 THEN d.volume / d.volume_avg20 END
FROM event_sessions e
LEFT JOIN day_measures d ON d.symbol = e.symbol AND d.date = e.session
"""


def _register_context(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str]) -> None:
    con.register("markets", markets_table())
    con.register("benchmarks", pa.table({"market": list(benchmarks), "benchmark": list(benchmarks.values())}))


def refresh_reactions(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str] | None = None) -> None:
    """Recompute the ``reactions`` cache from articles and prices (inside the caller's write)."""
    _register_context(con, benchmarks or DEFAULT_BENCHMARKS)
    build_event_sessions(con)
    con.execute(DAILY)
    con.execute(MEASURES)
    con.execute(REACTIONS)
    con.execute("DROP TABLE IF EXISTS day_measures; DROP TABLE IF EXISTS event_sessions; "
                "DROP TABLE IF EXISTS security_sessions")
    con.unregister("markets")
    con.unregister("benchmarks")


# --- reading ---------------------------------------------------------------------------

REACTION_COLUMNS = ["session", "day0_return", "day0_abnormal", "cr_m1_p1", "car_m1_p1", "cr_0_p5",
                    "car_0_p5", "car_m1_p1_mm", "car_0_p5_mm", "volume_ratio"]


def reactions_for(con: duckdb.DuckDBPyConnection, symbol: str, site_tz: str = "Asia/Shanghai",
                  start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """One row per article naming ``symbol``: when, what, and how the price reacted."""
    df = con.execute(f"""
        SELECT a.article_id, a.published_at, a.title, a.source, a.url,
               m.how, {", ".join("r." + c for c in REACTION_COLUMNS)}
        FROM mentions m JOIN articles a USING (article_id)
        LEFT JOIN reactions r ON r.article_id = m.article_id AND r.symbol = m.symbol
        WHERE m.symbol = $symbol
          AND ($start IS NULL OR (a.published_at AT TIME ZONE $tz)::DATE >= $start)
          AND ($end IS NULL OR (a.published_at AT TIME ZONE $tz)::DATE <= $end)
        ORDER BY a.published_at, a.article_id
    """, {"tz": site_tz, "symbol": symbol, "start": start, "end": end}).df()
    df["published_at"] = df["published_at"].dt.tz_convert(site_tz)
    return df


def _abnormal(model: str, alpha: str = "alpha", beta: str = "beta", n_est: str = "n_est",
              table: str = "d") -> str:
    """SQL for a day's abnormal return: market-adjusted, or under the market model."""
    if model == "market":
        return f"{table}.ar"
    if model == "mm":
        return (f"CASE WHEN {n_est} >= {MIN_ESTIMATION} THEN {table}.ret - {alpha} - {beta} * {table}.rm END")
    raise ValueError(f"unknown model {model!r}: 'market' or 'mm'")


def average_reaction(con: duckdb.DuckDBPyConnection, events: pd.DataFrame, before: int = 5,
                     after: int = 10, z: float = 1.96, model: str = "market") -> pd.DataFrame:
    """Mean cumulative abnormal return from ``-before`` to ``+after`` sessions, with a band.

    ``events`` has columns ``symbol`` and ``session`` (day 0). Only events whose whole
    window has prices count (``n`` says how many). The band is the mean plus or minus
    ``z`` standard errors across events. ``model``: ``market`` (security minus benchmark)
    or ``mm`` (market model, with each event's alpha and beta).
    """
    ar = _abnormal(model, "ev.alpha", "ev.beta", "ev.n_est")
    if events.empty:
        return pd.DataFrame(columns=["day", "caar", "low", "high", "n"])
    con.register("chosen", pa.table({
        "symbol": list(events["symbol"]),
        "session": pa.array(pd.to_datetime(events["session"]).dt.date, pa.date32()),
    }))
    out = con.execute(f"""
        WITH ev AS (
            SELECT row_number() OVER () AS event, c.symbol, d.i AS i0, d.alpha, d.beta, d.n_est
            FROM chosen c JOIN daily_returns d ON d.symbol = c.symbol AND d.date = c.session
        ),
        daily AS (
            SELECT ev.event, d.i - ev.i0 AS day, d.i, {ar} AS ar
            FROM ev JOIN daily_returns d ON d.symbol = ev.symbol AND d.i BETWEEN ev.i0 - {before} AND ev.i0 + {after}
        ),
        path AS (
            SELECT event, day, ar, sum(ar) OVER (PARTITION BY event ORDER BY i) AS car,
                   count(ar) OVER (PARTITION BY event) AS n_days
            FROM daily
        )
        SELECT day, avg(car) AS caar,
               avg(car) - {z} * stddev_samp(car) / sqrt(count(*)) AS low,
               avg(car) + {z} * stddev_samp(car) / sqrt(count(*)) AS high,
               count(*) AS n
        FROM path WHERE n_days = {before + after + 1}
        GROUP BY day ORDER BY day
    """).df()
    con.unregister("chosen")
    return out


def largest_moves(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None = None,
                  end: date | None = None, limit: int = 10, lookback: int = 1,
                  site_tz: str = "Asia/Shanghai", model: str = "market") -> pd.DataFrame:
    """The largest absolute abnormal daily moves of ``symbol``, each with the articles whose
    event session is that day or one of the ``lookback`` sessions before it."""
    return con.execute(f"""
        WITH moves AS (
            SELECT date, i, ret, rm, {_abnormal(model)} AS ar, lag(date, $lookback) OVER (ORDER BY i) AS since
            FROM daily_returns d WHERE symbol = $symbol
        ),
        top AS (
            SELECT * FROM moves
            WHERE ar IS NOT NULL AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
            ORDER BY abs(ar) DESC LIMIT $limit
        )
        SELECT date, ret, rm, ar, coalesce(found, []) AS articles FROM (
            SELECT t.date, t.ret, t.rm, t.ar,
                   list(struct_pack(article_id := a.article_id, title := a.title, source := a.source,
                                    published := strftime(a.published_at AT TIME ZONE $tz, '%Y-%m-%d %H:%M'),
                                    session := r.session)
                        ORDER BY a.published_at) FILTER (WHERE a.article_id IS NOT NULL) AS found
            FROM top t
            LEFT JOIN reactions r ON r.symbol = $symbol AND r.session <= t.date
                 AND r.session >= coalesce(t.since, t.date)
            LEFT JOIN articles a ON a.article_id = r.article_id
            GROUP BY t.date, t.ret, t.rm, t.ar
        ) ORDER BY abs(ar) DESC
    """, {"symbol": symbol, "start": start, "end": end, "limit": limit, "lookback": lookback,
          "tz": site_tz}).df()
