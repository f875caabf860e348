"""Command line: ``python -m dashboard COMMAND``; a thin shell over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dashboard.articles import PostError, read_post
from dashboard.config import Settings, load_settings
from dashboard.securities import reference_list
from dashboard.store import Store, StoreBusy

class _Progress:
    """A progress bar on stderr for long runs on a terminal; silent otherwise."""

    def __init__(self, desc: str, unit: str = "post") -> None:
        self.desc, self.unit = desc, unit
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < 500 or not sys.stderr.isatty():
                return
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _store(args: argparse.Namespace, settings: Settings) -> Store:
    return Store(settings.with_db(args.db).db_path, lock_timeout=settings.lock_timeout)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.ingest import ingest_folder

    store = _store(args, settings)
    bar = _Progress("parsing")
    try:
        report = ingest_folder(store, args.dir, settings.site_timezone, workers=args.workers,
                               max_bytes=settings.max_post_bytes, progress=bar)
    except NotADirectoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(f"ingested {report.root} into {store.path} in {report.seconds:.2f} s")
    print(f"  files:      {report.files_seen}")
    print(f"  new:        {report.new}")
    print(f"  updated:    {report.updated}")
    print(f"  unchanged:  {report.unchanged}")
    print(f"  duplicates: {report.duplicates}")
    print(f"  removed:    {report.removed}")
    print(f"  rejected:   {len(report.rejected)}")
    for path, reason in report.rejected:
        print(f"rejected {path}: {reason}")
    for path, warning in report.warnings:
        print(f"warning  {path}: {warning}")
    if report.files_seen == 0:
        print(f"error: no posts (*.md, *.markdown) found in {report.root}", file=sys.stderr)
        return 1
    return 1 if report.readable == 0 else 0


def inspect_post(path: str, settings: Settings) -> dict[str, Any]:
    """What ingest would read from one post, as a JSON-ready dict."""
    refs = reference_list()
    try:
        a = read_post(path, settings.site_timezone, settings.max_post_bytes)
    except PostError as e:
        return {"path": path, "id": None, "title": None, "published_at": None, "url": None,
                "source": None, "securities": [], "error": str(e)}
    return {
        "path": path,
        "id": a.id,
        "title": a.title,
        "published_at": a.published_at.isoformat(),
        "url": a.url,
        "source": a.source,
        "categories": a.categories,
        "tags": a.tags,
        "digest": a.digest,
        "securities": [
            {
                "symbol": m.security.symbol,
                "canonical": m.security.canonical,
                "market": m.security.market,
                "name": m.name or (refs[m.security.symbol].name if m.security.symbol in refs else None),
                "how": m.how,
            }
            for m in a.mentions
        ],
        "warnings": a.warnings,
        "error": None,
    }


def _post_paths(paths: Sequence[str]) -> list[str]:
    from dashboard.ingest import scan

    out: list[str] = []
    for p in paths:
        if Path(p).is_dir():
            out += [f.path for f in scan(Path(p))]
        else:
            out.append(p)
    return out


def cmd_inspect(args: argparse.Namespace, settings: Settings) -> int:
    results = [inspect_post(p, settings) for p in _post_paths(args.paths)]
    for r in results:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        if r["error"]:
            print(f"{r['path']}: rejected: {r['error']}")
            continue
        names = ", ".join(f"{s['symbol']} {s['name'] or ''} [{s['how']}]".replace("  ", " ")
                          for s in r["securities"]) or "no securities"
        print(f"{r['path']}\n  {r['published_at']}  {r['title']}\n  {r['source'] or '-'}  {names}")
    return 0 if any(r["error"] is None for r in results) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard",
                                     description="Stock-linked news dashboard: ingest posts, "
                                                 "fetch prices, measure reactions.")
    sub = parser.add_subparsers(dest="command", required=True)
    db_help = "DuckDB store (default: $DASHBOARD_DB, then the configured data/dashboard.duckdb)"

    p = sub.add_parser("ingest", help="ingest a folder of posts, recursively")
    p.add_argument("dir")
    p.add_argument("--db", default=None, help=db_help)
    p.add_argument("--workers", type=int, default=None, help="parser processes (default: all cores)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("inspect", help="parse posts without storing them")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per post")
    p.set_defaults(func=cmd_inspect)

    _add_price_commands(sub, db_help)
    return parser


def _add_price_commands(sub: Any, db_help: str) -> None:
    """Commands over prices and reactions; added as those modules land."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    if getattr(args, "db", None) is None and os.environ.get("DASHBOARD_DB"):
        args.db = os.environ["DASHBOARD_DB"]
    try:
        return int(args.func(args, settings))
    except StoreBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted; the store keeps its previous state", file=sys.stderr)
        return 130
