"""Plotly figures: the price chart with news markers, the comparison, the average reaction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.reactions import MIN_EVENTS, AverageReaction

# Chinese trading software shows rises in red; Western software in green.
UP_DOWN = {"zh": ("#d62728", "#2ca02c"), "en": ("#2ca02c", "#d62728")}
MARKER = "#f39c12"
SELECTED = "#1f4e99"
SERIES = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
FONT = "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, Source Han Sans SC, sans-serif"


def _missing_days(dates: pd.Series) -> list[str]:
    """Calendar days between the first and last session that did not trade (for rangebreaks)."""
    if dates.empty:
        return []
    traded = set(pd.to_datetime(dates).dt.normalize())
    every = pd.date_range(min(traded), max(traded), freq="D")
    return [d.strftime("%Y-%m-%d") for d in every if d not in traded]


def _hover_lines(lines: list[str], limit: int = 8, total: int | None = None) -> str:
    """Up to ``limit`` lines, and how many more of ``total`` (default: all the lines given)."""
    total = len(lines) if total is None else total
    shown = [line if len(line) <= 70 else line[:69] + "…" for line in lines[:limit]]
    more = f"<br>+{total - len(shown)}" if total > len(shown) else ""
    return "<br>".join(shown) + more


def price_chart(prices: pd.DataFrame, markers: pd.DataFrame, *, title: str, labels: Mapping[str, str],
                lang: str = "en", selected_session: date | None = None) -> go.Figure:
    """Candlesticks with volume below; each session with articles is one marker above its
    candle, sized by how many, hovering their times, sources and headlines."""
    up, down = UP_DOWN.get(lang, UP_DOWN["en"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.76, 0.24], vertical_spacing=0.02)
    x = pd.to_datetime(prices["date"])
    fig.add_trace(go.Candlestick(
        x=x, open=prices["open"], high=prices["high"], low=prices["low"], close=prices["close"],
        increasing={"line": {"color": up}, "fillcolor": up}, decreasing={"line": {"color": down}, "fillcolor": down},
        name=labels["price"], showlegend=False), row=1, col=1)
    rising = prices["close"] >= prices["open"]
    fig.add_trace(go.Bar(x=x, y=prices["volume"], marker_color=[up if r else down for r in rising],
                         name=labels["volume"], showlegend=False, hovertemplate="%{y:,.0f}<extra></extra>"),
                  row=2, col=1)
    if not markers.empty and not prices.empty:
        by_day = prices.assign(d=x.dt.normalize()).set_index("d")
        sessions = pd.to_datetime(markers["session"])
        on_chart = sessions.isin(by_day.index)
        m = markers[on_chart.to_numpy()]
        s = sessions[on_chart]
        highs = by_day.loc[s, "high"].to_numpy()
        span = float(prices["high"].max() - prices["low"].min()) or 1.0
        counts = m["articles"].to_numpy()
        fig.add_trace(go.Scatter(
            x=s, y=highs + span * 0.06, mode="markers+text",
            marker={"size": [17 + 5 * math.log2(c) for c in counts], "color": MARKER, "symbol": "circle",
                    "line": {"width": [3 if d.date() == selected_session else 1 for d in s],
                             "color": [SELECTED if d.date() == selected_session else "white" for d in s]}},
            text=[str(c) for c in counts], textfont={"size": 11, "color": "white"},
            customdata=[[d.strftime("%Y-%m-%d")] for d in s],
            hovertext=[f"<b>{d:%Y-%m-%d}</b> · {c} {labels['articles']}<br>{_hover_lines(list(lines), total=c)}"
                       for d, c, lines in zip(s, counts, m["lines"], strict=True)],
            hoverinfo="text", name=labels["news"], showlegend=False), row=1, col=1)
    if selected_session is not None:
        fig.add_vline(x=pd.Timestamp(selected_session), line={"color": SELECTED, "width": 1, "dash": "dot"})
    fig.update_xaxes(rangebreaks=[{"values": _missing_days(prices["date"])}] if len(prices) else [],
                     rangeslider_visible=False, showgrid=False, tickformat="%m-%d\n%Y", hoverformat="%Y-%m-%d")
    fig.update_yaxes(title_text=labels["price"], row=1, col=1, gridcolor="#eee")
    fig.update_yaxes(title_text=labels["volume"], row=2, col=1, showgrid=False)
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 16}}, height=560,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, hovermode="closest",
                      font={"family": FONT}, plot_bgcolor="white", dragmode="pan",
                      hoverlabel={"font": {"family": FONT}})
    return fig


def compare_chart(perf: pd.DataFrame, sessions: pd.DataFrame, *, names: Mapping[str, str],
                  labels: Mapping[str, str]) -> go.Figure:
    """Normalized performance of several securities; articles naming more than one of them
    are stars on every line they name."""
    fig = go.Figure()
    for k, (symbol, part) in enumerate(perf.groupby("symbol", sort=False)):
        color = SERIES[k % len(SERIES)]
        x = pd.to_datetime(part["date"])
        fig.add_trace(go.Scatter(x=x, y=part["change"], mode="lines", name=names.get(symbol, symbol),
                                 line={"color": color, "width": 2},
                                 hovertemplate="%{x|%Y-%m-%d}  %{y:+.2%}<extra>" + names.get(symbol, symbol) + "</extra>"))
        mine = sessions[sessions["symbol"] == symbol]
        if mine.empty:
            continue
        level = part.assign(d=x.dt.normalize()).set_index("d")["change"]
        at = pd.to_datetime(mine["session"])
        keep = at.isin(level.index).to_numpy()
        mine, at = mine[keep], at[keep]
        shared = (mine["shared"] > 0).to_numpy()
        for flag, symbol_shape, size, col in ((False, "circle", 7, color), (True, "star", 16, MARKER)):
            pick = shared == flag
            if not pick.any():
                continue
            rows = mine[pick]
            fig.add_trace(go.Scatter(
                x=at[pick], y=level.loc[at[pick]].to_numpy(), mode="markers",
                marker={"symbol": symbol_shape, "size": size, "color": col, "line": {"color": "white", "width": 1}},
                name=labels["shared"] if flag else labels["news"], showlegend=bool(flag and k == 0),
                hovertext=[f"<b>{d:%Y-%m-%d}</b> {names.get(symbol, symbol)}<br>"
                           + _hover_lines(list(t if flag else a))
                           for d, t, a in zip(at[pick], rows["shared_titles"], rows["titles"], strict=True)],
                hoverinfo="text"))
    fig.update_yaxes(tickformat="+.0%", zeroline=True, zerolinecolor="#999", gridcolor="#eee",
                     title_text=labels["change"])
    fig.update_xaxes(showgrid=False, tickformat="%m-%d\n%Y", hoverformat="%Y-%m-%d")
    fig.update_layout(height=480, margin={"l": 10, "r": 10, "t": 30, "b": 10}, font={"family": FONT},
                      plot_bgcolor="white", legend={"orientation": "h", "y": 1.08, "x": 0},
                      hovermode="closest")
    return fig


def average_reaction_chart(result: AverageReaction, *, labels: Mapping[str, str]) -> go.Figure:
    """Mean cumulative abnormal return around day 0, with its confidence band only on the days
    at least ``MIN_EVENTS`` events contribute to (the points alone elsewhere)."""
    days = result.days
    fig = go.Figure()
    if not days.empty:
        banded = days[(days["n"] >= MIN_EVENTS) & days["low"].notna() & days["high"].notna()]
        runs = (banded["day"].diff() != 1).cumsum()  # one shape per run of consecutive days
        for k, (_, run) in enumerate(banded.groupby(runs)):
            fig.add_trace(go.Scatter(x=list(run["day"]) + list(run["day"])[::-1],
                                     y=list(run["high"]) + list(run["low"])[::-1], fill="toself",
                                     fillcolor="rgba(31,119,180,0.15)", line={"width": 0}, hoverinfo="skip",
                                     name=labels["band"], showlegend=k == 0, legendgroup="band"))
        fig.add_trace(go.Scatter(x=days["day"], y=days["caar"], mode="lines+markers", name=labels["caar"],
                                 line={"color": SERIES[0], "width": 2}, customdata=days["n"],
                                 hovertemplate="%{x}: %{y:+.2%} · %{customdata} "
                                               + labels.get("events", "events") + "<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#999", "dash": "dot"})
    fig.add_hline(y=0, line={"color": "#999", "width": 1})
    fig.update_xaxes(title_text=labels["day"], dtick=1, showgrid=False)
    fig.update_yaxes(title_text=labels["caar"], tickformat="+.1%", gridcolor="#eee")
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10}, font={"family": FONT},
                      plot_bgcolor="white", legend={"orientation": "h", "y": 1.1, "x": 0})
    return fig
