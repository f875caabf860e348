"""The related-coverage table and its filters."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState

TABLE_LIMIT = 5000


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
