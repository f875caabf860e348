"""Ingest a folder of posts into the store: parse in parallel, join articles to securities.

Unchanged files (same size and modification time, or same bytes) are not re-parsed;
an edited file replaces its earlier version; a file removed from the folder takes its
article with it unless another file holds the same article. The same article saved
twice (same id, same source URL, or identical body) is stored once. Everything one run
changes is committed in one transaction.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dashboard.articles import DEFAULT_MAX_BYTES, PostError, parse_post, read_bytes
from dashboard.reactions import refresh_reactions
from dashboard.securities import reference_list
from dashboard.store import Store

POST_SUFFIXES = (".md", ".markdown")
CHUNK = 1000  # files a worker parses per task (fewer, larger Parquet files merge faster)
PARALLEL_MIN_FILES = 300  # below this a process pool costs more than it saves


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

    @property
    def readable(self) -> int:
        return self.files_seen - len(self.rejected)


def scan(root: Path) -> list[FileStat]:
    """Every post file below ``root``, skipping hidden files and folders."""
    found: list[FileStat] = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.name.endswith(POST_SUFFIXES) and entry.is_file():
                st = entry.stat()
                found.append(FileStat(entry.path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.path)
    return found


# --- parsing (runs in worker processes) --------------------------------------------

Job = tuple[str, int, str | None]  # path, size when scanned, content hash the store has for it

_ARTICLE_SCHEMA = pa.schema([
    ("path", pa.string()), ("article_id", pa.string()), ("title", pa.string()),
    ("published_at", pa.timestamp("us", tz="UTC")), ("categories", pa.list_(pa.string())),
    ("tags", pa.list_(pa.string())), ("url", pa.string()), ("source", pa.string()),
    ("digest", pa.string()), ("text", pa.string()), ("dedup_key", pa.string()),
])
_MENTION_SCHEMA = pa.schema([
    (name, pa.string())
    for name in ("path", "symbol", "code", "canonical", "market", "kind", "how", "name")
])


@dataclass(slots=True)
class ParsedChunk:
    """What a worker read from a chunk of files. The rows themselves go to Parquet files
    in the stage folder, so neither pickling nor the main process touch article text."""

    same: list[tuple[str, str]] = field(default_factory=list)  # path, hash
    bad: list[tuple[str, str | None, str]] = field(default_factory=list)  # path, hash, reason
    # path, hash, article id, url, dedup key, warnings
    ok: list[tuple[str, str, str, str | None, str, list[str]]] = field(default_factory=list)


def _write_parquet(columns: list[list[object]], schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)
    pq.write_table(table, path, compression="none")


def parse_chunk(args: tuple[int, list[Job], str, int, str]) -> ParsedChunk:
    number, jobs, site_tz, max_bytes, stage = args
    out = ParsedChunk()
    arts: list[list[object]] = [[] for _ in _ARTICLE_SCHEMA]
    ments: list[list[object]] = [[] for _ in _MENTION_SCHEMA]
    for path, size, known_hash in jobs:
        chash = None
        try:
            raw = read_bytes(path, max_bytes, size)
            chash = hashlib.blake2b(raw, digest_size=16).hexdigest()
            if chash == known_hash:
                out.same.append((path, chash))
                continue
            a = parse_post(raw, path, site_tz, max_bytes)
        except PostError as e:
            out.bad.append((path, chash, str(e)))
            continue
        except Exception as e:  # a parser bug must not cost the rest of the folder
            out.bad.append((path, chash, f"could not parse: {type(e).__name__}: {e}"))
            continue
        out.ok.append((path, chash, a.id, a.url, a.dedup_key, a.warnings))
        for col, value in zip(arts, (path, a.id, a.title, int(a.published_at.timestamp() * 1e6),
                                     a.categories, a.tags, a.url, a.source, a.digest, a.text,
                                     a.dedup_key), strict=True):
            col.append(value)
        for m in a.mentions:
            sec = m.security
            for col, value in zip(ments, (path, sec.symbol, sec.code, sec.canonical, sec.market,
                                          sec.kind, m.how, m.name), strict=True):
                col.append(value)
    if out.ok:
        _write_parquet(arts, _ARTICLE_SCHEMA, Path(stage) / f"articles-{number:06d}.parquet")
        _write_parquet(ments, _MENTION_SCHEMA, Path(stage) / f"mentions-{number:06d}.parquet")
    return out


def _quiet_gc() -> None:
    """Workers allocate many short-lived objects and make no cycles: collect rarely."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _parse_all(jobs: list[Job], site_tz: str, max_bytes: int, workers: int,
               stage: str) -> Iterator[ParsedChunk]:
    chunks = [(n, jobs[i:i + CHUNK], site_tz, max_bytes, stage)
              for n, i in enumerate(range(0, len(jobs), CHUNK))]
    if workers <= 1 or len(jobs) < PARALLEL_MIN_FILES:
        yield from map(parse_chunk, chunks)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_quiet_gc) as pool:
        yield from pool.imap_unordered(parse_chunk, chunks)


# --- writing -----------------------------------------------------------------------

@dataclass(slots=True)
class _Known:
    """What the store already holds, as keys for finding duplicates."""

    path_of: dict[str, str]  # article id -> the file that holds it (status 'ok')
    by_url: dict[str, str]
    by_dedup: dict[str, str]


def _load_known(con: duckdb.DuckDBPyConnection) -> _Known:
    rows = con.execute("SELECT article_id, url, dedup_key FROM articles").fetchall()
    owners = con.execute("SELECT article_id, path FROM files WHERE status = 'ok' AND article_id IS NOT NULL")
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
    return [(p, os.path.getsize(p), None) for (p,) in rows if p not in handled and os.path.isfile(p)]


def ingest_folder(
    store: Store,
    root: str | os.PathLike[str],
    site_tz: str = "Asia/Shanghai",
    workers: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[int, int], None] | None = None,
    benchmarks: dict[str, str] | None = None,
) -> IngestReport:
    """Ingest every post below ``root``; one transaction for the whole run.

    ``progress(done, total)`` is called as files are parsed. Reactions are recomputed
    against ``benchmarks`` (market -> symbol; default: the standard indices).
    """
    started = time.perf_counter()
    began = datetime.now(UTC)
    root_path = Path(root).expanduser().resolve()
    if not root_path.is_dir():
        raise NotADirectoryError(f"{root_path} is not a folder")
    root_key = str(root_path)
    workers = workers or os.cpu_count() or 1
    files = scan(root_path)

    with store.read() as con:
        run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM ingest_runs").fetchall()[0][0]
        previous = {
            row[0]: row[1:]  # size, mtime_ns, content_hash, article_id, status, reason
            for row in con.execute(
                "SELECT path, size, mtime_ns, content_hash, article_id, status, reason "
                "FROM files WHERE starts_with(path, ?)", [root_key + os.sep]).fetchall()
        }
    report = IngestReport(run_id=run_id, root=root_key, files_seen=len(files))
    jobs: list[Job] = []
    for f in files:
        prev = previous.get(f.path)
        if prev is not None and prev[0] == f.size and prev[1] == f.mtime_ns:
            if prev[4] == "rejected":
                report.rejected.append((f.path, prev[5]))
            else:
                report.unchanged += 1
            continue
        jobs.append((f.path, f.size, prev[2] if prev else None))

    stat_of = {f.path: f for f in files}
    file_rows: list[tuple[object, ...]] = []
    ok: list[tuple[str, str, str | None, str]] = []  # path, id, url, dedup_key
    # Parse without holding the store: only the final merge needs the write lock.
    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=store.path.parent) as stage:
        done = 0
        for chunk in _parse_all(jobs, site_tz, max_bytes, workers, stage):
            for path, chash in chunk.same:  # touched, not changed: keep what it was
                st = stat_of[path]
                _, _, _, aid, was, reason = previous[path]
                if was == "rejected":
                    report.rejected.append((path, reason))
                else:
                    report.unchanged += 1
                file_rows.append((path, root_key, st.size, st.mtime_ns, chash, aid, was, reason))
            for path, chash, reason in chunk.bad:
                st = stat_of[path]
                report.rejected.append((path, reason))
                file_rows.append((path, root_key, st.size, st.mtime_ns, chash, None, "rejected", reason))
            for path, chash, aid, url, dedup, warnings in chunk.ok:
                st = stat_of[path]
                report.warnings += [(path, w) for w in warnings]
                ok.append((path, aid, url, dedup))
                file_rows.append((path, root_key, st.size, st.mtime_ns, chash, aid, "ok", None))
            done += len(chunk.same) + len(chunk.bad) + len(chunk.ok)
            if progress is not None:
                progress(done, len(jobs))

        seen = set(stat_of)
        gone = [p for p in previous if p not in seen]
        report.removed = len(gone)
        dropped = set(gone) | {p for p, _ in report.rejected}
        with store.write() as con:
            known = _load_known(con)
            status: dict[str, tuple[str, str]] = {}  # path -> (status, article id)
            replaced: list[str] = []

            def decide(parsed: list[tuple[str, str, str | None, str]]) -> None:
                """Per parsed file: does it write its article, or duplicate one held elsewhere?"""
                for path, aid, url, dedup in sorted(parsed):
                    match = (aid if aid in known.path_of else None) or known.by_url.get(url or "") \
                        or known.by_dedup.get(dedup)
                    owner = known.path_of.get(match) if match is not None else None
                    if match is not None and owner not in (path, None) and owner not in dropped:
                        status[path] = ("duplicate", match)
                        report.duplicates += 1
                        continue
                    if match is not None and match != aid:
                        replaced.append(match)  # this file's earlier version had another id
                        known.path_of.pop(match, None)
                    if path in previous:
                        report.updated += 1
                    else:
                        report.new += 1
                    status[path] = ("ok", aid)
                    known.path_of[aid] = path
                    if url:
                        known.by_url[url] = aid
                    known.by_dedup[dedup] = aid

            decide(ok)
            # Copies that duplicated an article this run removed or replaced are read again,
            # so one of them takes the article over (or they follow its new version).
            lost = set(replaced) | {
                previous[p][3] for p in dropped  # articles whose holder left, and no file took over
                if p in previous and previous[p][4] == "ok" and known.path_of.get(previous[p][3]) == p
            }
            orphans = _orphaned_copies(con, lost, set(status) | dropped)
            if orphans:
                chunk = parse_chunk((len(jobs) // CHUNK + 1, orphans, site_tz, max_bytes, stage))
                again = []
                for path, chash, aid, url, dedup, _warnings in chunk.ok:
                    again.append((path, aid, url, dedup))
                    st = os.stat(path)
                    file_rows.append((path, root_key, st.st_size, st.st_mtime_ns, chash, aid, "ok", None))
                for path, chash, reason in chunk.bad:
                    st = os.stat(path)
                    file_rows.append((path, root_key, st.st_size, st.st_mtime_ns, chash, None, "rejected", reason))
                previous.update({p: (0, 0, None, None, "duplicate", None) for p, _, _ in orphans})
                ok += again
                decide(again)

            file_rows = [
                (*r[:5], status[r[0]][1], status[r[0]][0], r[7]) if r[0] in status else r
                for r in file_rows
            ]
            _write(con, stage if ok else None, file_rows, gone, replaced)
            _record_run(con, report, began)
            if report.new or report.updated or report.removed:
                refresh_reactions(con, benchmarks)
    report.seconds = time.perf_counter() - started
    return report


def _write(con: duckdb.DuckDBPyConnection, stage: str | None, file_rows: list[tuple[object, ...]],
           gone: list[str], replaced: list[str]) -> None:
    files = pa.table(
        dict(zip(("path", "root", "size", "mtime_ns", "content_hash", "article_id", "status", "reason"),
                 map(list, zip(*file_rows, strict=True)) if file_rows else [[]] * 8, strict=True)),
        schema=pa.schema([("path", pa.string()), ("root", pa.string()), ("size", pa.int64()),
                          ("mtime_ns", pa.int64()), ("content_hash", pa.string()),
                          ("article_id", pa.string()), ("status", pa.string()),
                          ("reason", pa.string())]),
    )
    con.register("file_rows", files)
    con.execute("CREATE OR REPLACE TEMP TABLE gone AS SELECT unnest(?::VARCHAR[]) AS path", [gone])
    con.execute("CREATE OR REPLACE TEMP TABLE replaced AS SELECT unnest(?::VARCHAR[]) AS article_id",
                [replaced])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE written AS
        SELECT path, article_id FROM file_rows WHERE status = 'ok' AND article_id IS NOT NULL
    """)
    con.execute("""
        DELETE FROM articles WHERE article_id IN (SELECT article_id FROM written)
                                OR article_id IN (SELECT article_id FROM replaced);
        DELETE FROM mentions WHERE article_id IN (SELECT article_id FROM written);
    """)
    if stage is not None:
        glob = str(Path(stage) / "{}-*.parquet").replace("'", "''")
        staged_articles = f"read_parquet('{glob.format('articles')}')"
        staged_mentions = f"read_parquet('{glob.format('mentions')}')"
        con.execute(f"""
            INSERT INTO articles
            SELECT s.article_id, title, published_at, categories, tags, url, source, digest, text,
                   dedup_key, s.path, now()
            FROM {staged_articles} s JOIN written w ON w.path = s.path;
            INSERT INTO mentions
            SELECT DISTINCT w.article_id, m.symbol, m.how, m.name
            FROM {staged_mentions} m JOIN written w ON w.path = m.path;
            INSERT INTO securities
            SELECT DISTINCT ON (symbol) symbol, code, canonical, market, kind, NULL, NULL
            FROM {staged_mentions} m SEMI JOIN written w ON w.path = m.path
            WHERE symbol NOT IN (SELECT symbol FROM securities);
        """)
    con.execute("""
        DELETE FROM files WHERE path IN (SELECT path FROM file_rows) OR path IN (SELECT path FROM gone);
        INSERT INTO files SELECT * FROM file_rows;
        DELETE FROM articles
        WHERE article_id NOT IN (SELECT article_id FROM files WHERE article_id IS NOT NULL);
        DELETE FROM mentions WHERE article_id NOT IN (SELECT article_id FROM articles);
    """)
    con.unregister("file_rows")
    name_securities(con)


def name_securities(con: duckdb.DuckDBPyConnection) -> None:
    """Name each security: the project's reference list first, then what the posts call it."""
    refs = reference_list()
    ref = pa.table({
        "symbol": [r.symbol for r in refs.values()],
        "name": [r.name for r in refs.values()],
        "name_en": [r.name_en for r in refs.values()],
    })
    con.register("reference_names", ref)
    con.execute("""
        UPDATE securities s SET name = n.name, name_en = n.name_en
        FROM (
            SELECT s.symbol,
                   coalesce(r.name, p.link_name, p.inline_name) AS name,
                   r.name_en
            FROM securities s
            LEFT JOIN reference_names r USING (symbol)
            LEFT JOIN (
                SELECT symbol,
                       mode(name) FILTER (WHERE how = 'link') AS link_name,
                       mode(name) FILTER (WHERE how = 'inline') AS inline_name
                FROM mentions WHERE name IS NOT NULL GROUP BY symbol
            ) p USING (symbol)
        ) n
        WHERE s.symbol = n.symbol
          AND (s.name IS DISTINCT FROM n.name OR s.name_en IS DISTINCT FROM n.name_en)
    """)
    con.unregister("reference_names")


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
