"""The reading pane: one article's facts, securities and clean text."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.ui.format import pct, plain
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState


def switch_to(symbol: str) -> None:
    current = st.session_state.get("securities", [])
    st.session_state["securities"] = [symbol] + [x for x in current if x != symbol]
    st.session_state.pop("session_pick", None)


def open_article(article_id: str) -> None:
    st.session_state["article"] = article_id


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
