"""Two ingests of the same 20,000-post folder into one store at once, as two real processes:
the run ids are taken inside the write transaction, so one run is N and the other N + 1, and
the second finds the files the first stored and counts them unchanged, not new."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dashboard.store import Store
from tests.conftest import ROOT


def test_two_concurrent_ingests_of_one_folder(tmp_path: Path, corpus_20k: Path) -> None:
    db = tmp_path / "store.duckdb"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dashboard", "ingest", str(corpus_20k), "--db", str(db), "--workers", "1"]
    both = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in both]
    for p, (out, err) in zip(both, outs, strict=True):
        assert p.returncode == 0, out + err
    reports = [{k.strip(): int(v) for k, v in (line.split(":") for line in out.splitlines()[1:8])}
               for out, _ in outs]
    with Store(db).read() as con:
        runs = con.execute(
            "SELECT run_id, files_seen, new, unchanged FROM ingest_runs ORDER BY run_id").fetchall()
        articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    assert [r[0] for r in runs] == [1, 2]
    assert runs[0][1:] == (20_000, 20_000, 0)  # the first to write stored them all ...
    assert runs[1][1:] == (20_000, 0, 20_000)  # ... the second found them stored: unchanged
    assert sorted((r["new"], r["unchanged"]) for r in reports) == [(0, 20_000), (20_000, 0)]
    assert articles == 20_000
