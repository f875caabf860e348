"""The app's read view: the store file itself while nobody writes, a copy only while someone does."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from dashboard.ingest import ingest_folder
from dashboard.store import ReadView, Store
from tests.conftest import ROOT, write_post

WRITER = textwrap.dedent("""
    import sys, time
    import dashboard.ingest as ingest
    from dashboard.store import Store
    real = ingest._write
    def slow(con, *a, **k):
        out = real(con, *a, **k)
        print("writing", flush=True)
        time.sleep(float(sys.argv[3]))  # hold the write lock, mid-transaction
        return out
    ingest._write = slow
    start = time.monotonic()
    print(ingest.ingest_folder(Store(sys.argv[1], lock_timeout=20), sys.argv[2]).new, flush=True)
    print(f"{time.monotonic() - start:.2f}", flush=True)
""")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A DuckDB file: what this view exists for (a PostgreSQL view is an exported snapshot,
    tests/test_store.py)."""
    return Store(tmp_path / "store.duckdb", lock_timeout=10)


@pytest.fixture(autouse=True)
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies go to a folder of this test's own, so others' copies cannot confuse the count."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def copies() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "dashboard-snapshot-*"))


def count(view: ReadView) -> int:
    with view.reading() as snap:
        return int(snap.query("SELECT count(*) AS n FROM articles")["n"][0])


def test_no_copy_while_nobody_writes(store: Store, tmp_path: Path) -> None:
    write_post(tmp_path / "a", "a.md", "美团-W(03690.HK)。")
    ingest_folder(store, tmp_path / "a")
    before = set(copies())
    view = ReadView(store)
    try:
        assert count(view) == 1
        with view.reading() as snap:
            assert not snap.copy and snap.path == store.path
        assert set(copies()) == before
    finally:
        view.close()


def test_a_writer_proceeds_while_the_view_keeps_answering(store: Store, tmp_path: Path) -> None:
    write_post(tmp_path / "a", "a.md", "美团-W(03690.HK)。")
    ingest_folder(store, tmp_path / "a")
    write_post(tmp_path / "b", "b.md", "快手-W(01024.HK)。")
    before = set(copies())
    view = ReadView(store, poll=0.1)
    try:
        assert count(view) == 1  # holds the file open, as a running dashboard does
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), str(tmp_path / "b"), "2"],
                                  stdout=subprocess.PIPE, text=True, env=env)
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"  # it got the file although the view was open
        # mid-write, the view still answers, with the committed state, from one copy
        assert count(view) == 1
        assert len(set(copies()) - before) == 1
        assert writer.stdout.readline().strip() == "1"
        assert float(writer.stdout.readline()) < 10
        assert writer.wait(30) == 0
        deadline = time.monotonic() + 10
        while count(view) != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count(view) == 2  # the new state, from the file itself again
        with view.reading() as snap:
            assert not snap.copy
        assert set(copies()) == before  # the copy is gone
    finally:
        view.close()
