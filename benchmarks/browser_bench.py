"""Dashboard speed in a real browser (issue 9): chromium driven by Playwright, a fresh
``streamlit run app.py`` server per run, tried as a new user would.

    python benchmarks/browser_bench.py [--sizes 100000 1000000] [--runs 3] [--dir /work/bench]
                                       [--db STORE] [--keyword 新能源汽车芯片] [--rebuild] [--json]
                                       [--steps load switch dates keyword queries changes]

Stores: the synthetic corpus DIR/corpus-N (benchmarks/corpus.py) ingested, then the 94 real
price CSVs of ../shared/prices imported; built once and kept as DIR/browser-N-KEY.duckdb, KEY
a hash of dashboard/store/ (schema and migrations), so a store change builds a new one
(``--migrate``: migrate a copy of the last one instead; ``--rebuild`` after an ingest change
that alters what is stored). ``--db`` measures a given store instead (one size).

Rows (each browser row: 3 runs, min/median/max; "drawn" = the run the action asked for has
finished (its script_finished seen on the page's WebSocket), at least one candlestick trace is
rendered, the coverage table is present, no stale element is left and the app is not running):
  load      page load until the chart and the table are drawn, versus a floor measured in the
            same run: benchmarks/minimal_app.py, one Plotly candlestick of the same prices.
  switch    in the "Security" box, type the second most covered security's code and pick it,
            until its chart and table are drawn (one pick: "Compare with" adds others).
  dates     type a later start year in the date range; timed from closing its calendar (which
            commits it; typing does not).
            Both beside the same action on the minimal page with just those two controls
            (minimal_app.py with BENCH_CONTROLS=1; DuckDB stores), in the same run: what
            Streamlit and Plotly alone cost for it here.
  keyword   type a keyword, Enter, until the table changes; and the query alone
            (coverage.related_coverage with keyword=..., on the store).
  queries   related_coverage, session_markers, facets as the first paint calls them, on a
            read-only connection: the first call (cold) and three more (warm).
  changes   with the app open, 5 small writes (``prices import`` of one CSV, in another
            process), each followed by a rerun in the browser: snapshot copies the server
            keeps (under its own TMPDIR), their size, and the server's RSS before and after.

Browser rows also say where the time went, by the page's clock: until the run's end reached
the page (script_finished on the WebSocket), and drawing after it (for a load, also the page and
its WebSocket coming up). The selectors, labels and user actions are at the top of this file:
adapt them when the UI changes. Needs Debian's chromium (/usr/bin/chromium) and playwright.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_PRICES = ROOT.parent / "shared" / "prices"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# A cold 1M page load may take a while; a hang still ends the run.
TIMEOUT_MS = int(os.environ.get("BENCH_TIMEOUT_MS", 180_000))

# --- what the benchmark looks for in the page: adapt here when the UI changes -------------

SELECTORS = {
    "app": '[data-testid="stApp"]',            # carries data-test-script-state
    "script_state": "data-test-script-state",  # initial | running | notRunning | rerunRequested ...
    "status_running": '[data-testid="stStatusWidgetRunningIcon"]',
    "stale": '[data-stale="true"]',            # an element container left from the previous run
    "chart": '[data-testid="stPlotlyChart"]',
    "plot": ".js-plotly-plot",                 # plotly's graph div: _fullData holds the traces
    "candles": ".boxlayer path",               # plotly draws candlesticks as boxes
    "table": '[data-testid="stDataFrame"]',
    "grid": 'table[role="grid"]',              # glide-data-grid's accessible table: aria-rowcount
    "neutral": '[data-testid="stMainBlockContainer"]',  # clicked in its top padding to leave a field
}
LABELS = {  # English UI (the browser context's locale is en-US)
    "security": "Security",                                # the sidebar's select box: the charted one
    "start_year": "year, Date range start date",          # the date range's first segment
    "keyword": "Keyword in headline or text",
}

# Where the server's snapshot copies go (store.Snapshot: tempfile.mkdtemp under its TMPDIR).
SNAPSHOT_GLOB = "dashboard-snapshot-*"

# What the page shows, in one pass: is the app idle, what candlesticks and tables are drawn.
PAGE_STATE_JS = """(sel) => {
  const app = document.querySelector(sel.app);
  const state = app ? app.getAttribute(sel.script_state) : null;
  const live = e => !e.closest(sel.stale);
  const candles = [];
  for (const chart of [...document.querySelectorAll(sel.chart)].filter(live)) {
    const gd = chart.querySelector(sel.plot);
    if (!gd || !gd._fullData) continue;
    const drawn = gd.querySelectorAll(sel.candles).length;
    const title = gd.layout && gd.layout.title ? String(gd.layout.title.text || '') : '';
    for (const t of gd._fullData) {
      if (t.type !== 'candlestick' || t.visible === false || !t._length) continue;
      candles.push({title, n: t._length, x0: String(t.x[0]), x1: String(t.x[t._length - 1]),
                    c0: t.close ? Number(t.close[0]) : null, drawn});
    }
  }
  const tables = [...document.querySelectorAll(sel.table)].filter(live).map(t => {
    const g = t.querySelector(sel.grid);
    if (!g) return null;
    const first = [...g.querySelectorAll('tbody tr:first-child td')].map(td => td.textContent).join('|');
    return {rows: Number(g.getAttribute('aria-rowcount')), first};
  });
  const b = window.__bench || {};
  return {state, idle: state === 'notRunning' && !document.querySelector(sel.status_running),
          stale: document.querySelectorAll(sel.stale).length, candles, tables,
          requests: b.requests, finished: b.finished, since_request: b.sinceRequest};
}"""

# True once the page is drawn and idle, a run asked for after `after` requests has finished (if
# given), and each part named in `change` differs from `before`.
DRAWN_JS = """([sel, needTable, change, before, after]) => {
  const b = window.__bench;
  if (after !== null && !(b && b.requests > after && b.sinceRequest > 0)) return false;
  const s = (%s)(sel);
  if (!s.idle || s.stale) return false;
  if (!s.candles.some(c => c.drawn > 0)) return false;
  if (needTable && !s.tables.some(t => t)) return false;
  const parts = {candles: JSON.stringify(s.candles.map(({drawn, ...c}) => c)),
                 tables: JSON.stringify(s.tables)};
  for (const p of change) if (parts[p] === before[p]) return false;
  return {...parts, at: performance.now(), requestAt: b ? b.requestAt : null,
          finishedAt: b ? b.finishedAt : null};
}""" % PAGE_STATE_JS


def _ws_hook_js() -> str:
    """Counts, on the page's WebSocket, the reruns the user asked for (BackMsg.rerun_script that
    is not an automatic rerun, e.g. a run_every fragment) and the runs that finished since the
    last one (ForwardMsg.script_finished: successfully, or a fragment run successfully). The
    page's own "running" flag is not enough: a quick run may never show it, and Plotly draws
    after it is cleared. Field numbers come from Streamlit's own protobuf descriptors."""
    from streamlit.proto import BackMsg_pb2, ClientState_pb2, ForwardMsg_pb2

    fwd, back = ForwardMsg_pb2.ForwardMsg.DESCRIPTOR, BackMsg_pb2.BackMsg.DESCRIPTOR
    status = fwd.enum_types_by_name["ScriptFinishedStatus"].values_by_name
    numbers = {
        "SCRIPT_FINISHED": fwd.fields_by_name["script_finished"].number,
        "DONE": [status["FINISHED_SUCCESSFULLY"].number, status["FINISHED_FRAGMENT_RUN_SUCCESSFULLY"].number],
        "RERUN_SCRIPT": back.fields_by_name["rerun_script"].number,
        "IS_AUTO_RERUN": ClientState_pb2.ClientState.DESCRIPTOR.fields_by_name["is_auto_rerun"].number,
    }
    return "const N = %s;\n" % json.dumps(numbers) + """
(() => {
  if (window.__bench) return;
  const bench = window.__bench = {requests: 0, finished: 0, sinceRequest: 0,
                                  requestAt: null, finishedAt: null};
  const varint = (b, i) => {
    let x = 0, m = 1, c;
    do { c = b[i++]; x += (c & 0x7f) * m; m *= 128; } while ((c & 0x80) && i < b.length);
    return [x, i];
  };
  // The top-level fields of one protobuf message: [field, wire type, value or [start, end]].
  const fields = b => {
    const out = [];
    let i = 0;
    while (i < b.length) {
      let tag, v = null;
      [tag, i] = varint(b, i);
      const f = Math.floor(tag / 8), w = tag & 7;
      if (w === 0) [v, i] = varint(b, i);
      else if (w === 2) { let n; [n, i] = varint(b, i); v = [i, i + n]; i += n; }
      else if (w === 1) i += 8;
      else if (w === 5) i += 4;
      else break;
      out.push([f, w, v]);
    }
    return out;
  };
  const bytes = d => d instanceof ArrayBuffer ? new Uint8Array(d)
    : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : null;
  const Native = window.WebSocket;
  class Counting extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', e => {  // registered first: counted before the app reads it
        const b = bytes(e.data);
        if (!b) return;
        for (const [f, w, v] of fields(b)) {
          if (f === N.SCRIPT_FINISHED && w === 0 && N.DONE.includes(v)) {
            bench.finished++;
            bench.sinceRequest++;
            bench.finishedAt = performance.now();
          }
        }
      });
    }
    send(data) {
      try {
        const b = bytes(data);
        if (b) for (const [f, w, v] of fields(b)) {
          if (f !== N.RERUN_SCRIPT || w !== 2) continue;
          const auto = fields(b.subarray(v[0], v[1]))
            .some(([g, w2, x]) => g === N.IS_AUTO_RERUN && w2 === 0 && x);
          if (!auto) { bench.requests++; bench.sinceRequest = 0; bench.requestAt = performance.now(); }
        }
      } catch (err) { /* never break the app */ }
      return super.send(data);
    }
  }
  window.WebSocket = Counting;
})();"""


WS_HOOK_JS = _ws_hook_js()


class NotDrawn(RuntimeError):
    """The page did not reach the awaited state: what it showed instead, and a screenshot."""


def _explain(page: Any, what: str, e: Exception) -> NotDrawn:
    shot = ROOT / "benchmarks" / "out" / f"not-drawn-{time.strftime('%H%M%S')}.png"
    try:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        state = json.dumps(page.evaluate(PAGE_STATE_JS, SELECTORS), ensure_ascii=False)[:3000]
    except Exception as e2:  # the page itself may be gone
        state = f"(no state: {e2})"
    return NotDrawn(f"{what}: {e}\n  the page showed: {state}\n  screenshot: {shot}")


def requests(page: Any) -> int:
    """Reruns the user has asked for so far on this page."""
    return page.evaluate("() => window.__bench.requests")


def wait_drawn(page: Any, need_table: bool = True, change: Sequence[str] = (),
               before: dict[str, str] | None = None, after: int | None = None) -> dict[str, str]:
    """Until the page is drawn and idle; with ``after``, also until a run asked for after that
    many requests has finished; each part in ``change`` must differ from ``before``."""
    try:
        handle = page.wait_for_function(DRAWN_JS, arg=[SELECTORS, need_table, list(change), before or {},
                                                       after], polling="raf", timeout=TIMEOUT_MS)
    except Exception as e:
        what = f"waiting for the page to be drawn (changed: {', '.join(change) or '-'}; after: {after})"
        raise _explain(page, what, e) from e
    return handle.json_value()


# --- the user's actions: each returns seconds from the committing input until drawn --------


def split(drawn: dict[str, Any], t0_page: float | None = None) -> dict[str, float]:
    """Where an action's time went, by the page's clock: from the rerun request until the run's
    script_finished reached the page (the server's run, and whatever the page drew of it while
    its deltas arrived: one thread handles both), and from there until drawn; for a page load,
    also what came before the first request (HTML, scripts, the WebSocket)."""
    req, fin, at = drawn.get("requestAt"), drawn.get("finishedAt"), drawn.get("at")
    if req is None or fin is None or at is None:
        return {}
    out = {"server_s": (fin - req) / 1000, "browser_s": (at - fin) / 1000}
    if t0_page is not None:
        out["before_request_s"] = (req - t0_page) / 1000
    return out


def act_switch(page: Any, new: str, splits: dict[str, Any], table: bool = True) -> float:
    """Switch to ``new`` in the Security box: type its code, pick it; until the new
    chart and its table (with ``table``) are drawn."""
    before = wait_drawn(page, need_table=table)
    box = page.get_by_role("combobox", name=LABELS["security"])
    box.click()
    box.fill(new)
    option = page.get_by_role("option", name=re.compile(rf"^{re.escape(new)}\s"))
    option.wait_for(timeout=TIMEOUT_MS)
    n = requests(page)
    t0 = time.perf_counter()
    option.click()
    change = ("candles", "tables") if table else ("candles",)
    splits["switch"] = split(wait_drawn(page, need_table=table, change=change, before=before, after=n))
    return time.perf_counter() - t0


def act_dates(page: Any, start: date, end: date, splits: dict[str, Any], table: bool = True) -> tuple[float, date]:
    """Type a later start year; the date input commits when its calendar closes or it loses
    focus (not on each digit, nor on Enter); timed from there."""
    before = wait_drawn(page, need_table=table)
    new_start = _later_start(start, end)
    segment = page.get_by_role("spinbutton", name=LABELS["start_year"])
    segment.click()
    page.keyboard.type(str(new_start.year))
    box = page.locator(SELECTORS["neutral"]).bounding_box()
    n = requests(page)
    t0 = time.perf_counter()
    page.keyboard.press("Escape")  # closing the calendar the click opened commits the date ...
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 10)  # ... else leaving the field does
    # the chart's new range
    splits["dates"] = split(wait_drawn(page, need_table=table, change=("candles",), before=before, after=n))
    return time.perf_counter() - t0, new_start


def act_keyword(page: Any, keyword: str, splits: dict[str, Any]) -> float:
    before = wait_drawn(page)
    box = page.get_by_label(LABELS["keyword"])
    box.fill(keyword)
    n = requests(page)
    t0 = time.perf_counter()
    box.press("Enter")
    # check_keyword made sure it changes the table
    splits["keyword"] = split(wait_drawn(page, change=("tables",), before=before, after=n))
    return time.perf_counter() - t0


def act_rerun(page: Any) -> float:
    """A plain rerun (Streamlit's "r" shortcut), e.g. after the store changed."""
    wait_drawn(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    n = requests(page)
    t0 = time.perf_counter()
    page.keyboard.press("r")
    wait_drawn(page, after=n)
    return time.perf_counter() - t0


def _later_start(start: date, end: date) -> date:
    try:
        later = start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        later = start.replace(year=start.year + 1, day=28)
    if later > end - timedelta(days=30):
        raise SystemExit(f"the date range {start}..{end} is too short to move its start a year later")
    return later


# --- stores ------------------------------------------------------------------------------


def store_key() -> str:
    """A hash of the store's code (schema, migrations): a built store is kept while it holds.
    A store of an older key would be migrated by the app's first read, inside the measured
    page load; so it is built again (or, with --migrate, migrated before measuring)."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "dashboard" / "store").rglob("*.py")):
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def price_csvs() -> list[Path]:
    return sorted(p for p in SHARED_PRICES.glob("*/*.csv") if not p.name.startswith("_"))


def build_store(db: Path, corpus: Path, write_memory: str | None) -> dict[str, float]:
    """Ingest ``corpus`` and import the real price CSVs, through the command line."""
    tmp = db.with_name(db.name + ".building")
    for p in (tmp, tmp.with_name(tmp.name + ".wal")):
        p.unlink(missing_ok=True)
    out: dict[str, float] = {}
    env = {**os.environ, **({"DASHBOARD_WRITE_MEMORY": write_memory} if write_memory else {})}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dashboard", "ingest", str(corpus), "--db", str(tmp)], cwd=ROOT,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    out["ingest_s"] = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dashboard", "prices", "import", *map(str, price_csvs()),
                    "--db", str(tmp)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    out["prices_s"] = time.perf_counter() - t
    tmp.rename(db)
    return out


def migrate_store(old: Path, db: Path, write_memory: str | None) -> None:
    """A copy of ``old`` brought to this code's schema (one write, in another process)."""
    tmp = db.with_name(db.name + ".migrating")
    shutil.copyfile(old, tmp)
    env = {**os.environ, **({"DASHBOARD_WRITE_MEMORY": write_memory} if write_memory else {})}
    code = ("import sys; from dashboard.store import Store\n"
            "with Store(sys.argv[1]).write(timeout=600): pass")
    subprocess.run([sys.executable, "-c", code, str(tmp)], cwd=ROOT, env=env, check=True)
    tmp.rename(db)


def ensure_store(size: int, bench_dir: Path, rebuild: bool, write_memory: str | None,
                 migrate: bool = False) -> Path:
    corpus = bench_dir / f"corpus-{size}"
    if not corpus.is_dir():
        raise SystemExit(f"no corpus at {corpus}: write it with benchmarks/corpus.py first")
    if len(price_csvs()) == 0:
        raise SystemExit(f"no price CSVs under {SHARED_PRICES}")
    db = bench_dir / f"browser-{size}-{store_key()}.duckdb"
    if db.exists() and not rebuild:
        return db
    older = sorted((p for p in bench_dir.glob(f"browser-{size}-*.duckdb") if p != db),
                   key=lambda p: p.stat().st_mtime)
    if migrate and older and not rebuild:
        print(f"migrating a copy of {older[-1]} to {db} ...", flush=True)
        t = time.perf_counter()
        migrate_store(older[-1], db, write_memory)
        print(f"  {time.perf_counter() - t:.0f} s, {db.stat().st_size / 2**20:.0f} MiB", flush=True)
    else:
        memory = f" (ingest with DASHBOARD_WRITE_MEMORY={write_memory})" if write_memory else ""
        print(f"building {db} from {corpus} and {len(price_csvs())} price files{memory} ...", flush=True)
        built = build_store(db, corpus, write_memory)
        print(f"  ingest {built['ingest_s']:.0f} s, prices {built['prices_s']:.0f} s, "
              f"{db.stat().st_size / 2**20:.0f} MiB", flush=True)
    for old in bench_dir.glob(f"browser-{size}-*.duckdb*"):  # stale keys: older code's stores
        if old != db:
            old.unlink()
    return db


@dataclass
class Targets:
    """What the runs drive: the two most covered securities that have prices, their ranges."""

    tz: str
    first: str
    second: str
    first_range: tuple[date, date]
    second_range: tuple[date, date]
    keyword: str
    change_csv: str
    articles: int
    mentions: int


def app_range(span: tuple[date, date] | None) -> tuple[date, date]:
    """The date range the app opens with for a security (sidebar.date_range)."""
    today = date.today()
    if span is None:
        return today - timedelta(days=180), today
    return span[0] - timedelta(days=30), min(span[1] + timedelta(days=30), today)


def pick_targets(db: Path, keyword: str) -> Targets:
    from dashboard import coverage
    from dashboard.config import load_settings
    from dashboard.store import open_store

    tz = load_settings().site_timezone
    with open_store(db).read() as con:  # a store of an older schema is migrated first
        overview = coverage.securities_overview(con)
        priced = overview[(overview["price_rows"] > 0) & (overview["articles"] > 0)]
        if len(priced) < 2:
            raise SystemExit(f"{db}: fewer than two securities with both articles and prices")
        first, second = priced["symbol"].iloc[0], priced["symbol"].iloc[1]
        ranges = [app_range(coverage.article_span(con, [s], tz)) for s in (first, second)]
        articles, mentions = con.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM mentions)").fetchall()[0]
    csvs = {p.stem: p for p in price_csvs()}
    change_csv = csvs.get(first) or csvs.get(first.lstrip("0")) or next(iter(csvs.values()))
    return Targets(tz, first, second, ranges[0], ranges[1], keyword, str(change_csv), articles, mentions)


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            pass
    return total / 1024


@dataclass
class Server:
    """A fresh ``streamlit run`` on a free port, with its own TMPDIR (where its snapshots go)."""

    pid: int
    url: str
    tmp: Path
    log: Path

    def snapshot_use(self) -> dict[str, Any]:
        """Snapshot copies (folders under its TMPDIR), copies deleted but still open, and every
        DuckDB file the server holds open (whatever the way it reads the store)."""
        dirs = list(self.tmp.glob(SNAPSHOT_GLOB))
        on_disk = sum(f.stat().st_blocks * 512 for d in dirs for f in d.rglob("*") if f.is_file())
        deleted, deleted_bytes, open_files = 0, 0, set()
        try:
            fds = os.listdir(f"/proc/{self.pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                size = os.stat(f"/proc/{self.pid}/fd/{fd}").st_blocks * 512
            except OSError:
                continue
            if target.endswith(" (deleted)") and target.startswith(str(self.tmp)):
                deleted += 1
                deleted_bytes += size
            if ".duckdb" in target:
                open_files.add((target, size))
        return {"copies": len(dirs), "copies_mib": on_disk / 2**20, "deleted_open": deleted,
                "deleted_open_mib": deleted_bytes / 2**20, "open_duckdb": sorted(open_files)}


@contextmanager
def streamlit_server(script: Path, env: dict[str, str]) -> Iterator[Server]:
    tmp = Path(tempfile.mkdtemp(prefix="browserbench-"))
    port = free_port()
    log = tmp / "server.log"
    full_env = {**os.environ, **env, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer on port {port} within 60 s")
            time.sleep(0.05)
        yield Server(proc.pid, f"http://127.0.0.1:{port}/", tmp, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def app_env(db: Path) -> dict[str, str]:
    return {"DASHBOARD_DB": str(db), "DASHBOARD_POSTS": "/nonexistent", "DASHBOARD_FETCH_ON_START": "false"}


@contextmanager
def new_page(browser: Any) -> Iterator[Any]:
    """A new user: fresh context (empty cache and storage), English, a laptop-sized window."""
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    context.add_init_script(script=WS_HOOK_JS)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- measurements ------------------------------------------------------------------------


def _floor_env(db: Path, t: Targets) -> dict[str, str]:
    return {**app_env(db), "BENCH_SYMBOL": t.first, "BENCH_FROM": t.first_range[0].isoformat(),
            "BENCH_TO": t.first_range[1].isoformat()}


def measure_floor(browser: Any, db: Path, t: Targets) -> tuple[float, dict[str, float]]:
    with streamlit_server(ROOT / "benchmarks" / "minimal_app.py", _floor_env(db, t)) as server, \
            new_page(browser) as page:
        t0 = time.perf_counter()
        page.goto(server.url, wait_until="commit")
        drawn = wait_drawn(page, need_table=False, after=0)
        return time.perf_counter() - t0, split(drawn, 0.0)


def measure_floor_actions(browser: Any, db: Path, t: Targets, steps: set[str]) -> dict[str, Any]:
    """The same switch and date change on the minimal page with those two controls (a DuckDB
    store only): what Streamlit and Plotly cost for them on this machine, in the same run."""
    r: dict[str, Any] = {"splits": {}}
    env = {**_floor_env(db, t), "BENCH_CONTROLS": "1"}
    with streamlit_server(ROOT / "benchmarks" / "minimal_app.py", env) as server, new_page(browser) as page:
        page.goto(server.url, wait_until="commit")
        wait_drawn(page, need_table=False, after=0)
        r["switch_s"] = act_switch(page, t.second, r["splits"], table=False)
        if "dates" in steps:  # the floor keeps its range on a switch: the first security's
            r["dates_s"], _ = act_dates(page, *t.first_range, r["splits"], table=False)
    return r


def measure_app(browser: Any, db: Path, t: Targets, steps: set[str], changes: int) -> dict[str, Any]:
    r: dict[str, Any] = {}
    with streamlit_server(ROOT / "app.py", app_env(db)) as server, new_page(browser) as page:
        t0 = time.perf_counter()
        page.goto(server.url, wait_until="commit")
        drawn = wait_drawn(page, after=0)
        r["load_s"] = time.perf_counter() - t0
        r["splits"] = {"load": split(drawn, 0.0)}  # the page's clock starts at the navigation
        r["rss_after_load_mib"] = rss_mib(server.pid)
        if "switch" in steps or "dates" in steps or "keyword" in steps:
            r["switch_s"] = act_switch(page, t.second, r["splits"])
        if "dates" in steps or "keyword" in steps:
            r["dates_s"], r["dates_start"] = act_dates(page, *t.second_range, r["splits"])
            r["dates_start"] = r["dates_start"].isoformat()
        if "keyword" in steps:
            r["keyword_s"] = act_keyword(page, t.keyword, r["splits"])
        if "changes" in steps:
            r["changes"] = store_changes(page, server, db, t, changes)
    return r


def store_changes(page: Any, server: Server, db: Path, t: Targets, n: int) -> dict[str, Any]:
    from dashboard.store import Generation

    act_rerun(page)  # settle: whatever the steps before left behind
    out: dict[str, Any] = {"before": {**server.snapshot_use(), "rss_mib": rss_mib(server.pid)},
                           "after": [], "rerun_s": [], "write_s": [], "unchanged_generation": 0}
    on_file = not str(db).startswith("postgresql://")  # a PostgreSQL store has no file generation
    for _ in range(n):
        gen = Generation.of(db) if on_file else None
        w0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dashboard", "prices", "import", t.change_csv, "--db", str(db)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        out["write_s"].append(time.perf_counter() - w0)
        out["unchanged_generation"] += on_file and Generation.of(db) == gen
        out["rerun_s"].append(act_rerun(page))
        out["after"].append({**server.snapshot_use(), "rss_mib": rss_mib(server.pid)})
    return out


def measure_queries(db: Path, t: Targets, warm: int = 3) -> dict[str, dict[str, list[float]]]:
    """Each query as the first paint calls it (and the keyword query as the browser step does),
    on a fresh read-only connection: the first call, then ``warm`` more."""
    from dashboard import coverage
    from dashboard.store import open_store

    s1, e1 = t.first_range
    s2 = _later_start(*t.second_range)
    limit = table_limit()
    calls: dict[str, Callable[[Any], Any]] = {
        "related_coverage": lambda c: coverage.related_coverage(c, [t.first], t.tz, s1, e1, limit=limit),
        "session_markers": lambda c: coverage.session_markers(c, t.first, s1, e1, t.tz),
        "facets": lambda c: coverage.facets(c, [t.first]),
        "keyword": lambda c: coverage.related_coverage(c, [t.second], t.tz, s2, t.second_range[1],
                                                       keyword=t.keyword, limit=limit),
    }
    out: dict[str, dict[str, list[float]]] = {k: {"cold": [], "warm": []} for k in calls}
    with open_store(db).read() as con:
        for name, call in calls.items():
            for i in range(1 + warm):
                cur = con.cursor()
                cur.execute("SET TimeZone = 'UTC'")
                t0 = time.perf_counter()
                call(cur)
                out[name]["cold" if i == 0 else "warm"].append(time.perf_counter() - t0)
                cur.close()
    return out


def _store_arg(value: str) -> Path | str:
    return value if value.startswith("postgresql://") else Path(value)


def table_limit() -> int:
    """The most rows the app's coverage table asks for."""
    import logging

    logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)  # no runtime here
    try:
        from dashboard.ui.coverage import TABLE_LIMIT
        return int(TABLE_LIMIT)
    except (ImportError, AttributeError):
        return 1000


def check_keyword(db: Path, t: Targets) -> None:
    """The keyword step waits for the table to change: make sure the keyword changes it."""
    from dashboard import coverage
    from dashboard.store import open_store

    s2 = _later_start(*t.second_range)
    with open_store(db).read() as con:
        args = (con, [t.second], t.tz, s2, t.second_range[1])
        plain = coverage.related_coverage(*args, limit=table_limit())
        hit = coverage.related_coverage(*args, keyword=t.keyword, limit=table_limit())
    if len(hit) == len(plain) and list(hit["article_id"][:1]) == list(plain["article_id"][:1]):
        raise SystemExit(f"--keyword {t.keyword!r} leaves {t.second}'s table as it is ({len(plain)} rows): "
                         "pick a rarer one")


# --- reporting ---------------------------------------------------------------------------


@dataclass
class Result:
    size: int
    db: str
    targets: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    floor_actions: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def spread(values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return "—"
    k = 1000 if unit == "ms" else 1
    lo, med, hi = min(values) * k, statistics.median(values) * k, max(values) * k
    fmt = (lambda v: f"{v:.0f}") if unit == "ms" else (lambda v: f"{v:.2f}")
    return f"{fmt(lo)}–{fmt(hi)} {unit} (median {fmt(med)})"


def ratio_spread(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{min(values):.2f}–{max(values):.2f}× (median {statistics.median(values):.2f}×)"


def rows_of(r: Result) -> dict[str, str]:
    """The issue's table rows (and a few more) for one size."""
    runs_ = r.runs
    col = lambda key: [x[key] for x in runs_ if key in x]  # noqa: E731
    rows: dict[str, str] = {}

    def where(step: str) -> None:
        """Medians of where the step's time went (see split)."""
        splits = [x["splits"][step] for x in runs_ if x.get("splits", {}).get(step)]
        if not splits:
            return
        parts = [("before_request_s", "page and WebSocket up"), ("server_s", "until the run's end arrived"),
                 ("browser_s", "drawing after it")]
        rows[f"  {step}: where the time went (medians)" + " " * len(step)] = " + ".join(
            f"{label} {statistics.median(sp[k] for sp in splits):.2f} s"
            for k, label in parts if k in splits[0])

    if col("load_s"):
        rows["page load until chart and table drawn"] = spread(col("load_s"))
        where("load")
        rows["  minimal page floor (same runs)"] = spread(r.floor_s)
        where("floor")
        if r.floor_s:
            rows["  ratio app / floor"] = ratio_spread([a / f for a, f in zip(col("load_s"), r.floor_s)])

    def against_floor(key: str, label: str) -> None:
        """The same action on the minimal page with its controls, and the app's ratio to it."""
        floors = [f.get(key) for f in r.floor_actions]
        if not floors or None in floors:
            return
        rows[f"  minimal page with the controls: {label} (same runs)"] = spread(floors)
        rows[f"  ratio app / minimal page ({label})"] = ratio_spread([a / f for a, f in zip(col(key), floors)])

    if col("switch_s"):
        rows["switch security"] = spread(col("switch_s"))
        where("switch")
        against_floor("switch_s", "switch")
    if col("dates_s"):
        rows["change the date range"] = spread(col("dates_s"))
        where("dates")
        against_floor("dates_s", "dates")
    if col("keyword_s"):
        rows["keyword filter (in the browser)"] = spread(col("keyword_s"))
        where("keyword")
    if "keyword" in r.queries:
        rows["keyword filter (query alone, warm)"] = spread(r.queries["keyword"]["warm"], "ms")
        rows["  first call on a connection"] = spread(r.queries["keyword"]["cold"], "ms")
    for q in ("related_coverage", "session_markers", "facets"):
        if q in r.queries:
            rows[f"query {q} (warm)"] = spread(r.queries[q]["warm"], "ms")
            rows["  first call on a connection" + " " * len(q)] = spread(r.queries[q]["cold"], "ms")
    ch = [x["changes"] for x in runs_ if "changes" in x]
    if ch:
        def span(values: Sequence[float]) -> str:
            lo, hi = f"{min(values):.0f}", f"{max(values):.0f}"
            return lo if lo == hi else f"{lo}–{hi}"

        def counts(values: Sequence[int]) -> str:
            return "/".join(str(v) for v in sorted(set(values)))

        before, after = [c["before"] for c in ch], [c["after"][-1] for c in ch]
        text = (f"{counts([b['copies'] for b in before])} → {counts([a['copies'] for a in after])} "
                f"({span([b['copies_mib'] for b in before])} → {span([a['copies_mib'] for a in after])} MiB)")
        if any(a["deleted_open"] for a in after):
            text += (f" + {counts([a['deleted_open'] for a in after])} deleted but open "
                     f"({span([a['deleted_open_mib'] for a in after])} MiB)")
        text += f"; DuckDB files open {counts([len(a.get('open_duckdb', [])) for a in after])}"
        rows[f"store changed {len(ch[0]['after'])} times: snapshot copies kept"] = text
        rows["  server RSS before → after"] = "; ".join(
            f"{c['before']['rss_mib']:.0f} → {c['after'][-1]['rss_mib']:.0f} MiB" for c in ch)
        rows["  RSS after each change (last run)"] = " ".join(f"{a['rss_mib']:.0f}" for a in ch[-1]["after"])
        rows["  rerun after a change"] = spread([s for c in ch for s in c["rerun_s"]])
        rows["  the write (prices import, CLI)"] = spread([s for c in ch for s in c["write_s"]])
        unchanged = sum(c["unchanged_generation"] for c in ch)
        if unchanged:
            rows["  writes that left the file as it was"] = str(unchanged)
    return rows


TARGETS = {
    "page load until chart and table drawn": "≤ 1.3× the floor",
    "  ratio app / floor": "≤ 1.3×",
    "switch security": "≤ 0.4 s",
    "change the date range": "≤ 0.4 s",
    "keyword filter (query alone, warm)": "≤ 150 ms",
    "query related_coverage (warm)": "≤ 30 ms",
    "query session_markers (warm)": "≤ 30 ms",
    "query facets (warm)": "≤ 30 ms",
    "store changed 5 times: snapshot copies kept": "one copy or none",  # with --changes 5
    "  server RSS before → after": "flat",
}


def print_table(results: list[Result]) -> None:
    tables = [rows_of(r) for r in results]
    names = list(dict.fromkeys(k for t in tables for k in t))
    head = ["in the browser"] + [f"{r.size:,} articles" for r in results] + ["must reach at 1M"]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in names:
        cells = [name.strip() if not name.startswith("  ") else "↳ " + name.strip()]
        cells += [t.get(name, "—") for t in tables] + [TARGETS.get(name, "")]
        print("| " + " | ".join(cells) + " |")


def describe(r: Result) -> str:
    t = r.targets
    return (f"{r.size:,} articles ({t['articles']:,} stored, {t['mentions']:,} mentions), store {r.db}: "
            f"opens on {t['first']} {t['first_range'][0]}..{t['first_range'][1]}, switches to {t['second']}, "
            f"keyword {t['keyword']!r}, writes re-import {Path(t['change_csv']).name}")


# --- main --------------------------------------------------------------------------------


def bench_size(size: int, db: Path, args: argparse.Namespace, browser: Any) -> Result:
    steps = set(args.steps)
    t = pick_targets(db, args.keyword)
    if "keyword" in steps:
        check_keyword(db, t)
    result = Result(size, str(db), asdict(t))
    browser_steps = steps & {"load", "switch", "dates", "keyword", "changes"}
    if browser_steps:
        measure_floor(browser, db, t)  # not counted: the browser's and the OS's first start
    for i in range(args.runs):  # each run: the queries, the floor, the app (the machine drifts)
        line = f"  run {i + 1}:"
        if "queries" in steps or "keyword" in steps:
            for name, times in measure_queries(db, t).items():
                for k, v in times.items():
                    result.queries.setdefault(name, {}).setdefault(k, []).extend(v)
            line += " queries " + ", ".join(f"{name} {1000 * statistics.median(v['warm']):.0f}"
                                            for name, v in result.queries.items()) + " ms;"
        if not browser_steps:
            print(line, flush=True)
            continue
        floor, floor_split = measure_floor(browser, db, t)
        actions = (measure_floor_actions(browser, db, t, steps)
                   if steps & {"switch", "dates"} and isinstance(db, Path) else None)
        run = measure_app(browser, db, t, browser_steps, args.changes)
        run["splits"]["floor"] = floor_split
        result.floor_s.append(floor)
        result.runs.append(run)
        line += f" load {run['load_s']:.2f} s (floor {floor:.2f} s)"
        if actions is not None:
            result.floor_actions.append(actions)
        for k in ("switch_s", "dates_s", "keyword_s"):
            if k in run:
                line += f", {k[:-2]} {run[k]:.2f} s"
                line += f" (floor {actions[k]:.2f} s)" if actions is not None and k in actions else ""
        if "changes" in run:
            ch = run["changes"]
            line += (f", RSS {ch['before']['rss_mib']:.0f} → {ch['after'][-1]['rss_mib']:.0f} MiB, "
                     f"{ch['after'][-1]['copies']} copies")
        print(line, flush=True)
    return result


STEPS = ["load", "switch", "dates", "keyword", "queries", "changes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/work/bench"), help="corpora and built stores")
    parser.add_argument("--db", type=_store_arg, help="measure this store (a file, or a postgresql:// URL) (one size; not built, not changed "
                                               "except by the 'changes' step's re-imports)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changes", type=int, default=5, help="store writes in the 'changes' step")
    parser.add_argument("--keyword", default="新能源汽车芯片",
                        help="typed in the keyword box: it must change the table (this phrase is in "
                             "a few hundred of the 1M corpus's articles)")
    parser.add_argument("--steps", nargs="+", default=STEPS, choices=STEPS)
    parser.add_argument("--rebuild", action="store_true", help="build the stores again")
    parser.add_argument("--migrate", action="store_true",
                        help="when the store's code changed, migrate a copy of the last built store "
                             "instead of building again (minutes instead of ~40 at 1M; --rebuild wins)")
    parser.add_argument("--build-memory", default="2GB", metavar="SIZE",
                        help="DASHBOARD_WRITE_MEMORY for the build's ingest ('' for the store's own "
                             "default, which a fresh 1M ingest exceeds)")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the stores and stop")
    parser.add_argument("--json", nargs="?", const="", default=None, metavar="FILE",
                        help="also write the raw figures (default file: benchmarks/out/browser-TIME.json)")
    args = parser.parse_args()

    if args.db is not None:
        if isinstance(args.db, Path) and not args.db.exists():
            raise SystemExit(f"no store at {args.db}")
        stores = [(0, args.db)]
    else:
        stores = [(n, ensure_store(n, args.dir, args.rebuild, args.build_memory or None, args.migrate))
                  for n in args.sizes]
    if args.build_only:
        for n, db in stores:
            print(f"{n:,}: {db}")
        return

    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size, db in stores:
                print(f"\n{f'{size:,} articles' if size else 'store'}: {db}", flush=True)
                r = bench_size(size, db, args, browser)
                if size == 0:
                    r.size = r.targets["articles"]
                print("  " + describe(r), flush=True)
                results.append(r)
        finally:
            browser.close()
    print_table(results)
    if args.json is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(args.json) if args.json else ROOT / "benchmarks" / "out" / f"browser-{stamp}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(r) for r in results], default=str, indent=1, ensure_ascii=False))
        print(f"\nraw figures: {path}")


if __name__ == "__main__":
    main()
