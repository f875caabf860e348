"""Daily use at scale: what each step costs at 10k, 100k and 1M posts (issue 8).

    python benchmarks/scale_bench.py [--sizes 10000 100000 1000000] [--dir /work/bench] [--runs 3]
                                     [--stores DIR] [--steps fresh prices unchanged add1k reactions watch]

The corpora are synthetic posts shaped like ../shared/posts (benchmarks/corpus.py), written
once under --dir and reused; the stores go to --stores (default: --dir), one per size, kept
between runs (a step other than fresh reuses the store). Every measurement runs in a fresh
process; peak memory is the largest sum of the resident memory of that process and all its
children, sampled every 50 ms. Repeatable steps run --runs times and print min/median/max;
a table at the end puts each step's median at every size beside its target.

Steps:
  fresh      ingest into an empty store: posts/s, peak memory of all processes
  unchanged  re-ingest of the unchanged folder: seconds, peak memory
  add1k      1,000 new posts appear in a new folder; ingest of the grown folder
  prices     import the 94 real price CSVs of ../shared/prices in one command (into a store
             without prices: each run starts from the ingested posts alone)
  reactions  re-import one security's prices (changed); the reaction refresh it costs
  watch      the app's folder watch (folder_changed) when nothing changed

Targets at 1M: add1k <= 2 s; unchanged <= 1.5 s and < 400 MiB; fresh >= 8,000 posts/s and
< 1 GiB; prices <= 10 s; reactions <= 0.3 s; watch <= 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_PRICES = ROOT.parent / "shared" / "prices"


# --- in the measured process ----------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


class PeakMemory:
    """The largest summed RSS of this process and its descendants while running."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in _tree(me)))
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.peak_kib / 1024


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for (a pool's
    workers, once closed): beside the wall time, what a busy machine does not inflate."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_ingest(folder: str, db: str) -> dict[str, float]:
    from dashboard.ingest import ingest_folder
    from dashboard.store import Store

    with PeakMemory() as mem:
        t, c = time.perf_counter(), cpu_seconds()
        report = ingest_folder(Store(db), folder)
        seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    return {"seconds": seconds, "cpu": cpu, "new": report.new, "unchanged": report.unchanged,
            "peak_mib": mem.mib, "rejected": len(report.rejected)}


def run_import(db: str, files: list[str]) -> dict[str, float]:
    from dashboard.prices import import_csvs
    from dashboard.store import Store

    with PeakMemory() as mem:
        t, c = time.perf_counter(), cpu_seconds()
        imported, failed = import_csvs(Store(db), files)
        seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    return {"seconds": seconds, "cpu": cpu, "files": len(imported), "failed": len(failed),
            "peak_mib": mem.mib}


def reset_prices(db: str) -> dict[str, float]:
    """Take the store back to its posts alone: no prices, calendars or reaction caches, and
    no securities that only prices brought."""
    from dashboard.store import Store

    with Store(db).write() as con:
        con.execute("""
            DELETE FROM prices; DELETE FROM price_coverage; DELETE FROM price_failures;
            DELETE FROM calendar_sessions; DELETE FROM daily_returns; DELETE FROM session_reactions;
            DELETE FROM article_sessions;
            DELETE FROM securities WHERE symbol NOT IN (SELECT symbol FROM mentions);
        """)
    return {}


def run_reactions(db: str, file: str, bump: float) -> dict[str, float]:
    """Re-import one security's prices with every close scaled (so they changed)."""
    import pandas as pd

    from dashboard.prices import read_price_csv, write_prices
    from dashboard.reactions import refresh_reactions
    from dashboard.store import Store

    symbol, frame = read_price_csv(file)
    frame = frame.assign(**{c: frame[c] * bump for c in ("open", "high", "low", "close", "adj_close")})
    store = Store(db)
    with store.write() as con:
        write_prices(con, symbol, frame, "bench", (frame.index.min(), frame.index.max()))
        t, c = time.perf_counter(), cpu_seconds()
        refresh_reactions(con, symbols=[symbol])
        seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
        n = con.execute("SELECT count(*) FROM reactions WHERE symbol = ?", [symbol]).fetchall()[0][0]
    del pd
    return {"seconds": seconds, "cpu": cpu, "symbol_reactions": n}


def run_watch(folder: str, db: str) -> dict[str, float]:
    from dashboard.ingest import folder_changed
    from dashboard.store import Store

    with Store(db).read() as con:
        t, c = time.perf_counter(), cpu_seconds()
        changed = folder_changed(con, Path(folder))
        seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    return {"seconds": seconds, "cpu": cpu, "changed": changed}


# --- the driver ------------------------------------------------------------------------


def in_subprocess(func: str, *args: object) -> dict[str, float]:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from benchmarks.scale_bench import {func}; "
            f"print(json.dumps({func}(*{list(args)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{func} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float], unit: str = "s", fmt: str = "{:.2f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0]) + f" {unit}"
    return (f"min {fmt.format(min(values))} / median {fmt.format(statistics.median(values))} / "
            f"max {fmt.format(max(values))} {unit}")


def remove_store(db: Path) -> None:
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)


def price_files() -> list[str]:
    return sorted(str(p) for p in SHARED_PRICES.glob("*/*.csv") if not p.name.startswith("_"))


Results = dict[str, dict[int, str]]  # step -> size -> median, as printed in the summary


def bench_size(n: int, base: Path, stores: Path, runs: int, steps: list[str], results: Results) -> None:
    from benchmarks.corpus import make_post, write_corpus

    folder = base / f"corpus-{n}"
    t = time.perf_counter()
    write_corpus(folder, n)
    print(f"\n== {n:,} posts ({folder}; ready in {time.perf_counter() - t:.0f} s)", flush=True)
    stores.mkdir(parents=True, exist_ok=True)
    db = stores / f"scale-{n}.duckdb"
    extra = folder / "zz-new"  # where add1k's new posts go; removed again afterwards
    if extra.exists():
        shutil.rmtree(extra)
        time.sleep(2.5)
        if db.exists():
            in_subprocess("run_ingest", str(folder), str(db))  # an interrupted run's posts leave the store

    def note(step: str, text: str) -> None:
        results.setdefault(step, {})[n] = text

    if "fresh" in steps or not db.exists():
        rates, peaks, cpus = [], [], []
        for _ in range(runs if "fresh" in steps else 1):
            remove_store(db)
            r = in_subprocess("run_ingest", str(folder), str(db))
            rates.append(r["new"] / r["seconds"])
            peaks.append(r["peak_mib"])
            cpus.append(r["cpu"])
        print(f"fresh ingest:     {spread(rates, 'posts/s', '{:,.0f}')}; "
              f"peak (all processes) {spread(peaks, 'MiB', '{:.0f}')}; "
              f"store {db.stat().st_size / 2**20:,.0f} MiB; cpu {spread(cpus, 's', '{:.0f}')}", flush=True)
        if "fresh" in steps:
            note("fresh", f"{statistics.median(rates):,.0f} posts/s, {statistics.median(peaks):,.0f} MiB")
    if "prices" in steps:
        files = price_files()
        if files:
            times, cpus = [], []
            for _ in range(runs):
                in_subprocess("reset_prices", str(db))
                r = in_subprocess("run_import", str(db), files)
                assert r["files"] == len(files) and not r["failed"], r
                times.append(r["seconds"])
                cpus.append(r["cpu"])
            print(f"import {len(files)} price CSVs: {spread(times)}; cpu {spread(cpus)}", flush=True)
            note("prices", f"{statistics.median(times):.2f} s")
    if "unchanged" in steps:
        rs = [in_subprocess("run_ingest", str(folder), str(db)) for _ in range(runs)]
        print(f"re-ingest unchanged: {spread([r['seconds'] for r in rs])}; "
              f"peak {spread([r['peak_mib'] for r in rs], 'MiB', '{:.0f}')}; "
              f"cpu {spread([r['cpu'] for r in rs])}", flush=True)
        note("unchanged", f"{statistics.median([r['seconds'] for r in rs]):.2f} s, "
                          f"{statistics.median([r['peak_mib'] for r in rs]):,.0f} MiB")
    if "add1k" in steps:
        import random

        rng = random.Random(11)
        times, cpus = [], []
        for k in range(runs):
            sub = extra / f"{k:02d}"
            sub.mkdir(parents=True)
            for i in range(1000):
                (sub / f"2026-12-01-new{k:02d}{i:04d}.md").write_text(make_post(10**7 + k * 1000 + i, rng))
            r = in_subprocess("run_ingest", str(folder), str(db))
            assert r["new"] == 1000, r
            times.append(r["seconds"])
            cpus.append(r["cpu"])
        print(f"add 1,000 new posts: {spread(times)}; cpu {spread(cpus)}", flush=True)
        note("add1k", f"{statistics.median(times):.2f} s")
        shutil.rmtree(extra)
        time.sleep(2.5)  # so the folder's new time is not too recent to trust (ingest.RACY_NS)
        in_subprocess("run_ingest", str(folder), str(db))  # back to the corpus itself
    if "reactions" in steps:
        hist = SHARED_PRICES / "hsi-constituents" / "0700.HK.csv"
        if hist.exists():
            rs = [in_subprocess("run_reactions", str(db), str(hist), 1.0 + 0.01 * (k + 1))
                  for k in range(runs)]
            times = [r["seconds"] for r in rs]
            print(f"reactions after one price import: {spread(times, fmt='{:.3f}')}; "
                  f"cpu {spread([r['cpu'] for r in rs], fmt='{:.3f}')} "
                  f"({rs[0]['symbol_reactions']:,} reactions of 0700.HK)", flush=True)
            note("reactions", f"{statistics.median(times):.3f} s")
    if "watch" in steps:
        rs = [in_subprocess("run_watch", str(folder), str(db)) for _ in range(runs)]
        times = [r["seconds"] for r in rs]
        assert not any(r["changed"] for r in rs), rs
        print(f"folder watch, nothing changed: {spread(times, fmt='{:.3f}')}; "
              f"cpu {spread([r['cpu'] for r in rs], fmt='{:.3f}')}", flush=True)
        note("watch", f"{statistics.median(times):.3f} s")


TARGETS = {  # at 1M posts (issue 8)
    "fresh": ("fresh ingest", ">= 8,000 posts/s, < 1 GiB"),
    "prices": ("import 94 price CSVs", "<= 10 s"),
    "unchanged": ("re-ingest unchanged", "<= 1.5 s, < 400 MiB"),
    "add1k": ("add 1,000 new posts", "<= 2 s"),
    "reactions": ("reactions after one price import", "<= 0.3 s"),
    "watch": ("folder watch, nothing changed", "<= 0.2 s"),
}


def summary(results: Results, sizes: list[int]) -> None:
    """Each step's median at every size, beside its target at 1M."""
    heads = ["step"] + [f"{n:,}" for n in sizes] + ["target at 1M"]
    rows = [[TARGETS[step][0]] + [results[step].get(n, "-") for n in sizes] + [TARGETS[step][1]]
            for step in TARGETS if step in results]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    print("\nmedians:")
    for r in [heads, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dir", default="/work/bench")
    parser.add_argument("--stores", default=None, help="where the stores go (default: --dir)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", nargs="+", default=["fresh", "prices", "unchanged", "add1k", "reactions",
                                                       "watch"])
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; steps: {' '.join(args.steps)}; {args.runs} runs each")
    results: Results = {}
    for n in args.sizes:
        bench_size(n, Path(args.dir), Path(args.stores or args.dir), args.runs, args.steps, results)
    summary(results, args.sizes)


if __name__ == "__main__":
    main()
