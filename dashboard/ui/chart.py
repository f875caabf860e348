"""The price charts with their news markers: one per chosen security, on the same dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import streamlit as st

from dashboard.candles import RangeSummary
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


def price_header(summary: RangeSummary | None, lang: str) -> None:
    """A security's last close and its change over the range shown."""
    if summary is None:
        return
    st.caption(t("price_header", lang, symbol=summary.symbol, close=f"{summary.last_close:,.2f}",
                 date=f"{summary.last_session:%Y-%m-%d}", change=signed_pct(summary.change_pct, lang)))


def chart_view(state: ViewState, overview: pd.DataFrame, lang: str) -> Pick | None:
    """The chosen securities' candles on one date axis (small multiples when several); returns
    the security and sessions of the marker clicked last, if any."""
    gen = generation()
    rows = overview.set_index("symbol")
    ss = st.session_state
    picked: Pick | None = ss.get("pick")
    charted = []
    for symbol in state.securities:
        if rows.loc[symbol, "price_rows"] == 0:
            no_prices_notice(symbol, lang)
        elif query("range_summary", gen, symbol, state.start, state.end) is None:
            st.info(t("prices_missing_in_range", lang, symbol=symbol))
        else:
            charted.append(symbol)
    if not charted:
        return picked
    head = st.columns(len(charted) + 1, vertical_alignment="center")
    for col, symbol in zip(head, charted, strict=False):
        with col:
            price_header(query("range_summary", gen, symbol, state.start, state.end), lang)
    averages = (5, 20, 60) if head[-1].toggle(t("moving_averages", lang), key="averages") else ()
    titles = tuple(f"{sym} {rows.loc[sym, 'name']}".strip() for sym in charted)
    fig = price_figure(gen, tuple(charted), titles, state.start, state.end, lang,
                       picked.first if picked else None, averages)
    # A fresh key after each click: the pick is remembered here, and plotly's own selection
    # (which would fade every other candle) starts empty again.
    clicks = ss.get("chart_clicks", 0)
    event = st.plotly_chart(fig, key=f"chart{clicks}", on_select="rerun", selection_mode="points",
                            config=CHART_CONFIG)
    points = event["selection"]["points"] if event else []
    custom = points[0].get("customdata") if points else None
    if custom:
        values = custom if isinstance(custom, list) else [custom]
        first = date.fromisoformat(values[0])
        last = date.fromisoformat(values[1]) if len(values) > 1 and values[1] else first
        symbol = values[2] if len(values) > 2 and values[2] else charted[0]
        ss["pick"] = Pick(symbol, first, last)
        ss["chart_clicks"] = clicks + 1
        rerun_part()
    st.caption(t("click_marker", lang))
    return picked


@dataclass(frozen=True)
class Pick:
    """A clicked marker: its security and the sessions it gathers (one, or a week's, a month's)."""

    symbol: str
    first: date
    last: date
