"""Command line: ``python -m dashboard COMMAND``; a thin shell over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.articles import PostError, read_post
from dashboard.config import Settings, load_settings
from dashboard.securities import parse_symbol, reference_list
from dashboard.store import StoreBusy, StoreUnavailable, open_store


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


def _store(args: argparse.Namespace, settings: Settings) -> Any:
    return open_store(settings.with_db(args.db).store_target, lock_timeout=settings.lock_timeout)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.ingest import ingest_folder

    store = _store(args, settings)
    bar = _Progress("parsing")
    try:
        report = ingest_folder(store, args.dir, settings.site_timezone, workers=args.workers,
                               max_bytes=settings.max_post_bytes, progress=bar,
                               benchmarks=settings.benchmarks, full=args.full)
    except NotADirectoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(f"ingested {report.root} into {store.label} in {report.seconds:.2f} s")
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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what happens, and a failure's traceback, to stderr")
    db_help = ("the store: a DuckDB file, or a postgresql://user:password@host/dbname URL for a shared one "
               "(default: $DASHBOARD_DB, then the configured data/dashboard.duckdb)")
    # before or after the command: `--db X ingest DIR` and `ingest DIR --db X` both work
    parser.add_argument("--db", default=None, help=db_help)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest a folder of posts, recursively")
    p.add_argument("dir")
    p.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    p.add_argument("--workers", type=int, default=None, help="parser processes (default: all cores)")
    p.add_argument("--full", action="store_true",
                   help="check every known file for in-place edits (by default, beyond 50,000 files, "
                        "those in changed folders, recent ones and a rotating share of the rest)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("inspect", help="parse posts without storing them")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per post")
    p.set_defaults(func=cmd_inspect)

    _add_price_commands(sub, db_help)
    _verbose_everywhere(parser)
    return parser


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` also after the command (``ingest DIR --verbose``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if not any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    child.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                       help="log what happens, and a failure's traceback, to stderr")
                _verbose_everywhere(child)


def _add_price_commands(sub: Any, db_help: str) -> None:
    prices = sub.add_parser("prices", help="fetch or import daily prices").add_subparsers(
        dest="prices_command", required=True)
    p = prices.add_parser("fetch", help="fetch prices (eastmoney through akshare, Yahoo Finance) "
                                        "into the store")
    p.add_argument("symbols", nargs="*", metavar="SYMBOL",
                   help="Yahoo symbols (default: every security in the store, plus benchmarks)")
    p.add_argument("--since", type=date.fromisoformat, help="first date (YYYY-MM-DD)")
    p.add_argument("--until", type=date.fromisoformat, help="last date (default: articles' span)")
    p.add_argument("--force", action="store_true", help="ask again even for stored ranges")
    p.add_argument("--source", choices=["auto", "akshare", "yfinance"], default=None,
                   help="akshare (eastmoney), yfinance (Yahoo Finance), or auto: each market's sources "
                        "in the order price_sources gives (default: HK and mainland akshare then "
                        "Yahoo, the rest Yahoo)")
    p.add_argument("--csv-dir", metavar="DIR",
                   help="take prices from yfinance CSV exports in DIR (named SYMBOL.csv) instead")
    p.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    p.set_defaults(func=cmd_prices_fetch)

    p = prices.add_parser("import", help="import yfinance CSV exports (either shape)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--symbol", help="the symbol, when one file's name does not say it")
    p.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    p.set_defaults(func=cmd_prices_import)

    p = sub.add_parser("reactions", help="how the price reacted to each article naming SYMBOL")
    p.add_argument("symbol")
    p.add_argument("--json", action="store_true", help="a JSON list of objects")
    p.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    p.set_defaults(func=cmd_reactions)

    p = sub.add_parser("status", help="articles, securities, and price coverage per security")
    p.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


def _symbols(raw: Sequence[str]) -> list[str]:
    out = []
    for text in raw:
        sec = parse_symbol(text)
        if sec is None:
            raise SystemExit(f"error: '{text}' is not a symbol (try 3690.HK, 600519.SS, NIO, ^HSI)")
        out.append(sec.symbol)
    return out


def _price_source(args: argparse.Namespace, settings: Settings) -> tuple[Any, list[str]] | str:
    """The source ``prices fetch`` asks, and notes for the user; or why there is none."""
    from dashboard.prices import CsvFolderSource, akshare_available, configured_source, make_source
    from dashboard.prices.eastmoney import MISSING

    if args.csv_dir:
        if args.source:
            return "--csv-dir and --source each name where prices come from: give one"
        if not Path(args.csv_dir).is_dir():
            return f"{args.csv_dir} is not a folder"
        return CsvFolderSource(args.csv_dir), []
    if args.source == "akshare" and not akshare_available():
        return MISSING
    if args.source in ("akshare", "yfinance"):
        return make_source(args.source), []
    try:
        return configured_source(settings.price_sources)
    except ValueError as e:
        return f"dashboard.toml: {e}"


def cmd_prices_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.prices import default_spans, update_prices

    chosen = _price_source(args, settings)
    if isinstance(chosen, str):
        print(f"error: {chosen}", file=sys.stderr)
        return 2
    source, notes = chosen
    store = _store(args, settings)
    with store.read() as con:
        spans = default_spans(con, settings.benchmarks,
                              symbols=_symbols(args.symbols) if args.symbols else None,
                              since=args.since, until=args.until,
                              margin_days=settings.price_margin_days)
    if not spans:
        print("nothing to fetch: the store has no securities yet (ingest posts, or name symbols)")
        return 0
    for note in notes:
        print(f"note: {note}")
    bar = _Progress("fetching", unit="symbol")
    try:
        report = update_prices(store, source, spans, force=args.force,
                               refresh_days=settings.refresh_days,
                               refresh_after=timedelta(hours=settings.refresh_after_hours),
                               benchmarks=settings.benchmarks, progress=bar)
    finally:
        bar.close()
    print(f"prices for {len(spans)} symbols: {len(report.stored)} fetched, "
          f"{len(report.cached)} already stored, {len(report.failures)} failed, "
          f"{len(report.skipped)} failed recently (not asked again; --force to retry)")
    for symbol, rows in sorted(report.stored.items()):
        print(f"  {symbol}: {rows} rows from {report.sources.get(symbol, source.name)}")
    for symbol, f in sorted({**report.skipped, **report.failures}.items()):
        print(f"failed   {symbol}: {f.reason}")
    for warning in report.warnings:
        print(f"warning  {warning}")
    if report.failures or report.skipped:
        print("prices can also come from files: python -m dashboard prices import FILE.csv")
    return 1 if spans and not report.stored and not report.cached else 0


def cmd_prices_import(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.prices import import_csvs

    if args.symbol and len(args.files) > 1:
        print("error: --symbol names one file's symbol; import files one at a time", file=sys.stderr)
        return 2
    store = _store(args, settings)
    imported, failed = import_csvs(store, args.files, _symbols([args.symbol])[0] if args.symbol else None,
                                   benchmarks=settings.benchmarks)
    refused = list(failed)
    done = iter(imported)
    for f in args.files:  # one line per file, in the order given (each list keeps that order)
        if refused and refused[0][0] == str(f):
            print(f"error: {refused.pop(0)[1]}", file=sys.stderr)
        else:
            _, symbol, rows = next(done)
            print(f"imported {f}: {symbol}, {rows} rows")
    return 1 if failed else 0


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _reaction_json(r: Any) -> dict[str, Any]:
    """One reaction as JSON: the original measures, then per CAR window its CAR, t and p
    (market-adjusted, then the market model's), and the estimation window's noise."""
    from dashboard.reactions import WINDOWS, column

    out = {
        "article_id": r.article_id,
        "published_at": r.published_at.isoformat(),
        "session": None if pd.isna(r.session) else r.session.strftime("%Y-%m-%d"),
        "title": r.title,
        **{k: _number(getattr(r, k)) for k in (
            "day0_return", "day0_abnormal", "cr_m1_p1", "car_m1_p1", "cr_0_p5", "car_0_p5",
            "car_m1_p1_mm", "car_0_p5_mm", "volume_ratio")},
    }
    for model in ("market", "mm"):
        for w in WINDOWS:
            for stat in ("car", "t", "p"):
                out.setdefault(column(w, model, stat), _number(getattr(r, column(w, model, stat))))
    out["sigma"] = _number(r.sigma)
    out["sigma_mm"] = _number(r.sigma_mm)
    out["n_est"] = None if pd.isna(r.n_est) else int(r.n_est)
    return out


def cmd_reactions(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.reactions import reactions_for

    (symbol,) = _symbols([args.symbol])
    store = _store(args, settings)
    with store.read() as con:
        df = reactions_for(con, symbol, settings.site_timezone)
    rows = [_reaction_json(r) for r in df.itertuples()]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print(f"no articles name {symbol}")
        return 0

    def pct(v: float | None) -> str:
        return "      -" if v is None else f"{v * 100:+6.2f}%"

    def pval(v: float | None) -> str:
        return "    -" if v is None else f"{v:5.3f}"

    print(f"{'published':<17} {'session':<10} {'day 0':>7} {'CAR-1+1':>7} {'p':>5} {'CAR0+5':>7} {'p':>5} "
          f"{'vol×':>5}  title")
    for r in rows:
        vol = "    -" if r["volume_ratio"] is None else f"{r['volume_ratio']:5.2f}"
        print(f"{r['published_at'][:16].replace('T', ' ')} {r['session'] or '-':<10} {pct(r['day0_return'])} "
              f"{pct(r['car_m1_p1'])} {pval(r['p_car_m1_p1'])} {pct(r['car_0_p5'])} {pval(r['p_car_0_p5'])} "
              f"{vol}  {r['title']}")
    print("returns are simple returns of adjusted closes; CAR: summed abnormal returns against "
          "the market benchmark; p: two-sided p-value of the CAR against the stock's noise over the "
          "120 sessions ending 11 before; '-' where prices do not cover the window")
    return 0


def _pad(text: str, width: int) -> str:
    """Pad to a terminal width, counting CJK characters as two columns."""
    out, used = "", 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width:
            break
        out, used = out + ch, used + w
    return out + " " * (width - used)


def status_summary(con: Any, site_tz: str) -> dict[str, Any]:
    """What ``status --json`` prints: articles, each security's coverage, and rejected files."""
    from dashboard.ingest import current_rejections
    from dashboard.prices import coverage_report

    report = coverage_report(con, site_tz)
    articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]

    def text(value: Any) -> str | None:
        return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)

    return {
        "articles": int(articles),
        "securities": [
            {"symbol": r.symbol, "name": text(r.name), "articles": int(r.articles), "prices": int(r.price_rows),
             "first_price": text(r.first_price), "last_price": text(r.last_price), "state": r.state,
             "reason": text(r.failure_reason), "source": text(r.price_source)}
            for r in report.itertuples()
        ],
        "rejected": [{"path": path, "reason": reason} for path, reason in current_rejections(con)],
    }


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.prices import coverage_report

    store = _store(args, settings)
    with store.read() as con:
        if args.json:
            print(json.dumps(status_summary(con, settings.site_timezone), ensure_ascii=False, indent=1))
            return 0
        counts = con.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM securities), "
            "(SELECT count(*) FROM prices), (SELECT max(finished_at) FROM ingest_runs)").fetchall()[0]
        report = coverage_report(con, settings.site_timezone)
    articles, securities, price_rows, last_ingest = counts
    print(f"store {store.label}")
    print(f"  {articles} articles, {securities} securities, {price_rows} price rows; "
          f"last ingest {last_ingest or 'never'}")
    if report.empty:
        return 0
    print(f"\n{'symbol':<11} {'name':<12} {'articles':>8}  {'article span':<23} {'prices':>6}  "
          f"{'price span':<23} {'state':<9} source")
    for r in report.itertuples():
        span = f"{r.first_article} … {r.last_article}" if r.articles else "-"
        pspan = f"{r.first_price} … {r.last_price}" if r.price_rows else "-"
        if r.state == "no prices" and isinstance(r.failure, str):
            pspan = f"({r.failure})"
        name = r.name if isinstance(r.name, str) else ""
        source = r.price_source if isinstance(r.price_source, str) else "-"
        print(f"{r.symbol:<11} {_pad(name, 12)} {r.articles:>8}  {span:<23} {r.price_rows:>6}  "
              f"{pspan:<23} {r.state:<9} {source}")
    missing = report[report["failure"].notna()]
    if not missing.empty:
        print("\nmissing prices, and why:")
        for r in missing.itertuples():
            print(f"  {r.symbol}: {r.failure_reason} (at {r.failed_at:%Y-%m-%d %H:%M} UTC)")
        print("retry with: python -m dashboard prices fetch --force SYMBOL, "
              "or import a CSV: python -m dashboard prices import FILE.csv")
    return 0


EXIT_FAULT = 4  # the disk, the store file or the system failed (the message says which)
EXIT_BUG = 70  # an error the dashboard did not foresee (EX_SOFTWARE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A failure ends in one sentence on stderr naming the store or file,
    never a traceback; ``--verbose`` logs the traceback too (the ``dashboard`` logger)."""
    from dashboard.errors import explain, log, log_to_stderr

    args = build_parser().parse_args(argv)
    log_to_stderr(verbose=bool(getattr(args, "verbose", False)))
    store_path: str | None = None
    try:
        settings = load_settings()
        if getattr(args, "db", None) is None and os.environ.get("DASHBOARD_DB"):
            args.db = os.environ["DASHBOARD_DB"]
        if hasattr(args, "db"):
            store_path = settings.with_db(args.db).store_label  # a URL without its password
        return int(args.func(args, settings))
    except StoreBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except StoreUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("interrupted; the store keeps its previous state", file=sys.stderr)
        return 130
    except Exception as e:  # a full disk, a damaged store, a bug: a sentence, details to the log
        failure = explain(e, store_path)
        log.debug("%s failed", args.command, exc_info=e)
        hint = "" if getattr(args, "verbose", False) else " (--verbose shows the details)"
        if not failure.expected:
            hint += "; this is a bug in the dashboard, please report it with those details"
        print(f"error: {failure.message}{hint}", file=sys.stderr)
        return EXIT_FAULT if failure.expected else EXIT_BUG
