"""The dashboard's main flows, driven with Streamlit's AppTest (in-process, no browser)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.ingest import ingest_folder
from dashboard.prices import import_csv
from dashboard.store import Store
from tests.conftest import ROOT, target_of, write_post
from tests.yfstub import DNS, NO_TZ, FakeDownload

SEED_27 = "202112272227521160"
SEED_29 = "202112292228912369"


@pytest.fixture(autouse=True)
def offline_yfinance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeDownload:
    """yfinance answers like a machine with no network: here (the sidebar's fetch), and in the
    child process of the first start's work (tests/fake_yfinance first on its PYTHONPATH;
    its calls go to the file FAKE_YFINANCE_CALLS)."""
    import yfinance

    fake = FakeDownload(lambda symbols, a, b, c: ({}, {s: (DNS if i < 2 else NO_TZ) for i, s in enumerate(symbols)}))
    monkeypatch.setattr(yfinance, "download", fake)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT / "tests" / "fake_yfinance"), str(ROOT), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("FAKE_YFINANCE_CALLS", str(tmp_path / "yfinance-calls.jsonl"))
    return fake


def child_yfinance_calls() -> list[dict]:
    path = Path(os.environ["FAKE_YFINANCE_CALLS"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # the first start's price fetch (in a child process) is left out unless a test asks for it
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "false")
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded_env(new_store: Any, shared_posts: Path, shared_prices: Path,
               monkeypatch: pytest.MonkeyPatch) -> Store:
    """The seed posts and real prices, in a store on each backend the app is pointed at."""
    store = new_store()
    ingest_folder(store, shared_posts / "seeds")
    for f in ("hsi-constituents/3690.HK.csv", "hsi-constituents/1024.HK.csv", "download-format/^HSI.csv"):
        import_csv(store, shared_prices / f)
    monkeypatch.setenv("DASHBOARD_DB", target_of(store))
    monkeypatch.setenv("DASHBOARD_POSTS", str(shared_posts / "seeds"))
    monkeypatch.delenv("DASHBOARD_HOSTED", raising=False)
    return store


def app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "page.py"), default_timeout=60)
    if query:
        at.query_params.update(query)
    return at


def _plain(value: object) -> object:
    """Plotly's JSON with its base64 typed arrays ({"dtype", "bdata"}) decoded to lists."""
    import base64

    import numpy as np

    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"}:
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def figure(at: AppTest) -> dict:
    chart = at.get("plotly_chart")[0]  # the first security's chart
    return _plain(json.loads(chart.proto.spec))  # type: ignore[return-value]


def chart_titles(fig: dict) -> list[str]:
    """The securities a chart shows, top first: its title, or each small multiple's."""
    title = fig["layout"].get("title", {}).get("text")
    return [title] if title else [a["text"] for a in fig["layout"].get("annotations", [])]


def markers(fig: dict) -> dict[str, int]:
    trace = next(t for t in fig["data"] if t.get("mode") == "markers+text")
    return {x[:10]: int(n) for x, n in zip(trace["x"], trace["text"], strict=True)}


def coverage(at: AppTest):  # type: ignore[no-untyped-def]
    return at.dataframe[0].value


DEC = {"s": "3690.HK", "from": "2021-12-01", "to": "2021-12-31"}


def test_meituan_december_shows_both_seeds(seeded_env: Store) -> None:
    at = app(DEC).run()
    assert not at.exception
    fig = figure(at)
    assert markers(fig) == {"2021-12-28": 1, "2021-12-29": 1}
    candles = next(t for t in fig["data"] if t["type"] == "candlestick")
    assert candles["x"][0][:10] == "2021-12-01" and candles["x"][-1][:10] == "2021-12-31"
    assert "2021-12-27" in json.dumps(fig["layout"]["xaxis"]["rangebreaks"])  # the holiday is cut out
    df = coverage(at)
    assert len(df) == 2
    assert set(df["title"]) == {"“我有饭 你有流量吗” 美团快手互通 是昙花一现还是拆墙新模板？",
                                "牵手美团实现互联互通 快手生态持续开放创新"}
    assert set(df["others"]) == {"1024.HK 快手-W"}
    assert sorted(round(v * 100, 2) for v in df["day0"]) == [-3.31, -1.15]
    assert at.query_params["s"] == "3690.HK" and at.query_params["from"] == "2021-12-01"


def test_pick_another_security(seeded_env: Store) -> None:
    at = app(DEC).run()
    at.sidebar.selectbox(key="security").set_value("1024.HK").run()  # one pick switches
    assert not at.exception
    assert figure(at)["layout"]["title"]["text"] == "1024.HK 快手-W"
    assert at.query_params["s"] == "1024.HK"


def test_add_a_security_to_compare_then_switch(seeded_env: Store) -> None:
    at = app(DEC).run()
    at.sidebar.multiselect(key="others").set_value(["1024.HK"]).run()
    assert chart_titles(figure(at)) == ["3690.HK 美团-W", "1024.HK 快手-W"]
    assert at.query_params["s"] == "3690.HK,1024.HK"
    at.sidebar.selectbox(key="security").set_value("1024.HK").run()  # the compared one becomes the first
    assert not at.exception
    assert figure(at)["layout"]["title"]["text"] == "1024.HK 快手-W"
    assert at.sidebar.multiselect(key="others").value == []
    assert at.query_params["s"] == "1024.HK"


def type_into(box, text: str):  # type: ignore[no-untyped-def]
    """Text typed into a select box and entered: the page sends it as it was typed (AppTest only
    sets listed options, so the text is listed on the test's copy of the box first)."""
    box.options.append(text)
    return box.set_value(text)


def test_typed_codes_names_and_initials_find_the_security(seeded_env: Store) -> None:
    at = app(DEC).run()
    for typed in ("01024", "1024.hk", "快手", "ks"):
        at.sidebar.selectbox(key="security").set_value("3690.HK").run()
        type_into(at.sidebar.selectbox(key="security"), typed).run()
        assert not at.exception
        assert at.sidebar.selectbox(key="security").value == "1024.HK", typed
        assert at.query_params["s"] == "1024.HK"
    type_into(at.sidebar.selectbox(key="security"), "nothing like it").run()  # the chart stays
    assert at.sidebar.selectbox(key="security").value == "1024.HK"
    assert any("Nothing in the store matches 'nothing like it'" in c.value for c in at.sidebar.caption)
    at.sidebar.multiselect(key="others").set_value(["mt"]).run()
    assert at.sidebar.multiselect(key="others").value == ["3690.HK"]
    assert at.query_params["s"] == "1024.HK,3690.HK"


def test_date_range_narrows_chart_and_list(seeded_env: Store) -> None:
    from datetime import date

    at = app(DEC).run()
    at.sidebar.date_input(key="date_range").set_value((date(2021, 12, 20), date(2021, 12, 28))).run()
    assert not at.exception
    assert markers(figure(at)) == {"2021-12-28": 1}
    assert list(coverage(at)["title"]) == ["“我有饭 你有流量吗” 美团快手互通 是昙花一现还是拆墙新模板？"]
    assert at.query_params["to"] == "2021-12-28"


def test_keyword_and_publisher_filters(seeded_env: Store) -> None:
    at = app(DEC).run()
    at.text_input(key="keyword").input("生态").run()
    assert list(coverage(at)["title"]) == ["牵手美团实现互联互通 快手生态持续开放创新"]
    at.text_input(key="keyword").input("").run()
    at.multiselect(key="sources").set_value(["北京商报"]).run()
    assert list(coverage(at)["source"]) == ["北京商报"]


def test_marker_click_selects_that_sessions_articles(seeded_env: Store) -> None:
    at = app(DEC).run()
    at.session_state["chart0"] = {"selection": {"points": [{"x": "2021-12-29", "customdata": ["2021-12-29"]}],
                                               "point_indices": [1], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert list(coverage(at)["title"]) == ["牵手美团实现互联互通 快手生态持续开放创新"]
    assert any("Session 2021-12-29: 1 article" in m.value for m in at.markdown)
    assert markers(figure(at)) == {"2021-12-28": 1, "2021-12-29": 1}
    # the picked session is drawn, and the next click goes to a fresh chart
    assert any(s.get("type") == "line" for s in figure(at)["layout"].get("shapes", []))
    assert at.session_state["chart_clicks"] == 1


def test_a_marker_lists_its_articles_beyond_the_newest_rows_shown(seeded_env: Store, tmp_path: Path) -> None:
    from dashboard.ui.coverage import TABLE_LIMIT

    later = tmp_path / "later"  # more articles after the seeds than the table shows
    for k in range(TABLE_LIMIT + 30):
        write_post(later, f"late-{k:04d}.md", f"美团-W(03690.HK)快讯{k}。", title=f"快讯{k}",
                   date=f"2021-12-{30 + k % 2} {10 + k % 8:02d}:{k % 60:02d}:00 +0800")
    ingest_folder(seeded_env, later)
    with seeded_env.read() as con:  # the markers count them all, and hover the first of each session
        from datetime import date

        from dashboard import coverage as cov

        marks = cov.session_markers(con, "3690.HK", date(2021, 12, 1), date(2022, 1, 10), "Asia/Shanghai")
    assert marks["articles"].sum() == TABLE_LIMIT + 30 + 2  # and the two seeds
    assert max(len(lines) for lines in marks["lines"]) == cov.HOVER_LINES
    times = [[line[:11] for line in lines] for lines in marks["lines"]]  # 'MM-DD HH:MM  source  title'
    assert all(ts == sorted(ts) for ts in times)  # the first of the session, in time order
    at = app(DEC).run()
    assert len(coverage(at)) == TABLE_LIMIT
    assert "牵手美团实现互联互通 快手生态持续开放创新" not in list(coverage(at)["title"])
    at.session_state["chart0"] = {"selection": {"points": [{"x": "2021-12-29", "customdata": ["2021-12-29"]}],
                                               "point_indices": [1], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert list(coverage(at)["title"]) == ["牵手美团实现互联互通 快手生态持续开放创新"]


def test_choosing_a_row_opens_the_article_as_text(seeded_env: Store) -> None:
    at = app(DEC).run()
    row = list(coverage(at)["title"]).index("“我有饭 你有流量吗” 美团快手互通 是昙花一现还是拆墙新模板？")
    at.session_state["coverage_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert at.query_params["a"] == SEED_27
    body = "\n".join(x.value for x in at.text)  # the post's words as plain text, never markdown
    assert "互联互通不只是能在微信打开电商链接" in body
    assert "EM_StockImg" not in body and "<p" not in body and "data-code" not in body
    text = "\n".join(m.value for m in at.markdown)
    assert "Day 0 **\\-1.15%**" in text.replace("+", "") or "Day 0 **-1.15%**" in text
    buttons = {b.label for b in at.button}
    assert {"3690.HK 美团-W", "1024.HK 快手-W"} <= buttons


def test_article_securities_switch_the_chart(seeded_env: Store) -> None:
    at = app({**DEC, "a": SEED_27}).run()
    next(b for b in at.button if b.label == "1024.HK 快手-W").click().run()
    assert chart_titles(figure(at)) == ["1024.HK 快手-W", "3690.HK 美团-W"]  # small multiples, Kuaishou first
    assert at.query_params["s"] == "1024.HK,3690.HK"


def test_shared_url_reopens_the_same_view(seeded_env: Store) -> None:
    url = {"s": "3690.HK,1024.HK", "from": "2021-12-15", "to": "2021-12-31", "a": SEED_29, "view": "chart",
           "lang": "zh"}
    at = app(url).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="security").value == "3690.HK"
    assert at.sidebar.multiselect(key="others").value == ["1024.HK"]
    assert at.header[0].value == "新闻与行情"
    assert any("牵手美团实现互联互通" in m.value for m in at.markdown)
    assert dict(at.query_params) == url
    assert any("Reaction of 3690.HK" in m.value or "3690.HK 的价格反应" in m.value for m in at.markdown)


def test_invalid_parameters_fall_back_with_a_notice(seeded_env: Store) -> None:
    at = app({"s": "NOPE.HK", "from": "yesterday", "view": "galaxy", "lang": "xx", "a": "missing"}).run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "'NOPE.HK'" in infos and "from='yesterday'" in infos and "view='galaxy'" in infos
    assert "lang='xx'" in infos
    assert at.sidebar.selectbox(key="security").value is not None  # the default security
    assert at.sidebar.multiselect(key="others").value == []
    assert "missing" in infos  # the unknown article


def test_no_prices_says_why_and_how(tmp_path: Path, shared_posts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "true")  # an empty store: fetched before the page shows
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "store.duckdb"))
    monkeypatch.setenv("DASHBOARD_POSTS", str(shared_posts / "seeds"))
    at = app({"s": "3690.HK"}).run()
    assert not at.exception
    warning = at.warning[0].value
    assert "No prices for 3690.HK yet" in warning
    assert "could not be reached" in warning and "prices import" in warning
    assert len(coverage(at)) == 2  # the rest works


def test_first_run_on_a_fresh_clone_uses_the_sample_posts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          offline_yfinance: FakeDownload) -> None:
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "true")
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "store.duckdb"))
    monkeypatch.delenv("DASHBOARD_POSTS", raising=False)
    at = app().run()
    assert not at.exception
    assert child_yfinance_calls()  # it tried to fetch prices (in its background process)
    chosen = [at.sidebar.selectbox(key="security").value]
    assert chosen[0] in {"3690.HK", "1024.HK"}
    assert len(coverage(at)) >= 5 and all(t.startswith("示例") for t in coverage(at)["title"])
    # the shipped prices chart it, although Yahoo could not be reached
    assert not [w for w in at.warning if chosen[0] in w.value]
    assert figure(at)["layout"]["title"]["text"].startswith(chosen[0])


def test_language_switch(seeded_env: Store) -> None:
    at = app(DEC).run()
    assert at.header[0].value == "News & prices"
    at.sidebar.segmented_control(key="lang").set_value("zh").run()
    assert at.header[0].value == "新闻与行情"
    assert at.query_params["lang"] == "zh"
    assert figure(at)["layout"]["title"]["text"] == "3690.HK 美团-W"  # names stay as published


def test_compare_highlights_articles_naming_both(seeded_env: Store) -> None:
    at = app({**DEC, "s": "3690.HK,1024.HK", "view": "compare"}).run()
    assert not at.exception
    fig = figure(at)
    stars = [t for t in fig["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert stars and {x[:10] for t in stars for x in t["x"]} == {"2021-12-28", "2021-12-29"}
    assert len([t for t in fig["data"] if t.get("mode") == "lines"]) == 2


def test_average_reaction_and_moves_views(seeded_env: Store) -> None:
    at = app({**DEC, "view": "average"}).run()
    assert not at.exception
    caar = next(t for t in figure(at)["data"] if t.get("mode") == "lines+markers")
    assert caar["x"] == list(range(-5, 11))
    at = app({**DEC, "view": "moves"}).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "2021-12-29" in text and "abnormal" in text
    assert any("牵手美团实现互联互通" in b.label for b in at.button)
    assert any("No coverage found" in c.value for c in at.caption)


def test_hosted_mode_hides_data_controls(seeded_env: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(DEC).run()
    labels = {b.label for b in at.sidebar.button}
    assert "Ingest / refresh news" in labels and "Fetch prices" in labels
    st.cache_resource.clear()
    monkeypatch.setenv("DASHBOARD_HOSTED", "true")
    at = app(DEC).run()
    assert not at.exception
    assert not [b for b in at.sidebar.button if b.label in {"Ingest / refresh news", "Fetch prices"}]
    assert not at.sidebar.text_input
    assert any("Hosted mode" in c.value for c in at.sidebar.caption)


def test_new_posts_appear_after_refresh(seeded_env: Store, tmp_path: Path, shared_posts: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    folder = tmp_path / "posts"
    shutil.copytree(shared_posts / "seeds", folder)
    monkeypatch.setenv("DASHBOARD_POSTS", str(folder))
    at = app(DEC).run()
    assert len(coverage(at)) == 2
    (folder / "new.md").write_text('---\ntitle: "美团新消息"\ndate: 2021-12-30 10:00:00 +0800\n---\n'
                                   "美团-W(03690.HK)发布公告。\n", encoding="utf-8")
    next(b for b in at.sidebar.button if b.label == "Ingest / refresh news").click().run()
    assert not at.exception
    assert "美团新消息" in set(coverage(at)["title"])
    assert markers(figure(at))["2021-12-30"] == 1


def test_market_model_option_changes_the_abnormal_returns(seeded_env: Store) -> None:
    from dashboard.reactions import reactions_for

    with seeded_env.read() as con:
        r = reactions_for(con, "3690.HK").set_index("article_id")
    at = app({**DEC, "m": "mm"}).run()
    assert not at.exception
    assert at.sidebar.segmented_control(key="model").value == "mm"
    df = coverage(at).set_index("title")
    got = sorted(df["car11"])
    assert got == pytest.approx(sorted(r["car_m1_p1_mm"]))
    assert got != pytest.approx(sorted(r["car_m1_p1"]))
    assert at.query_params["m"] == "mm"
    # the words beside each row say that model's reaction and its test
    from dashboard.reactions import describe_reaction

    by_title = r.set_index("title")
    for model, query in (("mm", {**DEC, "m": "mm"}), ("market", DEC)):
        table = coverage(app(query).run())
        assert list(table["unusual"]) == [describe_reaction(by_title.loc[title].to_dict(), "en", "m1_p1", model)
                                          for title in table["title"]]
        assert all("%" in words for words in table["unusual"])


def test_a_selected_row_does_not_outlive_its_table(seeded_env: Store) -> None:
    at = app(DEC).run()
    at.session_state["coverage_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    chosen = at.query_params["a"]
    at.text_input(key="keyword").input("生态").run()  # one row left: row 1 no longer exists
    assert not at.exception
    assert at.query_params["a"] == chosen  # the article read stays; no other one is opened
    assert len(coverage(at)) == 1


def test_a_one_sided_range_that_runs_backwards_falls_back(seeded_env: Store) -> None:
    at = app({"s": "3690.HK", "from": "2024-06-01"}).run()
    assert not at.exception
    assert any("from='2024-06-01'" in i.value for i in at.info)
    start, end = at.sidebar.date_input(key="date_range").value
    assert start <= end and len(coverage(at)) == 2


def test_first_start_offline_draws_a_chart_from_shipped_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               offline_yfinance: FakeDownload) -> None:
    """A fresh clone, no network: the sample posts and the shipped prices give a chart with markers."""
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "fresh.duckdb"))
    monkeypatch.delenv("DASHBOARD_POSTS", raising=False)
    monkeypatch.setenv("DASHBOARD_FETCH_ON_START", "true")  # tries Yahoo, which is unreachable
    at = app().run()
    assert not at.exception
    fig = figure(at)
    candles = next(t for t in fig["data"] if t["type"] == "candlestick")
    assert len(candles["x"]) > 20
    assert markers(fig)  # the sample posts are marked on their sessions
    with Store(tmp_path / "fresh.duckdb").read() as con:
        symbols = {s for (s,) in con.execute("SELECT DISTINCT symbol FROM prices").fetchall()}
    assert {"3690.HK", "1024.HK", "^HSI"} <= symbols


def test_post_text_never_renders_as_markup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit directives in a post (icons, colours) are shown as the characters they are."""
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "x.md").write_text(
        '---\ntitle: ":material/home: :red[涨停] **粗体**"\ndate: 2021-12-28 10:00:00 +0800\n---\n'
        "美团-W(03690.HK) :material/warning: :green[大涨] <b>html</b> $x^2$\n", encoding="utf-8")
    store = Store(tmp_path / "s.duckdb")
    ingest_folder(store, folder)
    monkeypatch.setenv("DASHBOARD_DB", str(store.path))
    monkeypatch.setenv("DASHBOARD_POSTS", str(folder))
    with store.read() as con:
        (aid,) = con.execute("SELECT article_id FROM articles").fetchone()  # type: ignore[misc]
    at = app({"s": "3690.HK", "from": "2021-12-01", "to": "2021-12-31", "a": aid}).run()
    assert not at.exception
    body = "\n".join(x.value for x in at.text)
    assert ":material/warning: :green[大涨] <b>html</b> $x^2$" in body  # st.text: never parsed
    title = next(m.value for m in at.markdown if "涨停" in m.value)
    # every colon is followed by a zero-width space, so no directive can form; markup is escaped
    assert ":material/home:" not in title and ":red[" not in title
    assert title.replace("\u200b", "").replace("\\", "").endswith(":material/home: :red[涨停] **粗体**")


def _css_rules(css: str) -> set[tuple[str, str]]:
    """(selector, declarations) pairs of a Styler's CSS, one per cell it styles."""
    out = set()
    for rule in css.split("\n"):
        if "{" in rule:
            selectors, body = rule.split("{", 1)
            out |= {(sel.strip(), body.strip(" }")) for sel in selectors.split(",")}
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_tables_returns_are_coloured_by_sign_as_pandas_own_styler_colours_them(seeded_env: Store,
                                                                                  lang: str, tmp_path: Path) -> None:
    """The table's Styler (ui.format.sign_colours) skips pandas' cell-by-cell rendering: the CSS
    Streamlit sends must be pandas' own for the same table, cell for cell, and the texts the page
    shows the same."""
    from streamlit import dataframe_util
    from streamlit.elements.lib.pandas_styler_utils import marshall_styler
    from streamlit.proto.ArrowData_pb2 import ArrowData

    from dashboard import figures
    from dashboard.ui.coverage import RETURNS

    for k in range(60):  # an article on each of 60 sessions: returns of both signs
        write_post(tmp_path / "more", f"m-{k:02d}.md", f"美团-W(03690.HK)快讯{k}。", title=f"快讯{k}",
                   date=f"2021-{9 + k // 20:02d}-{1 + k % 20:02d} 10:00:00 +0800")
    ingest_folder(seeded_env, tmp_path / "more")
    at = app({"s": "3690.HK", "from": "2021-08-01", "to": "2022-01-31", "lang": lang}).run()
    frame = at.dataframe[0]
    table, sent = frame.value, frame.proto.arrow_data.styler

    def colour(value: object) -> str:
        c = figures.sign_colour(None if pd.isna(value) else float(value), lang)  # type: ignore[arg-type]
        return f"color: {c}" if c else ""

    ref = ArrowData()
    marshall_styler(ref, table.style.set_uuid(sent.uuid).map(colour, subset=RETURNS), sent.uuid)
    ours = _css_rules(sent.styles)
    assert ours == _css_rules(ref.styler.styles)
    up, down = figures.UP_DOWN[lang]
    assert {body for _, body in ours} == {f"color: {up}", f"color: {down}"}  # both signs occur
    assert len(ours) > 20
    shown = dataframe_util.convert_arrow_bytes_to_pandas_df(sent.display_values)
    expected = dataframe_util.convert_arrow_bytes_to_pandas_df(ref.styler.display_values)
    for col in ("title", "source", "symbol", "others", "unusual"):  # text cells show these
        assert shown[col].tolist() == expected[col].tolist(), col
