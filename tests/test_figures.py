"""The figures' traces, read from their JSON as the browser gets it, on real prices and the seed posts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import candles as C
from dashboard import coverage, figures, markets
from dashboard.config import DEFAULT_BENCHMARKS
from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.store import Store
from tests.conftest import SHARED
from tests.test_app import _plain

SITE_TZ = "Asia/Shanghai"
HK = ("3690.HK", "1024.HK", "0700.HK", "9988.HK", "0005.HK")
LABELS = {"price": "Price", "volume": "Volume", "articles": "articles", "news": "News",
          "shared": "Names several of them", "change": "Change since start"}


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not (SHARED / "prices").exists() or not (SHARED / "posts" / "seeds").exists():
        pytest.skip(f"real data not available: {SHARED} is absent")
    store = Store(Path(tmp_path_factory.mktemp("figures")) / "store.duckdb")
    ingest_folder(store, SHARED / "posts" / "seeds")
    files = [f"hsi-constituents/{s}.csv" for s in HK] + [f"download-format/{s}.csv" for s in ("^HSI", "AAPL")]
    for f in files:
        import_csv(store, SHARED / "prices" / f)
    with store.read() as c:
        yield c


def spec(fig: go.Figure) -> dict:
    return _plain(json.loads(fig.to_json()))  # type: ignore[return-value]


def traces(d: dict, kind: str, mode: str | None = None) -> list[dict]:
    return [t for t in d["data"]
            if t.get("type", "scatter") == kind and (mode is None or t.get("mode") == mode)]


def chart(con, start: date | None, end: date | None, interval: str = "auto", mas=(), lang: str = "en",
          **kw) -> tuple[dict, pd.DataFrame]:  # type: ignore[no-untyped-def]
    c = C.candles(con, "3690.HK", start, end, interval, mas)
    m = coverage.session_markers(con, "3690.HK", start, end, SITE_TZ)
    return spec(figures.price_chart(c, m, title="3690.HK 美团-W", labels=LABELS, lang=lang,
                                    symbol="3690.HK", **kw)), c


def luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour.lstrip("#")[k:k + 2], 16) / 255 for k in (0, 2, 4)]
    lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_weekly_chart_candles_averages_and_one_marker_for_the_seed_week(con) -> None:
    d, c = chart(con, date(2021, 6, 1), date(2022, 6, 30), "week", mas=(5, 20))
    (candle,) = traces(d, "candlestick")
    assert len(candle["x"]) == len(c) and candle["x"][0] == "2021-05-31"  # the Monday of the first week
    np.testing.assert_allclose(candle["close"], c["close"], rtol=1e-6)
    assert "2021-12-28 – 12-31 · 4 sessions" in candle["text"]  # the holiday week (27th closed)
    assert d["layout"]["xaxis"].get("rangebreaks", []) == []  # weekly candles are evenly spaced already
    ma5, ma20 = (next(t for t in d["data"] if t.get("name") == f"MA{n}") for n in (5, 20))
    np.testing.assert_allclose(ma20["y"], c["ma20"], rtol=1e-6)
    assert not any(np.isnan(ma5["y"]))
    (bar,) = traces(d, "bar")
    assert len(bar["x"]) == len(c)
    (news,) = traces(d, "scatter", "markers+text")
    assert news["x"] == ["2021-12-27"] and news["text"] == ["2"]
    assert news["customdata"] == [["2021-12-28", "2021-12-29", "3690.HK"]]
    hover = news["hovertext"][0]
    assert hover.startswith("<b>2021-12-28 – 12-29</b> · 2 articles")
    assert "<b>2021-12-28</b> · 1 article<br>" in hover and "牵手美团实现互联互通" in hover


def test_daily_chart_cuts_weekends_and_holidays_and_counts_articles_in_words(con) -> None:
    d, c = chart(con, date(2021, 12, 1), date(2021, 12, 31), "day")
    assert d["layout"]["xaxis"]["rangebreaks"] == [{"bounds": ["sat", "mon"]}, {"values": ["2021-12-27"]}]
    (news,) = traces(d, "scatter", "markers+text")
    assert news["x"] == ["2021-12-28", "2021-12-29"] and news["text"] == ["1", "1"]
    assert [h.split("<br>")[0] for h in news["hovertext"]] == ["<b>2021-12-28</b> · 1 article",
                                                               "<b>2021-12-29</b> · 1 article"]
    zh, _ = chart(con, date(2021, 10, 1), date(2022, 3, 31), "week", lang="zh")
    (news,) = traces(zh, "scatter", "markers+text")
    assert news["hovertext"][0].startswith("<b>2021-12-28 – 12-29</b> · 2 篇")
    (candle,) = traces(zh, "candlestick")
    assert "开" in candle["hovertemplate"] and "收" in candle["hovertemplate"]
    assert candle["increasing"]["line"]["color"] == figures.UP_DOWN["zh"][0] == "#d62728"


def test_hover_boxes_are_readable(con) -> None:
    d, _ = chart(con, date(2021, 12, 1), date(2021, 12, 31), "day")
    for trace in traces(d, "scatter", "markers+text") + traces(d, "candlestick"):
        box = trace["hoverlabel"]
        assert contrast(box["font"]["color"], box["bgcolor"] if box["bgcolor"] != "white" else "#ffffff") >= 7


def test_a_long_daily_range_merges_close_markers(con) -> None:
    d, c = chart(con, date(2021, 1, 1), date(2021, 12, 31), "day")
    (news,) = traces(d, "scatter", "markers+text")
    assert len(c) == 247 and news["text"] == ["2"] and news["x"] == ["2021-12-28"]
    assert news["customdata"] == [["2021-12-28", "2021-12-29", "3690.HK"]]


def test_the_picked_session_is_drawn_on_its_candle(con) -> None:
    d, _ = chart(con, date(2021, 10, 1), date(2022, 3, 31), "week", selected_session=date(2021, 12, 29))
    (news,) = traces(d, "scatter", "markers+text")
    assert news["marker"]["line"]["width"] == [3]
    assert {line["x0"][:10] for line in d["layout"]["shapes"]} == {"2021-12-27"}  # the week holding the 29th
    d, _ = chart(con, date(2021, 12, 1), date(2021, 12, 31), "day", selected_session=date(2021, 12, 29))
    (news,) = traces(d, "scatter", "markers+text")
    assert news["marker"]["line"]["width"] == [1, 3]
    assert d["layout"]["shapes"][0]["x0"][:10] == "2021-12-29"


def test_daily_price_rows_still_chart_as_before(con) -> None:
    """What the app passes today: coverage.price_history and coverage.session_markers."""
    prices = coverage.price_history(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31))
    markers = coverage.session_markers(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31), SITE_TZ)
    d = spec(figures.price_chart(prices, markers, title="t", labels=LABELS))
    (candle,) = traces(d, "candlestick")
    assert candle["x"][0] == "2021-12-01" and candle["x"][-1] == "2021-12-31"
    (news,) = traces(d, "scatter", "markers+text")
    assert news["customdata"] == [["2021-12-28", "2021-12-28", ""], ["2021-12-29", "2021-12-29", ""]]
    assert not [t for t in d["data"] if str(t.get("name", "")).startswith("MA")]


def test_volume_is_optional(con) -> None:
    d, _ = chart(con, date(2021, 12, 1), date(2021, 12, 31), "day", volume=False)
    assert not traces(d, "bar") and "yaxis2" not in d["layout"]


def test_five_years_auto_stay_small(con) -> None:
    auto, c = chart(con, date(2020, 1, 1), date(2025, 5, 22), mas=(5, 20, 60))
    daily, days = chart(con, date(2020, 1, 1), date(2025, 5, 22), "day", mas=(5, 20, 60))
    assert set(c["interval"]) == {"month"} and len(c) <= 66 and len(days) > 1300
    assert len(json.dumps(auto)) < 40_000 < len(json.dumps(daily))
    # daily: weekends are one bound, not ~560 listed days
    values = next(b for b in daily["layout"]["xaxis"]["rangebreaks"] if "values" in b)["values"]
    assert len(values) < 100


def panels(con, symbols, start, end, interval="auto", mas=()):  # type: ignore[no-untyped-def]
    names = coverage.securities_overview(con).set_index("symbol")["name"]
    frames = C.candles_many(con, symbols, start, end, interval, mas)
    return [figures.Panel(s, f"{s} {names.get(s, '')}".strip(), frames[frames["symbol"] == s],
                          coverage.session_markers(con, s, start, end, SITE_TZ)) for s in symbols]


def test_small_multiples_share_the_date_axis(con) -> None:
    rows = panels(con, ["3690.HK", "1024.HK", "^HSI"], date(2021, 6, 1), date(2022, 6, 30), "week", mas=(20,))
    d = spec(figures.price_charts(rows, labels=LABELS))
    candles = traces(d, "candlestick")
    assert [t["xaxis"] for t in candles] == ["x", "x2", "x3"]
    assert d["layout"]["xaxis2"]["matches"] == d["layout"]["xaxis3"]["matches"] == "x"  # one date axis
    assert [d["layout"][k]["showticklabels"] for k in ("xaxis", "xaxis2", "xaxis3")] == [False, False, True]
    tops = [d["layout"][k]["domain"][1] for k in ("yaxis", "yaxis2", "yaxis3")]
    assert tops == sorted(tops, reverse=True) and tops[0] < 1  # top to bottom, each below its title
    assert [a["y"] for a in d["layout"]["annotations"]] == tops
    titles = [a["text"] for a in d["layout"]["annotations"]]
    assert titles == ["3690.HK 美团-W", "1024.HK 快手-W", "^HSI 恒生指数"]
    assert all(len(t["x"]) == len(rows[k].candles) for k, t in enumerate(candles))
    assert all(t["x"][0] == "2021-05-31" and "sessions" in t["text"][0] for t in candles)
    news = traces(d, "scatter", "markers+text")
    assert [t["customdata"] for t in news] == [[["2021-12-28", "2021-12-29", "3690.HK"]],
                                               [["2021-12-28", "2021-12-29", "1024.HK"]]]
    assert [t["yaxis"] for t in news] == ["y", "y2"]
    assert not traces(d, "bar")
    ma = [t for t in d["data"] if t.get("name") == "MA20"]
    assert len(ma) == 3 and [t["showlegend"] for t in ma] == [True, False, False]


def test_small_multiples_of_six_with_volume(con) -> None:
    symbols = list(HK) + ["^HSI"]
    rows = panels(con, symbols, date(2021, 12, 1), date(2021, 12, 31))
    d = spec(figures.price_charts(rows, labels=LABELS, volume=True, selected_session=date(2021, 12, 29)))
    assert len(traces(d, "candlestick")) == 6 and len(traces(d, "bar")) == 6
    assert [t["yaxis"] for t in traces(d, "bar")] == ["y2", "y4", "y6", "y8", "y10", "y12"]
    assert [a["text"] for a in d["layout"]["annotations"] if a["text"]][0] == "3690.HK 美团-W"
    assert d["layout"]["height"] >= 6 * 200
    assert {"values": ["2021-12-27"]} in d["layout"]["xaxis"]["rangebreaks"]
    assert len(d["layout"]["shapes"]) == 6  # the picked session on every row
    assert [s["xref"] for s in d["layout"]["shapes"]] == ["x", "x3", "x5", "x7", "x9", "x11"]
    assert {s["x0"] for s in d["layout"]["shapes"]} == {"2021-12-29"}
    spans = [(s["y0"], s["y1"]) for s in d["layout"]["shapes"]]
    assert all(a[0] >= b[1] for a, b in zip(spans, spans[1:], strict=False))  # each in its own block


def test_small_multiples_keep_a_day_any_of_them_traded(con) -> None:
    rows = panels(con, ["3690.HK", "AAPL"], date(2021, 12, 1), date(2021, 12, 31), "day")
    d = spec(figures.price_charts(rows, labels=LABELS))
    # 12-27: Hong Kong closed, New York open; 12-24: New York closed, Hong Kong open
    assert d["layout"]["xaxis"]["rangebreaks"] == [{"bounds": ["sat", "mon"]}]
    alone = spec(figures.price_charts(rows[:1], labels=LABELS))
    assert alone["layout"]["xaxis"]["rangebreaks"][1] == {"values": ["2021-12-27"]}


def test_compare_draws_each_markets_benchmark_dashed_and_labelled(con) -> None:
    symbols = ["3690.HK", "1024.HK", "AAPL"]
    bench = markets.benchmarks_for(symbols, {**DEFAULT_BENCHMARKS, "US": "^SPX"})
    assert bench == ["^HSI", "^SPX"]
    assert markets.benchmarks_for(["3690.HK", "^HSI"], DEFAULT_BENCHMARKS) == []  # charted already
    start, end = date(2021, 11, 1), date(2021, 12, 31)
    perf = coverage.normalized_performance(con, symbols, start, end)
    bperf = coverage.normalized_performance(con, bench, start, end)
    sessions = coverage.shared_sessions(con, symbols, start, end)
    d = spec(figures.compare_chart(perf, sessions, names={s: s for s in symbols}, labels=LABELS,
                                   benchmarks=bperf, benchmark_names={"^HSI": "恒生指数"}))
    (line,) = [t for t in d["data"] if t.get("legendgroup") == "benchmark"]  # ^SPX has no prices here
    assert line["name"] == "^HSI 恒生指数" and line["line"]["dash"] == "dash"
    assert line["text"][-1] == "^HSI 恒生指数" and not any(line["text"][:-1])
    hsi = bperf[bperf["symbol"] == "^HSI"]
    np.testing.assert_allclose(line["y"], hsi["change"])
    assert line["y"][0] == 0
    assert [t["name"] for t in d["data"] if t.get("mode") == "lines"] == sorted(symbols)


def test_returns_coloured_by_sign() -> None:
    assert figures.sign_colour(0.031, "zh") == "#d62728" == figures.sign_colour(-0.01, "en")
    assert figures.sign_colour(0.031, "en") == "#2ca02c" == figures.sign_colour(-0.01, "zh")
    assert figures.sign_colour(0.0, "en") == figures.sign_colour(None, "zh") == figures.sign_colour(
        float("nan"), "zh") == ""


def test_article_count_words() -> None:
    assert [figures.article_count(n, "en") for n in (1, 2)] == ["1 article", "2 articles"]
    assert [figures.article_count(n, "zh") for n in (1, 12)] == ["1 篇", "12 篇"]


def test_no_candles_still_make_a_figure(con) -> None:
    empty = C.candles(con, "3690.HK", date(2030, 1, 1), date(2030, 2, 1), "auto", (5,))
    markers = coverage.session_markers(con, "3690.HK", None, None, SITE_TZ)
    d = spec(figures.price_chart(empty, markers, title="t", labels=LABELS))
    assert [t["type"] for t in d["data"]] == ["candlestick", "scatter", "bar"]  # no markers trace
    assert spec(figures.price_charts([], labels=LABELS))["data"] == []


def test_hover_lists_at_most_eight_lines_and_counts_the_rest(con) -> None:
    """session_markers lists the first headlines of a session (coverage.HOVER_LINES) and counts
    them all; a merged marker's hover shares the same budget between its sessions' headings
    and headlines."""
    week = C.candles(con, "3690.HK", date(2021, 12, 1), date(2021, 12, 31), "week")
    sessions = pd.DataFrame({"session": [date(2021, 12, 28), date(2021, 12, 29)], "articles": [12, 3],
                             "lines": [[f"a{k}" for k in range(8)], ["b0", "b1", "b2"]]})
    d = spec(figures.price_chart(week, sessions, title="t", labels=LABELS))
    (news,) = traces(d, "scatter", "markers+text")
    lines = news["hovertext"][0].split("<br>")
    assert lines[0] == "<b>2021-12-28 – 12-29</b> · 15 articles" and news["text"] == ["15"]
    assert lines[1:] == ["<b>2021-12-28</b> · 12 articles", "a0", "a1", "a2",
                         "<b>2021-12-29</b> · 3 articles", "b0", "b1", "b2", "+9"]
    one = spec(figures.price_chart(week, sessions.iloc[:1], title="t", labels=LABELS))
    (news,) = traces(one, "scatter", "markers+text")
    assert news["hovertext"][0].split("<br>")[1:] == [f"a{k}" for k in range(8)] + ["+4"]


def test_every_chart_the_builders_make_passes_plotlys_validation(con) -> None:
    """The price charts are built without plotly's validation (it was most of their build):
    each shape they take must still be a valid figure, property by property."""
    made = [figures.price_chart(C.candles(con, "3690.HK", a, b, interval, mas),
                                coverage.session_markers(con, "3690.HK", a, b, SITE_TZ), title="3690.HK",
                                labels=LABELS, lang=lang, symbol="3690.HK", selected_session=date(2021, 12, 29),
                                volume=volume)
            for a, b, interval, mas, lang, volume in [
                (date(2021, 12, 1), date(2021, 12, 31), "day", (), "en", True),
                (date(2021, 6, 1), date(2022, 6, 30), "week", (5, 20), "zh", True),
                (None, None, "month", (60,), "en", False)]]
    made.append(figures.price_charts(panels(con, ["3690.HK", "1024.HK", "^HSI"], date(2021, 6, 1),
                                            date(2022, 6, 30), "week", mas=(20,)), labels=LABELS, volume=True,
                                     selected_session=date(2021, 12, 29)))
    made.append(figures.price_charts([], labels=LABELS))
    for fig in made:
        checked = go.Figure(json.loads(fig.to_json()))  # raises on any property plotly does not know
        assert checked.to_plotly_json()["data"] == json.loads(fig.to_json())["data"] or not fig.data
        assert all(v.get("automargin") is False for k, v in checked.to_plotly_json()["layout"].items()
                   if k.startswith(("xaxis", "yaxis")))
