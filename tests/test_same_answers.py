"""Every figure the dashboard shows, the same on both backends, row for row: one store on a
DuckDB file and one on PostgreSQL, built from the real shared posts and every real price file."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard import candles, coverage, reactions
from dashboard.ingest import ingest_folder
from dashboard.prices import ensure_securities, read_price_csv, write_prices
from dashboard.reactions import refresh_reactions
from dashboard.store import Store, open_store
from tests.conftest import SHARED

SITE_TZ = "Asia/Shanghai"


def build(store: Any) -> None:
    ingest_folder(store, SHARED / "posts", workers=1)
    files = sorted((SHARED / "prices").glob("*/*.csv"))
    with store.write() as con:
        for f in files:
            try:
                symbol, frame = read_price_csv(f)
            except Exception:  # not a price file (_tickers.csv)
                continue
            ensure_securities(con, [symbol])
            write_prices(con, symbol, frame, f"csv:{f.name}", (frame.index.min(), frame.index.max()))
        refresh_reactions(con)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, pg_server: Any) -> tuple[Any, Any]:
    if not (SHARED / "posts").exists() or not (SHARED / "prices").exists():
        pytest.skip(f"real data not available: {SHARED} is absent")
    duck = Store(tmp_path_factory.mktemp("same") / "store.duckdb")
    pg = open_store(pg_server.url(pg_server.create_database()))
    build(duck)
    build(pg)
    yield duck, pg
    pg.close()


def both(stores: tuple[Any, Any], fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    out = []
    for store in stores:
        with store.read() as con:
            out.append(fn(con, *args, **kwargs))
    return out[0], out[1]


def same(a: Any, b: Any, what: str) -> None:
    if isinstance(a, pd.DataFrame):
        assert list(a.columns) == list(b.columns), what
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                      check_exact=True, obj=what)
    elif isinstance(a, dict) and any(isinstance(v, pd.DataFrame) for v in a.values()):
        assert a.keys() == b.keys(), what
        for k in a:
            same(a[k], b[k], f"{what}[{k}]")
    else:
        assert a == b, what


@pytest.fixture(scope="module")
def symbols(stores: tuple[Any, Any]) -> list[str]:
    with stores[0].read() as con:
        return [s for (s,) in con.execute(
            "SELECT DISTINCT symbol FROM reactions WHERE session IS NOT NULL ORDER BY symbol").fetchall()]


def test_the_stores_hold_the_same_rows(stores: tuple[Any, Any]) -> None:
    for table, key in [("articles", "article_id"), ("mentions", "article_id, symbol"),
                       ("securities", "symbol"), ("prices", "symbol, date"),
                       ("daily_returns", "symbol, date"),
                       ("reactions", "article_id, symbol"), ("calendar_sessions", "calendar, session")]:
        a, b = both(stores, lambda con, t=table, k=key: con.execute(
            f"SELECT * FROM {t} ORDER BY {k}").df().drop(columns=["ingested_at", "fetched_at"],
                                                          errors="ignore"))
        assert len(a) > 0, table
        same(a, b, table)  # all but the clock times of the two builds


def test_reactions_sessions_car_t_and_p(stores: tuple[Any, Any], symbols: list[str]) -> None:
    assert len(symbols) >= 3
    for symbol in symbols:
        same(*both(stores, reactions.reactions_for, symbol, SITE_TZ), f"reactions_for {symbol}")


def test_average_reaction_and_moves(stores: tuple[Any, Any], symbols: list[str]) -> None:
    for symbol in symbols:
        with stores[0].read() as con:
            events = reactions.reactions_for(con, symbol, SITE_TZ).assign(symbol=symbol)
        events = events[["symbol", "session"]]
        for model in ("market", "mm"):
            a, b = both(stores, reactions.average_reaction, events, model=model)
            same(a.days, b.days, f"average {symbol} {model}")
            for field in ("articles", "events", "tested", "car", "bmp_t", "bmp_p", "positive",
                          "expected_positive", "sign_z", "sign_p", "notes", "warnings"):
                assert getattr(a, field) == getattr(b, field), f"average {symbol} {model} {field}"
            same(*both(stores, reactions.largest_moves, symbol, limit=15, model=model, site_tz=SITE_TZ),
                 f"moves {symbol} {model}")
    with stores[0].read() as con:  # every event of every security, pooled
        pooled = con.execute("SELECT symbol, session FROM reactions WHERE session IS NOT NULL").df()
    a, b = both(stores, reactions.average_reaction, pooled)
    same(a.days, b.days, "pooled average")
    assert (a.car, a.bmp_p, a.sign_p, a.warnings) == (b.car, b.bmp_p, b.sign_p, b.warnings)


def test_coverage_views(stores: tuple[Any, Any], symbols: list[str]) -> None:
    same(*both(stores, coverage.securities_overview), "securities_overview")
    for symbol in symbols:
        same(*both(stores, coverage.article_span, [symbol], SITE_TZ), f"span {symbol}")
        same(*both(stores, coverage.session_markers, symbol, None, None, SITE_TZ), f"markers {symbol}")
        same(*both(stores, coverage.related_coverage, [symbol], SITE_TZ), f"coverage {symbol}")
        same(*both(stores, coverage.facets, [symbol]), f"facets {symbol}")
        same(*both(stores, coverage.price_history, symbol, date(2021, 6, 1), date(2022, 6, 1)),
             f"prices {symbol}")
        for aid in both(stores, coverage.main_subject_articles, symbol)[0]:
            same(*both(stores, coverage.article, aid, SITE_TZ), f"article {aid}")
    pair = symbols[:3]
    for kwargs in ({}, {"keyword": "美团"}, {"keyword": "hk"}, {"significant_at": 0.5},
                   {"start": date(2021, 12, 1), "end": date(2021, 12, 31)},
                   {"model": "mm", "significant_at": 0.9}):
        same(*both(stores, coverage.related_coverage, pair, SITE_TZ, **kwargs), f"coverage {pair} {kwargs}")
    sources, categories = both(stores, coverage.facets, pair)[0]
    if sources:
        same(*both(stores, coverage.related_coverage, pair, SITE_TZ, sources=sources[:1]), "by source")
    if categories:
        same(*both(stores, coverage.related_coverage, pair, SITE_TZ, categories=categories[:1]),
             "by category")
    same(*both(stores, coverage.normalized_performance, pair, date(2021, 1, 1), None), "normalized")
    same(*both(stores, coverage.shared_sessions, pair, None, None), "shared sessions")
    same(*both(stores, coverage.coverage_count, pair, SITE_TZ), "coverage count")


def test_candles_and_range_summaries(stores: tuple[Any, Any], symbols: list[str]) -> None:
    with stores[0].read() as con:
        priced = [s for (s,) in con.execute("SELECT DISTINCT symbol FROM prices ORDER BY 1").fetchall()]
    assert len(priced) >= 90
    for symbol in symbols + priced[::9]:
        for interval in ("day", "week", "month"):
            same(*both(stores, candles.candles, symbol, date(2021, 1, 1), date(2022, 12, 31), interval,
                       (5, 20)), f"candles {symbol} {interval}")
    same(*both(stores, candles.range_summaries, priced, date(2021, 6, 1), date(2021, 12, 31)), "summaries")


def test_status_and_price_coverage(stores: tuple[Any, Any]) -> None:
    from dashboard.cli import status_summary
    from dashboard.prices import coverage_report

    same(*both(stores, coverage_report, SITE_TZ), "coverage_report")
    same(*both(stores, status_summary, SITE_TZ), "status")


def test_the_numbers_are_real(stores: tuple[Any, Any], symbols: list[str]) -> None:
    """Not two empty answers: the shared data gives tested reactions on both."""
    with stores[1].read() as con:
        n, p = con.execute(
            "SELECT count(*), count(p_car_m1_p1) FROM reactions WHERE session IS NOT NULL").fetchone()
    assert n >= 5 and p >= 3
    assert np.isfinite(p)
