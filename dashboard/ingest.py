"""Ingest a folder of posts into the store: find what changed, parse it in parallel, merge it.

Unchanged files (same size and modification time, or same bytes) are not re-parsed;
an edited file replaces its earlier version; a file removed from the folder takes its
article with it unless another file holds the same article. The same article saved
twice (same id, same source URL, or identical body) is stored once. Everything one run
changes is committed in one transaction, and a run that changes nothing writes nothing.

Cost follows the change, not the folder: the store remembers every folder's modification
time, so only folders whose entries changed are listed again (a file added, removed or
renamed changes its folder's time). A file edited in place changes only its own time, so
known files are checked by ``stat``: all of them while the folder is small
(``FULL_CHECK_MAX``), and beyond that the ones in changed folders, the recently modified
ones (the newest ``RECENT_MAX``), and a rotating share of the rest (``full=True`` checks
all). The scan and the bookkeeping go through Arrow into DuckDB, so the main process never
holds a row per file.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import multiprocessing as mp
import os
import random
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dashboard.articles import (
    DEFAULT_MAX_BYTES,
    POST_TIME_LIMIT,
    PostError,
    parse_post,
    prefetch,
    read_bytes,
    time_limits,
)
from dashboard.names import name_securities
from dashboard.reactions import refresh_reactions
from dashboard.securities import HOW_RANK
from dashboard.store import Store
from dashboard.store.duckdb import append_sorted_files, cluster_mentions, pid_alive

POST_SUFFIXES = (".md", ".markdown")
CHUNK = 1000  # files a worker parses per task (fewer, larger Parquet files merge faster)
PARALLEL_MIN_FILES = 2000  # below this a process pool costs more than it saves
FULL_CHECK_MAX = 50_000  # up to this many known files, every one is checked by stat
RECENT_NS = 7 * 86400 * 10**9  # beyond it: files modified in the last week are always checked ...
RECENT_MAX = 5_000  # ... the newest of them, up to this many (a folder written at once is all recent) ...
ROTATION = 32  # ... and a random 1/32 of the others: an in-place edit is found in 32 runs on average
RACY_NS = 2 * 10**9  # a time this close to the scan may hide a later change in the same tick
STAGE_PREFIX = ".ingest-"
FOLDER_OF_PATH = "regexp_replace(path, '/[^/]*$', '')"  # files.folder, as ingest writes it
FEW_FOLDERS = 64  # up to this many folders, a folder test is written into the SQL (see _folder_in)
UNDER_ROOT = "(f.folder = $root OR starts_with(f.folder, $prefix))"  # by folder: cheaper than by path


def _folder_in(folders: list[str], otherwise: str) -> str:
    """SQL for "``files.folder`` is one of ``folders``": a few are a list test written into
    the SQL, which DuckDB runs inside the scan, so it reads the paths of the rows it keeps
    only (at 1M files 5 ms; ``folder IN`` a list or a subquery is only a row-group hint to the
    scan, and every path is read: 35-45 ms); many, ``otherwise`` (SQL saying the same)."""
    if len(folders) > FEW_FOLDERS:
        return otherwise
    return "list_has_any([folder], [" + ", ".join("'" + f.replace("'", "''") + "'" for f in folders) + "]::VARCHAR[])"


def _near(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """SQL for "``files.folder`` is one of this run's folders" (the temp table run_folders),
    and SQL for the store's rows of their files: when the folders are few, a temp table of
    those rows (a join with the list test beside it reads every path again: 17-28 ms at 1M,
    the table 5 ms)."""
    folders = [f for (f,) in con.execute("SELECT folder FROM run_folders ORDER BY 1").fetchall()]
    in_folders = _folder_in(folders, "folder IN (SELECT folder FROM run_folders)")
    if len(folders) > FEW_FOLDERS:
        return in_folders, f"SELECT * FROM files WHERE {in_folders}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE near_files AS SELECT * FROM files WHERE {in_folders}")
    return in_folders, "SELECT * FROM near_files"


@dataclass(frozen=True, slots=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int


@dataclass
class IngestReport:
    run_id: int
    root: str
    files_seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    removed: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    not_files: int = 0  # rejections that are not post files (a folder that cannot be listed, ...)

    @property
    def rejected_files(self) -> int:
        return len(self.rejected) - self.not_files

    @property
    def readable(self) -> int:
        return self.files_seen - self.rejected_files


# --- finding the posts ---------------------------------------------------------------


def display_path(path: str) -> str:
    """A path as text that can be shown and stored: undecodable bytes as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _valid_name(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 became surrogates
        return False
    return True


def _not_a_post(entry: os.DirEntry[str]) -> str | None:
    """Why a ``*.md`` entry cannot be read as a post (None when it is a regular file)."""
    try:
        if entry.is_file():
            return None
    except OSError as e:
        return "symbolic link loop" if e.errno == errno.ELOOP else f"cannot read: {e.strerror or e}"
    try:
        if entry.is_symlink():
            target = os.stat(entry.path)  # raises for a dangling link or a loop
            return f"is a link to a {'folder' if stat.S_ISDIR(target.st_mode) else 'special file'}, not a post"
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if isinstance(e, FileNotFoundError):
            return "broken symbolic link (its target does not exist)"
        return f"cannot read: {e.strerror or e}"
    if stat.S_ISDIR(mode):
        return None  # a folder named *.md is walked, not read
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device or special file"
    return f"not a regular file (a {kind})"


@dataclass
class Walk:
    """What a walk of a folder found: the folders (with their times), the post files of the
    folders it listed, and what it could not read."""

    folders: list[tuple[str, str, int]] = field(default_factory=list)  # path, parent, mtime_ns
    listed: list[str] = field(default_factory=list)  # folders whose entries were read
    present: list[str] = field(default_factory=list)  # post files in the listed folders
    problems: list[tuple[str, str]] = field(default_factory=list)
    bad_files: int = 0  # post entries among the problems (not folders)


def walk(root: Path, known: dict[str, tuple[int, list[str]]] | None = None) -> Walk:
    """Walk ``root`` (skipping hidden files and folders). A folder whose modification time
    equals the one in ``known`` (path -> (mtime_ns, child folders)) is not listed again:
    its entries are what they were."""
    known = known or {}
    out = Walk()
    started = time.time_ns()
    stack: list[tuple[str, str]] = [(str(root), os.path.dirname(str(root)))]
    while stack:
        folder, parent = stack.pop()
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError as e:
            out.problems.append((display_path(folder), f"cannot read folder: {e.strerror or e}"))
            continue
        # a time too close to now may be shared by a change made just after we look
        out.folders.append((folder, parent, -1 if mtime > started - RACY_NS else mtime))
        before = known.get(folder)
        if before is not None and before[0] == mtime and mtime > 0:
            stack.extend((child, folder) for child in before[1])
            continue
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            out.problems.append((display_path(folder), f"cannot list folder: {e.strerror or e}"))
            out.folders.pop()
            continue
        out.listed.append(folder)
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if not _valid_name(entry.path):
                out.problems.append((display_path(entry.path), "the name is not valid UTF-8; rename it"))
                out.bad_files += name.endswith(POST_SUFFIXES)
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, folder))
                    continue
            except OSError as e:
                out.problems.append((entry.path, f"cannot read: {e.strerror or e}"))
                continue
            if name.endswith(POST_SUFFIXES):
                why = _not_a_post(entry)
                if why is None:
                    out.present.append(entry.path)
                else:
                    out.problems.append((entry.path, why))
                    out.bad_files += 1
    return out


def scan(root: Path) -> list[FileStat]:
    """Every post file below ``root`` with its size and modification time (a full walk)."""
    found = []
    for path in walk(root).present:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.append(FileStat(path, st.st_size, st.st_mtime_ns))
    return sorted(found, key=lambda f: f.path)


def _stat_all(paths: list[str]) -> pa.Table:
    """(path, size, mtime_ns) of each path that still exists, as Arrow for DuckDB."""
    keep, sizes, times = [], [], []
    racy = time.time_ns() - RACY_NS
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        keep.append(p)
        sizes.append(st.st_size)
        times.append(-1 if st.st_mtime_ns > racy else st.st_mtime_ns)
    return pa.table({"path": pa.array(keep, pa.string()), "size": pa.array(sizes, pa.int64()),
                     "mtime_ns": pa.array(times, pa.int64())})


# --- parsing (runs in worker processes) --------------------------------------------

Job = tuple[str, str | None, str | None]  # path; the store's content hash and rejection reason for it

_ARTICLE_SCHEMA = pa.schema([
    ("path", pa.string()), ("article_id", pa.string()), ("title", pa.string()),
    ("published_at", pa.timestamp("us", tz="UTC")), ("categories", pa.list_(pa.string())),
    ("tags", pa.list_(pa.string())), ("url", pa.string()), ("source", pa.string()),
    ("digest", pa.string()), ("text", pa.string()), ("dedup_key", pa.string()),
])
# A mention row carries what the store's mentions table shows of its article (see SCHEMA), so
# the merge appends it without joining the articles' text, and its text's size in bytes, so the
# merge cuts its sort into groups without reading the texts (store.duckdb.append_sorted_files).
_MENTION_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("path", "symbol", "code", "canonical", "market", "kind", "how", "name",
                                      "article_id")]
    + [("published_at", pa.timestamp("us", tz="UTC")), ("title", pa.string()), ("source", pa.string()),
       ("categories", pa.list_(pa.string())), ("url", pa.string()), ("text", pa.string()),
       ("named", pa.list_(pa.string()))])
MENTION_COLUMNS = ["article_id", "symbol", "how", "name", "published_at", "title", "source", "categories", "url",
                   "text", "named"]  # what the store's mentions table holds of a staged row
_FILE_SCHEMA = pa.schema([
    ("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("content_hash", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("article_id", pa.string()), ("url", pa.string()),
    ("dedup_key", pa.string()),
])


@dataclass(slots=True)
class ParsedChunk:
    """What a worker read from a chunk of files: counts, and the few rows the report names.
    The rows themselves go to Parquet files in the stage folder."""

    files: int = 0
    same: int = 0  # touched, not changed
    ok: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  # path, reason
    warnings: list[tuple[str, str]] = field(default_factory=list)


def _write_parquet(rows: list[tuple[object, ...]], schema: pa.Schema, path: Path, text_bytes: bool = False) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    table = pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)
    if text_bytes:
        table = table.append_column("text_bytes", pc.binary_length(table["text"]))
    pq.write_table(table, path, compression="none")


def parse_chunk(args: tuple[int, list[Job], str, int, str]) -> ParsedChunk:
    number, jobs, site_tz, max_bytes, stage = args
    out = ParsedChunk(files=len(jobs))
    arts: list[tuple[object, ...]] = []  # rows, turned into columns once per chunk
    ments: list[tuple[object, ...]] = []
    rows: list[tuple[object, ...]] = []
    record = rows.append
    racy = time.time_ns() - RACY_NS
    prefetch((path for path, _, _ in jobs), max_bytes)  # the disk reads ahead while we parse

    with time_limits(POST_TIME_LIMIT) as each:  # no single file may hold up the run
        for path, known_hash, known_reason in jobs:
            try:
                st = os.stat(path)
            except OSError:
                out.files -= 1  # gone since the scan: the next run sees it removed
                continue
            size, mtime = st.st_size, (-1 if st.st_mtime_ns > racy else st.st_mtime_ns)
            chash = None
            try:
                with each:
                    raw = read_bytes(path, max_bytes, size)
                    chash = hashlib.blake2b(raw, digest_size=16).hexdigest()
                    if chash == known_hash:
                        out.same += 1
                        if known_reason is not None:  # still the file that was rejected
                            out.bad.append((path, known_reason))
                        record((path, size, mtime, chash, "same", None, None, None, None))
                        continue
                    a = parse_post(raw, path, site_tz, max_bytes)
            except PostError as e:
                out.bad.append((path, str(e)))
                record((path, size, mtime, chash, "rejected", str(e), None, None, None))
                continue
            except Exception as e:  # a parser bug must not cost the rest of the folder
                reason = f"could not parse: {type(e).__name__}: {e}"
                out.bad.append((path, reason))
                record((path, size, mtime, chash, "rejected", reason, None, None, None))
                continue
            out.ok += 1
            if a.warnings:
                out.warnings += [(path, w) for w in a.warnings]
            record((path, size, mtime, chash, "ok", None, a.id, a.url, a.dedup_key))
            published = int(a.published_at.timestamp() * 1e6)
            arts.append((path, a.id, a.title, published, a.categories, a.tags, a.url, a.source, a.digest, a.text,
                         a.dedup_key))
            # every security the article names, main subjects first (one mention per security)
            named = [m.security.symbol for m in sorted(a.mentions, key=lambda m: (HOW_RANK[m.how], m.security.symbol))]
            for m in a.mentions:
                sec = m.security
                ments.append((path, sec.symbol, sec.code, sec.canonical, sec.market, sec.kind, m.how, m.name, a.id,
                              published, a.title, a.source, a.categories, a.url, a.text, named))
    stage_dir = Path(stage)
    _write_parquet(rows, _FILE_SCHEMA, stage_dir / f"files-{number:06d}.parquet")
    if out.ok:
        _write_parquet(arts, _ARTICLE_SCHEMA, stage_dir / f"articles-{number:06d}.parquet")
        _write_parquet(ments, _MENTION_SCHEMA, stage_dir / f"mentions-{number:06d}.parquet", text_bytes=True)
    return out


def _worker_init() -> None:
    """A pool worker: forked, it inherits its parent's signal handlers (a Streamlit server's
    ignore SIGTERM in a child), so SIGTERM is made to end it again and Ctrl-C is left to the
    parent, which terminates the pool. Workers allocate many short-lived objects and make no
    cycles: collect rarely."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGQUIT"):
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


class Parser:
    """Parses chunks of files, in a pool of worker processes when there are many.

    The pool is started (``start()``) before the main process holds anything large, so the
    forked workers inherit none of it; where fork is unavailable they are spawned."""

    def __init__(self, workers: int, site_tz: str, max_bytes: int, stage: str) -> None:
        self.workers, self.site_tz, self.max_bytes, self.stage = workers, site_tz, max_bytes, stage
        self.pool: mp.pool.Pool | None = None
        self.chunks = 0

    def start(self) -> None:
        if self.pool is None and self.workers > 1:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            self.pool = ctx.Pool(self.workers, initializer=_worker_init)

    def _pool(self) -> mp.pool.Pool:
        self.start()
        assert self.pool is not None
        return self.pool

    def parse(self, jobs: pa.Table | list[Job]) -> Iterator[ParsedChunk]:
        """Parse the jobs (path, known hash, known reason), in order of completion."""
        total = jobs.num_rows if isinstance(jobs, pa.Table) else len(jobs)
        chunks = self._chunks(jobs)
        if self.workers <= 1 or total < PARALLEL_MIN_FILES:
            yield from map(parse_chunk, chunks)
        else:  # one stream of tasks, taken lazily, so workers never wait between batches
            yield from self._pool().imap_unordered(parse_chunk, chunks)

    def _chunks(self, jobs: pa.Table | list[Job]) -> Iterator[tuple[int, list[Job], str, int, str]]:
        if isinstance(jobs, pa.Table):  # Python holds one chunk's rows at a time, never the table's
            lists: Iterator[list[Job]] = (
                list(zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True))
                for batch in jobs.to_batches(max_chunksize=CHUNK))
        else:
            lists = (jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK))
        for chunk in lists:
            if chunk:
                self.chunks += 1
                yield self.chunks, chunk, self.site_tz, self.max_bytes, self.stage

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def clean_stale_stages(folder: Path, of_pid: int | None = None) -> None:
    """Remove stage folders left by ingests that were killed (their process is gone); with
    ``of_pid``, only that process's (its killer's cleanup, once it has reaped it)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(STAGE_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        pid = entry.name[len(STAGE_PREFIX):].split("-", 1)[0]
        if of_pid is not None and pid != str(of_pid):
            continue
        if of_pid is None and pid.isdigit() and pid_alive(int(pid)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


# --- the run -----------------------------------------------------------------------


@dataclass
class _Plan:
    """What a run must do, from the walk and the store."""

    jobs: pa.Table  # the files to read: path, and the store's content_hash and reason for a known one
    gone: list[str]
    seen: int


def _plan(con: duckdb.DuckDBPyConnection, root_key: str, found: Walk, full: bool) -> _Plan:
    """Compare the walk with the store inside DuckDB: which files are new, changed or gone."""
    prefix = root_key + os.sep
    con.register("walked", pa.table({"folder": pa.array([f for f, _, _ in found.folders], pa.string())}))
    con.register("listed", pa.table({"folder": pa.array(found.listed, pa.string())}))
    con.register("present", pa.table({"path": pa.array(found.present, pa.string())}))
    # The files below the root as the walk sees them, in parts that read paths only where they
    # must (a path test over every row reads all of them): those in folders it did not list
    # again (unchanged), the stored ones it listed, and the ones it found that are not stored.
    unlisted = "f.folder IN (SELECT folder FROM walked) AND f.folder NOT IN (SELECT folder FROM listed)"
    listed_files = f"SELECT path FROM files WHERE {_folder_in(found.listed, 'folder IN (SELECT folder FROM listed)')}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE listed_stored AS SELECT path FROM ({listed_files}) "
                "SEMI JOIN present USING (path)")
    con.execute("CREATE OR REPLACE TEMP TABLE listed_new AS SELECT path FROM present "
                f"ANTI JOIN ({listed_files}) USING (path)")
    known = con.execute(f"SELECT count(*) FROM files f WHERE {UNDER_ROOT}", {"root": root_key, "prefix": prefix}
                        ).fetchall()[0][0]
    # known files to check by stat: those in listed folders, then (when many) a share of the rest
    params: dict[str, object] = {}
    check = "TRUE"
    if not full and known > FULL_CHECK_MAX:
        # the rotation's share by arithmetic on the file's own numbers (hash() of 1M paths costs 0.4 s)
        check = f"""(f.mtime_ns < 0 OR (f.mtime_ns + 7919 * f.size) % $rotation = $turn OR f.path IN (
            SELECT path FROM files f WHERE {UNDER_ROOT} AND mtime_ns > $recent
            ORDER BY mtime_ns DESC LIMIT $recent_max))"""
        params |= {"root": root_key, "prefix": prefix, "recent": time.time_ns() - RECENT_NS,
                   "recent_max": RECENT_MAX, "rotation": ROTATION, "turn": random.randrange(ROTATION)}
    to_check = [p for (p,) in con.execute(f"""
        SELECT path FROM listed_stored
        UNION ALL SELECT f.path FROM files f WHERE {unlisted} AND {check}
    """, params).fetchall()]
    con.register("checked", _stat_all(to_check))
    vanished = set(to_check) - set(con.execute("SELECT path FROM checked").fetchnumpy()["path"])
    # gone: the files of folders gone from the walk (found from the folders alone: mostly
    # none), those gone from a listed folder, and those whose stat failed (all stored ones)
    under = {"root": root_key, "prefix": prefix}
    unwalked = "folder NOT IN (SELECT folder FROM walked)"
    emptied = [f for (f,) in con.execute(f"SELECT DISTINCT folder FROM files f WHERE {UNDER_ROOT} AND {unwalked}",
                                         under).fetchall()]
    gone = sorted({p for (p,) in con.execute(f"""
        SELECT path FROM files f WHERE {UNDER_ROOT} AND {_folder_in(emptied, unwalked)}
        UNION SELECT path FROM ({listed_files}) ANTI JOIN present USING (path)
    """, under).fetchall()} | vanished)
    jobs = con.sql("""
        SELECT path, NULL::VARCHAR AS content_hash, NULL::VARCHAR AS reason FROM listed_new
        UNION ALL
        SELECT c.path, f.content_hash, CASE WHEN f.status = 'rejected' THEN f.reason END
        FROM checked c JOIN files f USING (path)
        WHERE c.size <> f.size OR c.mtime_ns <> f.mtime_ns OR f.mtime_ns < 0
        ORDER BY path
    """).to_arrow_table()
    stored, new = con.execute(f"""
        SELECT (SELECT count(*) FROM files f WHERE {unlisted}) + (SELECT count(*) FROM listed_stored),
               (SELECT count(*) FROM listed_new)
    """).fetchall()[0]
    for name in ("walked", "listed", "present", "checked"):
        con.unregister(name)
    con.execute("DROP TABLE listed_stored; DROP TABLE listed_new")
    return _Plan(jobs, gone, int(stored + new - len(vanished) + found.bad_files))


def ingest_folder(
    store: Store,
    root: str | os.PathLike[str],
    site_tz: str = "Asia/Shanghai",
    workers: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[int, int], None] | None = None,
    benchmarks: dict[str, str] | None = None,
    full: bool = False,
) -> IngestReport:
    """Ingest every post below ``root``; one transaction for the whole run.

    ``progress(done, total)`` is called as files are parsed. Reactions are recomputed
    against ``benchmarks`` (market -> symbol; default: the standard indices). ``full``
    checks every known file for in-place edits, however many there are.
    """
    started = time.perf_counter()
    began = datetime.now(UTC)
    root_path = Path(root).expanduser().resolve()
    if not root_path.is_dir():
        raise NotADirectoryError(f"{root_path} is not a folder")
    root_key = str(root_path)
    work_dir = store.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_stages(work_dir)
    stage = tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=work_dir)
    parser = Parser(workers or os.cpu_count() or 1, site_tz, max_bytes, stage)
    try:
        with store.read() as con:
            known = known_folders(con, root_key)
            if not known:  # a first ingest reads everything: fork the workers while we are small
                parser.start()
            found = walk(root_path, {} if full else known)
            fresh_problems = len(found.problems)
            _carry_problems(con, root_key, found)
            plan = _plan(con, root_key, found, full)
            con.register("jobs", plan.jobs)
            rejected_before = con.execute(f"""
                SELECT path, reason FROM files f WHERE {UNDER_ROOT} AND status = 'rejected'
                  AND path NOT IN (SELECT path FROM jobs) AND path NOT IN (SELECT unnest($gone::VARCHAR[]))
                ORDER BY path""", {"root": root_key, "prefix": root_key + os.sep, "gone": plan.gone}).fetchall()
            con.unregister("jobs")
        found.present = []  # the store has it now; the main process needs no list of files
        report = IngestReport(run_id=0, root=root_key, files_seen=plan.seen,
                              not_files=len(found.problems) - found.bad_files)
        report.rejected += rejected_before + found.problems
        done, total = 0, plan.jobs.num_rows
        for chunk in parser.parse(plan.jobs):
            report.rejected += chunk.bad
            report.warnings += chunk.warnings
            done += chunk.files
            if progress is not None:
                progress(done, total)
        parser.close()
        report.rejected.sort()
        report.warnings.sort()
        if not total and not plan.gone and not _folders_changed(known, found) and not fresh_problems:
            report.unchanged = plan.seen - report.rejected_files
            report.seconds = time.perf_counter() - started
            return report  # nothing changed: nothing to write
        with store.write() as con:
            report.run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM ingest_runs").fetchall()[0][0]
            _merge(con, report, stage, plan, found, root_key, site_tz, max_bytes, benchmarks)
            _record_run(con, report, began)
    finally:
        parser.close()
        shutil.rmtree(stage, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _carry_problems(con: duckdb.DuckDBPyConnection, root_key: str, found: Walk) -> None:
    """What the last run of ``root_key`` could not read in the folders this walk did not list
    again (unchanged since): still there, so still reported."""
    walked = {f for f, _, _ in found.folders} - set(found.listed)
    if not walked:
        return
    have = {p for p, _ in found.problems}
    rows = [(path, reason) for path, reason in con.execute("""
        SELECT path, reason FROM ingest_problems
        WHERE kind = 'rejected' AND run_id = (SELECT max(run_id) FROM ingest_runs WHERE root = ?)
        ORDER BY path
    """, [root_key]).fetchall() if os.path.dirname(path) in walked and path not in have]
    if not rows:  # (the usual case: then files, a row per file, is not read at all)
        return
    filed = {p for (p,) in con.execute("SELECT path FROM files WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                                       [[p for p, _ in rows]]).fetchall()}
    for path, reason in rows:
        if path not in filed:
            found.problems.append((path, reason))
            found.bad_files += path.endswith(POST_SUFFIXES)


def known_folders(con: duckdb.DuckDBPyConnection, root_key: str) -> dict[str, tuple[int, list[str]]]:
    """The folders the store walked below ``root_key``: path -> (mtime_ns, child folders)."""
    rows = con.execute(
        "SELECT path, parent, mtime_ns FROM folders WHERE path = ? OR starts_with(path, ?)",
        [root_key, root_key + os.sep]).fetchall()
    out: dict[str, tuple[int, list[str]]] = {p: (m, []) for p, _, m in rows}
    for p, parent, _ in rows:
        if parent in out:
            out[parent][1].append(p)
    return out


def _folders_changed(known: dict[str, tuple[int, list[str]]], found: Walk) -> bool:
    now = {p: m for p, _, m in found.folders}
    return now.keys() != known.keys() or any(known[p][0] != m for p, m in now.items())


def folder_changed(store_con: duckdb.DuckDBPyConnection, root: Path) -> bool:
    """Whether any folder below ``root`` changed since the store last walked it (stats folders
    only: cheap at any size). Files edited in place are left to the next ingest's checks."""
    known = known_folders(store_con, str(root.resolve()))
    if not known:
        return True
    for path, (mtime, _) in known.items():
        try:
            if os.stat(path).st_mtime_ns != mtime or mtime < 0:
                return True
        except OSError:
            return True
    return False


# --- writing -----------------------------------------------------------------------

@dataclass(slots=True)
class _Known:
    """What the store holds that bears on this run's files: keys for finding duplicates."""

    path_of: dict[str, str]  # article id -> the file that holds it (status 'ok')
    by_url: dict[str, str]
    by_dedup: dict[str, str]


def _merge(con: duckdb.DuckDBPyConnection, report: IngestReport, stage: str, plan: _Plan, found: Walk,
           root_key: str, site_tz: str, max_bytes: int, benchmarks: dict[str, str] | None) -> None:
    """Inside the write transaction: decide each parsed file's fate and write it all."""
    glob = str(Path(stage) / "{}-*.parquet").replace("'", "''")
    has = {kind: any(Path(stage).glob(f"{kind}-*.parquet")) for kind in ("files", "articles", "mentions")}
    empty_files = "SELECT " + ", ".join(f"NULL::{t} AS {n}" for n, t in (
        ("path", "VARCHAR"), ("size", "BIGINT"), ("mtime_ns", "BIGINT"), ("content_hash", "VARCHAR"),
        ("status", "VARCHAR"), ("reason", "VARCHAR"), ("article_id", "VARCHAR"), ("url", "VARCHAR"),
        ("dedup_key", "VARCHAR"))) + " WHERE FALSE"
    staged_files = f"read_parquet('{glob.format('files')}')" if has["files"] else f"({empty_files})"
    # The folders this run's files are in: the store's rows of a file are found among its
    # folder's (a cheap filter on a compressed column), not by its path among every file's.
    con.execute("CREATE OR REPLACE TEMP TABLE gone AS SELECT unnest(?::VARCHAR[]) AS path", [plan.gone])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE run_folders AS
        SELECT DISTINCT {FOLDER_OF_PATH} AS folder FROM {staged_files}
        UNION SELECT DISTINCT {FOLDER_OF_PATH} FROM gone
    """)
    in_folders, near = _near(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE staged AS
        SELECT s.*, f.path IS NOT NULL AS known, f.status AS was, f.article_id AS had, f.reason AS had_reason
        FROM {staged_files} s LEFT JOIN ({near}) f USING (path)
    """)
    # Another writer may have stored the same bytes since we looked: then they are unchanged.
    con.execute(f"""
        UPDATE staged SET status = 'same' FROM ({near}) f
        WHERE f.path = staged.path AND staged.status <> 'same' AND staged.content_hash IS NOT NULL
          AND staged.content_hash = f.content_hash
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE dropped AS
        SELECT path FROM gone UNION SELECT path FROM staged WHERE status = 'rejected'
        UNION SELECT path FROM staged WHERE status = 'same' AND was = 'rejected'
    """)
    # Parsed files whose id, URL or body meets another article (stored, or parsed in this
    # run) are decided one by one, in path order; all others simply hold their own article.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE candidates AS
        SELECT path, article_id, url, dedup_key, known FROM staged WHERE status = 'ok'
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE contested AS
        SELECT c.* FROM candidates c
        WHERE c.path IN (  -- joins, so the few candidates are hashed, not the store's articles
                SELECT c.path FROM candidates c JOIN articles a ON a.article_id = c.article_id
                UNION SELECT c.path FROM candidates c JOIN articles a ON a.url = c.url
                UNION SELECT c.path FROM candidates c JOIN articles a ON a.dedup_key = c.dedup_key)
           OR c.article_id IN (SELECT article_id FROM candidates GROUP BY 1 HAVING count(*) > 1)
           OR c.url IN (SELECT url FROM candidates GROUP BY 1 HAVING count(*) > 1)
           OR c.dedup_key IN (SELECT dedup_key FROM candidates GROUP BY 1 HAVING count(*) > 1)
    """)
    contested = con.execute("SELECT path, article_id, url, dedup_key, known FROM contested ORDER BY path").fetchall()
    known = _load_known(con) if contested else _Known({}, {}, {})  # it loads what meets them
    dropped = {p for (p,) in con.execute("SELECT path FROM dropped").fetchall()}
    decided: dict[str, tuple[str, str]] = {}  # path -> (status, article id)
    replaced: list[str] = []

    def decide(parsed: list[tuple[str, str, str | None, str, bool]]) -> None:
        """Per parsed file: does it write its article, or duplicate one held elsewhere?"""
        for path, aid, url, dedup, was_known in sorted(parsed):
            match = (aid if aid in known.path_of else None) or known.by_url.get(url or "") \
                or known.by_dedup.get(dedup)
            owner = known.path_of.get(match) if match is not None else None
            if match is not None and owner not in (path, None) and owner not in dropped:
                decided[path] = ("duplicate", match)
                report.duplicates += 1
                continue
            if match is not None and match != aid:
                replaced.append(match)  # this file's earlier version had another id
                known.path_of.pop(match, None)
            decided[path] = ("ok", aid)
            if was_known:
                report.updated += 1
            else:
                report.new += 1
            known.path_of[aid] = path
            if url:
                known.by_url[url] = aid
            known.by_dedup[dedup] = aid

    decide(contested)
    free = con.execute("""
        SELECT count(*) FILTER (WHERE known), count(*) FILTER (WHERE NOT known)
        FROM candidates WHERE path NOT IN (SELECT path FROM contested)
    """).fetchall()[0]
    report.updated += free[0]
    report.new += free[1]
    report.removed = len(plan.gone)
    report.unchanged = (report.files_seen - report.new - report.updated - report.duplicates
                        - report.rejected_files)
    # Copies that duplicated an article this run removed or replaced are read again, so one
    # of them takes the article over (or they follow its new version).
    lost = set(replaced) | {
        aid for p, aid in con.execute(
            "SELECT f.path, f.article_id FROM files f JOIN dropped USING (path) WHERE f.status = 'ok'").fetchall()
        if known.path_of.get(aid, p) == p
    }
    orphans = _orphaned_copies(con, lost, set(decided) | dropped)
    if orphans:
        parse_chunk((10**6, orphans, site_tz, max_bytes, stage))
        orphan_files = f"read_parquet('{Path(stage) / 'files-1000000.parquet'}')"
        con.execute(f"DELETE FROM staged WHERE path IN (SELECT path FROM {orphan_files})")
        con.execute(f"INSERT INTO staged SELECT s.*, TRUE, 'duplicate', NULL, NULL FROM {orphan_files} s")
        con.execute(f"INSERT INTO run_folders SELECT DISTINCT {FOLDER_OF_PATH} FROM {orphan_files} "
                    "EXCEPT SELECT folder FROM run_folders")
        in_folders, near = _near(con)
        decide(con.execute(f"SELECT path, article_id, url, dedup_key, TRUE FROM {orphan_files} "
                           "WHERE status = 'ok'").fetchall())
        has["articles"] = has["mentions"] = has["files"] = True
    con.register("decided", pa.table({
        "path": pa.array(list(decided), pa.string()),
        "status": pa.array([s for s, _ in decided.values()], pa.string()),
        "article_id": pa.array([a for _, a in decided.values()], pa.string())}))
    # the articles this run's files held before it (replaced, released or kept) ...
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE touched AS SELECT article_id FROM ({near})
        WHERE article_id IS NOT NULL
          AND (path IN (SELECT path FROM staged) OR path IN (SELECT path FROM gone))
    """)
    released = _write(con, glob, has, root_key, found, replaced, in_folders, near)
    con.unregister("decided")
    if report.new or report.updated or released or orphans:
        # ... and those it wrote: only their reactions are recomputed
        con.execute("INSERT INTO touched SELECT article_id FROM written "
                    "UNION ALL SELECT article_id FROM replaced")
        refresh_reactions(con, benchmarks, articles="touched")


def _load_known(con: duckdb.DuckDBPyConnection) -> _Known:
    """The stored keys that meet this run's contested files (never the whole store)."""
    rows = con.execute("""
        SELECT article_id, url, dedup_key FROM articles
        WHERE article_id IN (SELECT article_id FROM contested) OR url IN (SELECT url FROM contested)
           OR dedup_key IN (SELECT dedup_key FROM contested)
    """).fetchall()
    owners = con.execute(
        "SELECT article_id, path FROM files WHERE status = 'ok' AND article_id IN (SELECT unnest(?::VARCHAR[]))",
        [[aid for aid, _, _ in rows]])
    return _Known(
        path_of=dict(owners.fetchall()),
        by_url={url: aid for aid, url, _ in rows if url},
        by_dedup={key: aid for aid, _, key in rows if key},
    )


def _orphaned_copies(con: duckdb.DuckDBPyConnection, lost: set[str], handled: set[str]) -> list[Job]:
    """Files stored as duplicates of an article this run takes away, still on disk."""
    if not lost:
        return []
    rows = con.execute(
        "SELECT path FROM files WHERE status = 'duplicate' AND article_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted(lost)]).fetchall()
    return [(p, None, None) for (p,) in rows if p not in handled and os.path.isfile(p)]


def _write(con: duckdb.DuckDBPyConnection, glob: str, has: dict[str, bool], root_key: str, found: Walk,
           replaced: list[str], in_folders: str, near: str) -> bool:
    """Apply the decisions: articles, mentions, securities, files and folders (``in_folders``
    and ``near``: this run's folders and the store's rows of their files, see _near). True when
    files gave up articles (removed, rejected now, or holding another one)."""
    con.execute("CREATE OR REPLACE TEMP TABLE replaced AS SELECT unnest(?::VARCHAR[]) AS article_id",
                [replaced])
    # The final state of each staged file; parsed files without a decision hold their article.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE file_rows AS
        SELECT s.path, s.size, s.mtime_ns, s.content_hash,
               CASE WHEN s.status = 'same' THEN s.had
                    WHEN s.status = 'rejected' THEN NULL
                    ELSE coalesce(d.article_id, s.article_id) END AS article_id,
               CASE WHEN s.status = 'same' THEN s.was
                    WHEN s.status = 'rejected' THEN 'rejected'
                    ELSE coalesce(d.status, 'ok') END AS status,
               CASE WHEN s.status = 'same' THEN s.had_reason WHEN s.status = 'rejected' THEN s.reason END AS reason
        FROM staged s LEFT JOIN decided d USING (path)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE written AS
        SELECT path, article_id FROM file_rows WHERE status = 'ok' AND article_id IS NOT NULL
          AND path IN (SELECT path FROM staged WHERE status = 'ok')
    """)
    # A written article can be stored already only if a file held it, or it met a stored one
    # (contested): the others' deletes would read every article's id and every mention's for nothing.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE rewritten AS SELECT article_id FROM written
        WHERE article_id IN (SELECT article_id FROM touched UNION ALL SELECT article_id FROM contested
                             UNION ALL SELECT article_id FROM replaced)
    """)
    if con.execute("SELECT EXISTS (SELECT 1 FROM rewritten)").fetchall()[0][0]:
        con.execute("""
            DELETE FROM articles WHERE article_id IN (SELECT article_id FROM rewritten);
            DELETE FROM mentions WHERE article_id IN (SELECT article_id FROM rewritten);
        """)
    if replaced:
        con.execute("DELETE FROM articles WHERE article_id IN (SELECT article_id FROM replaced)")
    empty = con.execute("SELECT count(*) = 0 FROM mentions").fetchall()[0][0]
    if has["articles"]:
        staged_articles = f"read_parquet('{glob.format('articles')}')"
        staged_mentions = f"read_parquet('{glob.format('mentions')}')"
        # each written article once: written holds one file per article, so DISTINCT ON (an
        # aggregation of the texts, 7 s and most of the write memory at 100k posts) is kept for
        # the case where it does not
        once = con.execute("SELECT count(*) = count(DISTINCT article_id) FROM written").fetchall()[0][0]
        articles_and_securities = f"""
            INSERT INTO articles
            SELECT {"" if once else "DISTINCT ON (s.article_id)"} s.article_id, title, published_at, categories,
                   tags, url, source, digest, text, dedup_key, s.path, now()
            FROM {staged_articles} s SEMI JOIN written w ON w.path = s.path AND w.article_id = s.article_id;
            INSERT INTO securities
            SELECT DISTINCT ON (symbol) symbol, code, canonical, market, kind, NULL, NULL
            FROM {staged_mentions} m SEMI JOIN written w ON w.path = m.path
            WHERE symbol NOT IN (SELECT symbol FROM securities);
        """
        # the mentions of the files that wrote their article, in order, a bounded group at a
        # time; the articles are inserted while the mentions are spread to their groups
        con.execute(f"CREATE OR REPLACE TEMP TABLE unwritten AS "
                    f"SELECT DISTINCT path FROM {staged_mentions} ANTI JOIN written USING (path)")
        append_sorted_files(con, "mentions", glob.format("mentions"), MENTION_COLUMNS,
                            Path(glob.replace("''", "'")).parent, "unwritten",
                            meanwhile=lambda: con.execute(articles_and_securities))
    released = con.execute(f"""
        SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM replaced) + (
            SELECT count(*) FROM ({near}) f JOIN file_rows r USING (path)
            WHERE f.article_id IS NOT NULL AND r.article_id IS DISTINCT FROM f.article_id)
    """).fetchall()[0][0] > 0
    con.execute(f"""
        DELETE FROM files WHERE {in_folders}
          AND (path IN (SELECT path FROM file_rows) OR path IN (SELECT path FROM gone));
        INSERT INTO files (path, root, size, mtime_ns, content_hash, article_id, status, reason, folder)
        SELECT path, ?, size, mtime_ns, content_hash, article_id, status, reason, {FOLDER_OF_PATH}
        FROM file_rows;
    """, [root_key])
    if released:  # articles no file holds any more go, with their mentions
        con.execute("""
            DELETE FROM articles
            WHERE article_id NOT IN (SELECT article_id FROM files WHERE article_id IS NOT NULL);
            DELETE FROM mentions WHERE article_id NOT IN (SELECT article_id FROM articles);
        """)
    _write_folders(con, root_key, found)
    name_securities(con)
    cluster_mentions(con, inserted_sorted=empty)
    return released


def _write_folders(con: duckdb.DuckDBPyConnection, root_key: str, found: Walk) -> None:
    """Remember every folder walked, with its time, for the next run."""
    con.register("walked_folders", pa.table({
        "path": pa.array([p for p, _, _ in found.folders], pa.string()),
        "parent": pa.array([q for _, q, _ in found.folders], pa.string()),
        "mtime_ns": pa.array([m for _, _, m in found.folders], pa.int64())}))
    con.execute("DELETE FROM folders WHERE path = ? OR starts_with(path, ?)", [root_key, root_key + os.sep])
    con.execute("INSERT INTO folders SELECT path, parent, mtime_ns FROM walked_folders")
    con.unregister("walked_folders")


def _record_run(con: duckdb.DuckDBPyConnection, r: IngestReport, began: datetime) -> None:
    con.execute(
        "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r.run_id, r.root, began, datetime.now(UTC), r.files_seen, r.new, r.updated, r.unchanged,
         r.duplicates, len(r.rejected), r.removed],
    )
    problems = [(p, "rejected", why) for p, why in r.rejected]
    problems += [(p, "warning", why) for p, why in r.warnings]
    if problems:
        paths, kinds, reasons = map(list, zip(*problems, strict=True))
        rows = pa.table({"path": paths, "kind": kinds, "reason": reasons})
        con.register("problem_rows", rows)
        con.execute("INSERT INTO ingest_problems SELECT ?, path, kind, reason FROM problem_rows",
                    [r.run_id])
        con.unregister("problem_rows")


def current_rejections(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Files the store holds as rejected, and what each folder's last run could not read at all
    (unreadable names, links, folders), with the reasons."""
    return con.execute("""
        SELECT path, reason FROM files WHERE status = 'rejected'
        UNION
        SELECT p.path, p.reason FROM ingest_problems p
        WHERE p.kind = 'rejected'
          AND p.run_id IN (SELECT max(run_id) FROM ingest_runs GROUP BY root)
          AND p.path NOT IN (SELECT path FROM files)
        ORDER BY path
    """).fetchall()
