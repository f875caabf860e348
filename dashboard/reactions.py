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
vectorized Python function called from the same SQL), cached in the ``reactions`` table, and
recomputed whenever articles or prices change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


# Daily returns of every priced security, beside its benchmark's over the same interval, and
# the estimation window's market model and noise as of each row. The residuals' variance is
# Syy (1 - r^2) / (n - 2); a security that is its own benchmark has none (sigma NULL, not 0).
DAILY = f"""
DELETE FROM daily_returns;
INSERT INTO daily_returns BY NAME
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

# Per day: the window measures that day 0 at that row would have.
MEASURES = f"""
CREATE OR REPLACE TEMP TABLE day_measures AS
SELECT symbol, date, i, benchmark, ret, rm, ar, adj_close, volume, alpha, beta, n_est, sigma, sigma_mm,
       {_each_window("count(ar) OVER w_{w} AS n_{w}, sum(ar) OVER w_{w} AS sar_{w}, "
                     "sum(ret) OVER w_{w} AS sret_{w}, sum(rm) OVER w_{w} AS srm_{w}")},
       lead(adj_close, 1) OVER w / lag(adj_close, 2) OVER w - 1 AS cr_m1_p1,
       lead(adj_close, 5) OVER w / lag(adj_close, 1) OVER w - 1 AS cr_0_p5,
       avg(volume) OVER v20 AS volume_avg20, count(volume) OVER v20 AS n_v20
FROM daily_returns
WINDOW w AS (PARTITION BY symbol ORDER BY i),
       {", ".join(f"w_{w} AS (PARTITION BY symbol ORDER BY i {_rows(*WINDOWS[w])})" for w in WINDOWS)},
       v20 AS (PARTITION BY symbol ORDER BY i ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING)
"""

# Per (article, security): the CARs of its event session, then their t-statistics, then their
# p-values (student_t_p: see _register_context).
REACTIONS = f"""
DELETE FROM reactions;
INSERT INTO reactions BY NAME
WITH cars AS (
    SELECT e.article_id, e.symbol, e.session, d.benchmark,
           d.ret AS day0_return,
           d.ar AS day0_abnormal,
           d.cr_m1_p1,
           d.cr_0_p5,
           {_each_window("CASE WHEN d.n_{w} = {L} THEN d.sar_{w} END AS car_{w}")},
           {_each_window("CASE WHEN d.n_{w} = {L} AND d.n_est >= " + str(MIN_ESTIMATION)
                         + " THEN d.sret_{w} - {L} * d.alpha - d.beta * d.srm_{w} END AS car_{w}_mm")},
           CASE WHEN d.n_v20 = 20 AND d.volume_avg20 > 0 THEN d.volume / d.volume_avg20 END AS volume_ratio,
           d.sigma, d.sigma_mm, d.n_est
    FROM event_sessions e
    LEFT JOIN day_measures d ON d.symbol = e.symbol AND d.date = e.session
),
tstats AS (
    SELECT *,
           {_each_window("car_{w} / (sigma * sqrt({L})) AS t_car_{w}")},
           {_each_window("car_{w}_mm / (sigma_mm * sqrt({L})) AS t_car_{w}_mm")}
    FROM cars
)
SELECT *,
       {_each_window("student_t_p(t_car_{w}, n_est - 1) AS p_car_{w}")},
       {_each_window("student_t_p(t_car_{w}_mm, n_est - 2) AS p_car_{w}_mm")}
FROM tstats
"""


def two_sided_p(t: Any, df: Any) -> np.ndarray:
    """Two-sided p-values of t-statistics under Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtr

    return 2 * stdtr(np.asarray(df, dtype=float), -np.abs(np.asarray(t, dtype=float)))


def _student_t_p(t: pa.Array, df: pa.Array) -> pa.Array:
    # DuckDB calls this per chunk of rows, nulls already left out (they give NULL).
    p = two_sided_p(t.to_numpy(zero_copy_only=False), df.to_numpy(zero_copy_only=False))
    return pa.array(p, pa.float64(), mask=np.isnan(p))


def _register_context(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str]) -> None:
    con.register("markets", markets_table())
    con.register("benchmarks", pa.table({"market": list(benchmarks), "benchmark": list(benchmarks.values())}))
    con.create_function("student_t_p", _student_t_p, ["DOUBLE", "BIGINT"], "DOUBLE", type="arrow",
                        side_effects=False)


def _unregister_context(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("markets", "benchmarks"):
        con.unregister(name)
    con.remove_function("student_t_p")


# What the computation reads (table -> columns) and writes: on a PostgreSQL store it runs in
# DuckDB over these rows (see store.local_duckdb), so both stores hold the same numbers.
REFRESH_READS: dict[str, list[str] | None] = {
    "prices": ["symbol", "date", "adj_close", "volume"], "securities": ["symbol", "market"],
    "mentions": ["article_id", "symbol"], "articles": ["article_id", "published_at"],
    "calendar_sessions": None,
}
REFRESH_WRITES = ("calendar_sessions", "daily_returns", "reactions")


def refresh_reactions(con: duckdb.DuckDBPyConnection, benchmarks: dict[str, str] | None = None) -> None:
    """Recompute the ``reactions`` cache from articles and prices (inside the caller's write)."""
    with local_duckdb(con, REFRESH_READS, REFRESH_WRITES) as con:
        _register_context(con, benchmarks or DEFAULT_BENCHMARKS)
        try:
            build_event_sessions(con)
            con.execute(DAILY)
            con.execute(MEASURES)
            con.execute(REACTIONS)
            con.execute("DROP TABLE IF EXISTS day_measures; DROP TABLE IF EXISTS event_sessions; "
                        "DROP TABLE IF EXISTS security_sessions")
        finally:
            _unregister_context(con)


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
        LEFT JOIN reactions r ON r.symbol = $symbol AND r.session <= t.date
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
