"""Finding securities: every form in the real posts, canonical identity, Yahoo symbols, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.articles import read_post
from dashboard.securities import find_mentions, from_eastmoney, inline_mentions, parse_symbol


def symbols(title: str = "", body: str = "", text: str = "") -> list[tuple[str, str]]:
    return [(m.security.symbol, m.how) for m in find_mentions(title, body, text or body)]


EMBED = ('<!-- EM_StockImg_Start --><p><a href="http://quote.eastmoney.com/unify/r/116.03690" '
         'data-code="03690|116|5" data-code2="03690|116|3|" class="EmImageRemark"><img '
         'src="https://webquoteklinepic.eastmoney.com/GetPic.aspx?nid=116.03690&imageType=k" '
         'data-code="K 03690|116|5" /></a></p><!-- EM_StockImg_End -->')


def test_embedded_kline_block_is_an_embed_mention() -> None:
    assert symbols(body=EMBED, text="") == [("3690.HK", "embed")]


def test_quote_link_outside_a_block_is_a_link_mention() -> None:
    body = '<p><a href="http://quote.eastmoney.com/unify/r/116.01024">快手</a></p>'
    assert symbols(body=body, text="快手") == [("1024.HK", "link")]


def test_keytip_span_gives_a_name() -> None:
    body = ('<span id="stock_1.600160"><a href="http://quote.eastmoney.com/unify/r/1.600160" '
            'class="keytip" data-code="1,600160">巨化股份</a></span><span id="quote_1.600160"></span>')
    (m,) = find_mentions("", body, "巨化股份")
    assert (m.security.symbol, m.how, m.name) == ("600160.SS", "link", "巨化股份")


def test_sector_boards_and_data_pages_are_not_securities() -> None:
    body = ('<span id="bk_90.BK0493"><a href="http://quote.eastmoney.com/unify/r/90.BK0493" '
            'class="keytip" data-code="90,BK0493">新能源</a></span>'
            '<span web="1" href="http://quote.eastmoney.com/unify/r/90.BK0473" '
            'class="em_stock_key_common" data-code="90,BK0473">证券</span>'
            '<a href="http://data.eastmoney.com/invest/invest/default.html" class="infokey">分析师</a>')
    assert symbols(body=body, text="新能源 证券 分析师") == []


@pytest.mark.parametrize(
    ("text", "symbol", "name"),
    [
        ("美团-W(03690.HK)发布公告", "3690.HK", "美团-W"),
        ("香港交易所(0388.HK)", "0388.HK", "香港交易所"),
        ("白酒股龙头贵州茅台（600519）盘中涨逾2%", "600519.SS", "贵州茅台"),
        ("欧菲光(002456)消息", "002456.SZ", "欧菲光"),
        ("平安银行(000001)公告", "000001.SZ", "平安银行"),
        ("宁德时代(300750)", "300750.SZ", "宁德时代"),
        ("中芯国际(688981)", "688981.SS", "中芯国际"),
        ("某公司(03868)公告", "3868.HK", "某公司"),
        ("英特尔(INTC.O)", "INTC", "英特尔"),
        ("将Sunoco Lp（SUN.N）目标价上调", "SUN", "Sunoco Lp"),
        ("伯克希尔(BRK.B.N)", "BRK-B", "伯克希尔"),
        ("贵州茅台(600519.SH)", "600519.SS", "贵州茅台"),
        ("小米集团-W（01810.HK）", "1810.HK", "小米集团-W"),
    ],
)
def test_inline_codes(text: str, symbol: str, name: str) -> None:
    (m,) = inline_mentions(text)
    assert (m.security.symbol, m.how, m.name) == (symbol, "inline", name)


@pytest.mark.parametrize(
    "text",
    ["存栏(829万头)", "(2021)年", "利率(4.00%)", "批次(2141001-1A)", "(银许准予决字〔2021〕第202号)",
     "指数(12345)", "编号(123456)", "(GDP)", "人民币汇率(美元对人民币)"],
)
def test_numbers_and_words_in_parentheses_are_not_securities(text: str) -> None:
    assert inline_mentions(text) == []


@pytest.mark.parametrize(
    ("market", "code", "symbol", "canonical"),
    [
        ("1", "600519", "600519.SS", "600519.SH"),
        ("1", "000001", "000001.SS", "000001.SH"),  # Shanghai Composite, an index
        ("0", "000001", "000001.SZ", "000001.SZ"),  # Ping An Bank
        ("0", "399001", "399001.SZ", "399001.SZ"),
        ("0", "830799", "830799.BJ", "830799.BJ"),
        ("116", "03690", "3690.HK", "03690.HK"),
        ("128", "00388", "0388.HK", "00388.HK"),
        ("105", "NIO", "NIO", "NIO.US"),
        ("106", "BRK_B", "BRK-B", "BRK.B.US"),
        ("107", "SPY", "SPY", "SPY.US"),
        ("100", "HSI", "^HSI", "HSI.HK"),
        ("100", "SPX", "^GSPC", "SPX.US"),
    ],
)
def test_eastmoney_market_numbers(market: str, code: str, symbol: str, canonical: str) -> None:
    sec = from_eastmoney(market, code)
    assert sec is not None
    assert (sec.symbol, sec.canonical) == (symbol, canonical)


def test_index_kind() -> None:
    assert from_eastmoney("1", "000001").kind == "index"  # type: ignore[union-attr]
    assert from_eastmoney("100", "HSI").kind == "index"  # type: ignore[union-attr]
    assert from_eastmoney("0", "000001").kind == "stock"  # type: ignore[union-attr]


def test_boards_and_unknown_markets_are_none() -> None:
    assert from_eastmoney("90", "BK0493") is None
    assert from_eastmoney("100", "NOSUCH") is None
    assert from_eastmoney("1", "12") is None


@pytest.mark.parametrize(
    ("typed", "symbol"),
    [("3690.HK", "3690.HK"), ("03690.HK", "3690.HK"), ("600519", "600519.SS"),
     ("600519.SH", "600519.SS"), ("000001.SZ", "000001.SZ"), ("nio", "NIO"), ("BRK.B", "BRK-B"),
     ("^HSI", "^HSI"), ("^GSPC", "^GSPC"), ("INTC.O", "INTC")],
)
def test_parse_symbol(typed: str, symbol: str) -> None:
    sec = parse_symbol(typed)
    assert sec is not None and sec.symbol == symbol


def test_one_mention_per_security_strongest_way_first() -> None:
    body = EMBED + '<p>美团(03690.HK)与<a href="http://quote.eastmoney.com/unify/r/116.01024">快手</a></p>'
    assert symbols("美团-W(03690.HK)", body, "美团(03690.HK)与快手") == [
        ("3690.HK", "embed"), ("1024.HK", "link")]


# --- the real posts ---------------------------------------------------------------

EXPECTED = {
    "seeds/2021-12-27-202112272227521160.md": {"3690.HK": "embed", "1024.HK": "embed"},
    "seeds/2021-12-29-202112292228912369.md": {"3690.HK": "embed", "1024.HK": "embed"},
    "finews-sample/2022-01-07-202201072239307540.md": {
        s: "link" for s in ("000776.SZ", "601211.SS", "601688.SS", "000166.SZ", "600999.SS",
                            "601995.SS", "601066.SS", "600030.SS")},
    "finews-sample/2022-05-26-202205262391921712.md": {
        "NIO": "embed", "600160.SS": "link", "300343.SZ": "link", "600636.SS": "link"},
    "finews-sample/2021-12-08-202112082206736335.md": {"600519.SS": "inline"},
    "finews-sample/2021-12-08-202112082206803113.md": {"1810.HK": "inline"},
    "finews-sample/2021-12-08-202112082206796814.md": {"002456.SZ": "inline"},
    "finews-sample/2021-12-08-202112082206811771.md": {"600206.SS": "inline"},
    "finews-sample/2021-12-08-202112082206876726.md": {"CS": "inline"},
    "finews-sample/2021-12-08-202112082206954012.md": {"CS": "inline", "SUN": "inline"},
}


def test_every_real_post_yields_exactly_its_securities(shared_posts: Path) -> None:
    for path in sorted(shared_posts.rglob("*.md")):
        rel = path.relative_to(shared_posts).as_posix()
        got = {m.security.symbol: m.how for m in read_post(path).mentions}
        assert got == EXPECTED.get(rel, {}), rel


def test_keytip_article_names_its_eight_brokers(shared_posts: Path) -> None:
    a = read_post(shared_posts / "finews-sample" / "2022-01-07-202201072239307540.md")
    names = {m.security.symbol: m.name for m in a.mentions}
    assert names["601995.SS"] == "中金公司" and names["600030.SS"] == "中信证券"
    assert len(names) == 8
