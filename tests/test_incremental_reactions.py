"""Reactions recomputed for what changed equal a full recompute, row for row, on the real data:
the real posts and price exports, then articles added, edited and removed, a security's prices
changed, a benchmark's prices changed, prices arriving for a security that had none, and a
benchmark replaced; on both backends."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard.config import DEFAULT_BENCHMARKS
from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv, import_csvs
from dashboard.reactions import refresh_reactions
from tests.conftest import write_post

KEYS = {"daily_returns": ["symbol", "date"], "reactions": ["article_id", "symbol", "session"],
        "session_reactions": ["symbol", "session"], "article_sessions": ["article_id", "symbol"]}


def cached(store: Any, table: str) -> pd.DataFrame:
    with store.read() as con:
        df = con.execute(f"SELECT * FROM {table}").df()
    return df.sort_values(KEYS[table], kind="stable").reset_index(drop=True)


class _Undo(Exception):
    """Raised to roll back the full recompute once its rows are read."""


def assert_same_as_full(store: Any, tmp_path: Path, benchmarks: dict[str, str] | None = None) -> None:
    """The store's caches equal those a full recompute gives (done in a write that is then
    rolled back, so it works alike on both backends): the same rows, the same keys, counts,
    dates and NULLs, and every number the same to rounding. (DuckDB sums a 120-session
    estimation window in an order that depends on which other securities share its partition,
    so even two full recomputes differ in the last bits once a security is added.)"""
    got = {table: cached(store, table) for table in KEYS}
    want: dict[str, pd.DataFrame] = {}
    with pytest.raises(_Undo), store.write() as con:
        refresh_reactions(con, benchmarks)
        for table, keys in KEYS.items():
            want[table] = con.execute(f"SELECT * FROM {table}").df().sort_values(
                keys, kind="stable").reset_index(drop=True)
        raise _Undo
    assert cached(store, "reactions").equals(got["reactions"])  # (rolled back)
    for table in KEYS:
        g_all, w_all = got[table], want[table]
        assert len(g_all) == len(w_all), table
        assert len(w_all) > 0, table
        for col in w_all.columns:
            g, w = g_all[col], w_all[col]
            if pd.api.types.is_float_dtype(w):
                assert (g.isna() == w.isna()).all(), f"{table}.{col}: NULL in one, a value in the other"
                np.testing.assert_allclose(g.to_numpy(float), w.to_numpy(float), rtol=1e-9, atol=1e-15,
                                           equal_nan=True, err_msg=f"{table}.{col}")
            else:
                pd.testing.assert_series_equal(g, w, obj=f"{table}.{col}")


def hk_codes(shared_prices: Path) -> list[str]:
    """The Hong Kong securities the exports price, as posts print them (00700.HK)."""
    exports = (shared_prices / "hsi-constituents").glob("*.HK.csv")
    return sorted(f"{p.name.split('.')[0]:0>5}.HK" for p in exports)


def write_news(folder: Path, n: int, codes: list[str], seed: int) -> list[Path]:
    """Flash news in the real shape naming one to three securities, at any hour of any day
    (weekends, holidays, after the close) over the span the exports cover."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        named = "，".join(f"公司{c[:5]}({c})" for c in rng.sample(codes, rng.randint(1, 3)))
        when = pd.Timestamp("2020-03-01") + pd.Timedelta(minutes=rng.randrange(60 * 24 * 365 * 5))
        out.append(write_post(folder, f"{when:%Y-%m-%d}-{seed}{k:04d}.md", f"{named}公告业绩。",
                              title=f"快讯 {seed}-{k}", date=f"{when:%Y-%m-%d %H:%M:%S} +0800"))
    return out


def scaled(src: Path, dst: Path, factor: float, since: str) -> Path:
    """The export with every price from ``since`` on scaled by ``factor`` (changed prices)."""
    df = pd.read_csv(src)
    later = df["Date"] >= since
    for col in ("Open", "High", "Low", "Close", "Adj Close"):
        if col in df:
            df.loc[later, col] = df.loc[later, col] * factor
    dst.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(dst, index=False)
    return dst


@pytest.fixture
def real(tmp_path: Path, shared_posts: Path, shared_prices: Path, store: Any) -> tuple[Any, Path]:
    """The real posts (a copy, to edit) and 300 flash news naming priced securities, then every
    real price export imported in one batch (on each backend)."""
    posts = tmp_path / "posts"
    shutil.copytree(shared_posts, posts)
    write_news(posts / "news", 300, hk_codes(shared_prices), seed=1)
    ingest_folder(store, posts)
    files = sorted(p for p in shared_prices.glob("*/*.csv") if not p.name.startswith("_"))
    imported, failed = import_csvs(store, files)
    assert len(imported) == len(files) and not failed
    return store, posts


def test_incremental_reactions_equal_a_full_recompute(real: tuple[Any, Path], tmp_path: Path,
                                                      shared_prices: Path) -> None:
    store, posts = real
    with store.read() as con:
        priced = con.execute("SELECT count(DISTINCT symbol) FROM reactions").fetchall()[0][0]
        assert priced > 40  # the news reach most of the priced securities
    assert_same_as_full(store, tmp_path)

    # articles: 42 new, two edited to name other securities at other times, two removed; one of
    # the new falls on a half day's afternoon, one after the last price row (the calendar decides)
    write_news(posts / "more", 40, hk_codes(shared_prices), seed=2)
    write_post(posts / "more", "half-day.md", "腾讯控股(00700.HK)公告。", date="2021-12-24 14:00:00 +0800")
    write_post(posts / "more", "after.md", "腾讯控股(00700.HK)周末公告。", date="2025-05-24 10:00:00 +0800")
    news = sorted((posts / "news").glob("*.md"))
    write_post(posts / "news", news[0].name, "腾讯控股(00700.HK)公告回购。", date="2023-03-05 14:10:00 +0800")
    write_post(posts / "news", news[1].name, "美团-W(03690.HK)及快手-W(01024.HK)合作。",
               date="2021-12-27 23:33:00 +0800")
    news[2].unlink()
    (posts / "seeds" / "2021-12-29-202112292228912369.md").unlink()
    report = ingest_folder(store, posts)
    assert (report.new, report.updated, report.removed) == (42, 2, 2)
    assert_same_as_full(store, tmp_path)
    with store.read() as con:
        sessions = dict(con.execute("""
            SELECT regexp_extract(a.path, '[^/]*$'), r.session::VARCHAR FROM reactions r JOIN articles a
            USING (article_id) WHERE a.path LIKE '%/more/half-day.md' OR a.path LIKE '%/more/after.md'
        """).fetchall())
    # 12:00 close on Christmas Eve, then a weekend and two holidays; after the prices, the calendar's
    assert sessions == {"half-day.md": "2021-12-28", "after.md": "2025-05-26"}

    # one security's prices change (a re-export with other closes from 2022 on)
    import_csv(store, scaled(shared_prices / "hsi-constituents" / "0700.HK.csv",
                             tmp_path / "x" / "0700.HK.csv", 1.03, "2022-01-01"))
    assert_same_as_full(store, tmp_path)

    # the benchmark's prices change: every Hong Kong security is measured against it
    import_csv(store, scaled(shared_prices / "download-format" / "^HSI.csv", tmp_path / "x" / "^HSI.csv",
                             0.98, "2021-06-01"))
    assert_same_as_full(store, tmp_path)

    # a security named by a real post but never priced gets prices (and gets reactions)
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM reactions WHERE symbol = '600519.SS'").fetchall()[0][0] == 0
    import_csv(store, scaled(shared_prices / "download-format" / "601098.SS.csv",
                             tmp_path / "x" / "600519.SS.csv", 10.0, "2000-01-01"))
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM reactions WHERE symbol = '600519.SS'").fetchall()[0][0] == 1
    assert_same_as_full(store, tmp_path)


def test_a_changed_benchmark_setting_reaches_its_market(real: tuple[Any, Path], tmp_path: Path) -> None:
    store, _ = real
    other = {**DEFAULT_BENCHMARKS, "HK": "0700.HK"}
    with store.write() as con:
        refresh_reactions(con, other, symbols=[])  # nothing's prices changed, but HK's benchmark did
    with store.read() as con:
        used = con.execute("SELECT DISTINCT benchmark FROM daily_returns d JOIN securities s USING (symbol) "
                           "WHERE s.market = 'HK'").fetchall()
    assert used == [("0700.HK",)]
    assert_same_as_full(store, tmp_path, other)


def test_p_values_equal_scipys() -> None:
    """The reaction cache's two-sided p-values (a closed form for whole degrees of freedom,
    so that a refresh need not import scipy) against scipy's Student t, centre to far tail."""
    from scipy.special import stdtr

    from dashboard.reactions import two_sided_p

    df = np.concatenate([np.arange(1, 301), [500, 999, 1000, 1001, 5000]]).astype(float)
    t = np.concatenate([np.logspace(-2, 3, 600), [1e6]])
    tt, dd = np.meshgrid(t, df)
    want = 2 * stdtr(dd, -tt)
    got = two_sided_p(-tt, dd)  # either sign
    shown = want > 1e-300
    np.testing.assert_allclose(got[shown], want[shown], rtol=1e-12)
    assert (got[~shown] < 1e-290).all()
    # exact forms: Cauchy (1 degree of freedom), 2 degrees of freedom; t = 0, infinite, undefined
    np.testing.assert_allclose(two_sided_p(t, 1), 2 / np.pi * np.arctan(1 / t), rtol=1e-13)
    root = np.sqrt(2 + t * t)  # 1 - t / root, without the cancellation
    np.testing.assert_allclose(two_sided_p(t, 2), 2 / (root * (root + t)), rtol=1e-13)
    assert two_sided_p(0.0, 60) == 1.0 and two_sided_p(np.inf, 60) == 0.0
    assert np.isnan(two_sided_p([np.nan, 1.0, 1.0], [60, 0, 2.5])).all()
