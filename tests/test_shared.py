"""The shared deployment as the README sets it up, on a real PostgreSQL server: the roles of
deploy/roles.sql, a read-only app, passwords never shown, and two app servers answering while
an ingest and a price import write the same store."""

from __future__ import annotations

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
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.store import StoreUnavailable, open_store
from tests.conftest import ROOT, SHARED, write_post
from tests.pgserver import PASSWORD, PgServer

PRICE_FILES = ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv")
DEC = {"s": "3690.HK", "from": "2021-12-01", "to": "2021-12-31"}


def cli(*args: str, db: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASHBOARD_DB": db}
    out = subprocess.run([sys.executable, "-m", "dashboard", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=timeout)
    return out


@pytest.fixture(scope="module")
def deployment(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """deploy/roles.sql run as the README says (psql as a superuser), then filled by the writer
    with the seed posts and their prices, through the command line."""
    if not (SHARED / "posts").exists() or not (SHARED / "prices").exists():
        pytest.skip(f"real data not available: {SHARED} is absent")
    psql = pg_server.bindir / "psql"
    done = subprocess.run([str(psql), "-v", "ON_ERROR_STOP=1", "-X", "-q", "-h", str(pg_server.socket_dir),
                           "-U", "postgres", "-d", "postgres", "-f", str(ROOT / "deploy" / "roles.sql")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    urls = {"writer": pg_server.url("news", "dashboard_writer", "change-me-writer"),
            "reader": pg_server.url("news", "dashboard_reader", "change-me-reader")}
    out = cli("ingest", str(SHARED / "posts" / "seeds"), db=urls["writer"])
    assert out.returncode == 0, out.stderr
    out = cli("prices", "import", *(str(SHARED / "prices" / f) for f in PRICE_FILES), db=urls["writer"])
    assert out.returncode == 0, out.stderr
    yield urls


@pytest.fixture
def fresh_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "false")
    monkeypatch.delenv("DASHBOARD_POSTS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "page.py"), default_timeout=60)
    at.query_params.update(query or {})
    return at


def everything_shown(at: AppTest) -> str:
    """Every text the page drew (values, labels, captions, the chart's spec), as one string."""
    parts = []
    for kind in ("markdown", "caption", "text", "info", "warning", "error", "success", "header", "title",
                 "subheader", "exception", "button", "expander"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
    for el in at.sidebar.caption:
        parts.append(el.value)
    for chart in at.get("plotly_chart"):
        parts.append(chart.proto.spec)
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    return "\n".join(parts)


def reader_errors(pg_server: PgServer, since: int) -> list[str]:
    return [line for line in pg_server.log()[since:].splitlines() if "dashboard_reader@" in line
            and ("ERROR" in line or "FATAL" in line)]


def test_the_reader_role_can_only_read(deployment: dict[str, str]) -> None:
    reader = open_store(deployment["reader"])
    try:
        with reader.read() as con:
            assert con.execute("SELECT count(*) FROM articles").fetchall() == [(2,)]
        with pytest.raises(StoreUnavailable, match="may not|read-only"):
            with reader.write() as con:
                con.execute("DELETE FROM articles")
    finally:
        reader.close()
    with open_store(deployment["writer"]).read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall() == [(2,)]


def test_the_hosted_app_works_on_the_read_only_role_and_never_writes(
        deployment: dict[str, str], pg_server: PgServer, fresh_app: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_DB", deployment["reader"])
    monkeypatch.setenv("DASHBOARD_HOSTED", "true")
    with open_store(deployment["writer"]).read() as con:
        before = con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchall()
        (aid,) = con.execute("SELECT article_id FROM articles ORDER BY published_at LIMIT 1").fetchone()
    log_at = len(pg_server.log())
    at = app(DEC).run()
    assert not at.exception
    assert "牵手美团实现互联互通" in everything_shown(at)
    for view in ("compare", "average", "moves"):
        at = app({**DEC, "s": "3690.HK,1024.HK", "view": view}).run()
        assert not at.exception, view
    at = app({**DEC, "a": aid}).run()
    assert not at.exception
    at.text_input(key="keyword").input("美团").run()
    assert not at.exception
    assert not [b for b in at.sidebar.button if b.label in {"Ingest / refresh news", "Fetch prices"}]
    with open_store(deployment["writer"]).read() as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchall() == before
    assert reader_errors(pg_server, log_at) == []  # not one statement the read-only role was refused


def test_a_password_is_never_shown(pg_server: PgServer, fresh_app: None, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    url = pg_server.password_url()  # a role that logs in with a password (scram)
    assert PASSWORD in url
    store = open_store(url)
    assert PASSWORD not in repr(store) and PASSWORD not in str(store) and "***" in store.label
    write_post(tmp_path / "posts", "a.md", "美团-W(03690.HK)发布公告。", title="美团公告")
    out = cli("ingest", str(tmp_path / "posts"), db=url)
    assert out.returncode == 0, out.stderr
    status = cli("status", db=url)
    assert status.returncode == 0 and f"store {store.label}" in status.stdout
    assert PASSWORD not in out.stdout + out.stderr + status.stdout + status.stderr
    monkeypatch.setenv("DASHBOARD_DB", url)
    at = app({"s": "3690.HK"}).run()
    assert not at.exception and "美团公告" in everything_shown(at)
    assert PASSWORD not in everything_shown(at)

    wrong = url.replace(PASSWORD, "not-" + PASSWORD)  # a wrong password: refused, and said so without it
    failed = cli("status", db=wrong)
    assert failed.returncode == 4
    assert "password authentication failed" in failed.stderr and PASSWORD not in failed.stderr
    assert "***" in failed.stderr and "Traceback" not in failed.stderr
    st.cache_resource.clear()
    monkeypatch.setenv("DASHBOARD_DB", wrong)
    at = app({"s": "3690.HK"}).run()
    shown = everything_shown(at)
    assert "password authentication failed" in shown and PASSWORD not in shown
    store.close()


def test_settings_come_from_streamlit_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.config import load_settings

    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        'DASHBOARD_DB = "postgresql://dashboard_reader:pw@db.example.com:5432/news"\n'
        'DASHBOARD_HOSTED = "true"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DASHBOARD_DB", raising=False)
    monkeypatch.delenv("DASHBOARD_HOSTED", raising=False)
    s = load_settings()
    assert s.shared and s.hosted and s.store_target == "postgresql://dashboard_reader:pw@db.example.com:5432/news"
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "x.duckdb"))  # the environment wins
    s = load_settings()
    assert not s.shared and s.store_target == tmp_path / "x.duckdb"


# --- two app servers, one ingest and one price import, at the same time -----------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, poll: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "DASHBOARD_DB": db, "DASHBOARD_HOSTED": "true", "DASHBOARD_FETCH_ON_START": "false",
           "DASHBOARD_POLL_SECONDS": str(poll), "PYTHONPATH": str(ROOT)}
    env.pop("DASHBOARD_POSTS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.enableXsrfProtection", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(240):
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return
        except OSError:
            time.sleep(0.25)
    pytest.fail("streamlit did not start")


@pytest.mark.timeout(600)
def test_two_apps_keep_answering_while_an_ingest_and_a_price_import_write(
        pg_server: PgServer, tmp_path: Path) -> None:
    from tests.stclient import Session, open_page

    if not (SHARED / "posts").exists() or not (SHARED / "prices").exists():
        pytest.skip(f"real data not available: {SHARED} is absent")
    db = pg_server.url(pg_server.create_database())
    out = cli("ingest", str(SHARED / "posts" / "seeds"), db=db)
    assert out.returncode == 0, out.stderr
    out = cli("prices", "import", *(str(SHARED / "prices" / f) for f in PRICE_FILES), db=db)
    assert out.returncode == 0, out.stderr
    # what the writers bring: the rest of the real posts, and another security's prices
    posts = tmp_path / "posts"
    shutil.copytree(SHARED / "posts" / "finews-sample", posts / "finews")
    write_post(posts, "new.md", "美团-W(03690.HK)发布新公告。", title="美团新公告",
               date="2021-12-30 10:00:00 +0800")
    servers = [start_server(db, poll=2) for _ in range(2)]
    try:
        for proc, url in servers:
            wait_healthy(url, proc)
        query = "s=3690.HK&from=2021-12-01&to=2021-12-31"
        for _, url in servers:  # warm: the first page of a server imports everything
            first = open_page(url, query, timeout=120)
            assert first.finished == "FINISHED_SUCCESSFULLY" and not first.exceptions
            assert first.has("牵手美团实现互联互通") and not first.has("美团新公告")
        tab = Session(servers[0][1], query)  # a page left open through the writes
        assert tab.page.has("牵手美团实现互联互通") and not tab.page.has("美团新公告")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DASHBOARD_DB": db}
        writers = [
            subprocess.Popen([sys.executable, "-m", "dashboard", "ingest", str(posts)], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
            subprocess.Popen([sys.executable, "-m", "dashboard", "prices", "import",
                              str(SHARED / "prices" / "hsi-constituents" / "0700.HK.csv"),
                              str(SHARED / "prices" / "hsi-constituents" / "9988.HK.csv")], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
        pages = []
        while any(w.poll() is None for w in writers) or len(pages) < 4:
            for _, url in servers:
                page = open_page(url, query, timeout=60)
                assert page.finished == "FINISHED_SUCCESSFULLY", (url, page.finished)
                assert not page.exceptions, page.exceptions[:1]
                pages.append(page)
        outputs = [w.communicate(timeout=300)[0] for w in writers]
        assert [w.returncode for w in writers] == [0, 0], outputs
        # the final store holds everything both writers brought
        with open_store(db).read() as con:
            articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
            priced = {s for (s,) in con.execute("SELECT DISTINCT symbol FROM prices").fetchall()}
            reacted = con.execute("SELECT count(*) FROM reactions WHERE session IS NOT NULL").fetchall()[0][0]
            runs = con.execute("SELECT count(*) FROM ingest_runs").fetchall()[0][0]
        assert articles == 2 + 27 + 1
        assert {"3690.HK", "1024.HK", "^HSI", "0700.HK", "9988.HK"} <= priced
        assert reacted >= 3 and runs == 2
        # both apps show the new post at once to a new page, and on the page left open, with no restart
        for _, url in servers:
            page = open_page(url, query, timeout=60)
            assert page.finished == "FINISHED_SUCCESSFULLY" and page.has("美团新公告")
        seen_after = tab.wait_for("美团新公告", timeout=60)
        tab.close()
        print(f"{len(pages)} pages served during the writes; slowest {max(p.seconds for p in pages):.2f} s; "
              f"the open page showed the new post {seen_after:.1f} s after the writers were done")
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
