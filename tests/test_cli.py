"""The command line, run as users run it: ``python -m dashboard ...`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_post
from tests.pgserver import PASSWORD


def run(*args: str, db: Path | str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("DASHBOARD_DB", None) if env is None or "DASHBOARD_DB" not in env else None
    cmd = [sys.executable, "-m", "dashboard", *args] + (["--db", str(db)] if db else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=120)
    assert PASSWORD not in out.stdout + out.stderr  # a PostgreSQL URL's password is never printed
    return out


def test_ingest_prints_counts_and_rejections(tmp_path: Path, db_target: str) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "good.md", "美团-W(03690.HK)。")
    (folder / "bad.md").write_text("---\ntitle: x\ndate:  +0800\n---\n")
    db = db_target
    out = run("ingest", str(folder), db=db)
    assert out.returncode == 0, out.stderr
    assert "new:        1" in out.stdout and "rejected:   1" in out.stdout
    assert f"rejected {folder / 'bad.md'}: unparseable date '+0800' in front matter" in out.stdout
    again = run("ingest", str(folder), db=db)
    assert "unchanged:  1" in again.stdout and "new:        0" in again.stdout


def test_ingest_fails_only_when_nothing_could_be_read(tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "bad.md").write_bytes(b"")
    assert run("ingest", str(folder), db=tmp_path / "s.duckdb").returncode == 1
    assert run("ingest", str(tmp_path / "missing"), db=tmp_path / "s.duckdb").returncode == 2


def test_db_defaults_to_the_environment(tmp_path: Path, db_target: str) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "a.md")
    out = run("ingest", str(folder), env={"DASHBOARD_DB": db_target})
    assert out.returncode == 0, out.stderr
    assert "1 articles" in run("status", env={"DASHBOARD_DB": db_target}).stdout


def test_inspect_json(shared_posts: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: x\ndate:  +0800\n---\n")
    seed = shared_posts / "seeds" / "2021-12-27-202112272227521160.md"
    out = run("inspect", str(seed), str(bad), "--json")
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["id"] == "202112272227521160"
    assert first["published_at"] == "2021-12-27T23:33:19+08:00"
    assert first["url"] == "http://finance.eastmoney.com/news/1354,202112272227521160.html"
    assert first["source"] == "北京商报" and first["error"] is None
    assert first["securities"] == [
        {"symbol": "3690.HK", "canonical": "03690.HK", "market": "HK", "name": "美团-W", "how": "embed"},
        {"symbol": "1024.HK", "canonical": "01024.HK", "market": "HK", "name": "快手-W", "how": "embed"}]
    assert second["error"] == "unparseable date '+0800' in front matter" and second["id"] is None
    assert set(first) >= {"path", "id", "title", "published_at", "url", "source", "securities", "error"}


def test_prices_import_and_status(shared_posts: Path, shared_prices: Path, tmp_path: Path, db_target: str) -> None:
    db = db_target
    run("ingest", str(shared_posts / "seeds"), db=db)
    out = run("prices", "import", str(shared_prices / "hsi-constituents" / "3690.HK.csv"),
              str(shared_prices / "hsi-constituents" / "1024.HK.csv"),
              str(shared_prices / "download-format" / "^HSI.csv"), db=db)
    assert out.returncode == 0, out.stderr
    assert "imported" in out.stdout and "3690.HK, 1323 rows" in out.stdout
    status = run("status", db=db)
    assert "2 articles, 3 securities" in status.stdout
    assert "3690.HK     美团-W" in status.stdout and "2020-01-02 … 2025-05-22 ok" in status.stdout
    summary = json.loads(run("status", "--json", db=db).stdout)
    assert summary["articles"] == 2 and summary["rejected"] == []
    rows = {r["symbol"]: r for r in summary["securities"]}
    assert set(rows["3690.HK"]) >= {"symbol", "name", "articles", "prices", "first_price", "last_price",
                                    "state", "reason"}
    assert rows["3690.HK"]["articles"] == 2 and rows["3690.HK"]["prices"] == 1323
    assert rows["3690.HK"]["name"] == "美团-W" and rows["3690.HK"]["state"] == "ok"
    assert rows["^HSI"]["first_price"] == "2021-01-04" and rows["^HSI"]["reason"] is None


def test_prices_import_reports_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "3690.HK.csv"
    bad.write_text("Date,Open,High,Close,Volume\n2021-12-28,1,2,1.5,10\n")
    out = run("prices", "import", str(bad), db=tmp_path / "s.duckdb")
    assert out.returncode == 1 and "missing columns: Low" in out.stderr


@pytest.mark.timeout(120)
def test_prices_fetch_offline_says_why_and_how(shared_posts: Path, tmp_path: Path, db_target: str) -> None:
    db = db_target
    run("ingest", str(shared_posts / "seeds"), db=db)
    out = run("prices", "fetch", db=db)
    if "failed   " not in out.stdout:
        pytest.skip("Yahoo Finance is reachable from here")
    assert out.returncode == 1
    # Hong Kong asks eastmoney first when akshare is installed, then Yahoo: both reasons are kept
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("failed   3690.HK: ")]
    assert "Yahoo Finance could not be reached" in line
    assert "prices import" in out.stdout
    status = run("status", db=db)
    (line,) = [x for x in status.stdout.splitlines() if x.startswith("  3690.HK: ")]
    assert "Yahoo Finance could not be reached" in line


def test_reactions_json(shared_posts: Path, shared_prices: Path, tmp_path: Path, db_target: str) -> None:
    db = db_target
    run("ingest", str(shared_posts / "seeds"), db=db)
    run("prices", "import", str(shared_prices / "hsi-constituents" / "3690.HK.csv"),
        str(shared_prices / "download-format" / "^HSI.csv"), db=db)
    out = run("reactions", "3690.HK", "--json", db=db)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["article_id"], r["published_at"], r["session"]) for r in rows] == [
        ("202112272227521160", "2021-12-27T23:33:19+08:00", "2021-12-28"),
        ("202112292228912369", "2021-12-29T05:58:12+08:00", "2021-12-29")]
    assert [round(r["day0_return"] * 100, 2) for r in rows] == [-1.15, -3.31]
    assert set(rows[0]) >= {"article_id", "published_at", "session", "day0_return", "car_m1_p1",
                            "car_0_p5", "volume_ratio"}
    assert rows[0]["car_m1_p1"] == pytest.approx(-0.042687, abs=1e-6)
    windows = ("m1_p1", "0_p1", "0_p2", "0_p5")
    assert set(rows[0]) >= {f"{s}car_{w}{m}" for s in ("", "t_", "p_") for w in windows for m in ("", "_mm")}
    assert rows[0]["n_est"] == 120 and rows[0]["sigma"] == pytest.approx(0.030931, abs=1e-6)
    # t and p as tests/test_reactions.py works them out from the CSVs
    assert rows[0]["t_car_m1_p1"] == pytest.approx(rows[0]["car_m1_p1"] / (rows[0]["sigma"] * 3 ** 0.5))
    assert rows[1]["p_car_0_p5_mm"] == pytest.approx(0.046225, abs=1e-6)
    text = run("reactions", "3690.HK", db=db).stdout
    assert "2021-12-27 23:33 2021-12-28  -1.15%  -4.27% 0.427" in text
    # a security without prices: every measure missing, as null
    none = json.loads(run("reactions", "1024.HK", "--json", db=db).stdout)
    assert none[0]["session"] is None and none[0]["day0_return"] is None
    assert none[0]["t_car_0_p2"] is None and none[0]["p_car_0_p2_mm"] is None and none[0]["n_est"] is None


def test_prices_fetch_from_a_csv_folder(shared_posts: Path, shared_prices: Path, tmp_path: Path, db_target: str) -> None:
    db = db_target
    run("ingest", str(shared_posts / "seeds"), db=db)
    out = run("prices", "fetch", "--csv-dir", str(shared_prices / "hsi-constituents"), db=db)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3690.HK: " in out.stdout and "1024.HK: " in out.stdout
    assert "failed   ^HSI: no file ^HSI.csv" in out.stdout  # the benchmark lives in the other folder


def test_db_may_come_before_or_after_the_command(tmp_path: Path) -> None:
    folder = tmp_path / "posts"
    write_post(folder, "a.md", "美团-W(03690.HK)公告。")
    db = tmp_path / "s.duckdb"
    assert run("--db", str(db), "ingest", str(folder)).returncode == 0
    before = run("--db", str(db), "status", "--json")
    after = run("status", "--json", db=db)
    assert json.loads(before.stdout)["articles"] == json.loads(after.stdout)["articles"] == 1


def test_output_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    """`python -m dashboard inspect ... | head -1`: the reader goes, the command ends without a
    traceback about a broken pipe."""
    post = write_post(tmp_path, "a.md", "美团-W(03690.HK)公告。" * 20)
    cmd = [sys.executable, "-m", "dashboard", "inspect", *[str(post)] * 2000, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["path"] == str(post)
    proc.stdout.close()  # as head does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, -signal.SIGPIPE), err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_main_leaves_its_callers_signals_alone(tmp_path: Path) -> None:
    """main() called inside a process (a test run, a notebook) must not change how that process
    takes SIGPIPE: with the default action, its next send to a closed socket kills it (the test
    run died so, in test_shutdown's websockets, after one in-process main())."""
    from dashboard.cli import main

    before = signal.getsignal(signal.SIGPIPE)
    assert main(["status", "--db", str(tmp_path / "s.duckdb")]) == 0
    assert signal.getsignal(signal.SIGPIPE) == before
