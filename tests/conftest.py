"""Shared fixtures. Real data lives in ../shared (beside the project); tests that need it skip
cleanly when it is absent, so a fresh clone still passes its own suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.store import Store

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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.duckdb", lock_timeout=10)


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
