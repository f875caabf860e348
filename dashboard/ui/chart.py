"""The price chart with its news markers."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.ui.format import failure_text
from dashboard.ui.resources import (
    generation,
    price_figure,
    query,
    settings,
)
from dashboard.ui.state import ViewState


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
