"""How prices reacted to each article: returns, abnormal returns, volume, how unusual the
move was, and the reverse view.

Per (article, security), at the article's event session (day 0; see ``sessions``):

* ``day0_return``: simple return of the adjusted close from the previous session;
* ``cr_*``: cumulative (compounded) return over [-1,+1] and [0,+5] sessions;
* ``car_*``: cumulative abnormal return over [-1,+1], [0,+1], [0,+2] and [0,+5]: the sum of
  daily abnormal returns, where abnormal = security return - benchmark return
  (market-adjusted), and ``car_*_mm`` the same under the market model (alpha, beta by least
  squares over the estimation window: the 120 sessions from 130 to 11 before day 0, at
  least 60 valid);
* ``sigma``: the standard deviation of the daily abnormal returns over the estimation window
  (ddof 1), ``sigma_mm`` of the market model's residuals (ddof 2), ``n_est`` the sessions in
  it; ``t_car_*`` = CAR / (sigma * sqrt(L)) for a window of L sessions, ``p_car_*`` its
  two-sided p-value under Student's t with n_est - 1 (market model: n_est - 2) degrees of
  freedom;
* ``volume_ratio``: day-0 volume over the average of the 20 sessions before.

A measure whose window reaches past the stored prices is missing (NULL), never zero.
Everything is computed in DuckDB with window functions and as-of joins (the t -> p step by a
vectorized Python function), and cached: ``daily_returns`` per security and day,
``session_reactions`` per security and session (every session, so an article never waits for
its measure), ``article_sessions`` per (article, security), and the ``reactions`` view joins
them into one row per (article, security). They are recomputed for what changed: the
securities whose prices changed (with every security measured against one of them), and the
articles added, edited or removed, which only need their sessions placed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from dashboard.config import DEFAULT_BENCHMARKS
from dashboard.i18n import reaction_sentence
from dashboard.sessions import build_event_sessions, markets_table
from dashboard.store import local_duckdb

ESTIMATION = (130, 11)  # rows before day 0: the estimation window (market model, sigma)
MIN_ESTIMATION = 60
BENCHMARK_STALE_DAYS = 7  # a benchmark close older than this does not price a day
MIN_EVENTS = 5  # an average over fewer events gets no band and no test

# CAR windows: first and last session from day 0, by the suffix their columns carry.
WINDOWS: dict[str, tuple[int, int]] = {"m1_p1": (-1, 1), "0_p1": (0, 1), "0_p2": (0, 2), "0_p5": (0, 5)}
MODELS = ("market", "mm")


def sessions_in(window: str) -> int:
    first, last = WINDOWS[window]
    return last - first + 1


def column(window: str, model: str = "market", stat: str = "car") -> str:
    """The reactions column of a window's CAR (``stat`` "car"), t-statistic ("t"), p-value
    ("p") or standard error ("se", in ``reactions_for``), e.g. ``p_car_m1_p1_mm``."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}: one of {', '.join(WINDOWS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: 'market' or 'mm'")
    if stat not in {"car", "t", "p", "se"}:
        raise ValueError(f"unknown statistic {stat!r}: 'car', 't', 'p' or 'se'")
    name = f"car_{window}" + ("_mm" if model == "mm" else "")
    return name if stat == "car" else f"{stat}_{name}"


def _rows(first: int, last: int) -> str:
    edge = {0: "CURRENT ROW"}
    return (f"ROWS BETWEEN {edge.get(first, f'{-first} PRECEDING')} AND "
            f"{edge.get(last, f'{last} FOLLOWING')}")


def _each_window(template: str, sep: str = ",\n       ") -> str:
    """``template`` formatted for every CAR window ({w}: suffix, {L}: sessions in it)."""
    return sep.join(template.format(w=w, L=sessions_in(w)) for w in WINDOWS)


# Daily returns of the priced securities ({symbols}: a condition on their symbol), beside
# their benchmark's over the same interval, and the estimation window's market model and noise
# as of each row. The residuals' variance is Syy (1 - r^2) / (n - 2); a security that is its
# own benchmark has none (sigma NULL, not 0). Each security's rows depend on its own prices
# and its benchmark's only, so recomputing some securities leaves the others' as they were.
DAILY = f"""
DELETE FROM daily_returns WHERE {{symbols}};
INSERT INTO daily_returns BY NAME
WITH px AS (
    SELECT p.symbol, p.date, p.adj_close, p.volume, b.benchmark,
           row_number() OVER w AS i,
           p.adj_close / lag(p.adj_close) OVER w - 1 AS ret
    FROM prices p
    JOIN securities s USING (symbol)
    LEFT JOIN benchmarks b ON b.market = s.market
    WHERE {{symbols}}
    WINDOW w AS (PARTITION BY p.symbol ORDER BY p.date)
),
bench AS (SELECT symbol AS benchmark, date AS bdate, adj_close AS bclose FROM prices
          WHERE symbol IN (SELECT benchmark FROM benchmarks)),
bench_end AS (SELECT benchmark, max(bdate) AS bmax FROM bench GROUP BY ALL),
joined AS (
    SELECT px.*, CASE WHEN b.bdate >= px.date - INTERVAL {BENCHMARK_STALE_DAYS} DAY
                       AND px.date <= e.bmax THEN b.bclose END AS bclose
    FROM px
    ASOF LEFT JOIN bench b ON px.benchmark = b.benchmark AND px.date >= b.bdate
    LEFT JOIN bench_end e ON e.benchmark = px.benchmark
),
returns AS (
    SELECT *, bclose / lag(bclose) OVER (PARTITION BY symbol ORDER BY i) - 1 AS rm FROM joined
),
estimated AS (
    SELECT symbol, date, i, benchmark, adj_close, volume, ret, rm, ret - rm AS ar,
           regr_intercept(ret, rm) OVER est AS alpha,
           regr_slope(ret, rm) OVER est AS beta,
           regr_count(ret, rm) OVER est AS n_est,
           stddev_samp(ret - rm) OVER est AS sd_ar,
           regr_syy(ret, rm) OVER est AS syy,
           regr_syy(ret, rm) OVER est * (1 - regr_r2(ret, rm) OVER est) AS ssr
    FROM returns
    WINDOW est AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN {ESTIMATION[0]} PRECEDING
                   AND {ESTIMATION[1]} PRECEDING)
)
SELECT * EXCLUDE (sd_ar, syy, ssr),
       CASE WHEN n_est >= {MIN_ESTIMATION} AND sd_ar > 0 THEN sd_ar END AS sigma,
       CASE WHEN n_est >= {MIN_ESTIMATION} AND ssr > 1e-12 * syy THEN sqrt(ssr / (n_est - 2)) END AS sigma_mm
FROM estimated
"""

# Per day of the securities ({symbols}: a condition on their symbol): the window measures
# that day 0 at that row would have.
MEASURES = f"""
CREATE OR REPLACE TEMP TABLE day_measures AS
SELECT symbol, date, i, benchmark, ret, rm, ar, adj_close, volume, alpha, beta, n_est, sigma, sigma_mm,
       {_each_window("count(ar) OVER w_{w} AS n_{w}, sum(ar) OVER w_{w} AS sar_{w}, "
                     "sum(ret) OVER w_{w} AS sret_{w}, sum(rm) OVER w_{w} AS srm_{w}")},
       lead(adj_close, 1) OVER w / lag(adj_close, 2) OVER w - 1 AS cr_m1_p1,
       lead(adj_close, 5) OVER w / lag(adj_close, 1) OVER w - 1 AS cr_0_p5,
       avg(volume) OVER v20 AS volume_avg20, count(volume) OVER v20 AS n_v20
FROM daily_returns
WHERE {{symbols}}
WINDOW w AS (PARTITION BY symbol ORDER BY i),
       {", ".join(f"w_{w} AS (PARTITION BY symbol ORDER BY i {_rows(*WINDOWS[w])})" for w in WINDOWS)},
       v20 AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING)
"""

# Per session of those securities (an event, once an article falls on it): the CARs, then
# their t-statistics. Every session is measured, so a new article never needs a measure that
# is not there yet: an ingest only places its articles on their sessions.
EVENTS = f"""
CREATE OR REPLACE TEMP TABLE reaction_events AS
WITH cars AS (
    SELECT d.symbol, d.date AS session, d.benchmark,
           d.ret AS day0_return,
           d.ar AS day0_abnormal,
           d.cr_m1_p1,
           d.cr_0_p5,
           {_each_window("CASE WHEN d.n_{w} = {L} THEN d.sar_{w} END AS car_{w}")},
           {_each_window("CASE WHEN d.n_{w} = {L} AND d.n_est >= " + str(MIN_ESTIMATION)
                         + " THEN d.sret_{w} - {L} * d.alpha - d.beta * d.srm_{w} END AS car_{w}_mm")},
           CASE WHEN d.n_v20 = 20 AND d.volume_avg20 > 0 THEN d.volume / d.volume_avg20 END AS volume_ratio,
           d.sigma, d.sigma_mm, d.n_est
    FROM day_measures d
)
SELECT *,
       {_each_window("car_{w} / (sigma * sqrt({L})) AS t_car_{w}")},
       {_each_window("car_{w}_mm / (sigma_mm * sqrt({L})) AS t_car_{w}_mm")}
FROM cars
"""

# The measures of every session of the securities measured (the reaction_p table holds the
# p-values, see _event_p_values), and the session of each (article, security) pair placed
# ({pairs}: a condition on the pairs to replace), in order of security and time.
SESSION_REACTIONS = """
DELETE FROM session_reactions WHERE {symbols};
INSERT INTO session_reactions BY NAME
SELECT v.*, p.* EXCLUDE (symbol, session)
FROM reaction_events v
LEFT JOIN reaction_p p ON p.symbol = v.symbol AND p.session = v.session
ORDER BY v.symbol, v.session
"""
# The pairs of the articles in scope, replaced (an ingest's: few, and mostly new) ...
ARTICLE_SESSIONS = """
DELETE FROM article_sessions WHERE {pairs};
INSERT INTO article_sessions BY NAME
SELECT article_id, symbol, published_at, session FROM event_sessions
ORDER BY symbol, session, published_at, article_id
"""
# ... or, with securities in scope (a price import), only the pairs whose session (or time)
# moved: a security's prices rarely move any of its thousands.
MOVED_ARTICLE_SESSIONS = """
CREATE OR REPLACE TEMP TABLE moved_pairs AS
SELECT a.rid FROM (SELECT rowid AS rid, * FROM article_sessions WHERE {pairs}) a
ANTI JOIN event_sessions e ON e.article_id = a.article_id AND e.symbol = a.symbol
     AND e.session IS NOT DISTINCT FROM a.session AND e.published_at IS NOT DISTINCT FROM a.published_at;
DELETE FROM article_sessions WHERE rowid IN (SELECT rid FROM moved_pairs);
INSERT INTO article_sessions BY NAME
SELECT e.article_id, e.symbol, e.published_at, e.session FROM event_sessions e
ANTI JOIN (SELECT * FROM article_sessions WHERE {pairs}) a
     ON e.article_id = a.article_id AND e.symbol = a.symbol
     AND e.session IS NOT DISTINCT FROM a.session AND e.published_at IS NOT DISTINCT FROM a.published_at
ORDER BY e.symbol, e.session, e.published_at, e.article_id;
DROP TABLE moved_pairs
"""


SERIES_MAX_DF = 1000  # beyond: scipy's stdtr (the average view's test over many events)
_TINY = 1e-300


def two_sided_p(t: Any, df: Any) -> np.ndarray:
    """Two-sided p-values P(|T| >= |t|) of t-statistics under Student's t with ``df`` (whole)
    degrees of freedom; NaN where ``df`` is not a whole number >= 1.

    Whole degrees of freedom have a closed form, a finite series in cos^2 of atan(t / sqrt(df))
    (Abramowitz & Stegun 26.7.3-4), used where p >= 0.01; below, where 1 - (that sum) would
    lose relative precision, the incomplete beta I_x(df/2, 1/2) by its continued fraction.
    Within 1e-12 (relative) of scipy's stdtr, and it spares every process that refreshes
    reactions importing scipy.special (0.2 s of CPU, more than a small refresh itself).
    """
    t, nu = np.broadcast_arrays(np.abs(np.asarray(t, dtype=float)), np.asarray(df, dtype=float))
    out = np.full(t.shape, np.nan)
    whole = (nu >= 1) & (nu == np.floor(nu)) & ~np.isnan(t)
    if (big := whole & (nu > SERIES_MAX_DF)).any():
        from scipy.special import stdtr

        out[big] = 2 * stdtr(nu[big], -t[big])
    out[whole & ~big & np.isinf(t)] = 0.0
    ok = whole & ~big & np.isfinite(t)
    if not ok.any():
        return out
    tt, n = t[ok], nu[ok]
    m, odd = np.floor(n / 2), n % 2 == 1
    c2 = n / (n + tt * tt)  # cos^2, and sin, of atan(t / sqrt(n))
    sin = tt / np.sqrt(n + tt * tt)
    term, total = np.ones(tt.shape), np.where(m > 0, 1.0, 0.0)
    for j in range(1, int(m.max())):
        term = np.where(odd, term * (2 * j) / (2 * j + 1) * c2, term * (2 * j - 1) / (2 * j) * c2)
        total += np.where(j < m, term, 0.0)
    p = np.where(odd, 1 - 2 / np.pi * (np.arctan(tt / np.sqrt(n)) + sin * np.sqrt(c2) * total),
                 1 - sin * total)
    if (tail := p < 0.01).any():
        p[tail] = _beta_half(n[tail] / 2, c2[tail])
    out[ok] = np.clip(p, 0.0, 1.0)
    return out


def _beta_half(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The regularized incomplete beta I_x(a, 1/2) by its continued fraction (modified Lentz),
    for x below (a + 1) / (a + 2.5), where it converges (p < 0.01 is well below)."""
    b = 0.5
    values, at = np.unique(a, return_inverse=True)
    log_beta = np.array([math.lgamma(v + b) - math.lgamma(v) - math.lgamma(b) for v in values])[at]
    front = np.exp(log_beta + a * np.log(x) + b * np.log1p(-x)) / a
    c = np.ones_like(x)
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    done = np.zeros(x.shape, dtype=bool)  # a converged value is left alone: each is its own, whatever
    for k in range(1, 1000):               # else is computed beside it
        moved = h.copy()
        for num in (k * (b - k) * x / ((a - 1 + 2 * k) * (a + 2 * k)),
                    -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 1 + 2 * k))):
            d = 1 + num * d
            d = 1 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1 + num / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            step = d * c
            moved *= step
        h = np.where(done, h, moved)
        done |= np.abs(step - 1) < 1e-15
        if done.all():
            break
    return front * h


def _event_p_values(con: duckdb.DuckDBPyConnection) -> None:
    """Register ``reaction_p``: per event, the p-value of every window's t under both models
    (Student's t with n_est - 1, market model n_est - 2, degrees of freedom), all in one
    vectorized call."""
    names = [(w, m) for m in MODELS for w in WINDOWS]
    ev = con.sql(f"SELECT symbol, session, n_est, {', '.join(column(w, m, 't') for w, m in names)} "
                 "FROM reaction_events").to_arrow_table()
    n = ev.num_rows
    t = np.concatenate([ev.column(column(w, m, "t")).to_numpy() for w, m in names]) if n else np.array([])
    n_est = ev.column("n_est").to_numpy(zero_copy_only=False).astype(float)
    df = np.concatenate([n_est - (1 if m == "market" else 2) for _, m in names]) if n else np.array([])
    p = two_sided_p(t, df).reshape(len(names), n)
    con.register("reaction_p", pa.table({
        "symbol": ev.column("symbol"), "session": ev.column("session"),
        **{column(w, m, "p"): pa.array(p[k], pa.float64(), mask=np.isnan(p[k]))
           for k, (w, m) in enumerate(names)}}))


def _register_context(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str]) -> None:
    con.register("markets", markets_table())
    con.register("benchmarks", pa.table({"market": list(benchmarks), "benchmark": list(benchmarks.values())}))


def _unregister_context(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("markets", "benchmarks"):
        con.unregister(name)


_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# What the computation reads (table -> columns, None: every column) and writes: on a
# PostgreSQL store it runs in DuckDB over these rows (see store.local_duckdb), so both stores
# hold the same numbers. A scoped refresh also reads the daily returns it keeps (and the
# table of articles it was given), and writes back only the rows of its scope.
REFRESH_READS: dict[str, list[str] | None] = {
    "prices": ["symbol", "date", "adj_close", "volume"], "securities": ["symbol", "market"],
    "mentions": ["article_id", "symbol", "published_at"], "articles": ["article_id"],
    "calendar_sessions": None,
}
REFRESH_WRITES = ("calendar_sessions", "daily_returns", "session_reactions", "article_sessions")


def refresh_reactions(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str] | None = None, *,
                      articles: Iterable[str] | str | None = None,
                      symbols: Iterable[str] | None = None) -> None:
    """Recompute the ``daily_returns``, ``session_reactions`` and ``article_sessions`` caches
    (inside the caller's write).

    With neither ``articles`` nor ``symbols``, everything. Otherwise only what they change:
    ``articles``, the ids of articles added, edited or removed since the caches were last
    brought up to date (or the name of a table with an ``article_id`` column holding them),
    and ``symbols``, the securities whose prices changed. A benchmark's change reaches every
    security measured against it; a security whose stored benchmark is not the one
    ``benchmarks`` now gives it is recomputed too. The rows are those a full recompute gives.
    """
    if isinstance(symbols, str):
        symbols = [symbols]
    if isinstance(articles, str) and not _TABLE_NAME.fullmatch(articles):
        raise ValueError(f"articles={articles!r}: the name of a table with an article_id column, "
                         "or a list of article ids")
    if not con.execute("SELECT EXISTS (SELECT 1 FROM prices)").fetchall()[0][0]:
        con.execute("DELETE FROM daily_returns; DELETE FROM session_reactions; DELETE FROM article_sessions")
        return  # no prices: nothing to measure
    scoped = not (articles is None and symbols is None)
    reads = dict(REFRESH_READS)
    if scoped:
        reads["daily_returns"] = None  # the scope's benchmarks, and the returns it keeps
        if isinstance(articles, str):
            reads[articles] = ["article_id"]
    # (table -> None: replaced whole; or the rows to replace, by column values: see below)
    writes: dict[str, dict[str, list[str]] | None] = dict.fromkeys(REFRESH_WRITES)
    with local_duckdb(con, reads, writes) as con:
        _register_context(con, benchmarks or DEFAULT_BENCHMARKS)
        try:
            if not scoped:
                _recompute(con, scoped=False)
            else:
                _scope(con, articles, symbols)
                if _covers_everything(con):  # e.g. a first import of every security's prices
                    _recompute(con, scoped=False)
                else:
                    scope_symbols = [s for (s,) in con.execute("SELECT symbol FROM reaction_symbols").fetchall()]
                    scope_articles = [a for (a,) in con.execute(
                        "SELECT article_id FROM reaction_articles").fetchall()]
                    # what a scoped recompute replaces (on PostgreSQL, only these rows go back)
                    writes["daily_returns"] = {"symbol": scope_symbols}
                    writes["session_reactions"] = {"symbol": scope_symbols}
                    writes["article_sessions"] = {"symbol": scope_symbols, "article_id": scope_articles}
                    if scope_symbols or scope_articles:
                        _recompute(con, scoped=True)
                con.execute("DROP TABLE IF EXISTS reaction_symbols; DROP TABLE IF EXISTS reaction_articles")
        finally:
            _unregister_context(con)


def _scope(con: duckdb.DuckDBPyConnection, articles: Iterable[str] | str | None,
           symbols: Iterable[str] | None) -> None:
    """Temp tables ``reaction_articles`` and ``reaction_symbols``: the articles whose pairs,
    and the securities whose returns and pairs, are to be recomputed."""
    if isinstance(articles, str):
        if not _TABLE_NAME.fullmatch(articles):
            raise ValueError(f"articles={articles!r}: the name of a table with an article_id column, "
                             "or a list of article ids")
        con.execute(f"CREATE OR REPLACE TEMP TABLE reaction_articles AS "
                    f"SELECT DISTINCT article_id FROM {articles} WHERE article_id IS NOT NULL")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE reaction_articles AS "
                    "SELECT DISTINCT unnest(?::VARCHAR[]) AS article_id", [sorted(set(articles or ()))])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE reaction_symbols AS
        WITH given AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS symbol)
        SELECT symbol FROM given
        UNION  -- measured against a benchmark whose prices changed
        SELECT s.symbol FROM securities s JOIN benchmarks b ON b.market = s.market
        WHERE b.benchmark IN (SELECT symbol FROM given)
        UNION  -- measured against another benchmark than the one it has now
        SELECT d.symbol FROM (SELECT DISTINCT symbol, benchmark FROM daily_returns) d
        LEFT JOIN securities s USING (symbol) LEFT JOIN benchmarks b ON b.market = s.market
        WHERE d.benchmark IS DISTINCT FROM b.benchmark
    """, [sorted(set(symbols or ()))])


def _covers_everything(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the scope takes in every priced security, or every article: then a full
    recompute does the same work without testing each row against the scope."""
    return bool(con.execute("""
        SELECT NOT EXISTS (SELECT 1 FROM (SELECT DISTINCT symbol FROM prices) p
                           WHERE symbol NOT IN (SELECT symbol FROM reaction_symbols))
            OR ((SELECT count(*) FROM reaction_articles) >= (SELECT count(*) FROM articles)
                AND NOT EXISTS (SELECT 1 FROM articles ANTI JOIN reaction_articles USING (article_id)))
    """).fetchall()[0][0])


LITERAL_SYMBOLS_MAX = 500  # up to this many, the scope's symbols are written into the SQL
NO_SYMBOLS = "(SELECT NULL::VARCHAR WHERE FALSE)"


def _symbols_in(con: duckdb.DuckDBPyConnection) -> str:
    """The scope's symbols as SQL after IN: literals when few (zone maps then skip the row
    groups of other securities in mentions, clustered by symbol), else a subquery."""
    symbols = [s for (s,) in con.execute(
        f"SELECT symbol FROM reaction_symbols ORDER BY 1 LIMIT {LITERAL_SYMBOLS_MAX + 1}").fetchall()]
    if len(symbols) > LITERAL_SYMBOLS_MAX:
        return "(SELECT symbol FROM reaction_symbols)"
    if not symbols:  # (not "(NULL)": NOT IN that is never true)
        return NO_SYMBOLS
    return "(" + ", ".join("'" + s.replace("'", "''") + "'" for s in symbols) + ")"


def _pairs(con: duckdb.DuckDBPyConnection, symbols_in: str) -> str:
    """The pairs a scoped refresh replaces: of a security or an article in its scope."""
    parts = [f"symbol IN {symbols_in}"] if symbols_in != NO_SYMBOLS else []
    if con.execute("SELECT EXISTS (SELECT 1 FROM reaction_articles)").fetchall()[0][0]:
        parts.append("article_id IN (SELECT article_id FROM reaction_articles)")
    return " OR ".join(parts) or "FALSE"


def _recompute(con: duckdb.DuckDBPyConnection, scoped: bool) -> None:
    """Replace every security's daily returns and every pair's reaction, or (``scoped``) those
    of the securities in ``reaction_symbols`` and of the pairs naming them or an article in
    ``reaction_articles``."""
    symbols_in = _symbols_in(con) if scoped else ""
    measured = f"symbol IN {symbols_in}" if scoped else "TRUE"
    build_event_sessions(con, (symbols_in, "reaction_articles") if scoped else None)
    if not scoped or symbols_in != NO_SYMBOLS:  # an ingest alone measures nothing: it places articles
        con.execute(DAILY.format(symbols=measured))
        con.execute(MEASURES.format(symbols=measured))
        con.execute(EVENTS)
        _event_p_values(con)
        try:
            con.execute(SESSION_REACTIONS.format(symbols=measured))
        finally:
            con.unregister("reaction_p")
    placing = ARTICLE_SESSIONS if symbols_in in ("", NO_SYMBOLS) else MOVED_ARTICLE_SESSIONS
    con.execute(placing.format(pairs=_pairs(con, symbols_in) if scoped else "TRUE"))
    con.execute("DROP TABLE IF EXISTS day_measures; DROP TABLE IF EXISTS event_sessions; "
                "DROP TABLE IF EXISTS security_sessions; DROP TABLE IF EXISTS reaction_events")


# --- reading ---------------------------------------------------------------------------

REACTION_COLUMNS = ["session", "day0_return", "day0_abnormal", "cr_m1_p1", "car_m1_p1", "cr_0_p5",
                    "car_0_p5", "car_m1_p1_mm", "car_0_p5_mm", "volume_ratio"]
# How unusual each CAR was: the other windows' CARs, the estimation window's noise, and per
# window and model the t-statistic and p-value (filter on ``p_car_*`` for significant moves).
SIGNIFICANCE_COLUMNS = (
    [column(w, m) for m in MODELS for w in WINDOWS if column(w, m) not in REACTION_COLUMNS]
    + ["sigma", "sigma_mm", "n_est"]
    + [column(w, m, stat) for stat in ("t", "p") for m in MODELS for w in WINDOWS]
)


def _standard_errors(table: str = "r") -> str:
    """SQL for every window's SE(CAR) = sigma * sqrt(L), under both models."""
    return ", ".join(
        f"{table}.{'sigma_mm' if m == 'mm' else 'sigma'} * sqrt({sessions_in(w)}) AS {column(w, m, 'se')}"
        for m in MODELS for w in WINDOWS)


def reactions_for(con: duckdb.DuckDBPyConnection, symbol: str, site_tz: str = "Asia/Shanghai",
                  start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """One row per article naming ``symbol``: when, what, and how the price reacted."""
    df = con.execute(f"""
        SELECT m.article_id, m.published_at, m.title, m.source, m.url,
               m.how, {", ".join("r." + c for c in REACTION_COLUMNS + SIGNIFICANCE_COLUMNS)},
               {_standard_errors()}
        FROM mentions m  -- the per-security path: it carries what is shown of each article
        LEFT JOIN reactions r ON r.article_id = m.article_id AND r.symbol = m.symbol
        WHERE m.symbol = $symbol
          AND ($start IS NULL OR (m.published_at AT TIME ZONE $tz)::DATE >= $start)
          AND ($end IS NULL OR (m.published_at AT TIME ZONE $tz)::DATE <= $end)
        ORDER BY m.published_at, m.article_id
    """, {"tz": site_tz, "symbol": symbol, "start": start, "end": end}).df()
    df["published_at"] = df["published_at"].dt.tz_convert(site_tz)
    return df


def describe_reaction(row: Mapping[str, Any], lang: str, window: str = "m1_p1", model: str = "market",
                      alpha: float = 0.05) -> str:
    """A reaction (a row with the reaction columns, e.g. from ``related_coverage``) in words:
    "−4.3% abnormal over 3 days, unusual: p = 0.01"."""
    def value(name: str) -> float | None:
        v = row.get(name)
        return None if v is None or pd.isna(v) else float(v)

    return reaction_sentence(value(column(window, model)), value(column(window, model, "p")),
                             sessions_in(window), lang, alpha)


def _abnormal(model: str, alpha: str = "alpha", beta: str = "beta", n_est: str = "n_est",
              table: str = "d") -> str:
    """SQL for a day's abnormal return: market-adjusted, or under the market model."""
    if model == "market":
        return f"{table}.ar"
    if model == "mm":
        return (f"CASE WHEN {n_est} >= {MIN_ESTIMATION} THEN {table}.ret - {alpha} - {beta} * {table}.rm END")
    raise ValueError(f"unknown model {model!r}: 'market' or 'mm'")


Note = tuple[str, Mapping[str, Any]]  # an i18n key and the values its sentence takes


@dataclass(frozen=True)
class AverageReaction:
    """The average reaction to a set of events and how significant it is (picklable).

    ``days``: per session from day 0, the CAAR (mean CAR from ``-before``), ``n`` the events
    behind it, ``se`` the cross-sectional standard error, and the band ``low``/``high`` where
    at least ``MIN_EVENTS`` contribute (NaN elsewhere). The tests are over ``window``, on the
    ``tested`` events that have it whole and an estimation window: the Boehmer–Musumeci–Poulsen
    t on standardized CARs, and Cowan's generalized sign test; None with fewer than
    ``MIN_EVENTS``. ``notes`` say what the sample allows, ``warnings`` why events are not
    independent, each as an i18n key with its values: ``t(key, lang, **values)``.
    """

    days: pd.DataFrame
    model: str
    level: float
    window: tuple[int, int]
    articles: int  # the events given with a session (one per article)
    events: int  # distinct (security, session) events with prices on day 0
    tested: int = 0
    car: float | None = None  # mean CAR over ``window`` of the tested events
    bmp_t: float | None = None
    bmp_p: float | None = None
    positive: int = 0  # tested events with a positive CAR over ``window``
    expected_positive: float | None = None  # share of positive abnormal returns in estimation windows
    sign_z: float | None = None
    sign_p: float | None = None
    notes: tuple[Note, ...] = ()
    warnings: tuple[Note, ...] = ()

    @property
    def empty(self) -> bool:
        """No event has prices around it."""
        return self.days.empty


DAY_COLUMNS = ["day", "caar", "n", "se", "low", "high"]

# The chosen events that have a price row on their session: one per (security, session).
_EVENTS = """
WITH given AS (SELECT DISTINCT symbol, session FROM chosen),
ev AS (
    SELECT row_number() OVER (ORDER BY g.symbol, g.session) AS event, g.symbol, g.session,
           d.i AS i0, d.alpha, d.beta, d.n_est, d.{sigma} AS sigma
    FROM given g JOIN daily_returns d ON d.symbol = g.symbol AND d.date = g.session
)"""


def average_reaction(con: duckdb.DuckDBPyConnection, events: pd.DataFrame, before: int = 5,
                     after: int = 10, level: float = 0.95, model: str = "market",
                     window: tuple[int, int] = (-1, 1)) -> AverageReaction:
    """The mean cumulative abnormal return from ``-before`` to ``+after`` sessions around
    ``events`` (columns ``symbol`` and ``session``, day 0; several securities may pool), with a
    ``level`` band from Student's t where at least ``MIN_EVENTS`` events contribute, and the
    significance of the mean CAR over ``window``. ``model``: ``market`` (security minus
    benchmark) or ``mm`` (market model, with each event's alpha and beta). The same security
    and session given twice (two articles) counts once.
    """
    ar = _abnormal(model, "ev.alpha", "ev.beta", "ev.n_est")
    if not 0 < level < 1:
        raise ValueError(f"level {level!r}: a confidence level between 0 and 1, e.g. 0.95")
    first, last = window
    if first > last:
        raise ValueError(f"window {window!r}: the first session comes after the last")
    chosen = events.dropna(subset=["session"])
    given = (chosen.assign(session=pd.to_datetime(chosen["session"]).dt.date)
             .drop_duplicates(["symbol", "session"]))
    if given.empty:
        return AverageReaction(pd.DataFrame(columns=DAY_COLUMNS), model, level, window, len(chosen), 0)
    con.register("chosen", pa.table({"symbol": list(given["symbol"]),
                                     "session": pa.array(list(given["session"]), pa.date32())}))
    ev_sql = _EVENTS.format(sigma="sigma_mm" if model == "mm" else "sigma")
    params = {"before": before, "after": after}
    try:
        days = con.execute(f"""{ev_sql},
            daily AS (
                SELECT ev.event, d.i - ev.i0 AS day, {ar} AS ar
                FROM ev JOIN daily_returns d
                  ON d.symbol = ev.symbol AND d.i BETWEEN ev.i0 - $before AND ev.i0 + $after
            ),
            path AS (
                SELECT event, day, sum(ar) OVER run AS car, count(ar) OVER run AS n_ar
                FROM daily WINDOW run AS (PARTITION BY event ORDER BY day)
            )
            SELECT event, day, car FROM path
            WHERE n_ar = day + $before + 1  -- every abnormal return from -before to this day is known
            ORDER BY day, event
        """, params).df()
        # across events in Python: the same digits from either store (their stddevs differ in the last)
        by_day = days.groupby("day", sort=True)["car"]
        days = pd.DataFrame({"caar": by_day.mean(), "n": by_day.count(),
                             "se": by_day.std(ddof=1) / np.sqrt(by_day.count())}).reset_index()
        per_event = con.execute(f"""{ev_sql},
            win AS (
                SELECT ev.event, sum({ar}) AS car, count({ar}) AS n_ar
                FROM ev JOIN daily_returns d
                  ON d.symbol = ev.symbol AND d.i BETWEEN ev.i0 + $first AND ev.i0 + $last
                GROUP BY ev.event
            ),
            est AS (
                SELECT ev.event, avg(CASE WHEN {ar} > 0 THEN 1.0 ELSE 0.0 END) AS positive_share
                FROM ev JOIN daily_returns d ON d.symbol = ev.symbol
                 AND d.i BETWEEN ev.i0 - {ESTIMATION[0]} AND ev.i0 - {ESTIMATION[1]}
                WHERE {ar} IS NOT NULL
                GROUP BY ev.event
            )
            SELECT ev.symbol, ev.session,
                   CASE WHEN win.n_ar = $len THEN win.car END AS car,
                   CASE WHEN win.n_ar = $len THEN win.car / (ev.sigma * sqrt($len)) END AS scar,
                   est.positive_share,
                   count(*) OVER (PARTITION BY ev.session) > 1 AS same_session,
                   coalesce(ev.i0 - lag(ev.i0) OVER sec <= $span, false)
                       OR coalesce(lead(ev.i0) OVER sec - ev.i0 <= $span, false) AS overlaps
            FROM ev LEFT JOIN win USING (event) LEFT JOIN est USING (event)
            WINDOW sec AS (PARTITION BY ev.symbol ORDER BY ev.i0)
        """, {"first": first, "last": last, "len": last - first + 1, "span": before + after}).df()
    finally:
        con.unregister("chosen")
    return _summarize(days, per_event, model=model, level=level, window=window, articles=len(chosen),
                      distinct=len(given), span=before + after)


def _summarize(days: pd.DataFrame, per_event: pd.DataFrame, *, model: str, level: float,
               window: tuple[int, int], articles: int, distinct: int, span: int) -> AverageReaction:
    from scipy.special import stdtrit

    n = days["n"].to_numpy(dtype=float)
    half = np.where(n >= MIN_EVENTS, stdtrit(np.maximum(n - 1, 1), 0.5 + level / 2), np.nan)
    days = days.assign(n=days["n"].astype("int64"), se=days["se"].astype(float),
                       low=days["caar"] - half * days["se"], high=days["caar"] + half * days["se"])
    notes: list[Note] = []
    if articles > distinct:
        notes.append(("avg_duplicates", {"articles": articles, "n": distinct}))
    if not days.empty and days["n"].max() < MIN_EVENTS:
        notes.append(("avg_band_none", {"n": int(days["n"].max()), "min": MIN_EVENTS}))
    elif not days.empty and days["n"].min() < MIN_EVENTS:
        notes.append(("avg_band_partial", {"min": MIN_EVENTS,
                                           "day": int(days.loc[days["n"] < MIN_EVENTS, "day"].iloc[0])}))
    warnings: list[Note] = []
    shared = per_event[per_event["same_session"]]
    if not shared.empty:
        warnings.append(("avg_clustered", {"n": len(shared), "sessions": shared["session"].nunique()}))
    if (overlapping := int(per_event["overlaps"].sum())) > 0:
        warnings.append(("avg_overlapping", {"n": overlapping, "span": span}))

    tested = per_event.dropna(subset=["scar", "positive_share"])
    tests = _significance(tested) if len(tested) >= MIN_EVENTS else {}
    if not tests and not days.empty:
        notes.append(("avg_untested", {"n": len(tested), "min": MIN_EVENTS}))
    return AverageReaction(days[DAY_COLUMNS], model, level, window, articles, len(per_event), len(tested),
                           notes=tuple(notes), warnings=tuple(warnings), **tests)


def _significance(tested: pd.DataFrame) -> dict[str, Any]:
    """The BMP test (the t of the standardized CARs' mean, N - 1 degrees of freedom) and
    Cowan's generalized sign test (positive CARs against the share of positive abnormal
    returns in the estimation windows, normal approximation); both two-sided."""
    from scipy.special import ndtr

    count = len(tested)
    scar = tested["scar"].to_numpy(dtype=float)
    sd = scar.std(ddof=1)
    bmp_t = float(scar.mean() / (sd / math.sqrt(count))) if sd > 0 else None
    positive = int((tested["car"] > 0).sum())
    share = float(tested["positive_share"].mean())
    sign_z = (positive - count * share) / math.sqrt(count * share * (1 - share)) if 0 < share < 1 else None
    return {"car": float(tested["car"].mean()), "positive": positive, "expected_positive": share,
            "bmp_t": bmp_t, "bmp_p": None if bmp_t is None else float(two_sided_p(bmp_t, count - 1)),
            "sign_z": sign_z, "sign_p": None if sign_z is None else float(2 * ndtr(-abs(sign_z)))}


def largest_moves(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None = None,
                  end: date | None = None, limit: int = 10, lookback: int = 1,
                  site_tz: str = "Asia/Shanghai", model: str = "market") -> pd.DataFrame:
    """The largest absolute abnormal daily moves of ``symbol``, each with the articles whose
    event session is that day or one of the ``lookback`` sessions before it."""
    df = con.execute(f"""
        WITH moves AS (
            SELECT date, i, ret, rm, {_abnormal(model)} AS ar, lag(date, $lookback) OVER (ORDER BY i) AS since
            FROM daily_returns d WHERE symbol = $symbol
        ),
        top AS (
            SELECT * FROM moves
            WHERE ar IS NOT NULL AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
            ORDER BY abs(ar) DESC LIMIT $limit
        )
        SELECT t.date, t.ret, t.rm, t.ar,
               {", ".join(f"list({v} ORDER BY a.published_at, a.article_id) FILTER (WHERE a.article_id IS NOT NULL)"
                          f" AS {k}" for k, v in _STORY_FIELDS.items())}
        FROM top t
        LEFT JOIN article_sessions r ON r.symbol = $symbol AND r.session <= t.date
             AND r.session >= coalesce(t.since, t.date)
        LEFT JOIN mentions a ON a.symbol = $symbol AND a.article_id = r.article_id
        GROUP BY t.date, t.ret, t.rm, t.ar
        ORDER BY abs(t.ar) DESC, t.date
    """, {"symbol": symbol, "start": start, "end": end, "limit": limit, "lookback": lookback,
          "tz": site_tz}).df()
    # the articles of each move as records (parallel lists in SQL: both stores build them alike)
    fields = list(_STORY_FIELDS)
    stories = [[dict(zip(fields, values, strict=True)) for values in zip(
        *[[_plain(v) for v in _items(row[f])] for f in fields], strict=True)]
        for row in df[fields].to_dict("records")]
    return df.drop(columns=fields).assign(articles=pd.Series(stories, index=df.index, dtype=object))


_STORY_FIELDS = {"article_id": "a.article_id", "title": "a.title", "source": "a.source",
                 "published": "strftime(a.published_at AT TIME ZONE $tz, '%Y-%m-%d %H:%M')",
                 "session": "r.session"}


def _items(value: Any) -> list[Any]:
    return [] if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else list(value)


def _plain(value: Any) -> Any:
    """A list element as plain Python (a date, not a Timestamp)."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    return value
