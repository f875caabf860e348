"""The end-to-end proof of issue 10: a folder holding every hostile case next to good real
posts ingests with exit 0, in under 60 s and 1 GiB (the peak resident memory of the whole
process tree, sampled), storing every good post; then ``prices import`` (real CSV exports),
``reactions``, ``status`` and ``status --json`` work, and report each rejection with its
reason.

    python benchmarks/end_to_end.py [--keep DIR]

The hostile cases: every bad post of benchmarks/hostile.py (alias bombs, quadratic bodies,
extreme dates, ...), and what the folder walk meets: a name that is not UTF-8, a symbolic
link loop and a dangling link named *.md, a link to a folder, a FIFO, a socket, a file and a
folder that cannot be read. Root reads everything, so as root the commands run without the
two capabilities that let it (setpriv); where that is impossible the unreadable cases are
left out, and said so. The good posts are ../shared/posts, copied into the temporary folder
(never into the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
PRICE_FILES = ["hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "hsi-constituents/0700.HK.csv",
               "download-format/^HSI.csv", "download-format/000001.SS.csv", "download-format/AAPL.csv"]
DROP_CAPS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
             "--inh-caps=-dac_override,-dac_read_search"]


@dataclass
class Folder:
    root: Path
    good: list[Path] = field(default_factory=list)  # the real posts: each must be stored
    problems: dict[str, str] = field(default_factory=dict)  # shown path -> what its reason says
    unreadable: bool = False  # the cases only a reader without root's privileges meets
    notes: list[str] = field(default_factory=list)


def without_root_privileges() -> list[str] | None:
    """A command prefix that runs a command without the privilege to read unreadable files
    (empty when we do not have it anyway); None when it cannot be dropped here."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run([*DROP_CAPS, "true"], capture_output=True)
    return DROP_CAPS if probe.returncode == 0 else None


def build_folder(root: Path, with_unreadable: bool = True) -> Folder:
    from benchmarks.hostile import write_folder
    from dashboard.ingest import display_path

    out = Folder(root)
    shutil.copytree(SHARED / "posts", root / "real")
    out.good = sorted((root / "real").rglob("*.md"))
    write_folder(root / "hostile")
    walk = root / "walk"
    walk.mkdir()
    post = (SHARED / "posts" / "seeds").glob("*.md").__next__().read_bytes()
    bad_name = os.fsencode(walk) + b"/bad\xff\xfe.md"
    with open(bad_name, "wb") as f:
        f.write(post.replace(b"202112", b"302112"))  # another article's id, so it is not a duplicate
    out.problems[display_path(os.fsdecode(bad_name))] = "the name is not valid UTF-8; rename it"
    (walk / "loop.md").symlink_to("loop.md")
    out.problems[str(walk / "loop.md")] = "symbolic link loop"
    (walk / "dangling.md").symlink_to("no-such-post.md")
    out.problems[str(walk / "dangling.md")] = "broken symbolic link (its target does not exist)"
    (walk / "a-folder").mkdir()
    (walk / "folder-link.md").symlink_to("a-folder")
    out.problems[str(walk / "folder-link.md")] = "is a link to a folder, not a post"
    os.mkfifo(walk / "fifo.md")
    out.problems[str(walk / "fifo.md")] = "not a regular file (a FIFO)"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(walk / "socket.md"))
    sock.close()
    out.problems[str(walk / "socket.md")] = "not a regular file (a socket)"
    if with_unreadable:
        locked = walk / "locked"
        locked.mkdir()
        (locked / "inside.md").write_bytes(post)
        locked.chmod(0)
        out.problems[str(locked)] = "cannot list folder: Permission denied"
        secret = walk / "unreadable.md"
        secret.write_bytes(post.replace(b"202112", b"402112"))
        secret.chmod(0)
        out.problems[str(secret)] = "Permission denied"
        out.unreadable = True
    else:
        out.notes.append("the unreadable file and folder are left out: running as root, and root's "
                         "read privileges cannot be dropped here (no setpriv)")
    return out


def restore_permissions(root: Path) -> None:
    for path in root.rglob("*"):
        try:
            if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) == 0:
                path.chmod(0o755 if path.is_dir() else 0o644)
        except OSError:
            pass


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as f:
                    parents[int(entry.name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    tree, todo = {pid}, [pid]
    while todo:
        p = todo.pop()
        for c, pp in parents.items():
            if pp == p and c not in tree:
                tree.add(c)
                todo.append(c)
    total = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


@dataclass
class Run:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes, the whole process tree


def dashboard(args: list[str], db: Path, prefix: list[str] | None = None, timeout: float = 600) -> Run:
    """``python -m dashboard ARGS --db DB``, timed, with the process tree's peak memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DASHBOARD_DB", None)
    cmd = [*(prefix or []), sys.executable, "-m", "dashboard", *args, "--db", str(db)]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate(timeout=timeout)
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    return Run(args, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), seconds,
               peak[0])


def prove(work: Path) -> dict[str, object]:
    """Build the folder in ``work``, run every command; what happened, for a test to judge."""
    prefix = without_root_privileges()
    folder = build_folder(work / "posts", with_unreadable=prefix is not None)
    db = work / "store.duckdb"
    try:
        ingest = dashboard(["ingest", str(folder.root)], db, prefix)
        csvs = [str(SHARED / "prices" / f) for f in PRICE_FILES]
        prices = dashboard(["prices", "import", *csvs], db, prefix)
        reactions = dashboard(["reactions", "3690.HK", "--json"], db, prefix)
        status = dashboard(["status"], db, prefix)
        status_json = dashboard(["status", "--json"], db, prefix)
        again = dashboard(["ingest", str(folder.root)], db, prefix)
    finally:
        restore_permissions(folder.root)
    return {"folder": folder, "db": db, "ingest": ingest, "prices": prices, "reactions": reactions,
            "status": status, "status_json": status_json, "again": again}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build in this (new) folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dashboard-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        r = prove(work)
        folder: Folder = r["folder"]  # type: ignore[assignment]
        for note in folder.notes:
            print(f"note: {note}")
        print(f"{'command':<40} {'exit':>4} {'seconds':>8} {'peak MiB':>9}")
        for key in ("ingest", "prices", "reactions", "status", "status_json", "again"):
            run: Run = r[key]  # type: ignore[assignment]
            print(f"{' '.join(run.args)[:40]:<40} {run.code:>4} {run.seconds:>8.2f} "
                  f"{run.peak_rss / 2**20:>9.1f}")
        summary = json.loads(r["status_json"].stdout)  # type: ignore[attr-defined]
        print(f"\n{summary['articles']} articles stored ({len(folder.good)} good real posts among them); "
              f"{len(summary['rejected'])} files rejected, with their reasons:")
        for item in summary["rejected"]:
            print(f"  {item['path'][len(str(folder.root)) + 1:]}: {item['reason'][:100]}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
