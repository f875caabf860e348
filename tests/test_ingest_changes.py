"""Finding what changed in a big folder without reading it: folder times, a bounded set of stats."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import dashboard.ingest as ingest_mod
from dashboard.ingest import ingest_folder
from dashboard.store import Store
from tests.conftest import write_post


def age(folder: Path, seconds: float = 60) -> None:
    """Give every file and folder below ``folder`` a time well in the past (no racy times)."""
    past = time.time_ns() - int(seconds * 1e9)
    for p in [folder, *folder.rglob("*")]:
        os.utime(p, ns=(past, past))


@pytest.fixture
def big(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """A folder counts as big past 3 known files; none is recent, and the rotation never hits."""
    monkeypatch.setattr(ingest_mod, "FULL_CHECK_MAX", 3)
    monkeypatch.setattr(ingest_mod, "RECENT_NS", 0)
    monkeypatch.setattr(ingest_mod, "ROTATION", 10**9)
    monkeypatch.setattr(ingest_mod.random, "randrange", lambda n: n - 1)
    checked: list[list[str]] = []
    real = ingest_mod._stat_all
    monkeypatch.setattr(ingest_mod, "_stat_all", lambda paths: checked.append(list(paths)) or real(paths))
    return checked


def posts(folder: Path) -> None:
    for sub in ("a", "b"):
        for i in range(5):
            write_post(folder, f"{sub}/p{i}.md", f"第{i}篇，{sub}。美团-W(03690.HK)。", title=f"{sub}{i}")
    age(folder)


def test_unchanged_big_folder_stats_no_file(store: Store, tmp_path: Path, big: list[list[str]]) -> None:
    folder = tmp_path / "posts"
    posts(folder)
    assert ingest_folder(store, folder).new == 10
    big.clear()
    report = ingest_folder(store, folder)
    assert (report.new, report.updated, report.unchanged, report.files_seen) == (0, 0, 10, 10)
    assert big == [[]]  # no file was looked at: every folder kept its time


def test_added_and_removed_files_are_found_by_their_folder(store: Store, tmp_path: Path,
                                                          big: list[list[str]]) -> None:
    folder = tmp_path / "posts"
    posts(folder)
    ingest_folder(store, folder)
    write_post(folder, "b/new.md", "快手-W(01024.HK)。", title="新")
    (folder / "a" / "p0.md").unlink()
    big.clear()
    report = ingest_folder(store, folder)
    assert (report.new, report.removed, report.files_seen) == (1, 1, 10)
    assert all(Path(p).parent.name in {"a", "b"} for p in big[0])  # only the changed folders' files
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (10,)


def test_an_old_file_edited_in_place_is_found_with_full(store: Store, tmp_path: Path,
                                                       big: list[list[str]]) -> None:
    folder = tmp_path / "posts"
    posts(folder)
    ingest_folder(store, folder)
    edited = folder / "a" / "p1.md"
    folder_time = (folder / "a").stat().st_mtime_ns
    write_post(folder, "a/p1.md", "改写后的正文，快手-W(01024.HK)。", title="改写")  # in place
    past = time.time_ns() - int(30e9)
    os.utime(edited, ns=(past, past))
    os.utime(folder / "a", ns=(folder_time, folder_time))  # an edit in place leaves its folder's time
    assert ingest_folder(store, folder).updated == 0  # not among the files a big folder checks
    report = ingest_folder(store, folder, full=True)
    assert report.updated == 1
    with store.read() as con:
        assert con.execute("SELECT title FROM articles WHERE title = '改写'").fetchone() == ("改写",)


@pytest.mark.parametrize("few", [0, 64])
def test_the_folder_tests_of_many_folders_and_of_few_agree(store: Store, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, few: int) -> None:
    """Up to FEW_FOLDERS folders are tested by a list written into the SQL, beyond by a join:
    with 0 every run takes the join, with 64 these runs take the list (both backends)."""
    monkeypatch.setattr(ingest_mod, "FEW_FOLDERS", few)
    folder = tmp_path / "posts"
    for sub in ("a", "b", "c", "it's"):
        for i in range(3):
            write_post(folder, f"{sub}/p{i}.md", f"{sub}{i}。美团-W(03690.HK)。", title=f"{sub}{i}")
    age(folder)
    assert ingest_folder(store, folder).new == 12
    write_post(folder, "it's/p0.md", "改了。快手-W(01024.HK)。", title="edited")  # an edit, an addition,
    write_post(folder, "d/p0.md", "新的。", title="d0")                          # a removed file and
    (folder / "a" / "p1.md").unlink()                                            # a removed folder
    for p in (folder / "c").iterdir():
        p.unlink()
    (folder / "c").rmdir()
    time.sleep(0.01)
    report = ingest_folder(store, folder)
    assert (report.new, report.updated, report.removed, report.unchanged) == (1, 1, 4, 7)
    with store.read() as con:
        titles = sorted(t for (t,) in con.execute("SELECT title FROM articles").fetchall())
        paths = sorted(p.rsplit("/posts/", 1)[1] for (p,) in con.execute("SELECT path FROM files").fetchall())
    assert titles == sorted(["a0", "a2", "b0", "b1", "b2", "d0", "edited", "it's1", "it's2"])
    assert paths == sorted(["a/p0.md", "a/p2.md", "b/p0.md", "b/p1.md", "b/p2.md", "d/p0.md",
                            "it's/p0.md", "it's/p1.md", "it's/p2.md"])
    assert ingest_folder(store, folder).unchanged == 9
