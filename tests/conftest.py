"""Shared fixtures. Real data lives in ../shared (beside the project); tests that need it skip
cleanly when it is absent, so a fresh clone still passes its own suite."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.store import Store, open_store
from tests.pgserver import PgServer, find_bindir

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_POSTS = SHARED / "posts"
SHARED_PRICES = SHARED / "prices"


def need_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent")
    return path


@pytest.fixture
def shared_posts() -> Path:
    return need_shared("posts")


@pytest.fixture
def shared_prices() -> Path:
    return need_shared("prices")


# --- the two backends --------------------------------------------------------------------
# Tests that take `store` (or `new_store`) run once on a DuckDB file and once on a database of
# a real PostgreSQL server started for the session.

BACKENDS = ("duckdb", "postgres")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = find_bindir()
    reason = None
    if bindir is None:
        reason = ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, nor $DASHBOARD_PG_BIN): "
                  "the tests on a PostgreSQL store are skipped; `apt-get install postgresql` (as .ci/run "
                  "does) runs them")
    elif os.geteuid() == 0 and not _has_user("postgres"):
        reason = "PostgreSQL refuses to run as root, and there is no 'postgres' user to run it as"
    if reason is not None:
        if os.environ.get("DASHBOARD_REQUIRE_POSTGRES"):  # a run that must cover both backends
            pytest.fail(reason)
        pytest.skip(reason)
    server = PgServer(bindir)
    before = set(_pg_work_dirs())
    try:
        server.start()
    except Exception as e:
        server.stop()
        pytest.fail(f"PostgreSQL did not start: {e}")
    yield server
    server.stop()
    for path in set(_pg_work_dirs()) - before:  # each test database's staging folder (PgStore.work_dir)
        try:
            path.rmdir()  # only if empty: a stage left behind is something to see
        except OSError:
            pass


def _pg_work_dirs() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("dashboard-pg-*"))


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def target_of(store: Any) -> str:
    """What DASHBOARD_DB / --db would say for this store: its path, or its URL."""
    return str(store.path) if store.kind == "duckdb" else store._url


@pytest.fixture
def new_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Makes empty stores on the test's backend: ``new_store()``, ``new_store("other")``."""
    made: list[tuple[Any, str | None]] = []
    server: PgServer | None = request.getfixturevalue("pg_server") if backend == "postgres" else None

    def make(name: str = "store", lock_timeout: float = 10) -> Any:
        if server is None:
            store = Store(tmp_path / f"{name}.duckdb", lock_timeout=lock_timeout)
            made.append((store, None))
            return store
        db = server.create_database()
        store = open_store(server.url(db), lock_timeout=lock_timeout)
        made.append((store, db))
        return store

    yield make
    for store, db in made:
        if db is not None:
            store.close()
            assert server is not None
            server.drop_database(db)


@pytest.fixture
def store(new_store: Callable[..., Any]) -> Any:
    return new_store()


@pytest.fixture
def db_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A new store as the command line names it (--db / DASHBOARD_DB): a file path, or the URL of
    a database whose role logs in with a password (which must never be printed)."""
    if backend == "duckdb":
        return str(tmp_path / "s.duckdb")
    return request.getfixturevalue("pg_server").password_url()


def write_post(folder: Path, name: str, body: str = "正文。", *, title: str = "标题",
               date: str = "2021-12-28 10:00:00 +0800", extra: str = "") -> Path:
    """A minimal post in the real format."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'---\nlayout: post\ntitle: "{title}"\ndate: {date}\n{extra}---\n{body}\n',
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def corpus_20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 synthetic posts shaped like the real ones (benchmarks/corpus.py), in 20 folders."""
    from benchmarks.corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus") / "posts", 20_000)
