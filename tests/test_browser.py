"""The real thing: `streamlit run app.py` headless, opened in Debian's chromium with playwright,
against a store holding the real seed posts and real prices. Leaves a screenshot in artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.store import Store
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    shared = ROOT.parent / "shared"
    if not (shared / "posts").exists() or not (shared / "prices").exists():
        pytest.skip(f"real data not available: {shared} is absent")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("browser")
    store = Store(tmp / "store.duckdb")
    ingest_folder(store, shared / "posts" / "seeds")
    for f in ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv"):
        import_csv(store, shared / "prices" / f)
    port = free_port()
    env = {**os.environ, "DASHBOARD_DB": str(store.path), "DASHBOARD_POSTS": str(shared / "posts" / "seeds"),
           "DASHBOARD_FETCH_ON_START": "false", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1500})
        yield pg
        browser.close()


def wait_idle(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(500)
    for _ in range(80):
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        page.wait_for_timeout(250)


def test_chart_markers_table_and_a_marker_click(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/?s=3690.HK&from=2021-12-01&to=2021-12-31")
    page.wait_for_selector(".js-plotly-plot .boxlayer .trace.boxes", timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("3690.HK 美团-W").first.is_visible()
    # the two seed articles: one marker each on 2021-12-28 and 2021-12-29
    points = page.locator(".js-plotly-plot .scatterlayer .trace .points path")
    assert points.count() == 2
    assert page.locator('[data-testid="stDataFrame"]').first.is_visible()
    assert page.get_by_text("2 articles").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-chart.png"), full_page=True)

    box = points.nth(1).bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Session 2021-12-29: 1 article").wait_for(timeout=30_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "browser-marker-click.png"), full_page=True)


def test_shared_link_opens_the_article_in_chinese(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/?s=3690.HK&from=2021-12-01&to=2021-12-31&a=202112272227521160&lang=zh")
    page.wait_for_selector(".js-plotly-plot .boxlayer .trace.boxes", timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("新闻与行情").first.is_visible()
    assert page.get_by_text("互联互通不只是能在微信打开电商链接").first.is_visible()
    assert page.get_by_role("button", name="1024.HK 快手-W").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-article-zh.png"), full_page=True)


def test_charts_draw_without_console_warnings_or_requests_off_the_machine(server: str, page) -> None:  # type: ignore[no-untyped-def]
    """plotly.js warns on the console for each bar colour it cannot read (it did for every
    volume bar, a third of a second a redraw), and an offline machine must not wait on the
    internet for an icon."""
    said: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: said.append(f"{m.type}: {m.text}") if m.type != "log" else None)
    page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else outside.append(r.url))
    page.goto(f"{server}/?s=3690.HK&from=2021-12-01&to=2021-12-31")
    page.wait_for_selector(".js-plotly-plot .boxlayer .trace.boxes", timeout=60_000)
    wait_idle(page)
    assert page.locator(".js-plotly-plot .barlayer .trace.bars path").count() >= 20  # a volume bar a session
    page.goto(f"{server}/?s=3690.HK&s=1024.HK&from=2021-06-01&to=2021-12-31")  # small multiples
    page.wait_for_selector(".js-plotly-plot .boxlayer .trace.boxes", timeout=60_000)
    wait_idle(page)
    assert page.locator(".js-plotly-plot .boxlayer .trace.boxes").count() == 2
    assert not said
    assert not outside


LABELS_INSIDE_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => {
  const svg = g.querySelector('.main-svg').getBoundingClientRect();
  // tick labels of every subplot's axes, axis titles, annotations, the legend
  const texts = [...g.querySelectorAll('.xaxislayer-above text, .yaxislayer-above text, .infolayer text')]
    .filter(e => e.textContent.trim());
  const out = texts.map(e => e.getBoundingClientRect())
    .filter(r => r.left < svg.left - 0.5 || r.right > svg.right + 0.5 || r.top < svg.top - 0.5
                 || r.bottom > svg.bottom + 0.5);
  return {labels: texts.length, outside: out.length, pushed: g._fullLayout._size.l !== g._fullLayout.margin.l
          || g._fullLayout._size.b !== g._fullLayout.margin.b};
})"""


@pytest.mark.parametrize("query", [
    "s=%5EHSI&from=2020-12-01&to=2022-12-31",  # five-digit prices, ten-digit volumes
    "s=3690.HK&from=2021-12-01&to=2021-12-31&lang=zh",  # Chinese axis titles
    "s=3690.HK&s=1024.HK&s=%5EHSI&from=2021-06-01&to=2021-12-31",  # small multiples
    "s=3690.HK&s=1024.HK&from=2021-06-01&to=2021-12-31&view=compare",
    "s=3690.HK&from=2021-06-01&to=2021-12-31&view=average",
])
def test_fixed_margins_hold_every_axis_label(server: str, page, query: str) -> None:  # type: ignore[no-untyped-def]
    """The charts draw once, with fixed margins (plotly's automargin draws everything twice):
    so the margins must hold every tick label and axis title, and plotly must not push them."""
    page.goto(f"{server}/?{query}")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    wait_idle(page)
    charts = page.evaluate(LABELS_INSIDE_JS)
    assert charts
    for chart in charts:
        assert chart["labels"] >= 8, chart
        assert chart["outside"] == 0, chart
        assert not chart["pushed"], chart


def _finished_js() -> str:
    """Records each run's end on the page's WebSocket (ForwardMsg.script_finished), by the
    field numbers of Streamlit's own protobuf descriptors."""
    from streamlit.proto import ForwardMsg_pb2

    fwd = ForwardMsg_pb2.ForwardMsg.DESCRIPTOR
    field = fwd.fields_by_name["script_finished"].number
    names = {v.number: v.name for v in fwd.enum_types_by_name["ScriptFinishedStatus"].values}
    return "const F = %d, NAMES = %s;\n" % (field, json.dumps(names)) + """
(() => {
  window.__finished = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', e => {
        if (!(e.data instanceof ArrayBuffer)) return;
        const b = new Uint8Array(e.data);
        let i = 0;
        const varint = () => { let x = 0, m = 1, c; do { c = b[i++]; x += (c & 0x7f) * m; m *= 128; } while (c & 0x80); return x; };
        while (i < b.length) {
          const tag = varint(), f = Math.floor(tag / 8), w = tag & 7;
          if (w === 0) { const v = varint(); if (f === F) window.__finished.push(NAMES[v]); }
          else if (w === 2) { const n = varint(); i += n; }
          else if (w === 1) i += 8; else if (w === 5) i += 4; else break;
        }
      });
    }
  };
})();"""


def test_one_pick_switches_the_security_and_reruns_only_the_view(server: str, page) -> None:  # type: ignore[no-untyped-def]
    """Typing a code in the Security box and entering it charts that security, and reruns the
    view's fragment only, not the page."""
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        pg = context.new_page()
        pg.add_init_script(script=_finished_js())
        pg.goto(f"{server}/?s=3690.HK&from=2021-12-01&to=2021-12-31")
        pg.wait_for_selector(".js-plotly-plot .boxlayer .trace.boxes", timeout=60_000)
        wait_idle(pg)
        assert pg.evaluate("() => window.__finished") == ["FINISHED_SUCCESSFULLY"]
        box = pg.get_by_role("combobox", name="Security")
        box.click()
        box.fill("01024")  # the form eastmoney writes: no label holds it, so it is entered as typed
        pg.keyboard.press("Enter")  # and the store resolves it to 1024.HK
        pg.locator(".js-plotly-plot .gtitle", has_text="1024.HK").wait_for(timeout=30_000)
        wait_idle(pg)
        assert "s=1024.HK&" in pg.url
        assert pg.get_by_text("1024.HK 快手-W").first.is_visible()
        assert pg.evaluate("() => window.__finished")[1:] == ["FINISHED_FRAGMENT_RUN_SUCCESSFULLY"]
    finally:
        context.close()
