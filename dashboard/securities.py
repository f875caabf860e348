"""Find the securities an article names, and give each one canonical identity.

A security is identified by its Yahoo Finance symbol (``3690.HK``, ``600519.SS``,
``NIO``, ``^HSI``); ``canonical`` is the exchange-local form (``03690.HK``,
``600519.SH``, ``NIO.US``) that Chinese sites print.

Eastmoney names a security by a market number and a code (``116.03690``):
1 Shanghai, 0 Shenzhen (and Beijing), 116/128 Hong Kong, 105/106/107 US,
100 global indices; 90 is a sector board, which is not a security.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Market = Literal["HK", "SH", "SZ", "BJ", "US", "JP"]
How = Literal["embed", "link", "inline"]

# Rank of each way of finding a mention: embedded K-line blocks name the article's
# main subjects; links and inline codes are secondary.
HOW_RANK: dict[str, int] = {"embed": 0, "link": 1, "inline": 2}

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "securities.csv"


@dataclass(frozen=True, slots=True)
class Security:
    symbol: str  # Yahoo Finance symbol, the key everywhere
    code: str  # exchange-local code as the market prints it
    market: Market
    kind: Literal["stock", "index"] = "stock"

    @property
    def canonical(self) -> str:
        return f"{self.code}.{self.market}"


@dataclass(frozen=True, slots=True)
class Mention:
    security: Security
    how: How
    name: str | None = None  # the name the post gives it, when it gives one


# Eastmoney market 100: global indices, by eastmoney code -> (Yahoo symbol, market).
GLOBAL_INDICES: dict[str, tuple[str, Market]] = {
    "HSI": ("^HSI", "HK"),
    "HSCEI": ("^HSCE", "HK"),
    "SPX": ("^GSPC", "US"),
    "NDX": ("^NDX", "US"),
    "DJIA": ("^DJI", "US"),
    "IXIC": ("^IXIC", "US"),
    "N225": ("^N225", "JP"),
}
_YAHOO_INDEX_MARKET: dict[str, Market] = {sym: mkt for sym, mkt in GLOBAL_INDICES.values()}
_YAHOO_INDEX_MARKET.update({"^SPX": "US"})


def a_share_market(code: str) -> Market | None:
    """Exchange of a bare 6-digit mainland code, by its prefix."""
    if len(code) != 6 or not code.isdigit():
        return None
    if code.startswith(("60", "68", "90", "51", "56", "58", "11")):
        return "SH"
    if code.startswith(("00", "30", "20", "15", "16", "12", "399")):
        return "SZ"
    if code.startswith(("8", "4", "92")):
        return "BJ"
    return None


@functools.cache
def hong_kong(code: str) -> Security | None:
    if not code.isdigit() or not 1 <= len(code) <= 5 or int(code) == 0:
        return None
    return Security(f"{int(code):04d}.HK", f"{int(code):05d}", "HK")


@functools.cache
def mainland(code: str, market: Market | None = None) -> Security | None:
    market = market or a_share_market(code)
    if market is None or len(code) != 6 or not code.isdigit():
        return None
    suffix = {"SH": "SS", "SZ": "SZ", "BJ": "BJ"}.get(market)
    if suffix is None:
        return None
    index = (market == "SH" and code.startswith("000")) or (market == "SZ" and code.startswith("399"))
    return Security(f"{code}.{suffix}", code, market, "index" if index else "stock")


_US_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:[._-][A-Z])?$")


@functools.cache
def us(ticker: str) -> Security | None:
    ticker = ticker.upper()
    if not _US_TICKER.match(ticker):
        return None
    yahoo = ticker.replace("_", "-").replace(".", "-")
    return Security(yahoo, yahoo.replace("-", "."), "US")


@functools.cache
def global_index(code: str) -> Security | None:
    found = GLOBAL_INDICES.get(code.upper())
    if found is None:
        return None
    symbol, market = found
    return Security(symbol, code.upper(), market, "index")


@functools.cache
def from_eastmoney(market_no: str, code: str) -> Security | None:
    """A security from eastmoney's market number and code; None for boards and unknowns."""
    if market_no == "1":
        return mainland(code, "SH")
    if market_no == "0":
        market = a_share_market(code)
        return mainland(code, "BJ" if market == "BJ" else "SZ")
    if market_no in ("116", "128"):
        return hong_kong(code)
    if market_no in ("105", "106", "107"):
        return us(code)
    if market_no == "100":
        return global_index(code)
    return None


def parse_symbol(text: str) -> Security | None:
    """A security from what a user types or a file is named: Yahoo symbol or local code."""
    t = text.strip().upper()
    if not t:
        return None
    if t.startswith("^"):
        market = _YAHOO_INDEX_MARKET.get(t)
        return Security(t, t[1:], market or "US", "index") if market or t[1:].isalnum() else None
    if t in {v[0] for v in GLOBAL_INDICES.values()}:
        return global_index(next(k for k, v in GLOBAL_INDICES.items() if v[0] == t))
    m = re.fullmatch(r"(\d{1,5})\.HK", t)
    if m:
        return hong_kong(m.group(1))
    m = re.fullmatch(r"(\d{6})(?:\.(SS|SH|SZ|BJ))?", t)
    if m:
        suffix = m.group(2)
        market: Market | None = {"SS": "SH", "SH": "SH", "SZ": "SZ", "BJ": "BJ"}.get(suffix or "")
        return mainland(m.group(1), market)
    m = re.fullmatch(r"(.+)\.(?:US|O|OQ|N)", t)  # Reuters style: INTC.O, SUN.N
    if m:
        return us(m.group(1))
    return us(t)  # BRK.B, BRK.A: share classes


# --- finding mentions --------------------------------------------------------------

# A K-line image block; its content names the article's main subjects. A block left
# open matches to the end with group 1 None, so its missing end is looked for only once
# (the lazy scan for it would otherwise run again from every later start: quadratic).
EMBED_BLOCK = re.compile(
    r"<!--\s*EM_StockImg_Start\s*-->(?:(.*?)<!--\s*EM_StockImg_End\s*-->|.*)", re.S)
_EMBED_CODE = re.compile(r'data-code="\s*([A-Za-z0-9_.]+)\|(\d+)\|')
# Starts with a literal, so the regex engine jumps from one keytip to the next; the rest
# of the tag is bounded (real keytips have none), else each attempt could scan to the end.
_KEYTIP = re.compile(r'data-code="(\d+),([A-Za-z0-9_.]+)"[^>]{0,200}+>([^<]{0,40}+)<')
_QUOTE_LINK = re.compile(
    r"quote\.eastmoney\.com/(?:unify/r/(\d+)\.([A-Za-z0-9_.]+)"
    r"|(sh|sz|bj)(\d{6})\.html|hk/(\d{5})\.html|us/([A-Za-z0-9_.]+)\.html)"
)

_OPEN, _CLOSE = "(\uff08", ")\uff09"
_INLINE = re.compile(
    rf"[{_OPEN}]\s*(?:"
    r"(?P<hk>\d{4,5})\.HK"
    r"|(?P<cn>\d{6})\.(?P<cnx>SH|SZ|SS|BJ)"
    r"|(?P<bare6>\d{6})"
    r"|(?P<bare5>0\d{4})"
    r"|(?P<us>[A-Z][A-Z0-9]{0,5}(?:[._][A-Z])?)\.(?:O|OQ|N|A|US)"
    rf")\s*[{_CLOSE}]"
)

# Characters a security's name is made of, scanning backwards from its inline code.
_NAME_CHAR = re.compile(r"[\u4e00-\u9fffA-Za-z0-9\-·&]")
_NAME_CUT = re.compile(
    r"^.*(?:龙头|公告|消息|旗下|子公司|母公司|表示|宣布|获悉|显示|认为|指出|研报|报告|"
    r"[的和与及在对向将把被据从为即是])"
)
_LATIN_TAIL = re.compile(r"[\u4e00-\u9fff]([A-Za-z][A-Za-z0-9 .&]*)$")
_SHARE_SUFFIX = re.compile(r"-[A-Z]{1,2}$")  # 美团-W, 京东集团-SW


def name_before(text: str, end: int) -> str | None:
    """The name printed just before an inline code, e.g. '美团-W' in '美团-W(03690.HK)'."""
    i = end
    while i > 0 and end - i < 24:
        ch = text[i - 1]
        if _NAME_CHAR.match(ch):
            i -= 1
        elif ch == " " and i >= 2 and text[i - 2].isascii() and text[i - 2].isalnum() and text[i:end][:1].isascii():
            i -= 1  # a space inside a latin name such as "Sunoco Lp"
        else:
            break
    name = text[i:end].strip(" -·")
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in name)
    latin_tail = _LATIN_TAIL.search(name)
    if latin_tail and not _SHARE_SUFFIX.search(name):
        name = latin_tail.group(1)  # '出售约1450万股Sea Limited' -> 'Sea Limited'
    elif cjk > 4:
        name = _NAME_CUT.sub("", name) or name  # '白酒股龙头贵州茅台' -> '贵州茅台'
    if not name or name.isdigit() or len(name) > 16:
        return None
    return name


# A bare 6-digit number in parentheses is a stock only with an equity prefix; bond and
# fund prefixes (11, 12, 15, 51, ...) are too easily numbers of something else.
_BARE_EQUITY_PREFIXES = ("600", "601", "603", "605", "688", "689", "900",
                         "000", "001", "002", "003", "300", "301", "200",
                         "43", "83", "87", "88", "920")


def _inline_security(m: re.Match[str]) -> Security | None:
    g = m.groupdict()
    if g["hk"]:
        return hong_kong(g["hk"])
    if g["cn"]:
        return mainland(g["cn"], {"SS": "SH"}.get(g["cnx"], g["cnx"]))  # type: ignore[arg-type]
    if g["bare6"]:
        code = g["bare6"]
        return mainland(code) if code.startswith(_BARE_EQUITY_PREFIXES) else None
    if g["bare5"]:
        return hong_kong(g["bare5"])
    if g["us"]:
        return us(g["us"])
    return None


def _inline_found(text: str) -> Iterator[tuple[Security, str | None]]:
    for m in _INLINE.finditer(text):
        sec = _inline_security(m)
        if sec is not None:
            yield sec, name_before(text, m.start())


def inline_mentions(text: str) -> list[Mention]:
    return [Mention(sec, "inline", name) for sec, name in _inline_found(text)]


class _Found:
    """Mentions gathered so far: per symbol the strongest way it was found, and a name."""

    def __init__(self) -> None:
        self.best: dict[str, list[object]] = {}  # symbol -> [security, how, name]

    def add(self, sec: Security, how: How, name: str | None = None) -> None:
        prev = self.best.get(sec.symbol)
        if prev is None:
            self.best[sec.symbol] = [sec, how, name]
            return
        if name and (prev[2] is None or (how == "link" and prev[1] != "link")):
            prev[2] = name  # a keytip link's text is the site's own name for it
        if HOW_RANK[how] < HOW_RANK[prev[1]]:  # type: ignore[index]
            prev[1] = how

    def mentions(self) -> list[Mention]:
        out = [Mention(sec, how, name) for sec, how, name in self.best.values()]  # type: ignore[arg-type]
        return sorted(out, key=lambda m: HOW_RANK[m.how])


def find_mentions(title: str, body: str, text: str) -> list[Mention]:
    """Every security the article names, strongest way of finding first, one per symbol.

    ``body`` is the raw post body (HTML or markdown), ``text`` its clean readable text.
    """
    found = _Found()
    if "EM_StockImg" in body:
        for block in EMBED_BLOCK.findall(body):
            for code, market_no in _EMBED_CODE.findall(block):
                sec = from_eastmoney(market_no, code)
                if sec:
                    found.add(sec, "embed")
    if "data-code=" in body:
        for market_no, code, name in dict.fromkeys(_KEYTIP.findall(body)):
            sec = from_eastmoney(market_no, code)
            if sec:
                found.add(sec, "link", name.strip() or None)
    if "quote.eastmoney.com" in body:
        for mk, code, cnx, cn, hk, ticker in dict.fromkeys(_QUOTE_LINK.findall(body)):
            sec = (
                from_eastmoney(mk, code)
                if mk
                else mainland(cn, cnx.upper())  # type: ignore[arg-type]
                if cn
                else hong_kong(hk)
                if hk
                else us(ticker)
            )
            if sec:
                found.add(sec, "link")
    for part in (title, text):
        for sec, name in _inline_found(part):
            found.add(sec, "inline", name)
    return found.mentions()


# --- reference names ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    symbol: str
    name: str
    name_en: str


@functools.cache
def reference_list(path: Path = REFERENCE_FILE) -> dict[str, Reference]:
    """The small list of well-known securities the project keeps in data/."""
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as f:
        return {
            row["symbol"]: Reference(row["symbol"], row["name"], row.get("name_en") or "")
            for row in csv.DictReader(f)
            if row.get("symbol")
        }
