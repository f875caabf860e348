"""Dashboard speed at scale: first full render and switching security, on the ingest
benchmark's 100k-post corpus with prices for every security it names.

    python benchmarks/app_bench.py [--posts 100000] [--dir /tmp/dashboard-bench]

The store is built once (ingest, then synthetic daily prices on each exchange's real
sessions for every security and benchmark, then reactions), and reused. Render times are
the app script's run time under Streamlit's AppTest, in a fresh process so the first run
is cold (snapshot of the store, queries, figures). Targets (issue 4): first render < 2 s,
switching security < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(store: Any, corpus: Path) -> dict[str, float]:
    """Ingest ``corpus`` into ``store`` (DuckDB or PostgreSQL), then synthetic daily prices on
    each exchange's real sessions for every security and benchmark (the same prices on every
    store: a fixed seed, symbols in order), then the reactions."""
    import numpy as np
    import pandas as pd

    from dashboard.config import DEFAULT_BENCHMARKS
    from dashboard.ingest import ingest_folder
    from dashboard.markets import MARKETS
    from dashboard.prices import ensure_securities, write_prices
    from dashboard.reactions import refresh_reactions
    from dashboard.sessions import calendar_sessions

    t = time.perf_counter()
    report = ingest_folder(store, corpus)
    ingest_s = time.perf_counter() - t
    with store.read() as con:
        secs = con.execute("SELECT symbol, market FROM securities").fetchall()
        lo, hi = con.execute("SELECT min(published_at)::DATE, max(published_at)::DATE FROM articles").fetchall()[0]
    start, end = lo - timedelta(days=200), min(hi + timedelta(days=30), date.today())
    symbols = dict(secs)
    for market, bench in DEFAULT_BENCHMARKS.items():
        if market in set(symbols.values()):
            symbols.setdefault(bench, market)
    rng = np.random.default_rng(3)
    sessions = {m.calendar: calendar_sessions(m.calendar, start, end)["session"] for m in MARKETS.values()
                if m.code in set(symbols.values())}
    t = time.perf_counter()
    with store.write() as con:
        ensure_securities(con, list(symbols))
        for symbol, market in sorted(symbols.items()):
            days = sessions[MARKETS[market or "US"].calendar]
            n = len(days)
            close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
            frame = pd.DataFrame({"open": close * (1 + rng.normal(0, 0.005, n)), "high": close * 1.01,
                                  "low": close * 0.99, "close": close, "adj_close": close,
                                  "volume": rng.integers(1_000_000, 9_000_000, n).astype(float)},
                                 index=pd.Index(list(days), name="date"))
            write_prices(con, symbol, frame, "synthetic", (start, end))
        t2 = time.perf_counter()
        refresh_reactions(con)
        refresh_s = time.perf_counter() - t2
    return {"articles": report.new, "ingest_s": ingest_s, "securities": len(symbols),
            "prices_s": time.perf_counter() - t, "reactions_refresh_s": refresh_s}


def build_store(db: Path, corpus: Path) -> dict[str, float]:
    from dashboard.store import Store

    store = Store(db)
    built = build(store, corpus)
    with store.read() as con:
        mentions, reactions = con.execute(
            "SELECT (SELECT count(*) FROM mentions), (SELECT count(*) FROM reactions)").fetchall()[0]
    return {**built, "mentions": mentions, "reactions": reactions, "db_mib": db.stat().st_size / 2**20}


def measure(db: str) -> dict[str, object]:
    """Runs in a fresh process: cold first render, then switches between securities."""
    os.environ.update({"DASHBOARD_DB": db, "DASHBOARD_POSTS": "/nonexistent", "DASHBOARD_FETCH_ON_START": "false"})
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "page.py"), default_timeout=120)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    assert not at.exception, at.exception
    picker = at.sidebar.selectbox(key="security")
    options = list(picker.options)
    chosen = [picker.value]
    rows = len(at.dataframe[0].value) if at.dataframe else 0
    switches = []
    for i in (1, 2, 3, 4, 1):
        symbol = options[i].split(" ")[0]
        t = time.perf_counter()
        at.sidebar.selectbox(key="security").set_value(symbol).run()
        switches.append((symbol, time.perf_counter() - t, len(at.dataframe[0].value) if at.dataframe else 0))
        assert not at.exception, at.exception
    return {"first_render_s": first, "first_security": chosen[0], "first_rows": rows, "switches": switches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--dir", default="/tmp/dashboard-bench")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    from benchmarks.corpus import write_corpus

    corpus = write_corpus(Path(args.dir) / f"corpus-{args.posts}", args.posts)
    db = Path(args.dir) / f"app-{args.posts}.duckdb"
    if args.rebuild or not db.exists():
        db.unlink(missing_ok=True)
        built = build_store(db, corpus)
        print(f"store: {built['articles']:,} articles ingested in {built['ingest_s']:.1f} s; "
              f"{built['securities']} securities priced in {built['prices_s']:.1f} s "
              f"(reactions for {built['reactions']:,} article-security pairs refreshed in "
              f"{built['reactions_refresh_s']:.2f} s); {built['db_mib']:.0f} MiB")
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.app_bench import measure; "
            f"print(json.dumps(measure({str(db)!r})))")
    for attempt in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"run {attempt + 1}: first full render {r['first_render_s']:.2f} s "
              f"({r['first_security']}, {r['first_rows']:,} articles listed)")
        for symbol, seconds, rows in r["switches"]:
            print(f"    switch to {symbol:<10} {seconds:.3f} s ({rows:,} articles listed)")


if __name__ == "__main__":
    main()
