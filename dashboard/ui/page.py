"""The page: what every visitor's run of ``page.py`` draws.

State lives in the URL (``s`` securities, ``from``/``to`` dates, ``a`` article, ``view``,
``lang``), so a link reproduces a view. Reads go to a private snapshot of the store (see
``store.Snapshot``) re-taken when the store changes, and are cached per store generation.
"""

from __future__ import annotations

import gc

import pandas as pd
import streamlit as st

from dashboard.i18n import LANGUAGES, t
from dashboard.store import StoreBusy
from dashboard.ui.average import average_view
from dashboard.ui.chart import Pick, chart_view
from dashboard.ui.compare import compare_view
from dashboard.ui.coverage import coverage_table
from dashboard.ui.failures import guarded
from dashboard.ui.format import failure_text
from dashboard.ui.moves import moves_view
from dashboard.ui.reading import reading_pane
from dashboard.ui.resources import (
    bootstrap,
    generation,
    query,
    security_index,
    snapshots,
    watch_store,
)
from dashboard.ui.sidebar import Sidebar, sidebar, view_state
from dashboard.ui.state import VIEWS, ViewState, read_url, write_url

# What is imported by now (Streamlit, pandas, plotly, DuckDB, this package: 130k objects) lives
# as long as the server. Out of the cycle collector's sight, the full collection Streamlit runs
# after every script run, before the page hears the run ended, takes 10 ms instead of 160.
gc.freeze()


def main() -> None:
    """The page. A failure shows as one sentence (in hosted mode naming nothing of the
    server); the details go to the server's log (``dashboard.ui.failures``)."""
    guarded(page)()


# Candles and a news marker. An SVG, not an emoji: Streamlit checks an emoji icon against its
# catalogue of every emoji (0.1 s of a fresh server's first page), and a Material icon is
# fetched from fonts.gstatic.com, which an offline machine cannot reach.
ICON = ('<svg viewBox="0 0 32 32"><path d="M9 4v24M23 6v22" stroke="#555" stroke-width="2"/>'
        '<rect x="5" y="9" width="8" height="13" fill="#2ca02c"/><rect x="19" y="12" width="8" height="11" '
        'fill="#d62728"/><circle cx="25" cy="6" r="5" fill="#f39c12"/></svg>')


def page() -> None:
    st.set_page_config(page_title="News & prices · 新闻与行情", page_icon=ICON, layout="wide")
    locale = (st.context.locale or "") if hasattr(st, "context") else ""
    lang_default = "zh" if str(locale).lower().startswith("zh") else "en"
    lang_now = st.session_state.get("lang") or st.query_params.get("lang", lang_default)
    if lang_now not in LANGUAGES:
        lang_now = lang_default
    with st.spinner(t("first_run", lang_now)):
        boot = bootstrap()
    try:
        gen = generation()
    except StoreBusy:
        st.warning(t("store_busy", lang_now))
        st.stop()
    watch_store(gen)
    overview = query("securities_overview", gen)
    initial, notices = (read_url(overview, lambda: security_index(gen), lang_default)
                        if "init" not in st.session_state else ({}, []))
    bar = sidebar(overview, initial, lang_default)
    lang = bar.lang

    st.header(t("title", lang), divider="gray")
    st.caption(t("subtitle", lang))
    for n in notices:
        st.info(n, icon=":material/link_off:")
    if snapshots().busy:
        st.caption(t("store_busy", lang))
    if boot.running:
        st.caption(t("refreshing", lang))
    for error in boot.errors:
        st.warning(error)
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    if boot.fetched is not None and boot.fetched.failures and "boot_seen" not in st.session_state:
        st.session_state["boot_seen"] = True
        first = next(iter(boot.fetched.failures.values()))
        st.toast(t("boot_prices_failed", lang, reason=failure_text(first.kind, first.reason, lang)),
                 icon=":material/cloud_off:")
    if overview.empty:
        chosen(bar, overview, "chart")
        return
    view = st.segmented_control(t("view", lang), VIEWS, key="view", format_func=lambda v: t(f"view_{v}", lang),
                                label_visibility="collapsed") or "chart"
    if view == "chart":
        explore(bar, overview)
    elif view == "moves":
        moves_and_reading(bar, overview)
    else:
        views(bar, overview, view)


def chosen(bar: Sidebar, overview: pd.DataFrame, view: str) -> ViewState | None:
    """The view's securities and dates (drawn in the sidebar by the calling fragment), written
    to the URL; None, with a note, when there is nothing to show."""
    state = view_state(bar, overview, view)
    write_url(state)
    if not state.securities:
        st.info(t("no_securities", bar.lang))
        return None
    return state


# Fragments. Each view draws the sidebar's securities and dates itself, so picking a security or
# a date range reruns the view, not the page; a marker click reruns the charts and what they
# filter; a filter, a row choice or a click in the reading pane reruns only the table and the
# pane.


@st.fragment
@guarded
def explore(bar: Sidebar, overview: pd.DataFrame) -> None:
    state = chosen(bar, overview, "chart")
    if state is None:
        return
    picked = chart_view(state, overview, bar.lang)
    coverage_and_reading(state, overview, bar.lang, picked)


@st.fragment
@guarded
def views(bar: Sidebar, overview: pd.DataFrame, view: str) -> None:
    state = chosen(bar, overview, view)
    if state is None:
        return
    if view == "compare":
        compare_view(state, overview, bar.lang)
    else:
        average_view(state, bar.lang)
    coverage_and_reading(state, overview, bar.lang, None)


@st.fragment
@guarded
def coverage_and_reading(state: ViewState, overview: pd.DataFrame, lang: str, picked: Pick | None) -> None:
    coverage_table(state, overview, lang, picked)
    reading_pane(state, lang)


@st.fragment
@guarded
def moves_and_reading(bar: Sidebar, overview: pd.DataFrame) -> None:
    state = chosen(bar, overview, "moves")
    if state is None:
        return
    left, right = st.columns([1, 1], gap="large")
    with left:
        moves_view(state, overview, bar.lang)
    with right:
        reading_pane(state, bar.lang, stacked=True)
    write_url(state)
