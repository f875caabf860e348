"""Ingest throughput and peak memory at 10k and 100k synthetic posts, beside a naive baseline.

    python benchmarks/ingest_bench.py [--sizes 10000 100000] [--dir /tmp/dashboard-bench]

Each measurement runs in a fresh process, so its peak memory is its own. The baseline is
python-frontmatter's ``load`` plus BeautifulSoup's ``get_text``, one file at a time.
Targets (issue 2): >= 8,000 posts/s at 100k on 2 cores, >= 3x the baseline, peak memory
under 1 GiB, re-ingest of an unchanged 100k corpus under 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _peak_mib() -> dict[str, float]:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"main_peak_mib": self_kib / 1024, "worker_peak_mib": child_kib / 1024}


def run_baseline(folder: str, limit: int) -> dict[str, float]:
    import frontmatter
    from bs4 import BeautifulSoup

    files = sorted(str(p) for p in Path(folder).rglob("*.md"))[:limit]
    start = time.perf_counter()
    for f in files:
        post = frontmatter.load(f)
        BeautifulSoup(post.content, "html.parser").get_text()
    seconds = time.perf_counter() - start
    return {"posts": len(files), "seconds": seconds, "posts_per_s": len(files) / seconds, **_peak_mib()}


def run_ingest(folder: str, db: str) -> dict[str, float]:
    from dashboard.ingest import ingest_folder
    from dashboard.store import Store

    store = Store(db)
    start = time.perf_counter()
    report = ingest_folder(store, folder)
    seconds = time.perf_counter() - start
    first = {"posts": report.new, "rejected": len(report.rejected), "seconds": seconds,
             "posts_per_s": report.new / seconds, **_peak_mib()}
    start = time.perf_counter()
    again = ingest_folder(store, folder)
    first["reingest_seconds"] = time.perf_counter() - start
    first["reingest_unchanged"] = again.unchanged
    first["db_mib"] = os.path.getsize(db) / 2**20
    return first


def in_subprocess(func: str, *args: object) -> dict[str, float]:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from benchmarks.ingest_bench import {func}; "
            f"print(json.dumps({func}(*{list(args)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dir", default="/tmp/dashboard-bench")
    parser.add_argument("--baseline-limit", type=int, default=10_000,
                        help="posts the baseline reads (its rate is per post)")
    args = parser.parse_args()
    from benchmarks.corpus import write_corpus

    print(f"cores: {os.cpu_count()}")
    for n in args.sizes:
        folder = Path(args.dir) / f"corpus-{n}"
        t = time.perf_counter()
        write_corpus(folder, n)
        print(f"\n== {n:,} posts ({folder}; ready in {time.perf_counter() - t:.1f} s)")
        base = in_subprocess("run_baseline", str(folder), min(n, args.baseline_limit))
        print(f"baseline (frontmatter.load + BeautifulSoup.get_text, 1 process): "
              f"{base['posts_per_s']:,.0f} posts/s over {base['posts']:,} posts, "
              f"peak {base['main_peak_mib']:.0f} MiB")
        db = Path(args.dir) / f"bench-{n}.duckdb"
        for p in (db, db.with_name(db.name + ".wal")):
            p.unlink(missing_ok=True)
        r = in_subprocess("run_ingest", str(folder), str(db))
        print(f"ingest: {r['posts']:,} posts in {r['seconds']:.2f} s = {r['posts_per_s']:,.0f} posts/s "
              f"({r['posts_per_s'] / base['posts_per_s']:.1f}x baseline), rejected {r['rejected']}")
        print(f"peak memory: main {r['main_peak_mib']:.0f} MiB, each worker <= "
              f"{r['worker_peak_mib']:.0f} MiB, all processes <= "
              f"{r['main_peak_mib'] + 2 * r['worker_peak_mib']:.0f} MiB; store {r['db_mib']:.0f} MiB")
        print(f"re-ingest unchanged: {r['reingest_seconds']:.2f} s ({r['reingest_unchanged']:,} unchanged)")


if __name__ == "__main__":
    main()
