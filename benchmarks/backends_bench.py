"""The two backends side by side at scale: the same 100k-post store on a DuckDB file and on
PostgreSQL, built the same way (ingest, synthetic daily prices on each exchange's sessions for
every security and benchmark, reactions), then the app's main reads timed on both, and the
app's first render and security switches (AppTest, a fresh process per run).

    python benchmarks/backends_bench.py [--corpus /work/bench/corpus-100000] [--pg URL] [--repeat 7]

Without ``--pg`` a PostgreSQL server is started from Debian's binaries for the run (a
temporary folder, a Unix socket; shared_buffers 512MB). Reads go through the app's read view
(``store.read_view``): a snapshot, as the app reads. Prints min/median/max per read and the
ratio of the PostgreSQL median to the DuckDB median measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.app_bench import build  # noqa: E402 - the same store on both backends


def reads(con: Any, top: str, second: str, tz: str = "Asia/Shanghai") -> dict[str, Callable[[], Any]]:
    """The reads a page of the app makes, on one snapshot cursor."""
    from dashboard import candles, coverage, reactions

    lo, hi = coverage.article_span(con, [top], tz)
    mid = lo + (hi - lo) / 2
    month = (mid, mid + timedelta(days=30))
    events = reactions.reactions_for(con, top, tz).assign(symbol=top)[["symbol", "session"]]
    return {
        "securities_overview": lambda: coverage.securities_overview(con),
        "article_span": lambda: coverage.article_span(con, [top], tz),
        "candles (day, month)": lambda: candles.candles(con, top, *month, "auto", (5, 20)),
        "candles (whole span)": lambda: candles.candles(con, top, lo, hi, "auto", (5, 20)),
        "session_markers (month)": lambda: coverage.session_markers(con, top, *month, tz),
        "session_markers (span)": lambda: coverage.session_markers(con, top, lo, hi, tz),
        "related_coverage (span)": lambda: coverage.related_coverage(con, [top], tz, lo, hi),
        "related_coverage (month)": lambda: coverage.related_coverage(con, [top], tz, *month),
        "related_coverage (keyword)": lambda: coverage.related_coverage(con, [top], tz, lo, hi, keyword="公司"),
        "related_coverage (p < 0.05)": lambda: coverage.related_coverage(con, [top], tz, lo, hi,
                                                                         significant_at=0.05),
        "coverage_count": lambda: coverage.coverage_count(con, [top], tz, lo, hi),
        "facets": lambda: coverage.facets(con, [top]),
        "range_summaries": lambda: candles.range_summaries(con, [top, second], *month),
        "compare: normalized_performance": lambda: coverage.normalized_performance(con, [top, second], lo, hi),
        "compare: shared_sessions": lambda: coverage.shared_sessions(con, [top, second], lo, hi),
        "reactions_for": lambda: reactions.reactions_for(con, top, tz),
        "average_reaction": lambda: reactions.average_reaction(con, events),
        "largest_moves": lambda: reactions.largest_moves(con, top, lo, hi, 10, 1, tz),
    }


def time_reads(store: Any, repeat: int) -> dict[str, list[float]]:
    from dashboard.store import read_view

    view = read_view(store)
    with view.reading() as snap:
        cur = snap.cursor()
        try:
            overview = __import__("dashboard.coverage", fromlist=["x"]).securities_overview(cur)
            priced = overview[(overview["price_rows"] > 0) & (overview["articles"] > 0)]
            top, second = list(priced["symbol"][:2])
            fns = reads(cur, top, second)
            out: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(repeat):
                for name, fn in fns.items():
                    t = time.perf_counter()
                    fn()
                    out[name].append(time.perf_counter() - t)
        finally:
            cur.close()
    view.close()
    return out


def app_runs(target: str, runs: int) -> list[dict[str, Any]]:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.app_bench import measure; "
            f"print(json.dumps(measure({target!r})))")
    out = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def fmt(xs: list[float]) -> str:
    return f"{min(xs) * 1e3:8.1f} {statistics.median(xs) * 1e3:8.1f} {max(xs) * 1e3:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="/work/bench/corpus-100000")
    parser.add_argument("--dir", default="/tmp/dashboard-backends-bench")
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL to build in (default: a server of its own)")
    parser.add_argument("--duckdb", default=None, help="with --no-build: the DuckDB store to measure")
    parser.add_argument("--no-build", action="store_true", help="measure the stores given (--pg, --duckdb)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--app-runs", type=int, default=3)
    args = parser.parse_args()
    from dashboard.store import Store, open_store

    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    server = None
    if args.pg is None:
        from tests.pgserver import PgServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL binaries (apt-get install postgresql), and no --pg URL")
        server = PgServer(bindir, extra="-c shared_buffers=512MB -c effective_cache_size=4GB")
        server.start()
        args.pg = server.url(server.create_database())
    try:
        duck_path = Path(args.duckdb) if args.no_build else work / "store.duckdb"
        if not args.no_build:
            duck_path.unlink(missing_ok=True)
        stores = {"duckdb": Store(duck_path), "postgres": open_store(args.pg)}
        targets = {"duckdb": str(duck_path), "postgres": args.pg}
        for name, store in stores.items():
            if args.no_build:
                break
            b = build(store, Path(args.corpus))
            print(f"{name:>8}: {b['articles']:,} articles ingested in {b['ingest_s']:.1f} s; prices in "
                  f"{b['prices_s']:.1f} s (reactions refreshed in {b['reactions_refresh_s']:.1f} s)", flush=True)
        if server is not None and not args.no_build:  # what autovacuum would have done by the time anybody reads
            from urllib.parse import urlsplit

            with server.admin(urlsplit(args.pg).path.lstrip("/")) as conn:
                conn.execute("VACUUM ANALYZE")
        timings = {name: time_reads(store, args.repeat) for name, store in stores.items()}
        print(f"\nreads on one snapshot, {args.repeat} runs each (ms: min median max)")
        print(f"{'read':<34} {'duckdb':>26}   {'postgres':>26}   pg/duck")
        for read in timings["duckdb"]:
            d, p = timings["duckdb"][read], timings["postgres"][read]
            print(f"{read:<34} {fmt(d)}   {fmt(p)}   {statistics.median(p) / statistics.median(d):5.2f}x")
        total = {n: sum(statistics.median(v) for v in t.values()) for n, t in timings.items()}
        print(f"{'all reads (sum of medians)':<34} {total['duckdb'] * 1e3:17.1f}"
              f"   {total['postgres'] * 1e3:26.1f}   {total['postgres'] / total['duckdb']:5.2f}x")
        print(f"\nthe app (AppTest, a fresh process per run, {args.app_runs} runs, the backends in turn)")
        firsts: dict[str, list[float]] = {n: [] for n in targets}
        switches: dict[str, list[float]] = {n: [] for n in targets}
        for _ in range(args.app_runs):
            for name, target in targets.items():
                (r,) = app_runs(target, 1)
                firsts[name].append(r["first_render_s"])
                switches[name] += [s for _, s, _ in r["switches"]]
        for name in targets:
            f, sw = firsts[name], switches[name]
            print(f"{name:>8}: first render {min(f):.2f}/{statistics.median(f):.2f}/{max(f):.2f} s; "
                  f"switching security {min(sw):.3f}/{statistics.median(sw):.3f}/{max(sw):.3f} s (min/median/max)")
        print(f"postgres/duckdb medians: first render "
              f"{statistics.median(firsts['postgres']) / statistics.median(firsts['duckdb']):.2f}x, switching "
              f"{statistics.median(switches['postgres']) / statistics.median(switches['duckdb']):.2f}x")
        for store in stores.values():
            if hasattr(store, "close"):
                store.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
