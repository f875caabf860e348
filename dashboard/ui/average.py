"""The average reaction around day 0, pooled over every chosen security."""

from __future__ import annotations

import streamlit as st

from dashboard import figures
from dashboard.i18n import average_sentences, t
from dashboard.ui.coverage import coverage_rows
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState

EVENTS_LIMIT = 20_000  # (article, security) pairs averaged; the newest when there are more


def average_view(state: ViewState, lang: str) -> None:
    s = settings()
    gen = generation()
    main_only = st.toggle(t("main_only", lang), key="main_only")
    df = coverage_rows(state, st.session_state.get("keyword", ""), tuple(st.session_state.get("sources", [])),
                       tuple(st.session_state.get("categories", [])), False, EVENTS_LIMIT)
    if main_only:
        df = df[df["how"] == "embed"]
    events = df.dropna(subset=["session"])[["symbol", "session"]]
    result = query("average_reaction", gen, events.reset_index(drop=True), 5, 10, 0.95, state.model)
    markets = {query("market_of", gen, sym) for sym in state.securities}
    bench = ", ".join(sorted({s.benchmarks[m] for m in markets if m in s.benchmarks})) or "—"
    if result.empty:
        st.info(t("average_none", lang))
        return
    labels = {k: t(k, lang) for k in ("caar", "band", "day", "events")}
    st.plotly_chart(figures.average_reaction_chart(result, labels=labels), config={"displaylogo": False})
    if len(state.securities) > 1:
        st.caption(t("average_pooled", lang, symbols=", ".join(state.securities)))
    st.caption(t("average_caption", lang, bench=bench, n=result.events), help=t("significance_help", lang))
    for line in average_sentences(result, lang):
        st.caption(line)
