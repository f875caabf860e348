"""Compare: normalized performance of several securities."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import figures
from dashboard.i18n import t
from dashboard.markets import benchmarks_for
from dashboard.ui.chart import no_prices_notice
from dashboard.ui.format import label_of
from dashboard.ui.resources import (
    generation,
    query,
    settings,
)
from dashboard.ui.state import ViewState


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
    label = label_of(overview)
    names = {sym: label(sym).rsplit(" (", 1)[0] for sym in state.securities}
    labels = {k: t(k, lang) for k in ("shared", "news", "change")}
    priced = set(overview.loc[overview["price_rows"] > 0, "symbol"])
    benches = tuple(b for b in benchmarks_for(state.securities, settings().benchmarks)
                    if b in priced and b not in state.securities)
    bench = query("normalized_performance", gen, benches, state.start, state.end) if benches else None
    st.plotly_chart(figures.compare_chart(perf, sessions, names=names, labels=labels, benchmarks=bench,
                                          benchmark_names={b: label(b).rsplit(" (", 1)[0] for b in benches}),
                    config={"displaylogo": False})
    st.caption(t("compare_caption", lang))
