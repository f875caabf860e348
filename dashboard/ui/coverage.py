"""The related-coverage table and its filters: a row per article and chosen security it names."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard.coverage import others_named
from dashboard.i18n import t
from dashboard.reactions import column, describe_reaction
from dashboard.ui.chart import Pick
from dashboard.ui.format import rerun_part, sign_colours
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState, write_url

TABLE_LIMIT = 250  # newest rows shown (the filters reach the rest): the browser draws them every rerun
DOWNLOAD_LIMIT = 200_000  # rows the CSV download holds, read only when it is clicked
UNUSUAL = 0.05
RETURNS = ["day0", "car11", "car05"]


def coverage_rows(state: ViewState, keyword: str, sources: tuple[str, ...], categories: tuple[str, ...],
                  unusual: bool, limit: int = TABLE_LIMIT, picked: Pick | None = None) -> pd.DataFrame:
    """The table's rows for the view (cached per store generation); with ``picked``, all the
    rows of that security's sessions there, however old (an article comes at most a couple of
    weeks before its session)."""
    s = settings()
    symbols, start, end = tuple(state.securities), state.start, state.end
    if picked is not None:
        symbols, start, end, limit = (picked.symbol,), picked.first - timedelta(days=21), picked.last, DOWNLOAD_LIMIT
    df = query("related_coverage", generation(), symbols, s.site_timezone, start, end, keyword, sources,
               categories, limit, UNUSUAL if unusual else None, "m1_p1", state.model)
    if picked is not None:
        sessions = pd.to_datetime(df["session"]).dt.date
        df = df[(sessions >= picked.first) & (sessions <= picked.last)].reset_index(drop=True)
    return df


def coverage_table(state: ViewState, overview: pd.DataFrame, lang: str, picked: Pick | None) -> None:
    gen = generation()
    st.subheader(t("coverage", lang))
    sources, categories = query("facets", gen, tuple(state.securities))
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    keyword = c1.text_input(t("keyword", lang), key="keyword")
    chosen_sources = c2.multiselect(t("publishers", lang), sources, key="sources", placeholder=t("any", lang))
    chosen_categories = c3.multiselect(t("categories", lang), categories, key="categories",
                                       placeholder=t("any", lang))
    unusual = c4.toggle(t("significant_only", lang, alpha=UNUSUAL), key="unusual",
                        help=t("significance_help", lang))
    df = coverage_rows(state, keyword, tuple(chosen_sources), tuple(chosen_categories), unusual, picked=picked)
    matched = len(df)
    df = df.head(TABLE_LIMIT)
    if picked is not None:
        when = f"{picked.first}" if picked.first == picked.last else f"{picked.first} … {picked.last}"
        cols = st.columns([4, 1])
        cols[0].markdown(t("session_pick", lang, session=when, n=matched) + f" · {picked.symbol}")
        if cols[1].button(t("clear", lang), key="clear_session"):
            st.session_state.pop("pick", None)
            rerun_part()
    names = dict(zip(overview["symbol"], overview["name"], strict=True))
    table = _table(df, state, names, lang)
    # The table keeps its selected row position across reruns; when the rows change, that
    # position would point at another article (or none), so the selection starts over.
    shown = (tuple(state.securities), state.start, state.end, keyword, tuple(chosen_sources),
             tuple(chosen_categories), unusual, picked, state.model)
    if st.session_state.get("coverage_shown") != shown:
        st.session_state["coverage_shown"] = shown
        st.session_state.pop("coverage_table", None)
    capped = matched >= TABLE_LIMIT
    st.caption(t("rows_shown", lang, n=matched) + (" · " + t("rows_capped", lang, n=TABLE_LIMIT) if capped else ""))
    order = ["time", "title", "source", "symbol", "others", "session", "day0", "car11", "unusual", "car05",
             "volume", "url"]
    event = st.dataframe(
        sign_colours(table, RETURNS, lang), key="coverage_table", on_select="rerun", selection_mode="single-row",
        hide_index=True, column_order=order, placeholder="—",
        width="stretch", height=min(38 + 35 * max(len(table), 1), 360),
        column_config=_columns(lang),
    )
    rows = event.selection.rows if event is not None else []
    if rows and rows[0] < len(df):
        st.session_state["article"] = df["article_id"].iloc[rows[0]]
        write_url(state)

    def everything() -> bytes:  # the whole selection, not only the rows shown
        full = df if not capped else coverage_rows(state, keyword, tuple(chosen_sources),
                                                   tuple(chosen_categories), unusual, DOWNLOAD_LIMIT, picked)
        return _table(full, state, names, lang).to_csv(index=False).encode("utf-8-sig")

    st.download_button(t("download", lang), everything,
                       file_name=f"coverage-{'-'.join(state.securities)}-{state.start}-{state.end}.csv",
                       mime="text/csv", on_click="ignore")
    s = settings()
    markets = {query("market_of", gen, sym) for sym in state.securities}
    bench = ", ".join(sorted({s.benchmarks[m] for m in markets if m in s.benchmarks})) or "—"
    st.caption(t("method", lang, bench=bench) + (" " + t("model_help", lang) if state.model == "mm" else ""))


def _table(df: pd.DataFrame, state: ViewState, names: dict[str, str], lang: str) -> pd.DataFrame:
    mm = "_mm" if state.model == "mm" else ""
    tested = [column("m1_p1", state.model), column("m1_p1", state.model, "p")]  # what the words read
    return pd.DataFrame({
        "time": pd.to_datetime(df["published"]),
        "title": df["title"],
        "source": df["source"],
        "symbol": [f"{sym} {names.get(sym, '')}".strip() for sym in df["symbol"]],
        "others": [others_named(n, sym, names) for n, sym in zip(df["named"], df["symbol"], strict=True)],
        "session": pd.to_datetime(df["session"]),
        "day0": df["day0_return"],
        "car11": df[f"car_m1_p1{mm}"],
        "unusual": [describe_reaction(dict(zip(tested, values, strict=True)), lang, "m1_p1", state.model)
                    for values in zip(*(df[c] for c in tested), strict=True)],
        "car05": df[f"car_0_p5{mm}"],
        "volume": df["volume_ratio"],
        "url": df["url"],
    })


def _columns(lang: str) -> dict[str, object]:
    return {
        "time": st.column_config.DatetimeColumn(t("col_time", lang), format="YYYY-MM-DD HH:mm"),
        "title": st.column_config.TextColumn(t("col_title", lang), width="medium"),
        "source": st.column_config.TextColumn(t("col_source", lang)),
        "symbol": st.column_config.TextColumn(t("col_security", lang)),
        "others": st.column_config.TextColumn(t("col_others", lang)),
        "session": st.column_config.DateColumn(t("col_session", lang), format="YYYY-MM-DD"),
        "day0": st.column_config.NumberColumn(t("col_day0", lang), format="percent", width="small"),
        "car11": st.column_config.NumberColumn(t("col_car11", lang), format="percent", width="small"),
        "unusual": st.column_config.TextColumn(t("col_unusual", lang), help=t("significance_help", lang)),
        "car05": st.column_config.NumberColumn(t("col_car05", lang), format="percent", width="small"),
        "volume": st.column_config.NumberColumn(t("col_volume", lang), format="%.2f", width="small"),
        "url": st.column_config.LinkColumn(t("col_link", lang), display_text=t("open_link", lang),
                                           width="small"),
    }
