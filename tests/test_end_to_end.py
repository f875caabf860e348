"""Issue 10's proof, end to end (benchmarks/end_to_end.py): a folder holding every hostile case
and the good real posts ingests with exit 0, in under 60 s and 1 GiB, storing every good post;
``prices import``, ``reactions``, ``status`` and ``status --json`` then work and report each
rejection with its reason. And a store written before extreme dates were refused still serves
every command and page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from benchmarks.end_to_end import prove
from dashboard.articles import EARLIEST_PUBLISHED, LATEST_PUBLISHED
from dashboard.ingest import current_rejections, ingest_folder
from dashboard.prices import import_csv
from dashboard.reactions import refresh_reactions
from dashboard.store import Store
from tests.conftest import ROOT, need_shared

GIB = 2**30
SEED_27 = "202112272227521160"
SEED_29 = "202112292228912369"
EXTREME = {SEED_27: "9999-12-31 23:59:59+00", SEED_29: "0001-01-01 00:00:00+00"}


def test_a_folder_of_every_hostile_case_and_the_real_posts(tmp_path: Path) -> None:
    need_shared("posts")
    need_shared("prices")
    r = prove(tmp_path)
    folder, db, ingest = r["folder"], r["db"], r["ingest"]
    runs = [r[k] for k in ("ingest", "prices", "reactions", "status", "status_json", "again")]
    for run in runs:
        assert run.code == 0, (run.args, run.stdout[-2000:], run.stderr[-2000:])
        assert "Traceback" not in run.stderr, run.stderr
    assert ingest.seconds < 60, f"ingest took {ingest.seconds:.1f} s"
    assert 0 < ingest.peak_rss < GIB, f"peak memory {ingest.peak_rss / 2**20:.0f} MiB"

    # every good post stored, as the article it is
    with Store(db).read() as con:
        files = dict(con.execute("SELECT path, status FROM files").fetchall())
        stored = {p for (p,) in con.execute("SELECT path FROM articles").fetchall()}
    assert folder.good and all(files.get(str(p)) == "ok" and str(p) in stored for p in folder.good)

    # each rejection is reported with its reason: by the ingest, and by status --json
    summary = json.loads(r["status_json"].stdout)
    rejected = {item["path"]: item["reason"] for item in summary["rejected"]}
    for path, reason in folder.problems.items():
        assert reason in rejected.get(path, ""), (path, rejected.get(path))
        assert any(line.startswith(f"rejected {path}: ") and reason in line
                   for line in ingest.stdout.splitlines()), path
    hostile = sorted((folder.root / "hostile").iterdir())
    for p in hostile:  # every hostile post: stored (or a copy of one stored), or refused with a reason
        assert files.get(str(p)) in ("ok", "duplicate") or rejected.get(str(p)), p
    assert {p.name for p in hostile if str(p) in rejected} >= {
        "bomb-title.md", "bomb-tags.md", "bomb-categories.md", "bomb-date.md", "date-9999.md", "date-0001.md",
        "date-9999+1400.md", "date-0001-1400.md", "front-matter-too-large.md", "duplicate-title.md"}
    assert summary["articles"] == len(stored)
    counts = {k.strip(): int(v) for k, v in (line.split(":") for line in ingest.stdout.splitlines()[1:8])}
    assert counts["unchanged"] == 0 and counts["files"] == (
        counts["new"] + counts["duplicates"] + counts["rejected"] - 1)  # one rejection is a folder

    # the other commands work on that store
    assert "imported" in r["prices"].stdout and "3690.HK" in r["prices"].stdout
    reactions = json.loads(r["reactions"].stdout)
    assert {x["article_id"] for x in reactions} >= {SEED_27, SEED_29}
    assert all(x["day0_return"] is not None for x in reactions if x["article_id"] in (SEED_27, SEED_29))
    assert "3690.HK" in r["status"].stdout
    again = r["again"].stdout
    assert "new:        0" in again and f"rejected:   {len(rejected)}" in again
    if not folder.unreadable:
        warnings.warn(UserWarning("; ".join(folder.notes)), stacklevel=1)


# --- an old store holding extreme dates ----------------------------------------------------


@pytest.fixture
def old_store(tmp_path: Path, shared_posts: Path, shared_prices: Path) -> Store:
    """A store from before extreme dates were refused: the seeds, dated 9999 and year 1 (and
    not yet tidied by the migration that quarantines them)."""
    store = Store(tmp_path / "store.duckdb")
    ingest_folder(store, shared_posts / "seeds")
    for f in ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv"):
        import_csv(store, shared_prices / f)
    con = duckdb.connect(str(store.path))
    for aid, when in EXTREME.items():
        for table in ("articles", "mentions"):
            con.execute(f"UPDATE {table} SET published_at = ?::TIMESTAMPTZ WHERE article_id = ?", [when, aid])
    con.execute("DELETE FROM meta WHERE key = 'migration:articles.supported_dates'")
    con.close()
    return store


def test_event_sessions_survive_extreme_dates(old_store: Store) -> None:
    con = duckdb.connect(str(old_store.path))  # as it is: no migration
    try:
        con.execute("SET TimeZone = 'UTC'")
        refresh_reactions(con)  # raised OverflowError in build_event_sessions
        sessions = dict(con.execute("SELECT article_id, session FROM reactions WHERE symbol = '3690.HK'")
                        .fetchall())
    finally:
        con.close()
    assert sessions == {SEED_27: None, SEED_29: None}  # outside every calendar: no session, no made-up move


def test_an_old_store_quarantines_its_extreme_dates_on_first_open(old_store: Store) -> None:
    with old_store.read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 0
        rejected = dict(current_rejections(con))
    range_ = "is outside the supported range 1970-01-01 … 2099-12-31 (UTC)"
    assert sorted(rejected.values()) == [f"publication date 0001-01-01 00:00:00 (UTC) {range_}",
                                         f"publication date 9999-12-31 23:59:59 (UTC) {range_}"]
    last = (LATEST_PUBLISHED - timedelta(days=1)).date()
    assert (EARLIEST_PUBLISHED.date(), last) == (date(1970, 1, 1), date(2099, 12, 31))  # as ingest enforces


def test_an_old_postgresql_store_quarantines_its_extreme_dates(pg_server: Any, shared_posts: Path,
                                                               shared_prices: Path) -> None:
    """The same migration on a PostgreSQL store that missed it: run by the first process that
    opens the store (here a read), as on a DuckDB file."""
    from dashboard.store import open_store

    db = pg_server.create_database()
    try:
        store = open_store(pg_server.url(db))
        ingest_folder(store, shared_posts / "seeds")
        for f in ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv"):
            import_csv(store, shared_prices / f)
        with store.write() as con:
            for aid, when in EXTREME.items():
                for table in ("articles", "mentions"):
                    con.execute(f"UPDATE {table} SET published_at = ?::TIMESTAMPTZ WHERE article_id = ?",
                                [when, aid])
            con.execute("DELETE FROM meta WHERE key = 'migration:articles.supported_dates'")
        store.close()
        later = open_store(pg_server.url(db))  # another process, later: it has not looked yet
        with later.read() as con:
            assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 0
            assert con.execute("SELECT count(*) FROM mentions").fetchall()[0][0] == 0
            assert con.execute("SELECT count(*) FROM reactions").fetchall()[0][0] == 0
            rejected = dict(current_rejections(con))
            assert con.execute("SELECT count(*) FROM meta WHERE key = 'migration:articles.supported_dates'"
                               ).fetchall()[0][0] == 1
        later.close()
        range_ = "is outside the supported range 1970-01-01 … 2099-12-31 (UTC)"
        assert sorted(rejected.values()) == [f"publication date 0001-01-01 00:00:00 (UTC) {range_}",
                                             f"publication date 9999-12-31 23:59:59 (UTC) {range_}"]
    finally:
        pg_server.drop_database(db)


def test_every_command_works_on_an_old_store_with_extreme_dates(old_store: Store, shared_prices: Path,
                                                                tmp_path: Path) -> None:
    from tests.conftest import write_post

    write_post(tmp_path / "more", "new.md", "美团-W(03690.HK)发布公告。", date="2021-12-30 10:00:00 +0800")
    for args in (["reactions", "3690.HK"], ["status"], ["status", "--json"],
                 ["ingest", str(tmp_path / "more")],
                 ["prices", "import", str(shared_prices / "download-format" / "0031.HK.csv")]):
        out = subprocess.run([sys.executable, "-m", "dashboard", *args, "--db", str(old_store.path)],
                             capture_output=True, text=True, cwd=ROOT, timeout=120,
                             env={**{k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")},
                                  "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0 and "Traceback" not in out.stderr, (args, out.stderr)
        if args == ["status", "--json"]:
            assert len(json.loads(out.stdout)["rejected"]) == 2


def test_a_page_for_a_security_with_extreme_dated_articles(old_store: Store,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_DB", str(old_store.path))
    monkeypatch.setenv("DASHBOARD_POSTS", str(old_store.path.parent / "no-posts"))
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "false")
    monkeypatch.delenv("DASHBOARD_HOSTED", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        for view in ("chart", "compare", "average", "moves"):
            at = AppTest.from_file(str(ROOT / "page.py"), default_timeout=60)
            at.query_params.update({"s": "3690.HK", "view": view})
            at.run()
            assert not at.exception, (view, at.exception)
            assert not at.error, (view, [e.value for e in at.error])
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


def test_the_span_of_extreme_dated_articles_is_clamped(old_store: Store) -> None:
    from dashboard.coverage import article_span

    con = duckdb.connect(str(old_store.path), read_only=True)  # as it is: no migration
    try:
        assert article_span(con, ["3690.HK"], "Asia/Shanghai") == (date(1970, 1, 1), date(2099, 12, 31))
    finally:
        con.close()
