"""What the dashboard reads from the store: securities by coverage, prices, related coverage,
markers per session, single articles. Plain functions over a DuckDB connection (a snapshot's
cursor in the app), returning DataFrames; no Streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from dashboard.reactions import SIGNIFICANCE_COLUMNS, column


def securities_overview(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every security, most covered first: counts of articles, of main-subject mentions, prices."""
    return con.execute("""
        WITH counts AS (
            SELECT symbol, count(*) AS articles, count(*) FILTER (WHERE how = 'embed') AS main
            FROM mentions GROUP BY symbol),
        px AS (SELECT symbol, count(*) AS price_rows FROM prices GROUP BY symbol)
        SELECT s.symbol, coalesce(s.name, '') AS name, s.canonical, s.market, s.kind,
               coalesce(c.articles, 0) AS articles, coalesce(c.main, 0) AS main,
               coalesce(px.price_rows, 0) AS price_rows
        FROM securities s LEFT JOIN counts c USING (symbol) LEFT JOIN px USING (symbol)
        ORDER BY articles DESC, main DESC, s.symbol
    """).df()


def article_span(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], site_tz: str) -> tuple[date, date] | None:
    row = con.execute("""
        SELECT min(a.published_at AT TIME ZONE $tz)::DATE, max(a.published_at AT TIME ZONE $tz)::DATE
        FROM articles a WHERE article_id IN (
            SELECT article_id FROM mentions WHERE symbol IN (SELECT unnest($symbols::VARCHAR[])))
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
    """One row per session with articles naming ``symbol``: how many, and their headlines."""
    return con.execute("""
        SELECT r.session, count(*) AS articles,
               list(strftime(a.published_at AT TIME ZONE $tz, '%m-%d %H:%M') || '  ' ||
                    coalesce(a.source || '  ', '') || a.title ORDER BY a.published_at) AS lines,
               list(a.article_id ORDER BY a.published_at) AS article_ids
        FROM reactions r JOIN articles a USING (article_id)
        WHERE r.symbol = $s AND r.session IS NOT NULL
          AND ($start IS NULL OR r.session >= $start) AND ($end IS NULL OR r.session <= $end)
        GROUP BY r.session ORDER BY r.session
    """, {"s": symbol, "start": start, "end": end, "tz": site_tz}).df()


def related_coverage(con: duckdb.DuckDBPyConnection, symbols: Sequence[str], site_tz: str,
                     start: date | None = None, end: date | None = None, keyword: str = "",
                     sources: Sequence[str] = (), categories: Sequence[str] = (),
                     limit: int = 5000, significant_at: float | None = None, window: str = "m1_p1",
                     model: str = "market") -> pd.DataFrame:
    """Articles naming any of ``symbols`` (reactions are those of the first symbol each names,
    in the order given), newest first, with the other securities each names. With
    ``significant_at`` (e.g. 0.05), only reactions whose CAR over ``window`` under ``model`` has
    a p-value below it (unusual moves; a reaction that cannot be tested is left out)."""
    kw = keyword.strip()
    p_column = column(window, model, "p")  # validated: one of the reactions table's columns
    return con.execute(f"""
        WITH chosen AS (
            SELECT unnest($symbols::VARCHAR[]) AS symbol, generate_subscripts($symbols::VARCHAR[], 1) AS rank
        ),
        hits AS (
            SELECT m.article_id, arg_min(m.symbol, c.rank) AS symbol, count(*) AS chosen_named
            FROM mentions m JOIN chosen c USING (symbol) GROUP BY m.article_id
        )
        SELECT a.article_id, a.published_at AT TIME ZONE $tz AS published, a.title,
               coalesce(a.source, '') AS source, a.categories, a.url, h.symbol, h.chosen_named,
               coalesce((SELECT string_agg(coalesce(s.symbol || ' ' || s.name, m2.symbol), ' · '
                                           ORDER BY m2.how, m2.symbol)
                         FROM mentions m2 LEFT JOIN securities s ON s.symbol = m2.symbol
                         WHERE m2.article_id = a.article_id AND m2.symbol <> h.symbol), '') AS others,
               r.session, r.day0_return, r.car_m1_p1, r.car_0_p5, r.car_m1_p1_mm, r.car_0_p5_mm,
               r.volume_ratio, {", ".join("r." + c for c in SIGNIFICANCE_COLUMNS)}
        FROM hits h JOIN articles a USING (article_id)
        LEFT JOIN reactions r ON r.article_id = h.article_id AND r.symbol = h.symbol
        WHERE ($start IS NULL OR (a.published_at AT TIME ZONE $tz)::DATE >= $start)
          AND ($end IS NULL OR (a.published_at AT TIME ZONE $tz)::DATE <= $end)
          AND ($kw = '' OR a.title ILIKE '%' || $kw || '%' OR a.text ILIKE '%' || $kw || '%')
          AND (len($sources::VARCHAR[]) = 0 OR a.source IN (SELECT unnest($sources::VARCHAR[])))
          AND (len($categories::VARCHAR[]) = 0 OR len(list_intersect(a.categories, $categories::VARCHAR[])) > 0)
          AND ($alpha IS NULL OR r.{p_column} < $alpha)
        ORDER BY a.published_at DESC, a.article_id
        LIMIT $limit
    """, {"symbols": list(symbols), "tz": site_tz, "start": start, "end": end, "kw": kw,
          "sources": list(sources), "categories": list(categories), "limit": limit,
          "alpha": significant_at}).df()


def facets(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> tuple[list[str], list[str]]:
    """The publishers and categories of the articles naming ``symbols``, most frequent first."""
    params = {"symbols": list(symbols)}
    scope = "SELECT article_id FROM mentions WHERE symbol IN (SELECT unnest($symbols::VARCHAR[]))"
    sources = [s for (s,) in con.execute(
        f"SELECT source FROM articles WHERE article_id IN ({scope}) AND source IS NOT NULL "
        "GROUP BY source ORDER BY count(*) DESC, source", params).fetchall()]
    categories = [c for (c,) in con.execute(
        f"SELECT c FROM (SELECT unnest(categories) AS c FROM articles WHERE article_id IN ({scope})) "
        "GROUP BY c ORDER BY count(*) DESC, c", params).fetchall()]
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
        SELECT m.symbol, coalesce(s.name, '') AS name, m.how, r.session, r.day0_return,
               r.car_m1_p1, r.car_0_p5, r.car_m1_p1_mm, r.car_0_p5_mm, r.volume_ratio,
               {", ".join("r." + c for c in SIGNIFICANCE_COLUMNS)}
        FROM mentions m LEFT JOIN securities s USING (symbol)
        LEFT JOIN reactions r ON r.article_id = m.article_id AND r.symbol = m.symbol
        WHERE m.article_id = ? ORDER BY CASE m.how WHEN 'embed' THEN 0 WHEN 'link' THEN 1 ELSE 2 END, m.symbol
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
        WITH chosen AS (SELECT unnest($symbols::VARCHAR[]) AS symbol),
        named AS (
            SELECT article_id, count(*) AS n FROM mentions WHERE symbol IN (SELECT symbol FROM chosen)
            GROUP BY article_id)
        SELECT r.symbol, r.session, count(*) AS articles, count(*) FILTER (WHERE n.n > 1) AS shared,
               list(a.title ORDER BY a.published_at) FILTER (WHERE n.n > 1) AS shared_titles,
               list(a.title ORDER BY a.published_at) AS titles
        FROM reactions r JOIN named n USING (article_id) JOIN articles a USING (article_id)
        WHERE r.symbol IN (SELECT symbol FROM chosen) AND r.session IS NOT NULL
          AND ($start IS NULL OR r.session >= $start) AND ($end IS NULL OR r.session <= $end)
        GROUP BY r.symbol, r.session ORDER BY r.symbol, r.session
    """, {"symbols": list(symbols), "start": start, "end": end}).df()


def main_subject_articles(con: duckdb.DuckDBPyConnection, symbol: str) -> frozenset[str]:
    """Articles whose K-line blocks make ``symbol`` a main subject."""
    return frozenset(a for (a,) in con.execute(
        "SELECT article_id FROM mentions WHERE symbol = ? AND how = 'embed'", [symbol]).fetchall())


def market_of(con: duckdb.DuckDBPyConnection, symbol: str) -> str | None:
    rows = con.execute("SELECT market FROM securities WHERE symbol = ?", [symbol]).fetchall()
    return rows[0][0] if rows else None
