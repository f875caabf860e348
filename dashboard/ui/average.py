"""The average reaction around day 0."""

from __future__ import annotations

import streamlit as st

from dashboard import figures
from dashboard.i18n import average_sentences, t
from dashboard.ui.coverage import TABLE_LIMIT
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState


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
    result = query("average_reaction", gen, events.reset_index(drop=True), 5, 10, 0.95, state.model)
    bench = s.benchmarks.get(str(query("market_of", gen, state.securities[0])), "")
    if result.empty:
        st.info(t("average_none", lang))
        return
    labels = {k: t(k, lang) for k in ("caar", "band", "day", "events")}
    st.plotly_chart(figures.average_reaction_chart(result, labels=labels), config={"displaylogo": False})
    st.caption(t("average_caption", lang, bench=bench, n=result.events))
    for line in average_sentences(result, lang):
        st.caption(line)
