"""What a long chart costs: reading the candles, building the figure, and its JSON (what the
browser is sent), for 5 years of real daily prices (3690.HK, 2020-01 .. 2025-05).

    python benchmarks/candles_bench.py [--repeat 15] [--many 3000] [--big-store PATH]

Baseline, measured in the same run: main's figures.price_chart on the daily rows
(coverage.price_history), as the app draws a 5-year range today. ``--big-store`` (a copy is
read, never the file itself) times the candles query against a store with many securities'
prices. Prints min / median / max seconds and the ratio of medians to the baseline.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
SITE_TZ = "Asia/Shanghai"
LABELS = {"price": "Price", "volume": "Volume", "articles": "articles", "news": "News"}
START, END = date(2020, 1, 1), date(2025, 5, 22)
SIX = ("3690.HK", "1024.HK", "0700.HK", "9988.HK", "0005.HK", "^HSI")


def main_figures() -> Any:
    """main's dashboard/figures.py, as the baseline."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", "main:dashboard/figures.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "figures_main.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("figures_main", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_store(db: Path) -> None:
    from dashboard.ingest import ingest_folder
    from dashboard.prices import import_csv
    from dashboard.store import Store

    store = Store(db)
    ingest_folder(store, SHARED / "posts" / "seeds")
    for s in SIX:
        import_csv(store, SHARED / "prices" / ("download-format" if s.startswith("^") else "hsi-constituents")
                   / f"{s}.csv")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def line(name: str, times: list[float], base: float | None, extra: str = "") -> None:
    med = statistics.median(times)
    ratio = f"  x{med / base:5.2f}" if base else ""
    ms = " ".join(f"{v * 1000:7.1f}" for v in (min(times), med, max(times)))
    print(f"{name:<40} {ms} ms{ratio}  {extra}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/candles-bench"))
    parser.add_argument("--big-store", type=Path)
    parser.add_argument("--many", type=int, default=0,
                        help="also time the reads among N more securities' prices (copies of 3690.HK's)")
    args = parser.parse_args()

    from dashboard import candles as C
    from dashboard import coverage, figures
    from dashboard.store import Store

    args.dir.mkdir(parents=True, exist_ok=True)
    db = args.dir / "store.duckdb"
    if not db.exists():
        build_store(db)
    old = main_figures()
    store = Store(db)
    with store.read() as con:
        def baseline() -> dict[str, Any]:
            prices = coverage.price_history(con, "3690.HK", START, END)
            markers = coverage.session_markers(con, "3690.HK", START, END, SITE_TZ)
            return {"points": len(prices),
                    "json": old.price_chart(prices, markers, title="3690.HK", labels=LABELS).to_json()}

        def one(interval: str, mas: tuple[int, ...]) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                c = C.candles(con, "3690.HK", START, END, interval, mas)
                markers = coverage.session_markers(con, "3690.HK", START, END, SITE_TZ)
                fig = figures.price_chart(c, markers, title="3690.HK", labels=LABELS, symbol="3690.HK")
                return {"points": len(c), "json": fig.to_json()}
            return run

        def six() -> dict[str, Any]:
            frames = C.candles_many(con, SIX, START, END, "auto", (20,))
            panels = [figures.Panel(sym, sym, frames[frames["symbol"] == sym],
                                    coverage.session_markers(con, sym, START, END, SITE_TZ)) for sym in SIX]
            return {"points": len(frames),
                    "json": figures.price_charts(panels, labels=LABELS, volume=True).to_json()}

        def summary() -> dict[str, Any]:
            C.range_summary(con, "3690.HK", START, END)
            return {"points": 1, "json": ""}

        cases: dict[str, Callable[[], dict[str, Any]]] = {
            "main: daily rows (the baseline)": baseline,
            "day": one("day", ()), "day +MA5/20/60": one("day", (5, 20, 60)),
            "week +MA5/20/60": one("week", (5, 20, 60)), "month +MA5/20/60": one("month", (5, 20, 60)),
            "auto (month) +MA5/20/60": one("auto", (5, 20, 60)),
            "6 securities, auto +MA20, volume": six, "range_summary": summary,
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        out: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):  # round robin: the machine's drift falls on every case alike
            for name, fn in cases.items():
                t = time.perf_counter()
                out[name] = fn()
                times[name].append(time.perf_counter() - t)
        base = statistics.median(times["main: daily rows (the baseline)"])
        print(f"5 years of 3690.HK ({START} .. {END}): read + build + to_json, repeat {args.repeat}")
        print(f"{'':<40} {'min':>7} {'median':>7} {'max':>7}")
        for name in cases:
            o = out[name]
            extra = f"{o['points']:>5} candles {len(o['json']):>9,} B JSON" if o["json"] else ""
            line(name, times[name], base, extra)

        c = C.candles(con, "3690.HK", START, END, "auto", (5, 20, 60))
        markers = coverage.session_markers(con, "3690.HK", START, END, SITE_TZ)
        q, _ = timed(lambda: C.candles(con, "3690.HK", START, END, "auto", (5, 20, 60)), args.repeat)
        f, fig = timed(lambda: figures.price_chart(c, markers, title="3690.HK", labels=LABELS), args.repeat)
        j, _ = timed(fig.to_json, args.repeat)
        print("auto, by step:")
        line("  candles query", q, None)
        line("  price_chart", f, None)
        line("  to_json", j, None)

    if args.many:
        many = args.dir / f"many-{args.many}.duckdb"
        if not many.exists():
            shutil.copy(db, many)
            with Store(many).write() as con:
                con.execute("""
                    INSERT INTO prices SELECT 'S' || lpad(i::VARCHAR, 6, '0'), date, open, high, low, close,
                           adj_close, volume, source, fetched_at
                    FROM prices, range($n) t(i) WHERE symbol = '3690.HK' ORDER BY i, date
                """, {"n": args.many})
        with Store(many).read() as con:
            rows = con.execute("SELECT count(*) FROM prices").fetchall()[0][0]
            print(f"among {args.many:,} more securities ({rows:,} price rows):")
            for interval in ("auto", "day"):
                q, c = timed(lambda: C.candles(con, "3690.HK", START, END, interval, (5, 20, 60)),
                             args.repeat)
                line(f"  candles {interval} +MA", q, None, f"{len(c)} candles")
            q, _ = timed(lambda: C.range_summary(con, "3690.HK", START, END), args.repeat)
            line("  range_summary", q, None)
            q, _ = timed(lambda: coverage.price_history(con, "3690.HK", START, END), args.repeat)
            line("  price_history (main's read)", q, None)

    if args.big_store:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "big.duckdb"
            shutil.copy(args.big_store, copy)
            big = Store(copy)
            with big.read() as con:
                rows, symbols = con.execute(
                    "SELECT count(*), count(DISTINCT symbol) FROM prices").fetchall()[0]
                print(f"big store: {rows:,} price rows, {symbols:,} securities")
                if not rows:
                    return
                symbol, lo, hi = con.execute(
                    "SELECT symbol, min(date), max(date) FROM prices GROUP BY 1 "
                    "ORDER BY count(*) DESC, symbol LIMIT 1").fetchall()[0]
                print(f"  {symbol} {lo} .. {hi}")
                q, c = timed(lambda: C.candles(con, symbol, lo, hi, "auto", (5, 20, 60)), args.repeat)
                line("  candles auto +MA", q, None, f"{len(c)} {c['interval'].iloc[0]} candles")
                q, c = timed(lambda: C.candles(con, symbol, lo, hi, "day", (5, 20, 60)), args.repeat)
                line("  candles day +MA", q, None, f"{len(c)} candles")
                q, _ = timed(lambda: coverage.price_history(con, symbol, lo, hi), args.repeat)
                line("  price_history (main's read)", q, None)


if __name__ == "__main__":
    main()
