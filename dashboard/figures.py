"""Plotly figures: the price chart with news markers (one security, or several sharing the date axis),
the comparison with its benchmarks, the average reaction; returns coloured by sign."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
import plotly.graph_objects as go

from dashboard.candles import calendar_gaps, markers_for
from dashboard.i18n import t
from dashboard.reactions import MIN_EVENTS, AverageReaction

Trace = dict[str, object]  # one trace's properties, "type" included

# Chinese trading software shows rises in red; Western software in green.
UP_DOWN = {"zh": ("#d62728", "#2ca02c"), "en": ("#2ca02c", "#d62728")}
MARKER = "#f39c12"
SELECTED = "#1f4e99"
SERIES = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
MA_COLOURS = ["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]
MA_COLUMN = re.compile(r"ma\d+")
BENCHMARK_LINE = "#555555"
FONT = "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, Source Han Sans SC, sans-serif"


def _hover_lines(lines: list[str], limit: int = 8, total: int | None = None) -> str:
    """Up to ``limit`` lines, and how many more of ``total`` (default: all the lines given)."""
    total = len(lines) if total is None else total
    shown = [line if len(line) <= 70 else line[:69] + "…" for line in lines[:limit]]
    more = f"<br>+{total - len(shown)}" if total > len(shown) else ""
    return "<br>".join(shown) + more


def article_count(n: int, lang: str) -> str:
    """"1 article", "3 articles", "3 篇"."""
    return t("n_articles", lang, n=int(n))


def sign_colour(value: float | None, lang: str) -> str:
    """The colour of a return's sign as the candles draw it (red up in 中文, green up in
    English); "" for zero or no value."""
    if value is None or not math.isfinite(value) or value == 0:
        return ""
    up, down = UP_DOWN.get(lang, UP_DOWN["en"])
    return up if value > 0 else down


# readable hover boxes: dark text on white, framed in the trace's colour
def _hover_box(border: str) -> dict[str, object]:
    return {"bgcolor": "white", "bordercolor": border, "align": "left",
            "font": {"family": FONT, "color": "#1a1a1a", "size": 13}}


def _as_candles(prices: pd.DataFrame) -> pd.DataFrame:
    """A ``candles()`` frame, or daily prices (``coverage.price_history``) seen as one."""
    if "interval" in prices and "first_session" in prices:
        return prices
    days = pd.to_datetime(prices["date"])
    return prices.assign(date=days, first_session=days, last_session=days, sessions=1, interval="day")


def _as_markers(markers: pd.DataFrame, candles: pd.DataFrame, min_gap: int | None) -> pd.DataFrame:
    if "first_session" in markers:
        return markers
    return markers_for(candles, markers, min_gap)


def _period_text(first: pd.Timestamp, last: pd.Timestamp) -> str:
    if first == last:
        return f"{first:%Y-%m-%d}"
    return f"{first:%Y-%m-%d} – {last:%m-%d}" if first.year == last.year else \
        f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"


def _marker_hover(row: pd.Series, lang: str, limit: int = 8) -> str:
    """The marker's sessions and how many articles, then their headlines, at most ``limit``
    lines in all (session headings included); the rest are counted."""
    when = _period_text(row["first_session"], row["last_session"])
    head = f"<b>{when}</b> · {article_count(row['articles'], lang)}"
    if len(row["sessions"]) == 1:
        return head + "<br>" + _hover_lines(list(row["lines"][0]), limit, total=int(row["counts"][0]))
    # Headings for up to half the budget's sessions, the other lines shared out in turn.
    listed = min(len(row["sessions"]), max(1, limit // 2))
    parts = [list(p) for p in row["lines"][:listed]]
    take, room = [0] * listed, limit - listed
    while room > 0 and any(take[i] < len(parts[i]) for i in range(listed)):
        for i in range(listed):
            if room > 0 and take[i] < len(parts[i]):
                take[i], room = take[i] + 1, room - 1
    out: list[str] = []
    for session, n, part, k in zip(row["sessions"], row["counts"], parts, take, strict=False):
        out.append(f"<b>{pd.Timestamp(session):%Y-%m-%d}</b> · {article_count(n, lang)}")
        out += [line if len(line) <= 70 else line[:69] + "…" for line in part[:k]]
    left = int(row["articles"]) - sum(take)
    return head + "<br>" + "<br>".join(out) + (f"<br>+{left}" if left > 0 else "")


def _holds(row: pd.Series, day: date | None) -> bool:
    return day is not None and row["first_session"].date() <= day <= row["last_session"].date()


def _price_format(candles: pd.DataFrame) -> str:
    low = float(candles["low"].min()) if len(candles) else 1.0
    return ",.3f" if low < 1 else ",.2f"


def _days(values: pd.Series) -> list[str]:
    """Dates as "YYYY-MM-DD": a third of the bytes of full timestamps in the chart's JSON."""
    return list(pd.to_datetime(values).dt.strftime("%Y-%m-%d"))


def _ref(kind: str, row: int) -> str:
    """A row's axis reference: "x", "x2", ... (or "y", "y2", ...)."""
    return kind if row == 1 else f"{kind}{row}"


def _key(ref: str) -> str:
    """Its layout key: "x2" -> "xaxis2"."""
    return f"{ref[0]}axis{ref[1:]}"


def _candle_traces(c: pd.DataFrame, *, row: int, volume_row: int | None, lang: str,
                   labels: Mapping[str, str], legend: bool) -> list[Trace]:
    """The candles and their moving averages on ``row``, the volume bars on ``volume_row``."""
    up, down = UP_DOWN.get(lang, UP_DOWN["en"])
    fmt = _price_format(c)
    ohlc = t("ohlc", lang, o=f"%{{open:{fmt}}}", h=f"%{{high:{fmt}}}", l=f"%{{low:{fmt}}}",
             c=f"%{{close:{fmt}}}")
    x = _days(c["date"])
    axes = {"xaxis": _ref("x", row), "yaxis": _ref("y", row)}
    daily = c["interval"].iloc[0] == "day" if len(c) else True
    if daily:  # the date is the candle's x
        when: dict[str, object] = {"hovertemplate": f"<b>%{{x|%Y-%m-%d}}</b><br>{ohlc}<extra></extra>"}
    else:
        spans = zip(c["first_session"], c["last_session"], c["sessions"], strict=True)
        when = {"text": [_period_text(a, b) + f" · {t('n_sessions', lang, n=int(n))}" for a, b, n in spans],
                "hovertemplate": f"<b>%{{text}}</b><br>{ohlc}<extra></extra>"}
    out: list[Trace] = [dict(
        type="candlestick", x=x, **{k: c[k].astype("float32") for k in ("open", "high", "low", "close")},
        increasing={"line": {"color": up}, "fillcolor": up},
        decreasing={"line": {"color": down}, "fillcolor": down}, **when,
        hoverlabel=_hover_box("#888"), name=labels["price"], showlegend=False, **axes)]
    for k, col in enumerate(sorted((col for col in c.columns if MA_COLUMN.fullmatch(str(col))),
                                   key=lambda col: int(str(col)[2:]))):
        out.append(dict(
            type="scatter", x=x, y=c[col].astype("float32"), mode="lines", name=f"MA{str(col)[2:]}",
            connectgaps=False, line={"color": MA_COLOURS[k % len(MA_COLOURS)], "width": 1.2}, legendgroup=str(col),
            showlegend=legend, hovertemplate=f"MA{str(col)[2:]} %{{y:{fmt}}}<extra></extra>",
            hoverlabel=_hover_box(MA_COLOURS[k % len(MA_COLOURS)]), **axes))
    if volume_row is not None:
        # Colours, not numbers on a colour scale: plotly.js warns on the console for every
        # numeric bar colour (typed arrays included), which cost a redraw a third of a second.
        rising = (c["close"] >= c["open"]).to_numpy()
        out.append(dict(type="bar", x=x, y=c["volume"], name=labels["volume"], showlegend=False,
                          marker={"color": [up if r else down for r in rising], "line": {"width": 0}},
                          hovertemplate="%{y:,.0f}<extra></extra>", hoverlabel=_hover_box("#888"),
                          xaxis=_ref("x", volume_row), yaxis=_ref("y", volume_row)))
    return out


def _marker_trace(c: pd.DataFrame, m: pd.DataFrame, *, row: int, lang: str, labels: Mapping[str, str],
                  selected: date | None, symbol: str) -> Trace | None:
    if m.empty or c.empty:
        return None
    span = float(c["high"].max() - c["low"].min()) or 1.0
    counts = m["articles"].to_numpy()
    picked = [_holds(r, selected) for _, r in m.iterrows()]
    return dict(
        type="scatter", x=_days(m["date"]), y=m["high"].to_numpy() + span * 0.06, mode="markers+text",
        marker={"size": [17 + 5 * math.log2(n) for n in counts], "color": MARKER, "symbol": "circle",
                "line": {"width": [3 if p else 1 for p in picked],
                         "color": [SELECTED if p else "white" for p in picked]}},
        text=[str(n) for n in counts], textfont={"size": 11, "color": "white"},
        customdata=[[f"{a:%Y-%m-%d}", f"{b:%Y-%m-%d}", symbol]
                    for a, b in zip(m["first_session"], m["last_session"], strict=True)],
        hovertext=[_marker_hover(r, lang) for _, r in m.iterrows()], hoverinfo="text",
        hoverlabel=_hover_box(MARKER), name=labels["news"], showlegend=False,
        xaxis=_ref("x", row), yaxis=_ref("y", row))


def _selected_x(c: pd.DataFrame, day: date | None) -> str | None:
    """Where a picked session is on the axis: itself, or the candle holding it."""
    if day is None or c.empty:
        return None
    if c["interval"].iloc[0] == "day":
        return f"{day:%Y-%m-%d}"
    holding = c[(c["first_session"] <= pd.Timestamp(day)) & (c["last_session"] >= pd.Timestamp(day))]
    return f"{holding['date'].iloc[0]:%Y-%m-%d}" if len(holding) else None


def _session_line(x: str, row: int, y0: float, y1: float) -> dict[str, object]:
    return {"type": "line", "x0": x, "x1": x, "xref": _ref("x", row), "y0": y0, "y1": y1, "yref": "paper",
            "line": {"color": SELECTED, "width": 1, "dash": "dot"}}


def _date_axis(frames: Sequence[pd.DataFrame]) -> dict[str, object]:
    """Daily candles leave out the days none of them traded (weekends as a bound, the other
    days as values); weekly and monthly candles are evenly spaced already."""
    frames = [f for f in frames if len(f)]
    interval = frames[0]["interval"].iloc[0] if frames else "day"
    breaks: list[dict[str, object]] = []
    if frames and all(f["interval"].iloc[0] == "day" for f in frames):
        gaps = calendar_gaps(pd.concat([f[["date"]] for f in frames]))
        breaks = [{"bounds": ["sat", "mon"]}] + ([{"values": gaps}] if gaps else [])
    tickformat = {"day": "%m-%d\n%Y", "week": "%m-%d\n%Y", "month": "%Y-%m"}[interval]
    return {"type": "date", "rangebreaks": breaks, "rangeslider": {"visible": False}, "showgrid": False,
            "tickformat": tickformat, "hoverformat": "%Y-%m-%d"}


# Fixed margins instead of plotly's automargin (which Streamlit's theme turns on): automargin
# measures the tick labels after a first draw and then draws the whole chart again, two to
# three times the drawing time in the browser. The room fits six-character tick labels
# ("0.0125", "12.5k", "+120%"), an axis title beside them, and two-line date ticks below.
TICKS_PX, TITLE_PX, DATES_PX = 52, 26, 48
TITLE_STANDOFF = 6


def _margins(*, titled: bool, top: int) -> dict[str, int]:
    """Room for the tick labels, and for a y axis title when ``titled``."""
    return {"l": TICKS_PX + (TITLE_PX if titled else 0), "r": 16, "t": top, "b": DATES_PX}


def _fixed_axis(axis: Mapping[str, object]) -> dict[str, object]:
    title = axis.get("title")
    more = {"title": {**title, "standoff": TITLE_STANDOFF}} if isinstance(title, dict) else {}
    return {**axis, "automargin": False, **more}


def _fix_margins(fig: go.Figure, top: int) -> None:
    """The same for a figure built by plotly's per-call updates (one x and one titled y axis)."""
    fig.update_xaxes(automargin=False, title_standoff=TITLE_STANDOFF)
    fig.update_yaxes(automargin=False, title_standoff=TITLE_STANDOFF)
    fig.update_layout(margin=_margins(titled=True, top=top))


def _figure(data: list[Trace], axes: dict[str, dict[str, object]], *, title: str | None, height: int,
            legend: bool, top: int | None = None, **layout: object) -> go.Figure:
    """One figure from its traces and axes, built at once (plotly's per-call updates cost
    several times more) and not validated: checking every property of every trace took more
    than half of a chart's build (the tests validate what each builder makes)."""
    titled = any(k.startswith("yaxis") and a.get("title") for k, a in axes.items())
    margin = _margins(titled=titled, top=top if top is not None else 56 if legend else 40 if title else 24)
    return go.Figure(data=data, _validate=False, layout={
        **{k: _fixed_axis(a) for k, a in axes.items()},
        "title": {"text": title, "x": 0, "font": {"size": 16}} if title else {}, "height": height,
        "margin": margin, "hovermode": "closest", "font": {"family": FONT}, "plot_bgcolor": "white",
        "dragmode": "pan", "hoverlabel": {"font": {"family": FONT}}, "showlegend": legend,
        # above the plot, right, below where the mode bar shows on hover
        "legend": {"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        **layout})


def _has_averages(frames: Sequence[pd.DataFrame]) -> bool:
    return any(MA_COLUMN.fullmatch(str(col)) for f in frames for col in f.columns)


def price_chart(prices: pd.DataFrame, markers: pd.DataFrame, *, title: str, labels: Mapping[str, str],
                lang: str = "en", selected_session: date | None = None, volume: bool = True,
                symbol: str = "", min_gap: int | None = None) -> go.Figure:
    """Candlesticks (of ``candles.candles``, any interval, or daily ``price_history`` rows) with
    their ``ma<N>`` columns as lines and the volume below; the news markers above the candles
    holding their sessions (``coverage.session_markers``, mapped and merged by
    ``candles.markers_for``; or already mapped), sized by how many articles, hovering the
    sessions, times, sources and headlines. A marker's customdata is [first session, last
    session, ``symbol``]."""
    c = _as_candles(prices)
    legend = _has_averages([c])
    data = _candle_traces(c, row=1, volume_row=2 if volume else None, lang=lang, labels=labels, legend=legend)
    marker = _marker_trace(c, _as_markers(markers, c, min_gap), row=1, lang=lang, labels=labels,
                           selected=selected_session, symbol=symbol)
    data += [marker] if marker is not None else []
    x = _date_axis([c])
    price = {"gridcolor": "#eee", "title": {"text": labels["price"]}}
    if volume:
        axes = {"xaxis": {**x, "anchor": "y", "domain": [0, 1], "showticklabels": False},
                "xaxis2": {**x, "anchor": "y2", "domain": [0, 1], "matches": "x"},
                "yaxis": {**price, "anchor": "x", "domain": [0.255, 1]},
                "yaxis2": {"anchor": "x2", "domain": [0, 0.235], "showgrid": False,
                           "title": {"text": labels["volume"]}}}
    else:
        axes = {"xaxis": {**x, "anchor": "y", "domain": [0, 1]},
                "yaxis": {**price, "anchor": "x", "domain": [0, 1]}}
    at = _selected_x(c, selected_session)
    return _figure(data, axes, title=title, height=560 if volume else 460, legend=legend,
                   shapes=[_session_line(at, 1, 0, 1)] if at is not None else [])


@dataclass(frozen=True)
class Panel:
    """One security's row of ``price_charts``: its candles and its session markers."""

    symbol: str
    title: str
    candles: pd.DataFrame
    markers: pd.DataFrame  # coverage.session_markers, or candles.markers_for's result


def price_charts(panels: Sequence[Panel], *, labels: Mapping[str, str], lang: str = "en",
                 volume: bool = False, selected_session: date | None = None,
                 min_gap: int | None = None) -> go.Figure:
    """Small multiples: one row of candles per security (2-6 read well), sharing the date
    axis, each titled with its symbol and name and marked with its own news; volume below each
    row when asked. The candles should share an interval (``candles.candles_many`` or
    ``resolve_interval`` once for all)."""
    n = len(panels)
    if n == 0:
        return go.Figure()
    per = 2 if volume else 1
    frames = [_as_candles(p.candles) for p in panels]
    legend = _has_averages(frames)
    height = (250 if volume else 200) * n + 70
    # Each security a block: its title, its candles, its volume just below; blocks apart.
    plot = height - 70  # about the plot area's height in px, margins and tick labels aside
    title, gap, block = 26 / plot, 4 / plot, 1 / n
    x = _date_axis(frames)
    last = n * per
    data: list[Trace] = []
    axes: dict[str, dict[str, object]] = {}
    notes, shapes = [], []
    for k, (p, c) in enumerate(zip(panels, frames, strict=True)):
        row = k * per + 1
        data += _candle_traces(c, row=row, volume_row=row + 1 if volume else None, lang=lang, labels=labels,
                               legend=legend and k == 0)
        marker = _marker_trace(c, _as_markers(p.markers, c, min_gap), row=row, lang=lang, labels=labels,
                               selected=selected_session, symbol=p.symbol)
        data += [marker] if marker is not None else []
        top, bottom = 1 - k * block - title, max(0.0, 1 - (k + 1) * block)
        split = bottom + 0.22 * (top - bottom) if volume else bottom
        axes[_key(_ref("y", row))] = {"anchor": _ref("x", row), "gridcolor": "#eee",
                                      "domain": [split + (gap if volume else 0), top]}
        if volume:
            axes[_key(_ref("y", row + 1))] = {"anchor": _ref("x", row + 1), "showgrid": False,
                                              "showticklabels": False, "domain": [bottom, split]}
        notes.append({"text": p.title, "x": 0, "y": top, "xref": "paper", "yref": "paper", "xanchor": "left",
                      "yanchor": "bottom", "showarrow": False, "font": {"size": 13}})
        at = _selected_x(c, selected_session)
        if at is not None:
            shapes.append(_session_line(at, row, bottom, top))
    for r in range(1, last + 1):
        axes[_key(_ref("x", r))] = {**x, "anchor": _ref("y", r), "domain": [0, 1],
                                    "showticklabels": r == last, **({"matches": "x"} if r > 1 else {})}
    return _figure(data, axes, title=None, height=height, legend=legend, top=None if legend else 16,
                   annotations=notes, shapes=shapes)


def compare_chart(perf: pd.DataFrame, sessions: pd.DataFrame, *, names: Mapping[str, str],
                  labels: Mapping[str, str], benchmarks: pd.DataFrame | None = None,
                  benchmark_names: Mapping[str, str] | None = None) -> go.Figure:
    """Normalized performance of several securities; articles naming more than one of them
    are stars on every line they name. ``benchmarks`` (``coverage.normalized_performance`` of
    the compared markets' indices, ``markets.benchmarks_for``) are dashed grey lines labelled
    with their symbol and name (``benchmark_names``), e.g. "^HSI 恒生指数"."""
    fig = go.Figure()
    dashes = ["dash", "dot", "dashdot", "longdash"]
    bench = benchmarks if benchmarks is not None else pd.DataFrame({"symbol": [], "date": [], "change": []})
    for k, (symbol, part) in enumerate(bench.groupby("symbol", sort=False)):
        label = f"{symbol} {(benchmark_names or {}).get(symbol, '')}".strip()
        x = pd.to_datetime(part["date"])
        fig.add_trace(go.Scatter(
            x=x, y=part["change"], mode="lines+text", name=label,
            line={"color": BENCHMARK_LINE, "width": 1.5, "dash": dashes[k % len(dashes)]},
            text=[""] * (len(part) - 1) + [label], textposition="top left",
            textfont={"color": BENCHMARK_LINE, "size": 11}, legendgroup="benchmark", legendrank=2000,
            hovertemplate="%{x|%Y-%m-%d}  %{y:+.2%}<extra>" + label + "</extra>"))
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
                           + _hover_lines(list(ts if flag else a))
                           for d, ts, a in zip(at[pick], rows["shared_titles"], rows["titles"], strict=True)],
                hoverinfo="text"))
    fig.update_yaxes(tickformat="+.0%", zeroline=True, zerolinecolor="#999", gridcolor="#eee",
                     title_text=labels["change"])
    fig.update_xaxes(showgrid=False, tickformat="%m-%d\n%Y", hoverformat="%Y-%m-%d")
    fig.update_layout(height=480, font={"family": FONT}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": 1.08, "x": 0}, hovermode="closest")
    _fix_margins(fig, top=30)
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
    fig.update_layout(height=420, font={"family": FONT}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": 1.1, "x": 0})
    _fix_margins(fig, top=30)
    return fig
