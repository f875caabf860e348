"""The sidebar: language, securities, dates, model, and (locally) the data controls."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.i18n import LANGUAGES, t
from dashboard.store import StoreBusy
from dashboard.ui.failures import guarded
from dashboard.ui.format import label_of
from dashboard.ui.resources import (
    _fetch,
    _ingest,
    folder_changed,
    generation,
    query,
    security_index,
    settings,
    snapshots,
)
from dashboard.ui.state import MODELS, ViewState, resolve_in_store


@dataclass
class Sidebar:
    """What the sidebar's full-page part chose, and the slot where a view's fragment draws
    the securities and dates (so changing them reruns that fragment, not the page)."""

    lang: str
    model: str
    controls: Any  # a DeltaGenerator: the container the fragment writes into


def sidebar(overview: pd.DataFrame, initial: dict[str, Any], lang_default: str) -> Sidebar:
    s = settings()
    ss = st.session_state
    if "init" not in ss:
        ss["init"] = True
        ss["lang"] = initial["lang"]
        ss["securities"] = initial["securities"]
        ss["view"] = initial["view"]
        ss["article"] = initial["article"]
        ss["model"] = initial["model"]
        ss["url_from"], ss["url_to"] = initial["from"], initial["to"]
    with st.sidebar:
        lang = st.segmented_control(t("language", ss["lang"]), list(LANGUAGES), key="lang",
                                    format_func=LANGUAGES.get) or lang_default
        slot = st.container()
        model = st.segmented_control(t("model", lang), MODELS, key="model",
                                     format_func=lambda m: t(f"model_{m}", lang), help=t("model_help", lang))
        if s.hosted:
            st.caption(t("hosted", lang))
        else:
            data_controls(overview, lang)
    return Sidebar(lang, model or "market", slot)


def view_state(bar: Sidebar, overview: pd.DataFrame, view: str) -> ViewState:
    """The securities and dates, drawn in the sidebar's slot by the caller (a view's fragment),
    and the view they make with the rest of the sidebar's choices. One security is charted
    first (picking another switches to it, one rerun); others may be added to compare. Notices
    about the URL's dates are shown here, where they arise."""
    ss = st.session_state
    lang = bar.lang
    notices: list[str] = []
    known = list(overview["symbol"])
    stored = set(known)
    if "security" not in ss:  # from the URL (or a switch in the reading pane): the first is charted
        chosen = [sym for sym in ss.get("securities", []) if sym in stored]
        if not chosen and known:
            priced = overview[(overview["price_rows"] > 0) & (overview["articles"] > 0)]
            chosen = [(priced if not priced.empty else overview)["symbol"].iloc[0]]
        ss["security"] = chosen[0] if chosen else None
        ss["others"] = chosen[1:]
    label = label_of(overview)
    with bar.controls:
        first = st.selectbox(t("security", lang), known, key="security", format_func=label,
                             help=t("securities_help", lang), placeholder=t("pick_security", lang),
                             accept_new_options=True, on_change=resolve_first, args=(stored,))
        others = st.multiselect(t("compare_with", lang), known, key="others", format_func=label,
                                help=t("compare_help", lang), placeholder=t("pick_security", lang),
                                accept_new_options=True, on_change=resolve_others, args=(stored,))
        if "typed_unknown" in ss:
            st.caption(t("unknown_typed", lang, value=ss.pop("typed_unknown")))
        securities = list(dict.fromkeys(sym for sym in [first, *others] if sym in stored))
        ss["securities"] = securities
        start, end = date_range(securities, lang, notices)
    for n in notices:
        st.info(n, icon=":material/link_off:")
    return ViewState(securities, start, end, ss.get("article"), view, lang, bar.model)


def switch_to(symbol: str) -> None:
    """Chart ``symbol`` first, keeping the others to compare (a callback: it runs before the
    page, so it may set the pickers)."""
    ss = st.session_state
    ss["others"] = [x for x in ss.get("securities", []) if x != symbol]
    ss["security"] = symbol
    ss.pop("pick", None)
    ss["switched"] = True  # the reading pane, which asked, reruns the page (dashboard.ui.reading)


def _resolve(value: str, known: set[str]) -> str | None:
    """What an investor typed (``03690``, ``1024.hk``, ``700``, ``美团``, ``mt``) as the stored
    security it means; text that means none is noted."""
    sym = value if value in known else resolve_in_store(value, security_index(generation()), known)
    if sym is None:
        st.session_state["typed_unknown"] = value
    return sym


def resolve_first(known: set[str]) -> None:
    ss = st.session_state
    previous = ss.get("securities", [])
    value = ss.get("security")
    sym = _resolve(value, known) if value else None
    if sym is None:  # cleared, or typed nothing known: the chart stays
        sym = previous[0] if previous else None
    ss["security"] = sym
    ss["others"] = [x for x in ss.get("others", []) if x != sym]
    ss.pop("pick", None)


def resolve_others(known: set[str]) -> None:
    ss = st.session_state
    out: list[str] = []
    for value in ss.get("others", []):
        sym = _resolve(value, known)
        if sym is not None and sym not in out and sym != ss.get("security"):
            out.append(sym)
    ss["others"] = out


def date_range(securities: list[str], lang: str, notices: list[str]) -> tuple[date, date]:
    s = settings()
    ss = st.session_state
    span = query("article_span", generation(), tuple(securities), s.site_timezone) if securities else None
    today = date.today()
    lo, hi = (span[0] - timedelta(days=30), min(span[1] + timedelta(days=30), today)) if span else (
        today - timedelta(days=180), today)
    key = ("range_for", tuple(securities[:1]))
    if ss.get("range_key") != key:  # a new primary security: its own span, unless the URL said
        ss["range_key"] = key
        url_from, url_to = ss.pop("url_from", None), ss.pop("url_to", None)
        start, end = url_from or lo, url_to or hi
        if start > end:  # e.g. only `from`, later than the default end
            notices.append(t("bad_param", lang, name="from" if url_from else "to",
                             value=str(url_from or url_to)))
            start, end = lo, hi
        ss["date_range"] = (start, end)
    picked = st.date_input(t("range", lang), key="date_range", format="YYYY-MM-DD")
    if isinstance(picked, tuple) and len(picked) == 2:
        return picked[0], picked[1]
    return lo, hi  # mid-selection: one date picked so far


def data_controls(overview: pd.DataFrame, lang: str) -> None:
    s = settings()
    with st.expander(t("data", lang), expanded=False):
        folder = st.text_input(t("posts_folder", lang), value=str(s.posts_dir), key="posts_folder")
        if st.button(t("ingest", lang), width="stretch"):
            run_ingest(Path(folder).expanduser(), lang)
        # the securities as chosen now: the picker is redrawn by the view's fragment, not here
        if st.button(t("fetch", lang), width="stretch", disabled=overview.empty):
            with st.spinner(t("fetch", lang)):
                try:
                    report = _fetch(list(st.session_state.get("securities", [])), force=True)
                except StoreBusy as e:
                    st.warning(str(e))
                    report = None
            if report is not None:
                snapshots().refresh()
                st.session_state["flash"] = t("fetched", lang, stored=len(report.stored),
                                              cached=len(report.cached), failed=len(report.failures))
                st.rerun()
        upload = st.file_uploader(t("import_csv", lang), type=["csv"], key="price_csv")
        if upload is not None and st.session_state.get("imported_name") != upload.name:
            import_upload(upload, lang)
        if not s.shared:  # a shared store is written by its scheduled jobs, not by a folder here
            st.caption(t("watching", lang, s=s.watch_seconds))
            watch_folder(Path(folder).expanduser())


def run_ingest(folder: Path, lang: str) -> None:
    with st.spinner(t("ingest", lang)):
        report, errors = _ingest(folder)
        snapshots().refresh()  # show what it did, even while another writer still holds the store
    if report is None:
        st.error(" ".join(errors) or t("ingest_failed", lang))
        return
    messages = [t("ingested", lang, new=report.new, updated=report.updated, unchanged=report.unchanged,
                  rejected=len(report.rejected))]
    messages += [t("rejected_file", lang, path=p, reason=r) for p, r in report.rejected[:20]]
    st.session_state["flash"] = "\n\n".join(messages)
    st.rerun()


def import_upload(upload: Any, lang: str) -> None:
    from dashboard.prices import PriceFileError, import_csv

    st.session_state["imported_name"] = upload.name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        try:
            symbol, rows = import_csv(snapshots().store, path, benchmarks=settings().benchmarks)
        except PriceFileError as e:
            st.error(str(e).replace(str(path), upload.name))
            return
        except StoreBusy as e:
            st.warning(str(e))
            return
    snapshots().refresh()
    st.session_state["flash"] = t("imported", lang, rows=rows, symbol=symbol)
    st.rerun()


def watch_folder(folder: Path) -> None:
    """A periodic check for new or changed posts; ingests them and refreshes the page."""
    s = settings()

    @st.fragment(run_every=s.watch_seconds)
    @guarded
    def check() -> None:
        # Runs with every rerun of the page too: look at most once per period, and never on the
        # first render, so no rerun pays for it. The look stats folders only (folder times).
        now = time.monotonic()
        if "watched_at" not in st.session_state:
            st.session_state["watched_at"] = now
            return
        if now - st.session_state["watched_at"] < s.watch_seconds * 0.9:
            return
        st.session_state["watched_at"] = now
        if folder_changed(folder):
            report, _ = _ingest(folder)
            if report is not None:
                snapshots().refresh()
                st.rerun(scope="app")

    check()
