"""Long-lived resources of the app: settings, the store's read view, cached queries, and
what the first start does in the background."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from dashboard import background, candles, coverage, figures, reactions
from dashboard.config import PROJECT_ROOT, Settings, load_settings
from dashboard.i18n import t
from dashboard.securities import SecurityIndex
from dashboard.store import StoreBusy, open_store, read_view

SAMPLE_POSTS = (PROJECT_ROOT / "data" / "posts").resolve()


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    env = dict(os.environ)
    try:  # root-level secrets (Community Cloud's settings, .streamlit/secrets.toml) count as environment
        env = {**{k: str(v) for k, v in st.secrets.items() if k.startswith("DASHBOARD_") and isinstance(
            v, (str, int, float, bool))}, **env}
    except Exception:  # no secrets file (Streamlit says so itself where a page reads one)
        pass
    return load_settings(env)


@st.cache_resource(show_spinner=False)
def snapshots() -> Any:
    """The app's read view of the store (a DuckDB file itself, a copy only while a writer works;
    on PostgreSQL one exported snapshot per generation)."""
    s = settings()
    return read_view(open_store(s.store_target, lock_timeout=s.lock_timeout))


_last_generation: list[Any] = []  # the generation the caches hold, for every session


def generation() -> Any:
    """The store's current generation. When it changes, the cached reads of the old one are
    dropped, so memory stays flat however often the store changes."""
    gen = snapshots().current().generation
    if _last_generation and _last_generation[0] != gen:
        query.clear()
        price_figure_json.clear()
        security_index.clear()
    _last_generation[:] = [gen]
    return gen


@st.cache_data(show_spinner=False, max_entries=512)
def query(name: str, gen: Any, *args: Any) -> Any:
    """A cached read: ``coverage.<name>`` (or ``reactions.<name>``) on the snapshot of ``gen``."""
    with snapshots().reading() as snap:
        cur = snap.cursor()
        try:
            return next(getattr(m, name) for m in (coverage, reactions, candles) if hasattr(m, name))(cur, *args)
        finally:
            cur.close()


@st.cache_resource(show_spinner=False, max_entries=2)
def security_index(gen: Any) -> SecurityIndex:
    """What a typed code, name or pinyin means, over the store's securities (built when needed)."""
    overview = query("securities_overview", gen)
    return SecurityIndex.of(overview[["symbol", "name", "name_en"]])


@st.cache_data(show_spinner=False, max_entries=64)
def price_figure_json(gen: Any, symbols: tuple[str, ...], titles: tuple[str, ...], start: date, end: date,
                      lang: str, selected: date | None, averages: tuple[int, ...] = ()) -> str:
    """The chart of one security (candles and volume), or small multiples of several sharing
    the date axis; candles daily, weekly or monthly by the range (``candles.choose_interval``)."""
    s = settings()
    labels = {k: t(k, lang) for k in ("price", "volume", "articles", "news")}
    with snapshots().reading() as snap:
        cur = snap.cursor()
        try:
            if len(symbols) == 1:
                c = candles.candles(cur, symbols[0], start, end, "auto", averages)
                m = coverage.session_markers(cur, symbols[0], start, end, s.site_timezone)
                fig = figures.price_chart(c, m, title=titles[0], labels=labels, lang=lang,
                                          selected_session=selected, symbol=symbols[0])
            else:
                frames = candles.candles_many(cur, symbols, start, end, "auto", averages)
                panels = [figures.Panel(sym, title, frames[frames["symbol"] == sym],
                                        coverage.session_markers(cur, sym, start, end, s.site_timezone))
                          for sym, title in zip(symbols, titles, strict=True)]
                fig = figures.price_charts(panels, labels=labels, lang=lang, selected_session=selected)
        finally:
            cur.close()
    return fig.to_json()


def price_figure(*args: Any) -> go.Figure:
    # Rebuilt from the cached JSON on every run, so the chart's spec is identical run after
    # run: Streamlit keys a chart's selection state to it, and a freshly built figure
    # serializes differently from a cached copy, which would drop the first click.
    return go.Figure(json.loads(price_figure_json(*args)), _validate=False)  # validated when built


@dataclass
class Bootstrap:
    """What the first start of this server process did (or is doing, in the background):
    a child process (``dashboard.background``), stopped when the server exits."""

    work: background.Work | None = None
    hosted: bool = False  # errors are then said without the server's paths

    @property
    def running(self) -> bool:
        return self.work is not None and self.work.running

    @property
    def ingested(self) -> Any:
        return None if self.work is None else self.work.status().ingested

    @property
    def fetched(self) -> Any:
        return None if self.work is None else self.work.status().fetched

    @property
    def errors(self) -> list[str]:
        failures = [] if self.work is None else self.work.status().errors
        return [f.sentence(public=self.hosted) for f in failures]

    def stop(self) -> None:
        if self.work is not None:
            self.work.stop()


def _ingest(folder: Path) -> tuple[Any, list[str]]:
    """Ingest ``folder`` in a child process (the server never forks a pool or holds a write, so
    it can always stop) and wait: the report, or None and the failures as sentences."""
    s = settings()
    status = background.run(s, folder)
    return status.ingested, [f.sentence(public=s.hosted) for f in status.errors]


def _fetch(symbols: list[str] | None = None, force: bool = False, s: Settings | None = None,
           store: Any = None) -> Any:
    return background.fetch_prices(s or settings(), symbols, force, store=store or snapshots().store)


@st.cache_resource(show_spinner=False, on_release=Bootstrap.stop)
def bootstrap() -> Bootstrap:
    """On the first start: ingest the configured posts folder and fetch what prices it can,
    in a child process.

    With an empty store the page waits for it; with data already stored it runs in the
    background and the page shows the stored data at once.
    """
    s = settings()
    store = snapshots().store
    if s.shared:  # a shared store is written by its scheduled jobs; the app only reads it
        return Bootstrap(None, hosted=s.hosted)
    has_articles = False
    if store.exists:
        try:
            with store.read(timeout=5) as con:
                has_articles = con.execute("SELECT count(*) > 0 FROM articles").fetchall()[0][0]
        except StoreBusy:
            has_articles = True  # someone is writing it: it has data, or soon will
    demo = s.posts_dir.resolve() == SAMPLE_POSTS  # the sample's prices, so charts show offline too
    result = Bootstrap(background.start_first_run(s, demo_prices=demo), hosted=s.hosted)
    if result.work is not None and not has_articles:
        result.work.wait()
    return result


def watch_store(shown: Any) -> None:
    """Reruns an open page when the store has moved on from ``shown`` (the generation the page
    was drawn from): a scheduled ingest, another process's price import. Viewers see new data
    within a minute without reloading."""
    st.session_state["store_generation"] = shown

    @st.fragment(run_every=settings().store_poll_seconds)
    def check() -> None:
        try:
            now = snapshots().store.generation()
        except Exception:  # unreachable for a moment: the next check tries again
            return
        if now != st.session_state.get("store_generation"):
            st.rerun(scope="app")

    check()


def folder_changed(folder: Path) -> bool:
    """Whether the posts folder changed since the store last walked it: a stat of its folders
    (cheap at any size), never a read of its files."""
    from dashboard import ingest

    if not folder.is_dir():
        return False
    with snapshots().reading() as snap:
        cur = snap.cursor()
        try:
            return ingest.folder_changed(cur, folder)
        finally:
            cur.close()
