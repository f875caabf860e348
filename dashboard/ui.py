"""The Streamlit dashboard: the one module that imports Streamlit.

State lives in the URL (``s`` securities, ``from``/``to`` dates, ``a`` article, ``view``,
``lang``), so a link reproduces a view. Reads go to a private snapshot of the store (see
``store.Snapshot``) re-taken when the store changes, and are cached per store generation.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import coverage, figures, reactions
from dashboard.config import Settings, load_settings
from dashboard.i18n import LANGUAGES, t
from dashboard.store import Generation, Snapshot, Store, StoreBusy

VIEWS = ["chart", "compare", "average", "moves"]
TABLE_LIMIT = 5000


# --- resources ---------------------------------------------------------------------


class SnapshotHolder:
    """The app's read view of the store: one snapshot, re-taken when the file changes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._current: Snapshot | None = None
        self._retired: list[Snapshot] = []  # still possibly in use by a running query
        self.busy = False

    def current(self) -> Snapshot:
        generation = self.store.generation()
        snap = self._current
        if snap is not None and snap.generation == generation:
            return snap
        with self._lock:
            if self._current is None or self._current.generation != generation:
                try:
                    fresh = self.store.snapshot(timeout=0 if self._current is not None else 30)
                    self.busy = False
                except StoreBusy:
                    if self._current is None:
                        raise
                    self.busy = True  # a writer holds the store: keep serving the last snapshot
                    return self._current
                if self._current is not None:
                    self._retired.append(self._current)
                    while len(self._retired) > 2:
                        self._retired.pop(0).close()
                self._current = fresh
            return self._current


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def snapshots() -> SnapshotHolder:
    s = settings()
    return SnapshotHolder(Store(s.db_path, lock_timeout=s.lock_timeout))


def generation() -> Generation:
    return snapshots().current().generation


@st.cache_data(show_spinner=False, max_entries=512)
def query(name: str, gen: Generation, *args: Any) -> Any:
    """A cached read: ``coverage.<name>`` (or ``reactions.<name>``) on the snapshot of ``gen``."""
    cur = snapshots().current().cursor()
    try:
        return (getattr(coverage, name, None) or getattr(reactions, name))(cur, *args)
    finally:
        cur.close()


@st.cache_data(show_spinner=False, max_entries=64)
def price_figure_json(gen: Generation, symbol: str, start: date, end: date, title: str, lang: str,
                      selected: date | None) -> str:
    s = settings()
    prices = query("price_history", gen, symbol, start, end)
    markers = query("session_markers", gen, symbol, start, end, s.site_timezone)
    labels = {k: t(k, lang) for k in ("price", "volume", "articles", "news")}
    fig = figures.price_chart(prices, markers, title=title, labels=labels, lang=lang, selected_session=selected)
    return fig.to_json()


def price_figure(*args: Any) -> go.Figure:
    # Rebuilt from the cached JSON on every run, so the chart's spec is identical run after
    # run: Streamlit keys a chart's selection state to it, and a freshly built figure
    # serializes differently from a cached copy, which would drop the first click.
    return go.Figure(json.loads(price_figure_json(*args)), _validate=False)  # validated when built


# --- data work (local mode) -------------------------------------------------------------


@dataclass
class Bootstrap:
    """What the first start of this server process did (or is doing, in the background)."""

    ingested: Any = None
    fetched: Any = None
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def _ingest(folder: Path, s: Settings | None = None, store: Store | None = None) -> Any:
    from dashboard.ingest import ingest_folder

    s = s or settings()
    return ingest_folder(store or snapshots().store, folder, s.site_timezone, max_bytes=s.max_post_bytes,
                         benchmarks=s.benchmarks)


def _fetch(symbols: list[str] | None = None, force: bool = False, s: Settings | None = None,
           store: Store | None = None) -> Any:
    from dashboard.prices import YFinanceSource, default_spans, update_prices

    s = s or settings()
    store = store or snapshots().store
    with store.read() as con:  # a chosen security's benchmark comes along
        spans = default_spans(con, s.benchmarks, symbols=symbols, margin_days=s.price_margin_days,
                              with_benchmarks=True)
    if not spans:
        return None
    return update_prices(store, YFinanceSource(), spans, force=force, refresh_days=s.refresh_days,
                         refresh_after=timedelta(hours=s.refresh_after_hours), benchmarks=s.benchmarks)


@st.cache_resource(show_spinner=False)
def bootstrap() -> Bootstrap:
    """On the first start: ingest the configured posts folder and fetch what prices it can.

    With an empty store the page waits for it; with data already stored it runs in the
    background and the page shows the stored data at once.
    """
    s = settings()
    store = snapshots().store
    result = Bootstrap()

    def work() -> None:
        if s.posts_dir.is_dir():
            try:
                result.ingested = _ingest(s.posts_dir, s, store)
            except StoreBusy as e:
                result.errors.append(str(e))
        if s.fetch_on_start:
            try:
                result.fetched = _fetch(s=s, store=store)
            except StoreBusy as e:
                result.errors.append(str(e))

    has_articles = False
    if store.exists:
        try:
            with store.read(timeout=5) as con:
                has_articles = con.execute("SELECT count(*) > 0 FROM articles").fetchall()[0][0]
        except StoreBusy:
            has_articles = True  # someone is writing it: it has data, or soon will
    if has_articles:
        result.thread = threading.Thread(target=work, name="dashboard-bootstrap", daemon=True)
        result.thread.start()
    else:
        work()
    return result


def folder_signature(folder: Path) -> tuple[int, int]:
    """A cheap fingerprint of a folder's posts: how many, and the newest modification."""
    from dashboard.ingest import scan

    files = scan(folder) if folder.is_dir() else []
    return len(files), max((f.mtime_ns for f in files), default=0)


# --- URL state -------------------------------------------------------------------------


@dataclass
class ViewState:
    securities: list[str]
    start: date
    end: date
    article: str | None
    view: str
    lang: str
    model: str = "market"


MODELS = ["market", "mm"]


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def read_url(overview: pd.DataFrame, lang_default: str) -> tuple[dict[str, Any], list[str]]:
    """Initial widget values from the query parameters, and notices for what was invalid."""
    qp = st.query_params
    notices: list[str] = []
    lang = qp.get("lang", lang_default)
    if lang not in LANGUAGES:
        notices.append(t("bad_param", lang_default, name="lang", value=lang))
        lang = lang_default
    known = set(overview["symbol"])
    chosen = []
    for raw in ",".join(qp.get_all("s")).split(","):
        sym = raw.strip()
        if not sym:
            continue
        if sym in known:
            chosen.append(sym)
        else:
            notices.append(t("unknown_security", lang, value=sym))
    values: dict[str, Any] = {"lang": lang, "securities": list(dict.fromkeys(chosen))}
    for name in ("from", "to"):
        raw = qp.get(name)
        parsed = _parse_date(raw)
        if raw and parsed is None:
            notices.append(t("bad_param", lang, name=name, value=raw))
        values[name] = parsed
    if values["from"] and values["to"] and values["from"] > values["to"]:
        notices.append(t("bad_param", lang, name="from", value=qp.get("from")))
        values["from"] = values["to"] = None
    view = qp.get("view", "chart")
    if view not in VIEWS:
        notices.append(t("bad_param", lang, name="view", value=view))
        view = "chart"
    values["view"] = view
    values["article"] = qp.get("a") or None
    model = qp.get("m", "market")
    if model not in MODELS:
        notices.append(t("bad_param", lang, name="m", value=model))
        model = "market"
    values["model"] = model
    return values, notices


def write_url(state: ViewState) -> None:
    params = {"s": ",".join(state.securities), "from": state.start.isoformat(), "to": state.end.isoformat(),
              "view": state.view, "lang": state.lang}
    if state.article:
        params["a"] = state.article
    if state.model != "market":
        params["m"] = state.model
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


# --- helpers ---------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|<>~$"})


def plain(text: str) -> str:
    """Untrusted text shown through markdown as literal characters (no markup, no HTML)."""
    return text.translate(_MD_SPECIAL)


def pct(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{value * 100:+.2f}%"


def label_of(overview: pd.DataFrame) -> Callable[[str], str]:
    rows = overview.set_index("symbol")

    def fmt(symbol: str) -> str:
        if symbol not in rows.index:
            return symbol
        r = rows.loc[symbol]
        return f"{symbol} {r['name']} ({r['articles']})".replace("  ", " ")

    return fmt


# --- sections --------------------------------------------------------------------------


def sidebar(overview: pd.DataFrame, initial: dict[str, Any], lang_default: str,
            notices: list[str]) -> ViewState:
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
        if not ss["securities"] and not overview.empty:
            priced = overview[(overview["price_rows"] > 0) & (overview["articles"] > 0)]
            ss["securities"] = [(priced if not priced.empty else overview)["symbol"].iloc[0]]
        securities = st.multiselect(t("securities", lang), list(overview["symbol"]), key="securities",
                                    format_func=label_of(overview), help=t("securities_help", lang),
                                    placeholder=t("pick_security", lang))
        start, end = date_range(securities, lang, notices)
        model = st.segmented_control(t("model", lang), MODELS, key="model",
                                     format_func=lambda m: t(f"model_{m}", lang), help=t("model_help", lang))
        if s.hosted:
            st.caption(t("hosted", lang))
        else:
            data_controls(securities, lang)
    return ViewState(securities, start, end, ss.get("article"), ss.get("view", "chart"), lang,
                     model or "market")


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


def data_controls(securities: list[str], lang: str) -> None:
    s = settings()
    with st.expander(t("data", lang), expanded=False):
        folder = st.text_input(t("posts_folder", lang), value=str(s.posts_dir), key="posts_folder")
        if st.button(t("ingest", lang), width="stretch"):
            run_ingest(Path(folder).expanduser(), lang)
        if st.button(t("fetch", lang), width="stretch", disabled=not securities):
            with st.spinner(t("fetch", lang)):
                try:
                    report = _fetch(list(securities), force=True)
                except StoreBusy as e:
                    st.warning(str(e))
                    report = None
            if report is not None:
                st.session_state["flash"] = t("fetched", lang, stored=len(report.stored),
                                              cached=len(report.cached), failed=len(report.failures))
                st.rerun()
        upload = st.file_uploader(t("import_csv", lang), type=["csv"], key="price_csv")
        if upload is not None and st.session_state.get("imported_name") != upload.name:
            import_upload(upload, securities, lang)
        st.caption(t("watching", lang, s=s.watch_seconds))
        watch_folder(Path(folder).expanduser())


def run_ingest(folder: Path, lang: str) -> None:
    with st.spinner(t("ingest", lang)):
        try:
            report = _ingest(folder)
        except (StoreBusy, NotADirectoryError) as e:
            st.error(str(e))
            return
    messages = [t("ingested", lang, new=report.new, updated=report.updated, unchanged=report.unchanged,
                  rejected=len(report.rejected))]
    messages += [t("rejected_file", lang, path=p, reason=r) for p, r in report.rejected[:20]]
    st.session_state["flash"] = "\n\n".join(messages)
    st.rerun()


def import_upload(upload: Any, securities: list[str], lang: str) -> None:
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
    st.session_state["flash"] = t("imported", lang, rows=rows, symbol=symbol)
    st.rerun()


def watch_folder(folder: Path) -> None:
    """A periodic check for new or changed posts; ingests them and refreshes the page."""
    s = settings()

    @st.fragment(run_every=s.watch_seconds)
    def check() -> None:
        # Runs with every rerun of the page too: scan at most once per period, so a rerun
        # never pays for reading the folder.
        now = time.monotonic()
        if now - st.session_state.get("watched_at", -1e9) < s.watch_seconds * 0.9:
            return
        st.session_state["watched_at"] = now
        sig = folder_signature(folder)
        key = f"sig:{folder}"
        previous = st.session_state.get(key)
        st.session_state[key] = sig
        if previous is not None and previous != sig:
            try:
                _ingest(folder)
            except (StoreBusy, NotADirectoryError):
                return
            st.rerun(scope="app")

    check()


def failure_text(kind: str, reason: str, lang: str) -> str:
    """A price failure in the interface's language; the source's own words for the unforeseen."""
    localized = t(f"fail_{kind}", lang)
    return reason if localized == f"fail_{kind}" else localized


def no_prices_notice(symbol: str, lang: str) -> None:
    problem = query("price_problem", generation(), symbol)
    lines = [t("no_prices", lang, symbol=symbol)]
    if problem:
        lines.append(t("no_prices_why", lang, reason=failure_text(problem["kind"], problem["reason"], lang)))
    else:
        lines.append(t("no_prices_never", lang))
    lines.append(t("no_prices_hosted", lang) if settings().hosted else t("no_prices_how", lang, symbol=symbol))
    st.warning("  \n".join(lines), icon=":material/signal_disconnected:")


def chart_view(state: ViewState, overview: pd.DataFrame, lang: str) -> date | None:
    """The price chart; returns the session whose marker was clicked, if any."""
    gen = generation()
    symbol = state.securities[0]
    row = overview.set_index("symbol").loc[symbol]
    title = f"{symbol} {row['name']}".strip()
    prices = query("price_history", gen, symbol, state.start, state.end)
    picked_session: date | None = st.session_state.get("session_pick")
    if row["price_rows"] == 0:
        no_prices_notice(symbol, lang)
    elif prices.empty:
        st.info(t("prices_missing_in_range", lang, symbol=symbol))
    else:
        fig = price_figure(gen, symbol, state.start, state.end, title, lang, picked_session)
        # A fresh key after each click: the session is remembered here, and plotly's own
        # selection (which would fade every other candle) starts empty again.
        key = f"chart{st.session_state.get('chart_clicks', 0)}"
        event = st.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points",
                                config={"displaylogo": False, "scrollZoom": True})
        points = event["selection"]["points"] if event else []
        custom = points[0].get("customdata") if points else None
        if custom:
            st.session_state["session_pick"] = date.fromisoformat(custom[0] if isinstance(custom, list) else custom)
            st.session_state["chart_clicks"] = st.session_state.get("chart_clicks", 0) + 1
            st.rerun()
        st.caption(t("click_marker", lang))
    return picked_session


def coverage_table(state: ViewState, lang: str, picked_session: date | None) -> None:
    s = settings()
    gen = generation()
    st.subheader(t("coverage", lang))
    sources, categories = query("facets", gen, tuple(state.securities))
    c1, c2, c3 = st.columns([2, 1, 1])
    keyword = c1.text_input(t("keyword", lang), key="keyword")
    chosen_sources = c2.multiselect(t("publishers", lang), sources, key="sources", placeholder=t("any", lang))
    chosen_categories = c3.multiselect(t("categories", lang), categories, key="categories",
                                       placeholder=t("any", lang))
    df = query("related_coverage", gen, tuple(state.securities), s.site_timezone, state.start, state.end,
               keyword, tuple(chosen_sources), tuple(chosen_categories), TABLE_LIMIT)
    if picked_session is not None:
        in_session = df[pd.to_datetime(df["session"]).dt.date == picked_session]
        cols = st.columns([4, 1])
        cols[0].markdown(t("session_pick", lang, session=picked_session, n=len(in_session)))
        if cols[1].button(t("clear", lang), key="clear_session"):
            st.session_state.pop("session_pick", None)
            st.rerun()
        df = in_session
    table = pd.DataFrame({
        "time": pd.to_datetime(df["published"]),
        "title": df["title"],
        "source": df["source"],
        "symbol": df["symbol"],
        "others": df["others"],
        "session": pd.to_datetime(df["session"]),
        "day0": df["day0_return"],
        "car11": df["car_m1_p1_mm" if state.model == "mm" else "car_m1_p1"],
        "car05": df["car_0_p5_mm" if state.model == "mm" else "car_0_p5"],
        "volume": df["volume_ratio"],
        "url": df["url"],
    })
    # The table keeps its selected row position across reruns; when the rows change, that
    # position would point at another article (or none), so the selection starts over.
    shown = (tuple(state.securities), state.start, state.end, keyword, tuple(chosen_sources),
             tuple(chosen_categories), picked_session)
    if st.session_state.get("coverage_shown") != shown:
        st.session_state["coverage_shown"] = shown
        st.session_state.pop("coverage_table", None)
    capped = len(df) >= TABLE_LIMIT
    st.caption(t("rows_shown", lang, n=len(df)) + (" · " + t("rows_capped", lang, n=TABLE_LIMIT) if capped else ""))
    order = ["time", "title", "source"] + (["symbol"] if len(state.securities) > 1 else []) + [
        "others", "session", "day0", "car11", "car05", "volume", "url"]
    event = st.dataframe(
        table, key="coverage_table", on_select="rerun", selection_mode="single-row", hide_index=True,
        column_order=order, placeholder="—",
        width="stretch", height=min(38 + 35 * max(len(table), 1), 320),
        column_config={
            "time": st.column_config.DatetimeColumn(t("col_time", lang), format="YYYY-MM-DD HH:mm"),
            "title": st.column_config.TextColumn(t("col_title", lang), width="medium"),
            "source": st.column_config.TextColumn(t("col_source", lang)),
            "symbol": st.column_config.TextColumn(t("col_symbol", lang), width="small"),
            "others": st.column_config.TextColumn(t("col_others", lang)),
            "session": st.column_config.DateColumn(t("col_session", lang), format="YYYY-MM-DD"),
            "day0": st.column_config.NumberColumn(t("col_day0", lang), format="percent", width="small"),
            "car11": st.column_config.NumberColumn(t("col_car11", lang), format="percent", width="small"),
            "car05": st.column_config.NumberColumn(t("col_car05", lang), format="percent", width="small"),
            "volume": st.column_config.NumberColumn(t("col_volume", lang), format="%.2f", width="small"),
            "url": st.column_config.LinkColumn(t("col_link", lang), display_text=t("open_link", lang),
                                               width="small"),
        },
    )
    rows = event.selection.rows if event is not None else []
    if rows and rows[0] < len(df):
        st.session_state["article"] = df["article_id"].iloc[rows[0]]
    st.download_button(t("download", lang), lambda: table.to_csv(index=False).encode("utf-8-sig"),
                       file_name=f"coverage-{'-'.join(state.securities)}-{state.start}-{state.end}.csv",
                       mime="text/csv", on_click="ignore")
    markets = {query("market_of", gen, sym) for sym in state.securities}
    bench = ", ".join(sorted({s.benchmarks[m] for m in markets if m in s.benchmarks})) or "—"
    st.caption(t("method", lang, bench=bench) + (" " + t("model_help", lang) if state.model == "mm" else ""))


def switch_to(symbol: str) -> None:
    current = st.session_state.get("securities", [])
    st.session_state["securities"] = [symbol] + [x for x in current if x != symbol]
    st.session_state.pop("session_pick", None)


def reading_pane(state: ViewState, lang: str, stacked: bool = False) -> None:
    """The chosen article: its facts and securities beside its clean text (never raw HTML)."""
    if not state.article:
        st.caption(t("pick_article", lang))
        return
    s = settings()
    art = query("article", generation(), state.article, s.site_timezone)
    if art is None:
        st.info(t("unknown_article", lang, value=state.article))
        return
    st.subheader(t("reading", lang))
    facts, text = (st.container(), st.container()) if stacked else st.columns([2, 3], gap="large")
    with facts:
        article_facts(art, state, lang)
    body = "\n\n".join(plain(p) for p in [art["digest"] or "", *art["text"].split("\n")] if p)
    with text, st.container(border=True, height=460):
        st.markdown(body)


def article_facts(art: dict[str, Any], state: ViewState, lang: str) -> None:
    st.markdown(f"#### {plain(art['title'])}")
    meta = f"{t('published', lang)}: {art['published']:%Y-%m-%d %H:%M}"
    if art["source"]:
        meta += f" · {t('source', lang)}: {plain(art['source'])}"
    st.caption(meta)
    secs = art["securities"]
    if not secs.empty:
        st.markdown(f"**{t('named', lang)}**")
        with st.container(horizontal=True):
            for r in secs.itertuples():
                st.button(f"{r.symbol} {r.name}".strip(), key=f"goto-{r.symbol}", on_click=switch_to,
                          args=(r.symbol,), help=t(f"how_{r.how}", lang),
                          type="primary" if r.symbol == (state.securities or [None])[0] else "secondary")
        shown = next((sym for sym in state.securities if sym in set(secs["symbol"])), None)
        if shown is not None:  # the reaction of the charted security, or the next chosen one
            r = secs[secs["symbol"] == shown].iloc[0]
            st.markdown(f"**{t('reaction', lang, symbol=r['symbol'])}**"
                        + (f" · {t('col_session', lang)} {r['session']:%Y-%m-%d}" if not pd.isna(r["session"]) else ""))
            volume = "—" if pd.isna(r["volume_ratio"]) else f"{r['volume_ratio']:.2f}×"
            suffix = "_mm" if state.model == "mm" else ""
            st.markdown(" · ".join([
                f"{t('col_day0', lang)} **{pct(r['day0_return'])}**",
                f"{t('col_car11', lang)} **{pct(r['car_m1_p1' + suffix])}**",
                f"{t('col_car05', lang)} **{pct(r['car_0_p5' + suffix])}**",
                f"{t('col_volume', lang)} **{volume}**",
            ]))
    if art["url"]:
        st.link_button(t("original", lang), art["url"], icon=":material/open_in_new:")
    else:
        st.caption(t("no_link", lang))


def compare_view(state: ViewState, overview: pd.DataFrame, lang: str) -> None:
    if len(state.securities) < 2:
        st.info(t("compare_need_two", lang))
        return
    gen = generation()
    perf = query("normalized_performance", gen, tuple(state.securities), state.start, state.end)
    for sym in state.securities:
        if perf[perf["symbol"] == sym].empty:
            no_prices_notice(sym, lang)
    if perf.empty:
        return
    sessions = query("shared_sessions", gen, tuple(state.securities), state.start, state.end)
    names = {sym: label_of(overview)(sym).rsplit(" (", 1)[0] for sym in state.securities}
    labels = {k: t(k, lang) for k in ("shared", "news", "change")}
    st.plotly_chart(figures.compare_chart(perf, sessions, names=names, labels=labels),
                    config={"displaylogo": False})
    st.caption(t("compare_caption", lang))


def average_view(state: ViewState, lang: str) -> None:
    s = settings()
    gen = generation()
    main_only = st.toggle(t("main_only", lang), key="main_only")
    df = query("related_coverage", gen, tuple(state.securities[:1]), s.site_timezone, state.start, state.end,
               st.session_state.get("keyword", ""), tuple(st.session_state.get("sources", [])),
               tuple(st.session_state.get("categories", [])), TABLE_LIMIT)
    if main_only:
        df = df[df["article_id"].isin(query("main_subject_articles", gen, state.securities[0]))]
    events = df.dropna(subset=["session"])[["symbol", "session"]]
    caar = query("average_reaction", gen, events.reset_index(drop=True), 5, 10, 1.96, state.model)
    bench = s.benchmarks.get(str(query("market_of", gen, state.securities[0])), "")
    if caar.empty:
        st.info(t("average_none", lang))
        return
    labels = {k: t(k, lang) for k in ("caar", "band", "day")}
    st.plotly_chart(figures.average_reaction_chart(caar, labels=labels), config={"displaylogo": False})
    st.caption(t("average_caption", lang, bench=bench, n=int(caar["n"].max())))


def moves_view(state: ViewState, overview: pd.DataFrame, lang: str) -> None:
    s = settings()
    symbol = state.securities[0]
    moves = query("largest_moves", generation(), symbol, state.start, state.end, 10, 1, s.site_timezone,
                  state.model)
    st.caption(t("moves_caption", lang, name=label_of(overview)(symbol).rsplit(" (", 1)[0]))
    if moves.empty:
        st.info(t("moves_none", lang))
        return
    for r in moves.itertuples():
        with st.container(border=True):
            st.markdown(t("move_line", lang, date=f"{r.date:%Y-%m-%d}", ar=pct(r.ar), ret=pct(r.ret), rm=pct(r.rm)))
            stories = list(r.articles) if r.articles is not None else []
            if not stories:
                st.caption(t("no_coverage", lang))
            for a in stories:
                st.button(f"{a['published']} · {a['source'] or ''} · {a['title']}", key=f"move-{r.date}-{a['article_id']}",
                          on_click=open_article, args=(a["article_id"],), type="tertiary")


def open_article(article_id: str) -> None:
    st.session_state["article"] = article_id


# --- the page --------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title="News & prices · 新闻与行情", page_icon=":material/candlestick_chart:",
                       layout="wide")
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
    overview = query("securities_overview", gen)
    initial, notices = read_url(overview, lang_default) if "init" not in st.session_state else ({}, [])
    state = sidebar(overview, initial, lang_default, notices)
    lang = state.lang

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
    if overview.empty or not state.securities:
        st.info(t("no_securities", lang))
        write_url(state)
        return

    view = st.segmented_control(t("view", lang), VIEWS, key="view", format_func=lambda v: t(f"view_{v}", lang),
                                label_visibility="collapsed") or "chart"
    state.view = view
    picked_session = None
    if view == "chart":
        picked_session = chart_view(state, overview, lang)
    elif view == "compare":
        compare_view(state, overview, lang)
    elif view == "average":
        average_view(state, lang)
    if view == "moves":
        left, right = st.columns([1, 1], gap="large")
        with left:
            moves_view(state, overview, lang)
        state.article = st.session_state.get("article")
        with right:
            reading_pane(state, lang, stacked=True)
    else:
        coverage_table(state, lang, picked_session)
        state.article = st.session_state.get("article")
        reading_pane(state, lang)
    write_url(state)
