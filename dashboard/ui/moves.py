"""Big moves of each chosen security, with what was written before them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.ui.format import label_of, pct
from dashboard.ui.reading import open_article
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState


def moves_view(state: ViewState, overview: pd.DataFrame, lang: str) -> None:
    label = label_of(overview)
    if len(state.securities) == 1:
        security_moves(state.securities[0], state, label(state.securities[0]).rsplit(" (", 1)[0], lang)
        return
    for symbol, tab in zip(state.securities, st.tabs([label(sym).rsplit(" (", 1)[0] for sym in state.securities]),
                           strict=True):
        with tab:
            security_moves(symbol, state, label(symbol).rsplit(" (", 1)[0], lang)


def security_moves(symbol: str, state: ViewState, name: str, lang: str) -> None:
    s = settings()
    moves = query("largest_moves", generation(), symbol, state.start, state.end, 10, 1, s.site_timezone,
                  state.model)
    st.caption(t("moves_caption", lang, name=name))
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
                st.button(f"{a['published']} · {a['source'] or ''} · {a['title']}",
                          key=f"move-{symbol}-{r.date}-{a['article_id']}",
                          on_click=open_article, args=(a["article_id"],), type="tertiary")
