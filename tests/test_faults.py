"""Faults of the machine and of the store end in one sentence naming the store, never a
traceback (that goes to the log, with --verbose on the command line): a damaged store file
(garbage bytes, a truncated real store, a DuckDB file of something else), and a full disk
for real (a 2 MiB tmpfs; skipped where mounting is not allowed). The store a full disk
interrupted is not damaged: with space again, it reads and takes the next ingest."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.errors import explain
from dashboard.ingest import ingest_folder
from dashboard.store import Store
from tests.conftest import ROOT, need_shared


def run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DASHBOARD_DB", None)
    return subprocess.run([sys.executable, "-m", "dashboard", *args, "--db", str(db)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def one_sentence(out: subprocess.CompletedProcess[str]) -> str:
    """The error line of a failed command, after checking it is the only trace of the failure."""
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr
    return errors[0]


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the real sample posts, checkpointed: the bytes of a real store file."""
    db = tmp_path_factory.mktemp("real") / "store.duckdb"
    ingest_folder(Store(db), need_shared("posts", "finews-sample"))
    return db


def damaged_stores(real: Path, folder: Path) -> dict[str, Path]:
    raw = real.read_bytes()
    out = {"garbage": folder / "garbage.duckdb", "empty": folder / "empty.duckdb",
           "truncated": folder / "truncated.duckdb", "other": folder / "other.duckdb"}
    out["garbage"].write_bytes(os.urandom(64 * 1024))
    out["empty"].write_bytes(b"")
    out["truncated"].write_bytes(raw[: len(raw) // 3])
    con = duckdb.connect(str(out["other"]))  # a DuckDB file, but someone else's
    con.execute("CREATE TABLE orders (id INTEGER, total DOUBLE); INSERT INTO orders VALUES (1, 9.5)")
    con.close()
    return out


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "other"])
def test_a_damaged_store_is_one_sentence_for_every_command(kind: str, real_store: Path, tmp_path: Path,
                                                           shared_prices: Path) -> None:
    db = damaged_stores(real_store, tmp_path)[kind]
    before = db.read_bytes()
    posts = need_shared("posts", "seeds")
    for args in (["status"], ["status", "--json"], ["ingest", str(posts)], ["reactions", "3690.HK"],
                 ["prices", "import", str(shared_prices / "hsi-constituents" / "3690.HK.csv")]):
        out = run(*args, db=db)
        assert out.returncode == 4, (args, out.stdout, out.stderr)
        line = one_sentence(out)
        assert str(db) in line, line
        if kind == "other":
            assert "is not a dashboard store (it holds the tables orders" in line
        else:
            assert "is damaged or not a dashboard store (" in line, line
        assert "--verbose shows the details" in line
    assert db.read_bytes() == before  # nothing was written into it
    verbose = run("status", "--verbose", db=db)
    assert verbose.returncode == 4 and "Traceback" in verbose.stderr  # the details, when asked


def test_what_each_damage_is_called(real_store: Path, tmp_path: Path) -> None:
    stores = damaged_stores(real_store, tmp_path)
    said = {}
    for kind, db in stores.items():
        with pytest.raises(Exception) as caught:
            with Store(db).read() as con:
                con.execute("SELECT count(*), sum(length(text)) FROM articles").fetchall()
        said[kind] = explain(caught.value, db)
    assert said["garbage"].kind == said["empty"].kind == "damaged"
    assert "(not a DuckDB database file)" in said["garbage"].message
    assert "(truncated: the file ends before its data does)" in said["truncated"].message
    assert said["other"].kind == "not_a_store"
    for f in said.values():
        assert str(tmp_path) not in f.public and f.expected


def test_an_unforeseen_error_is_called_a_bug() -> None:
    f = explain(KeyError("x"), "/srv/data/store.duckdb")
    assert f.kind == "bug" and not f.expected
    assert f.message == "unexpected error: KeyError: 'x'"
    assert "/srv" not in f.public


# --- a full disk, for real ------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system of its own (a tmpfs mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True) if shutil.which("mount") else None
    if mounted is None or mounted.returncode != 0:
        why = mounted.stderr.strip() if mounted is not None else "no mount command"
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {why}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)


def test_ingest_on_a_full_disk_says_so_and_loses_nothing(small_disk: Path, tmp_path: Path) -> None:
    """The sample posts fill the disk as the store is written (DuckDB fails its checkpoint)."""
    db = small_disk / "store.duckdb"
    posts = need_shared("posts", "finews-sample")
    out = run("ingest", str(posts), db=db)
    assert out.returncode == 4, out.stdout + out.stderr
    assert one_sentence(out) == (f"error: the disk holding {db} is full; free space and run again "
                                 "(--verbose shows the details)")
    grow(small_disk)
    status = run("status", "--json", db=db)  # not damaged: it reads, and takes the next ingest
    assert status.returncode == 0, status.stderr
    again = run("ingest", str(posts), db=db)
    assert again.returncode == 0, again.stderr
    with Store(db).read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 27
    assert not list(small_disk.glob(".ingest-*"))


def test_a_parallel_ingest_on_a_full_disk_says_so(small_disk: Path, tmp_path: Path) -> None:
    """3,000 posts: the pool's workers meet the full disk writing their stage files."""
    from benchmarks.corpus import write_corpus

    posts = write_corpus(tmp_path / "posts", 3000)
    db = small_disk / "store.duckdb"
    out = run("ingest", str(posts), db=db)
    assert out.returncode == 4, out.stdout + out.stderr
    assert one_sentence(out).startswith(f"error: the disk holding {db} is full; free space and run again")
    assert not list(small_disk.glob(".ingest-*"))  # its stage folder went with it
    grow(small_disk)
    assert run("ingest", str(posts), db=db).returncode == 0
    with Store(db).read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] == 3000


def test_prices_import_on_a_full_disk_says_so(small_disk: Path, shared_prices: Path) -> None:
    db = small_disk / "store.duckdb"
    files = sorted((shared_prices / "hsi-constituents").glob("*.HK.csv"))[:30]
    out = run("prices", "import", *map(str, files), db=db)
    assert out.returncode == 4, out.stdout + out.stderr
    assert one_sentence(out).startswith(f"error: the disk holding {db} is full")
    grow(small_disk)
    assert run("status", db=db).returncode == 0


# --- the app --------------------------------------------------------------------------


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "false")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests" / "fake_yfinance"), str(ROOT)]))
    monkeypatch.delenv("DASHBOARD_HOSTED", raising=False)
    shown = st.get_option("client.showErrorDetails")
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    st.set_option("client.showErrorDetails", shown)


def page(monkeypatch: pytest.MonkeyPatch, db: Path, hosted: bool = False) -> AppTest:
    monkeypatch.setenv("DASHBOARD_DB", str(db))
    monkeypatch.setenv("DASHBOARD_POSTS", str(need_shared("posts", "seeds")))
    monkeypatch.setenv("DASHBOARD_HOSTED", "true" if hosted else "false")
    return AppTest.from_file(str(ROOT / "page.py"), default_timeout=60).run()


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_the_app_on_a_damaged_store_shows_a_sentence(kind: str, real_store: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, app_env: None,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    db = damaged_stores(real_store, tmp_path)[kind]
    with caplog.at_level(logging.ERROR, logger="dashboard.ui"):
        at = page(monkeypatch, db)
    assert not at.exception  # no traceback on the page
    (error,) = at.error
    assert error.value.startswith(f"{str(db)[0].upper()}{str(db)[1:]} is damaged or not a dashboard store (")
    assert any(r.exc_info for r in caplog.records)  # the traceback went to the log


def test_the_hosted_app_names_nothing_of_the_server(real_store: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, app_env: None) -> None:
    db = damaged_stores(real_store, tmp_path)["garbage"]
    at = page(monkeypatch, db, hosted=True)
    assert not at.exception
    (error,) = at.error
    assert error.value == "The dashboard's data store is damaged; the details are in the server's log."
    assert str(tmp_path) not in error.value
    assert st.get_option("client.showErrorDetails") == "none"  # Streamlit shows no details either


def test_a_bug_on_a_page_is_a_sentence_and_a_logged_traceback(real_store: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, app_env: None,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    from dashboard import coverage

    def broken(*args: object) -> None:
        raise RuntimeError(f"boom in {tmp_path}/secret")

    db = tmp_path / "store.duckdb"
    shutil.copyfile(real_store, db)
    monkeypatch.setattr(coverage, "securities_overview", broken)
    with caplog.at_level(logging.ERROR, logger="dashboard.ui"):
        at = page(monkeypatch, db)
    assert not at.exception
    assert at.error[0].value == f"Unexpected error: RuntimeError: boom in {tmp_path}/secret."
    assert any("boom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = page(monkeypatch, db, hosted=True)
    assert not at.exception
    assert at.error[0].value == "Something went wrong; the details are in the server's log."


def test_the_app_on_a_full_disk_says_so(small_disk: Path, monkeypatch: pytest.MonkeyPatch,
                                        app_env: None) -> None:
    """The first start's ingest (in its child process) meets the full disk: the page says so."""
    db = small_disk / "store.duckdb"
    monkeypatch.setenv("DASHBOARD_POSTS", str(need_shared("posts", "finews-sample")))
    monkeypatch.setenv("DASHBOARD_DB", str(db))
    at = AppTest.from_file(str(ROOT / "page.py"), default_timeout=120).run()
    assert not at.exception
    assert any(w.value == f"The disk holding {db} is full; free space and run again." for w in at.warning), \
        [w.value for w in at.warning]
