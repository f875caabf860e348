"""What the dashboard reads from the store: securities by coverage, prices, related coverage,
markers per session, single articles. Plain functions over a DuckDB connection (a snapshot's
cursor in the app), returning DataFrames; no Streamlit here.

Every per-security read goes through ``mentions``, the per-security access path: one row per
(article, security) carrying what the views show of the article, kept clustered by symbol. A
view therefore reads the rows of the securities it shows, never every article; dates are
compared as instants, so the clustering's zone maps also skip what lies outside the range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from dashboard.reactions import SIGNIFICANCE_COLUMNS, column

HOW_ORDER = "CASE m.how WHEN 'embed' THEN 0 WHEN 'link' THEN 1 ELSE 2 END"
HOVER_LINES = 8  # headlines a marker's hover lists; the rest are counted


def instant_bounds(start: date | None, end: date | None, site_tz: str) -> tuple[datetime | None, datetime | None]:
    """The instants that begin ``start`` and end ``end`` (inclusive) as local dates."""
    tz = ZoneInfo(site_tz)
    lo = datetime.combine(start, time(0), tzinfo=tz) if start else None
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz) if end else None
    return lo, hi


def securities_overview(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every security, most covered first: counts of articles, of main-subject mentions, prices."""
    return con.execute("""
        WITH counts AS (
            SELECT symbol, count(*) AS articles, count(*) FILTER (WHERE how = 'embed') AS main
            FROM mentions GROUP BY symbol),
        px AS (SELECT symbol, count(*) AS price_rows FROM prices GROUP BY symbol)
        SELECT s.symbol, coalesce(s.name, '') AS name, coalesce(s.name_en, '') AS name_en, s.canonical,
               s.market, s.kind, coalesce(c.articles, 0) AS articles, coalesce(c.main, 0) AS main,
               coalesce(px.price_rows, 0) AS price_rows
        FROM securities s LEFT JOIN counts c USING (symbol) LEFT JOIN px USING (symbol)
        ORDER BY articles DESC, main DESC, s.symbol
    """).df()


def article_span(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], site_tz: str) -> tuple[date, date] | None:
    # clamped to the supported dates: a store from before they were enforced may hold year 9999
    row = con.execute("""
        WITH span AS (
            SELECT min(published_at AT TIME ZONE $tz)::DATE AS lo,
                   max(published_at AT TIME ZONE $tz)::DATE AS hi
            FROM mentions WHERE symbol IN (SELECT unnest($symbols::VARCHAR[])))
        SELECT least(greatest(lo, DATE '1970-01-01'), DATE '2099-12-31'),
               greatest(least(hi, DATE '2099-12-31'), DATE '1970-01-01')
        FROM span
    """, {"tz": site_tz, "symbols": list(symbols)}).fetchall()[0]
    return None if row[0] is None else (row[0], row[1])


def price_history(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None = None,
                  end: date | None = None) -> pd.DataFrame:
    return con.execute("""
        SELECT date, open, high, low, close, adj_close, volume FROM prices
        WHERE symbol = $s AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
        ORDER BY date
    """, {"s": symbol, "start": start, "end": end}).df()


def price_problem(con: duckdb.DuckDBPyConnection, symbol: str) -> dict[str, Any] | None:
    """Why a security has no prices yet: its last failure, if any."""
    rows = con.execute("SELECT reason_kind, reason, attempted_at FROM price_failures WHERE symbol = ?",
                       [symbol]).fetchall()
    if not rows:
        return None
    kind, reason, at = rows[0]
    return {"kind": kind, "reason": reason, "attempted_at": at}


def session_markers(con: duckdb.DuckDBPyConnection, symbol: str, start: date | None, end: date | None,
                    site_tz: str) -> pd.DataFrame:
    """One row per session with articles naming ``symbol``: how many, and the first headlines.
    The sessions come from ``article_sessions`` alone, and a session's first ``HOVER_LINES``
    articles in the same pass (a top-n aggregate: no window sorts the security's articles); only
    those are read from ``mentions`` for their headlines."""
    return con.execute(f"""
        WITH counted AS (
            SELECT session, count(*) AS articles,
                   min_by(article_id, {{'t': published_at, 'id': article_id}}, {HOVER_LINES}) AS firsts
            FROM article_sessions
            WHERE symbol = $s AND session IS NOT NULL
              AND ($start IS NULL OR session >= $start) AND ($end IS NULL OR session <= $end)
            GROUP BY session
        ),
        first AS (SELECT session, articles, unnest(firsts) AS article_id FROM counted)
        SELECT f.session, max(f.articles) AS articles,
               list(strftime(m.published_at AT TIME ZONE $tz, '%m-%d %H:%M') || '  ' ||
                    coalesce(m.source || '  ', '') || m.title ORDER BY m.published_at, m.article_id) AS lines
        FROM first f JOIN mentions m ON m.symbol = $s AND m.article_id = f.article_id
        GROUP BY f.session ORDER BY f.session
    """, {"s": symbol, "start": start, "end": end, "tz": site_tz}).df()


REACTION_FIELDS = ("session", "day0_return", "car_m1_p1", "car_0_p5", "car_m1_p1_mm", "car_0_p5_mm",
                   "volume_ratio", *SIGNIFICANCE_COLUMNS)


def _keyword_filter(keyword: str) -> str:
    """SQL matching the keyword in headline or text: a plain substring search for CJK (no case
    to fold, and several times faster), case-insensitive otherwise."""
    if any(ch.isascii() and ch.isalpha() for ch in keyword):
        return "(m.title ILIKE '%' || $kw || '%' OR m.text ILIKE '%' || $kw || '%')"
    return "(contains(m.title, $kw) OR contains(m.text, $kw))"


def related_coverage(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], site_tz: str,
                     start: date | None = None, end: date | None = None, keyword: str = "",
                     sources: Sequence[str] = (), categories: Sequence[str] = (),
                     limit: int = 5000, significant_at: float | None = None, window: str = "m1_p1",
                     model: str = "market") -> pd.DataFrame:
    """One row per article and chosen security it names, newest first, with that security's
    reaction (so an article naming two of ``symbols`` gives two rows) and the other securities
    the article names (``named``). With ``significant_at`` (e.g. 0.05), only reactions whose CAR
    over ``window`` under ``model`` has a p-value below it (a reaction that cannot be tested is
    left out)."""
    kw = keyword.strip()
    p_column = column(window, model, "p")  # validated: one of session_reactions' columns
    lo, hi = instant_bounds(start, end, site_tz)
    scope, in_scope = _in_view(symbols, lo, hi, kw, sources, categories)
    # The newest `limit` rows lie at or after the limit-th newest instant: found first from the
    # instants alone, it lets the rows (and their reactions) be read for those only, not for the
    # whole range. Not with a keyword (its scan would run twice) nor a reaction filter.
    cutoff = None if kw or significant_at is not None else _newest_cutoff(con, scope, in_scope, limit)
    params = in_scope | {"symbols": list(symbols), "tz": site_tz, "limit": limit}
    since, joined_since, unusual = "", "", ""
    if cutoff is not None:  # (the sessions' rows too: they are kept in order of time)
        since, joined_since = " AND m.published_at >= $cutoff", "AND a.published_at >= $cutoff"
        params["cutoff"] = cutoff
    if significant_at is not None:
        unusual, params["alpha"] = f" AND r.{p_column} < $alpha", significant_at
    return con.execute(f"""
        SELECT m.article_id, m.published_at AT TIME ZONE $tz AS published, m.title,
               coalesce(m.source, '') AS source, m.categories, m.url, m.symbol, m.how, m.named,
               a.session, {", ".join("r." + c for c in REACTION_FIELDS if c != "session")}
        FROM mentions m
        LEFT JOIN article_sessions a ON a.symbol = m.symbol AND a.article_id = m.article_id
             {joined_since}
        LEFT JOIN session_reactions r ON r.symbol = a.symbol AND r.session = a.session
        WHERE {scope}{since}{unusual}
        ORDER BY m.published_at DESC, m.article_id, list_position($symbols::VARCHAR[], m.symbol)
        LIMIT $limit
    """, params).df()


def _in_view(symbols: Sequence[str], lo: datetime | None, hi: datetime | None, kw: str,
             sources: Sequence[str], categories: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The mentions in view as SQL over ``m``, and its parameters: only the conditions that
    apply. (A condition that is always true, such as "no publisher chosen", still has DuckDB
    read its column for every row of the security; and an IN over one symbol is a join where
    an equality is a filter inside the scan: at 1M the cut-off's pass took 3 ms, not 10.)"""
    if len(symbols) == 1:
        parts, params = ["m.symbol = $symbol"], {"symbol": symbols[0]}
    else:
        parts, params = ["m.symbol IN (SELECT unnest($symbols::VARCHAR[]))"], {"symbols": list(symbols)}
    if lo is not None:
        parts.append("m.published_at >= $lo")
        params["lo"] = lo
    if hi is not None:
        parts.append("m.published_at < $hi")
        params["hi"] = hi
    if kw:
        parts.append(_keyword_filter(kw))
        params["kw"] = kw
    if sources:
        parts.append("m.source IN (SELECT unnest($sources::VARCHAR[]))")
        params["sources"] = list(sources)
    if categories:
        parts.append("len(list_intersect(m.categories, $categories::VARCHAR[])) > 0")
        params["categories"] = list(categories)
    return " AND ".join(parts), params


def _newest_cutoff(con: duckdb.DuckDBPyConnection, scope: str, params: dict[str, Any],
                   limit: int) -> datetime | None:
    """The publication instant of the ``limit``-th newest row in ``scope`` (None: fewer rows):
    one pass over the scope's instants, keeping the newest ``limit``."""
    rows = con.execute(f"""
        SELECT m.published_at FROM mentions m WHERE {scope} AND m.published_at IS NOT NULL
        ORDER BY m.published_at DESC LIMIT 1 OFFSET $offset
    """, params | {"offset": limit - 1}).fetchall()
    return rows[0][0] if rows else None


def others_named(named: Sequence[str] | None, symbol: str, names: dict[str, str]) -> str:
    """The other securities an article names, as 'symbol name · symbol name'."""
    return " · ".join(f"{s} {names.get(s, '')}".strip() for s in (named if named is not None else []) if s != symbol)


def coverage_count(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], site_tz: str,
                   start: date | None = None, end: date | None = None) -> int:
    """How many (article, security) rows the range holds for ``symbols``, before filters."""
    scope, params = _in_view(symbols, *instant_bounds(start, end, site_tz), "", (), ())
    return int(con.execute(f"SELECT count(*) FROM mentions m WHERE {scope}", params).fetchall()[0][0])


def facets(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> tuple[list[str], list[str]]:
    """The publishers and categories of the articles naming ``symbols``, most frequent first."""
    params = {"symbols": list(symbols)}
    scope = "FROM mentions WHERE symbol IN (SELECT unnest($symbols::VARCHAR[]))"
    sources = [s for (s,) in con.execute(
        f"SELECT source {scope} AND source IS NOT NULL GROUP BY source ORDER BY count(*) DESC, source",
        params).fetchall()]
    categories = [c for (c,) in con.execute(
        f"SELECT c FROM (SELECT unnest(categories) AS c {scope}) GROUP BY c ORDER BY count(*) DESC, c",
        params).fetchall()]
    return sources, categories


def article(con: duckdb.DuckDBPyConnection, article_id: str, site_tz: str) -> dict[str, Any] | None:
    rows = con.execute("""
        SELECT article_id, title, published_at AT TIME ZONE $tz, source, url, digest, text,
               categories, tags
        FROM articles WHERE article_id = $id
    """, {"id": article_id, "tz": site_tz}).fetchall()
    if not rows:
        return None
    aid, title, published, source, url, digest, text, categories, tags = rows[0]
    securities = con.execute(f"""
        SELECT m.symbol, coalesce(s.name, '') AS name, m.how,
               {", ".join("r." + c for c in REACTION_FIELDS)}
        FROM mentions m LEFT JOIN securities s USING (symbol)
        LEFT JOIN reactions r ON r.article_id = m.article_id AND r.symbol = m.symbol
        WHERE m.article_id = ? ORDER BY {HOW_ORDER}, m.symbol
    """, [aid]).df()
    return {"article_id": aid, "title": title, "published": published, "source": source, "url": url,
            "digest": digest, "text": text or "", "categories": categories, "tags": tags,
            "securities": securities}


def normalized_performance(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date | None,
                           end: date | None) -> pd.DataFrame:
    """Adjusted closes of each symbol relative to its first close in the range (0 = unchanged)."""
    return con.execute("""
        SELECT symbol, date, adj_close / first(adj_close) OVER (PARTITION BY symbol ORDER BY date) - 1 AS change
        FROM prices
        WHERE symbol IN (SELECT unnest($symbols::VARCHAR[]))
          AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
        ORDER BY symbol, date
    """, {"symbols": list(symbols), "start": start, "end": end}).df()


def shared_sessions(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], start: date | None,
                    end: date | None) -> pd.DataFrame:
    """Per (symbol, session): its articles, and how many of them name more than one of ``symbols``."""
    return con.execute("""
        WITH named AS (
            SELECT m.symbol, r.session, m.title, m.published_at,
                   len(list_intersect(m.named, $symbols::VARCHAR[])) > 1 AS shared
            FROM mentions m JOIN article_sessions r ON r.symbol = m.symbol AND r.article_id = m.article_id
            WHERE m.symbol IN (SELECT unnest($symbols::VARCHAR[]))
              AND r.symbol IN (SELECT unnest($symbols::VARCHAR[])) AND r.session IS NOT NULL
              AND ($start IS NULL OR r.session >= $start) AND ($end IS NULL OR r.session <= $end)
        )
        SELECT symbol, session, count(*) AS articles, count(*) FILTER (WHERE shared) AS shared,
               list(title ORDER BY published_at) FILTER (WHERE shared) AS shared_titles,
               list(title ORDER BY published_at) AS titles
        FROM named GROUP BY symbol, session ORDER BY symbol, session
    """, {"symbols": list(symbols), "start": start, "end": end}).df()


def main_subject_articles(con: duckdb.DuckDBPyConnection, symbol: str) -> frozenset[str]:
    """Articles whose K-line blocks make ``symbol`` a main subject."""
    return frozenset(a for (a,) in con.execute(
        "SELECT article_id FROM mentions WHERE symbol = ? AND how = 'embed'", [symbol]).fetchall())


def market_of(con: duckdb.DuckDBPyConnection, symbol: str) -> str | None:
    rows = con.execute("SELECT market FROM securities WHERE symbol = ?", [symbol]).fetchall()
    return rows[0][0] if rows else None
