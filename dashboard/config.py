"""Settings, from (lowest to highest precedence) defaults, ``dashboard.toml``, and environment.

Environment variables (on Streamlit Community Cloud, root-level secrets become
environment variables, so the same names work there):

``DASHBOARD_DB``        the store: a DuckDB file's path (default ``data/dashboard.duckdb``), or a
                        ``postgresql://user:password@host:port/dbname`` URL for a shared store
``DASHBOARD_POSTS``     folder of posts the app ingests on start (default ``data/posts``)
``DASHBOARD_TZ``        time zone of naive post dates (default ``Asia/Shanghai``)
``DASHBOARD_HOSTED``    ``true`` for hosted mode: browse and share only
``DASHBOARD_FETCH_ON_START``  ``false`` to skip asking Yahoo Finance when the app starts
``DASHBOARD_POLL_SECONDS``  how often an open page looks for a newer state of the store (30)
``DASHBOARD_CONFIG``    path of a TOML file with the same keys (default ``dashboard.toml``)

Root-level ``DASHBOARD_*`` keys of ``.streamlit/secrets.toml`` (beside the app, or in the
working folder) count as environment variables, below the real environment: the place for a
connection URL with a password, locally as on Community Cloud.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dashboard.store.base import is_url, redact

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_BENCHMARKS: dict[str, str] = {
    "HK": "^HSI",
    "SH": "000001.SS",
    "SZ": "399001.SZ",
    "BJ": "000001.SS",
    "US": "^GSPC",
    "JP": "^N225",
}

# Where each market's prices come from, in order: the next source is asked for what the one
# before could not price. "akshare" is eastmoney (optional; skipped when not installed).
DEFAULT_PRICE_SOURCES: dict[str, list[str]] = {
    "HK": ["akshare", "yfinance"],
    "SH": ["akshare", "yfinance"],
    "SZ": ["akshare", "yfinance"],
    "BJ": ["akshare", "yfinance"],
    "US": ["yfinance"],
    "JP": ["yfinance"],
}


@dataclass(frozen=True)
class Settings:
    db_path: Path = PROJECT_ROOT / "data" / "dashboard.duckdb"
    db_url: str | None = None  # a PostgreSQL store: used instead of db_path (never shown: it holds a password)
    posts_dir: Path = PROJECT_ROOT / "data" / "posts"
    site_timezone: str = "Asia/Shanghai"
    hosted: bool = False
    benchmarks: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BENCHMARKS))
    price_sources: dict[str, list[str]] = field(
        default_factory=lambda: {m: list(v) for m, v in DEFAULT_PRICE_SOURCES.items()})
    price_margin_days: int = 30  # fetched before the first and after the last article
    refresh_days: int = 5  # recent days re-asked, as they can still change
    refresh_after_hours: float = 12.0  # ... but no more often than this
    watch_seconds: int = 60  # how often a local app looks for new posts
    store_poll_seconds: int = 30  # how often an open page looks for a newer state of the store
    fetch_on_start: bool = True  # the app's first start asks Yahoo for missing prices
    lock_timeout: float = 60.0
    max_post_bytes: int = 5 * 1024 * 1024

    def with_db(self, db: str | os.PathLike[str] | None) -> Settings:
        if db is None:
            return self
        if is_url(db):
            return replace(self, db_url=str(db).strip())
        return replace(self, db_path=Path(db).expanduser(), db_url=None)

    @property
    def store_target(self) -> str | Path:
        """What ``open_store`` opens: the PostgreSQL URL if one is set, else the DuckDB file."""
        return self.db_url or self.db_path

    @property
    def store_label(self) -> str:
        """The store as messages name it: the file, or the URL without its password."""
        return redact(self.db_url) if self.db_url else str(self.db_path.expanduser().absolute())

    @property
    def shared(self) -> bool:
        """A shared (PostgreSQL) store, which the app only reads."""
        return self.db_url is not None


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


SECRETS_FILES = (Path(".streamlit") / "secrets.toml", PROJECT_ROOT / ".streamlit" / "secrets.toml")


def _secrets(files: tuple[Path, ...] = SECRETS_FILES) -> dict[str, str]:
    """Root-level DASHBOARD_* keys of Streamlit's secrets file, as Streamlit would export them."""
    for f in files:
        if f.is_file():
            try:
                with f.open("rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError):
                return {}
            return {k: str(v) for k, v in data.items() if k.startswith("DASHBOARD_") and not isinstance(v, dict)}
    return {}


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = {**_secrets(), **os.environ} if env is None else dict(env)
    values: dict[str, Any] = {}
    config_file = Path(env.get("DASHBOARD_CONFIG") or PROJECT_ROOT / "dashboard.toml")
    if config_file.exists():
        with config_file.open("rb") as f:
            data = tomllib.load(f)
        base = config_file.parent
        for key in ("db_path", "posts_dir"):
            if key in data and is_url(data[key]):
                values["db_url"] = str(data[key]).strip()
            elif key in data:
                values[key] = (base / Path(data[key]).expanduser()).resolve()
        for key in ("site_timezone", "price_margin_days", "refresh_days",
                    "refresh_after_hours", "watch_seconds", "store_poll_seconds", "lock_timeout",
                    "max_post_bytes"):
            if key in data:
                values[key] = data[key]
        for key in ("hosted", "fetch_on_start"):
            if key in data:
                values[key] = _truthy(data[key])
        if isinstance(data.get("benchmarks"), dict):
            values["benchmarks"] = {**DEFAULT_BENCHMARKS, **data["benchmarks"]}
        if isinstance(data.get("price_sources"), dict):  # [price_sources] HK = ["yfinance"]
            values["price_sources"] = {**DEFAULT_PRICE_SOURCES, **{
                str(m).upper(): [str(n) for n in (v if isinstance(v, list) else [v])]
                for m, v in data["price_sources"].items()}}
    if env.get("DASHBOARD_DB") and is_url(env["DASHBOARD_DB"]):
        values["db_url"] = env["DASHBOARD_DB"].strip()
    elif env.get("DASHBOARD_DB"):
        values["db_path"] = Path(env["DASHBOARD_DB"]).expanduser()
        values["db_url"] = None
    if env.get("DASHBOARD_POSTS"):
        values["posts_dir"] = Path(env["DASHBOARD_POSTS"]).expanduser()
    if env.get("DASHBOARD_POLL_SECONDS"):
        values["store_poll_seconds"] = max(1, int(float(env["DASHBOARD_POLL_SECONDS"])))
    if env.get("DASHBOARD_TZ"):
        values["site_timezone"] = env["DASHBOARD_TZ"]
    if "DASHBOARD_HOSTED" in env:
        values["hosted"] = _truthy(env["DASHBOARD_HOSTED"])
    if "DASHBOARD_FETCH_ON_START" in env:
        values["fetch_on_start"] = _truthy(env["DASHBOARD_FETCH_ON_START"])
    return Settings(**values)
