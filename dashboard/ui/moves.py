"""Big moves, with what was written before them."""

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
