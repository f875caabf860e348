"""The price charts with their news markers: one per chosen security, on the same dates."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.ui.format import failure_text, rerun_part, signed_pct
from dashboard.ui.resources import (
    generation,
    price_figure,
    query,
    settings,
)
from dashboard.ui.state import ViewState

CHART_CONFIG = {"displaylogo": False, "scrollZoom": False}  # the wheel scrolls the page, not the chart


def no_prices_notice(symbol: str, lang: str) -> None:
    problem = query("price_problem", generation(), symbol)
    lines = [t("no_prices", lang, symbol=symbol)]
    if problem:
        lines.append(t("no_prices_why", lang, reason=failure_text(problem["kind"], problem["reason"], lang)))
    else:
        lines.append(t("no_prices_never", lang))
    lines.append(t("no_prices_hosted", lang) if settings().hosted else t("no_prices_how", lang, symbol=symbol))
    st.warning("  \n".join(lines), icon=":material/signal_disconnected:")


def price_header(symbol: str, name: str, prices: pd.DataFrame, lang: str) -> None:
    """The security, its last close and its change over the range shown."""
    if prices.empty:
        return
    first, last = prices.iloc[0], prices.iloc[-1]
    change = last["adj_close"] / first["adj_close"] - 1 if first["adj_close"] else None
    st.caption(t("price_header", lang, symbol=symbol, name=name, close=f"{last['close']:,.2f}",
                 date=f"{pd.Timestamp(last['date']):%Y-%m-%d}", change=signed_pct(change, lang)))


def chart_view(state: ViewState, overview: pd.DataFrame, lang: str) -> tuple[str, date] | None:
    """A chart per chosen security; returns the (security, session) whose marker was clicked."""
    gen = generation()
    rows = overview.set_index("symbol")
    ss = st.session_state
    picked = (ss["session_symbol"], ss["session_pick"]) if ss.get("session_pick") else None
    clicks = ss.get("chart_clicks", 0)
    for k, symbol in enumerate(state.securities):
        row = rows.loc[symbol]
        name = str(row["name"])
        prices = query("price_history", gen, symbol, state.start, state.end)
        price_header(symbol, name, prices, lang)
        if row["price_rows"] == 0:
            no_prices_notice(symbol, lang)
            continue
        if prices.empty:
            st.info(t("prices_missing_in_range", lang, symbol=symbol))
            continue
        selected = picked[1] if picked and picked[0] == symbol else None
        several = len(state.securities) > 1
        fig = price_figure(gen, symbol, state.start, state.end, f"{symbol} {name}".strip(), lang, selected,
                           340 if several else 560)
        # A fresh key after each click: the session is remembered here, and plotly's own
        # selection (which would fade every other candle) starts empty again.
        key = f"chart{clicks}" if k == 0 else f"chart{clicks}-{k}"
        event = st.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points", config=CHART_CONFIG)
        points = event["selection"]["points"] if event else []
        custom = points[0].get("customdata") if points else None
        if custom:
            ss["session_pick"] = date.fromisoformat(custom[0] if isinstance(custom, list) else custom)
            ss["session_symbol"] = symbol
            ss["chart_clicks"] = clicks + 1
            rerun_part()
    st.caption(t("click_marker", lang))
    return picked
