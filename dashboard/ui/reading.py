"""The reading pane: one article's facts, securities and clean text."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.reactions import describe_reaction
from dashboard.ui.format import pct, plain
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.sidebar import switch_to
from dashboard.ui.state import ViewState


def open_article(article_id: str) -> None:
    st.session_state["article"] = article_id


def reading_pane(state: ViewState, lang: str, stacked: bool = False) -> None:
    """The chosen article: its facts and securities beside its clean text (never raw HTML, and
    plain text: a post's words are shown as written, never read as markup)."""
    article_id = st.session_state.get("article") or state.article
    if not article_id:
        st.caption(t("pick_article_moves" if stacked else "pick_article", lang))
        return
    s = settings()
    art = query("article", generation(), article_id, s.site_timezone)
    if art is None:
        st.info(t("unknown_article", lang, value=article_id))
        return
    st.subheader(t("reading", lang))
    facts, text = (st.container(), st.container()) if stacked else st.columns([2, 3], gap="large")
    with facts:
        article_facts(art, state, lang)
    paragraphs = [p for p in [art["digest"] or "", *art["text"].split("\n")] if p]
    with text, st.container(border=True, height=460):
        st.text("\n\n".join(paragraphs))


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
        if st.session_state.pop("switched", False):
            st.rerun()  # the whole page: the pickers and the charts follow
        chosen = [sym for sym in state.securities if sym in set(secs["symbol"])] or list(secs["symbol"][:1])
        for sym in chosen:  # the reaction of each charted security the article names
            reaction_facts(secs[secs["symbol"] == sym].iloc[0], state, lang)
    if art["url"]:
        st.link_button(t("original", lang), art["url"], icon=":material/open_in_new:")
    else:
        st.caption(t("no_link", lang))


def reaction_facts(r: pd.Series, state: ViewState, lang: str) -> None:
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
    st.caption(describe_reaction(r.to_dict(), lang, "m1_p1", state.model), help=t("significance_help", lang))
