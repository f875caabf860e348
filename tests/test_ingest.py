"""Ingesting folders: joins, re-ingest, edits, duplicates, bad files, transactions, concurrency."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import dashboard.ingest as ingest_mod
from dashboard.ingest import ingest_folder
from dashboard.store import Store, StoreBusy, open_store
from tests.conftest import ROOT, target_of, write_post


def article_securities(store: Store) -> dict[str, set[str]]:
    with store.read() as con:
        rows = con.execute("SELECT article_id, symbol FROM mentions").fetchall()
    out: dict[str, set[str]] = {}
    for aid, sym in rows:
        out.setdefault(aid, set()).add(sym)
    return out


def counts(store: Store) -> tuple[int, int, int]:
    with store.read() as con:
        return con.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM mentions), "
            "(SELECT count(*) FROM securities)").fetchone()  # type: ignore[return-value]


def test_real_posts_join_to_their_securities(store: Store, shared_posts: Path) -> None:
    report = ingest_folder(store, shared_posts)
    assert (report.new, len(report.rejected), report.files_seen) == (29, 0, 29)
    joined = article_securities(store)
    assert joined["202112272227521160"] == {"3690.HK", "1024.HK"}
    assert joined["202112292228912369"] == {"3690.HK", "1024.HK"}
    assert joined["202201072239307540"] == {"000776.SZ", "601211.SS", "601688.SS", "000166.SZ",
                                            "600999.SS", "601995.SS", "601066.SS", "600030.SS"}
    with store.read() as con:
        names = dict(con.execute("SELECT symbol, name FROM securities").fetchall())
        boards = con.execute("SELECT count(*) FROM securities WHERE symbol LIKE '%BK%'").fetchone()
        embed = con.execute("SELECT how FROM mentions WHERE article_id = '202112272227521160' "
                            "AND symbol = '3690.HK'").fetchone()
        published = con.execute("SELECT strftime(published_at AT TIME ZONE 'Asia/Shanghai', "
                                "'%Y-%m-%d %H:%M:%S') FROM articles "
                                "WHERE article_id = '202112272227521160'").fetchone()
    assert names["3690.HK"] == "美团-W" and names["1024.HK"] == "快手-W"  # reference list
    assert names["601995.SS"] == "中金公司"  # keytip text
    assert names["SUN"] == "Sunoco LP"  # reference list over the inline 'Sunoco Lp'
    assert boards == (0,)
    assert embed == ("embed",)
    assert published == ("2021-12-27 23:33:19",)


def test_reingest_changes_nothing_and_parses_nothing(store: Store, shared_posts: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_folder(store, shared_posts)
    before = counts(store)
    calls = []
    monkeypatch.setattr(ingest_mod, "parse_post", lambda *a, **k: calls.append(a) or None)
    report = ingest_folder(store, shared_posts)
    assert (report.new, report.updated, report.unchanged, report.removed) == (0, 0, 29, 0)
    assert calls == []
    assert counts(store) == before


def test_touched_but_unchanged_file_is_not_reparsed(store: Store, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "posts"
    p = write_post(folder, "a.md", "美团-W(03690.HK)涨。")
    ingest_folder(store, folder)
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    calls = []
    monkeypatch.setattr(ingest_mod, "parse_post", lambda *a, **k: calls.append(a))
    report = ingest_folder(store, folder)
    assert (report.unchanged, report.updated, calls) == (1, 0, [])
    monkeypatch.undo()
    assert ingest_folder(store, folder).unchanged == 1  # and the new stat was stored


def test_edited_file_replaces_its_earlier_version(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    p = write_post(folder, "2021-12-28-202112282228000001.md", "美团-W(03690.HK)涨。", title="旧标题")
    ingest_folder(store, folder)
    write_post(folder, p.name, "快手-W(01024.HK)跌。", title="新标题")
    report = ingest_folder(store, folder)
    assert (report.new, report.updated) == (0, 1)
    with store.read() as con:
        assert con.execute("SELECT article_id, title FROM articles").fetchall() == [
            ("202112282228000001", "新标题")]
    assert article_securities(store) == {"202112282228000001": {"1024.HK"}}


def test_edited_file_without_info_code_replaces_its_hash_id(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "note.md", "第一版正文，美团-W(03690.HK)。")
    ingest_folder(store, folder)
    write_post(folder, "note.md", "第二版正文，快手-W(01024.HK)。")
    ingest_folder(store, folder)
    assert counts(store)[0] == 1
    assert list(article_securities(store).values()) == [{"1024.HK"}]


def test_same_article_saved_twice_is_stored_once(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    url = "<http://finance.eastmoney.com/news/1354,202112272227521160.html>"
    write_post(folder, "a/first.md", f"美团-W(03690.HK)。\n\n{url}")
    write_post(folder, "b/copy-with-other-name.md", f"美团-W(03690.HK)。\n\n{url}")
    write_post(folder, "c/same-body-1.md", "一段完全相同的正文，足够长，" * 8, title="同一篇")
    write_post(folder, "c/same-body-2.md", "一段完全相同的正文，足够长，" * 8, title="同一篇（转载）")
    report = ingest_folder(store, folder)
    assert (report.new, report.duplicates) == (2, 2)
    assert counts(store)[0] == 2
    again = ingest_folder(store, folder)
    assert (again.new, again.duplicates, again.unchanged) == (0, 0, 4)


def test_removed_file_takes_its_article_unless_a_copy_remains(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    url = "<http://finance.eastmoney.com/news/1354,202112272227521160.html>"
    first = write_post(folder, "a.md", f"正文。\n\n{url}")
    copy = write_post(folder, "b.md", f"正文。\n\n{url}")
    lone = write_post(folder, "c.md", "另一篇。")
    ingest_folder(store, folder)
    assert counts(store)[0] == 2
    first.unlink()
    lone.unlink()
    report = ingest_folder(store, folder)
    assert report.removed == 2
    with store.read() as con:
        assert con.execute("SELECT article_id FROM articles").fetchall() == [("202112272227521160",)]
    copy.unlink()
    ingest_folder(store, folder)
    assert counts(store)[0] == 0


def make_bad_folder(folder: Path) -> dict[str, str]:
    """One good post, and one of each kind of bad input; returns name -> expected reason."""
    write_post(folder, "good.md", "美团-W(03690.HK)公告。")
    (folder / "bom.md").write_bytes("---\ntitle: BOM\ndate: 2021-12-28 10:00:00\n---\n正文\n"
                                    .encode("utf-8-sig"))
    (folder / "blank-line.md").write_text("\n---\ntitle: blank\ndate: 2021-12-28 10:00\n---\n正文\n")
    (folder / "gbk.md").write_bytes("---\ntitle: 中文标题\ndate: 2021-12-28 10:00\n---\n快手-W(01024.HK)\n"
                                    .encode("gbk"))
    (folder / "octal.md").write_text("---\ntitle: octal\ndate: 2021-12-28 10:00\ntickers: [01024]\n---\n正文\n")
    (folder / "malformed.md").write_text("---\ntitle: [oops\ndate: 2021-12-28\n---\n正文\n")
    (folder / "empty.md").write_bytes(b"")
    (folder / "binary.md").write_bytes(b"\x00\x01\x02\x03PK\x03\x04" * 20)
    (folder / "no-date.md").write_text("---\ntitle: no date\n---\n正文\n")
    (folder / "bad-date.md").write_text("---\ntitle: bad date\ndate:  +0800\n---\n正文\n")
    (folder / "no-title.md").write_text("---\ndate: 2021-12-28 10:00\n---\n正文\n")
    (folder / "huge.md").write_bytes(b"---\ntitle: huge\ndate: 2021-12-28\n---\n" + b"x" * (6 * 2**20))
    return {
        "malformed.md": "malformed YAML front matter at line 3",
        "empty.md": "empty file",
        "binary.md": "binary file, not a text post",
        "no-date.md": "missing date in front matter",
        "bad-date.md": "unparseable date '+0800' in front matter",
        "no-title.md": "missing title in front matter",
        "huge.md": "file is too large (6.0 MiB; the limit is 5 MiB)",
    }


def test_bad_files_are_reported_and_the_rest_ingests(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    expected = make_bad_folder(folder)
    report = ingest_folder(store, folder)
    got = {Path(p).name: reason for p, reason in report.rejected}
    assert set(got) == set(expected)
    for name, reason in expected.items():
        assert got[name].startswith(reason), (name, got[name])
    assert report.new == 5  # good, bom, blank-line, gbk, octal
    assert [(Path(p).name, w) for p, w in report.warnings] == [
        ("gbk.md", "decoded as GBK (GB18030), not UTF-8")]
    with store.read() as con:
        titles = {t for (t,) in con.execute("SELECT title FROM articles").fetchall()}
        problems = con.execute("SELECT count(*) FROM ingest_problems WHERE kind = 'rejected'").fetchone()
        run = con.execute("SELECT files_seen, new, rejected FROM ingest_runs").fetchone()
    assert titles == {"标题", "BOM", "blank", "中文标题", "octal"}
    assert problems == (7,) and run == (12, 5, 7)
    # unchanged bad files are still reported on the next run, without re-reading them
    again = ingest_folder(store, folder)
    assert sorted(Path(p).name for p, _ in again.rejected) == sorted(expected)
    assert again.unchanged == 5


def test_a_crash_halfway_leaves_the_previous_state(store: Store, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)。")
    ingest_folder(store, folder)
    before = counts(store)
    write_post(folder, "b.md", "快手-W(01024.HK)。")
    write_post(folder, "a.md", "改写后的正文。")
    real_write = ingest_mod._write

    def crash(con, *args):  # type: ignore[no-untyped-def]
        real_write(con, *args)  # everything written ...
        raise RuntimeError("power cut")  # ... but never committed

    monkeypatch.setattr(ingest_mod, "_write", crash)
    with pytest.raises(RuntimeError):
        ingest_folder(store, folder)
    assert counts(store) == before
    assert list(article_securities(store).values()) == [{"3690.HK"}]


def test_parallel_parse_matches_serial(tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    for i in range(ingest_mod.PARALLEL_MIN_FILES + 20):
        write_post(folder, f"p{i:04d}.md", f"第{i}篇。美团-W(03690.HK)与贵州茅台(600519)。",
                   title=f"标题{i}")
    serial = Store(tmp_path / "serial.duckdb")
    parallel = Store(tmp_path / "parallel.duckdb")
    a = ingest_folder(serial, folder, workers=1)
    b = ingest_folder(parallel, folder, workers=2)
    assert a.new == b.new == ingest_mod.PARALLEL_MIN_FILES + 20
    assert article_securities(serial) == article_securities(parallel)


WRITER = textwrap.dedent("""
    import sys, time
    import dashboard.ingest as ingest
    from dashboard.store import open_store
    real = ingest._write
    def slow(con, *a):
        real(con, *a)
        print("writing", flush=True)
        time.sleep(float(sys.argv[3]))  # hold the write lock, mid-transaction
    ingest._write = slow
    print(ingest.ingest_folder(open_store(sys.argv[1]), sys.argv[2]).new, flush=True)
""")


def test_reader_keeps_serving_while_another_process_ingests(store: Store, tmp_path: Path) -> None:
    first = tmp_path / "first"
    write_post(first, "a.md", "美团-W(03690.HK)。")
    ingest_folder(store, first)
    snapshot = store.snapshot()  # what a running dashboard holds
    second = tmp_path / "second"
    write_post(second, "b.md", "快手-W(01024.HK)。")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, target_of(store), str(second), "3"],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        # the writer holds the store: the snapshot still answers, with the committed state
        assert snapshot.query("SELECT count(*) AS n FROM articles")["n"][0] == 1
        if store.kind == "duckdb":  # a new short read waits for the writer's commit and then sees it
            with pytest.raises(StoreBusy):
                with Store(store.path, lock_timeout=0.2).read():
                    pass
            with Store(store.path, lock_timeout=30).read() as con:
                assert con.execute("SELECT count(*) FROM articles").fetchone() == (2,)
        else:  # PostgreSQL readers never wait: they see the last commit
            with open_store(target_of(store), lock_timeout=0.2).read() as con:
                assert con.execute("SELECT count(*) FROM articles").fetchone() == (1,)
        assert writer.wait(30) == 0
    finally:
        writer.kill()
    assert snapshot.query("SELECT count(*) AS n FROM articles")["n"][0] == 1  # until refreshed
    fresh = store.snapshot()
    assert fresh.query("SELECT count(*) AS n FROM articles")["n"][0] == 2
    assert fresh.generation != snapshot.generation
    snapshot.close()
    fresh.close()


def test_writers_in_two_processes_take_turns(store: Store, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_post(a, "a.md", "美团-W(03690.HK)。")
    write_post(b, "b.md", "快手-W(01024.HK)。")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, target_of(store), str(d), "1"],
                              stdout=subprocess.PIPE, text=True, env=env) for d in (a, b)]
    for p in procs:
        assert p.wait(60) == 0
    assert counts(store)[0] == 2


def test_sample_posts_ingest_cleanly(store: Store) -> None:
    report = ingest_folder(store, ROOT / "data" / "posts")
    assert report.rejected == [] and report.new == report.files_seen >= 8
    joined = article_securities(store)
    assert sum("3690.HK" in s for s in joined.values()) >= 4
    assert sum({"3690.HK", "1024.HK"} <= s for s in joined.values()) >= 3


def test_ingest_of_a_missing_folder_raises(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        ingest_folder(store, tmp_path / "nope")


def test_hidden_folders_are_skipped(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "a.md")
    write_post(folder, ".git/b.md")
    shutil.copy(folder / "a.md", folder / "notes.txt")
    assert ingest_folder(store, folder).files_seen == 1


def test_a_copy_takes_over_when_the_original_goes(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    url = "<http://finance.eastmoney.com/news/1354,202112272227521160.html>"
    a = write_post(folder, "a.md", f"美团-W(03690.HK)。\n\n{url}")
    b = write_post(folder, "b.md", f"美团-W(03690.HK)。\n\n{url}")
    ingest_folder(store, folder)
    a.unlink()
    ingest_folder(store, folder)
    with store.read() as con:
        assert con.execute("SELECT path FROM articles").fetchall() == [(str(b),)]
    write_post(folder, "b.md", f"快手-W(01024.HK)，改写过。\n\n{url}")  # the copy, now the holder, is edited
    report = ingest_folder(store, folder)
    assert (report.updated, report.duplicates) == (1, 0)
    assert article_securities(store) == {"202112272227521160": {"1024.HK"}}


def test_copies_follow_an_original_that_changes_identity(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    body = "一段完全相同的正文，足够长，" * 8
    old_url = "<http://finance.eastmoney.com/news/1354,202112272227521160.html>"
    new_url = "<http://finance.eastmoney.com/news/1354,202112272227521199.html>"
    write_post(folder, "a.md", f"{body}\n\n{old_url}")
    write_post(folder, "c.md", f"{body}\n\n{old_url}")
    ingest_folder(store, folder)
    write_post(folder, "a.md", f"{body}\n\n{new_url}")  # a new source URL, so a new id
    ingest_folder(store, folder)
    with store.read() as con:
        files = dict(con.execute("SELECT path, article_id FROM files").fetchall())
        articles = dict(con.execute("SELECT article_id, path FROM articles").fetchall())
    # the copy still holds the article as it was saved; the edited file holds the new one
    assert articles == {"202112272227521199": str(folder / "a.md"), "202112272227521160": str(folder / "c.md")}
    assert set(files.values()) == set(articles)


def test_overlapping_folders_share_their_files(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    x = write_post(folder, "sub/x.md", "美团-W(03690.HK)。")
    write_post(folder, "y.md", "快手-W(01024.HK)。")
    ingest_folder(store, folder)
    inner = ingest_folder(store, folder / "sub")
    assert (inner.new, inner.unchanged) == (0, 1)
    x.unlink()
    outer = ingest_folder(store, folder)
    assert outer.removed == 1
    assert counts(store)[0] == 1


def test_the_stores_connections_draw_no_duckdb_progress_bar(tmp_path: Path) -> None:
    """DuckDB draws a bar on stdout for any query over 2 s (a 1M-post ingest has several), into
    the CLI's output and glued to what a caller parses from it: the store's connections, for
    writing and for reading (a snapshot copy, the app's read view of the file itself), have it
    off. The reads in a fresh process: there, DuckDB's default (on) is what they would have."""
    setting = "SELECT current_setting('enable_progress_bar')"
    store = open_store(tmp_path / "s.duckdb")
    with store.write() as con:
        assert con.execute(setting).fetchall() == [(False,)]
    code = textwrap.dedent(f"""
        from dashboard.store import open_store, read_view
        store = open_store({str(tmp_path / "s.duckdb")!r})
        setting = {setting!r}
        with store.read() as con:
            print(con.execute(setting).fetchall()[0][0])
        snapshot = store.snapshot()
        print(snapshot.cursor().execute(setting).fetchall()[0][0])
        snapshot.close()
        view = read_view(store)
        with view.reading() as snap:
            print(snap.cursor().execute(setting).fetchall()[0][0])
        view.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "False", "False"]
