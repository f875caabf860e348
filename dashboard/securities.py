"""Find the securities an article names, and give each one canonical identity.

A security is identified by its Yahoo Finance symbol (``3690.HK``, ``600519.SS``,
``NIO``, ``^HSI``); ``canonical`` is the exchange-local form (``03690.HK``,
``600519.SH``, ``NIO.US``) that Chinese sites print.

Eastmoney names a security by a market number and a code (``116.03690``):
1 Shanghai, 0 Shenzhen (and Beijing), 116/128 Hong Kong, 105/106/107 US,
100 global indices; 90 is a sector board, which is not a security.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from dashboard.names import REFERENCE_FILE as REFERENCE_FILE  # re-exported: the list lives in names
from dashboard.names import Reference as Reference
from dashboard.names import clean_name, initials, reference_list, stem

Market = Literal["HK", "SH", "SZ", "BJ", "US", "JP"]
How = Literal["embed", "link", "inline"]

# Rank of each way of finding a mention: embedded K-line blocks name the article's
# main subjects; links and inline codes are secondary.
HOW_RANK: dict[str, int] = {"embed": 0, "link": 1, "inline": 2}

Kind = Literal["stock", "index", "fund"]


@dataclass(frozen=True, slots=True)
class Security:
    symbol: str  # Yahoo Finance symbol, the key everywhere
    code: str  # exchange-local code as the market prints it
    market: Market
    kind: Kind = "stock"

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
# Other names exports give the same index: the S&P 500 is ^GSPC on Yahoo, ^SPX elsewhere.
INDEX_ALIASES: dict[str, str] = {"^SPX": "^GSPC"}


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


# Exchange-traded funds: Shanghai 51x/56x/58x (ETFs), Shenzhen 15x (ETFs) and 16x (LOFs).
_FUND_PREFIXES: dict[str, tuple[str, ...]] = {"SH": ("51", "56", "58"), "SZ": ("15", "16")}


@functools.cache
def mainland(code: str, market: Market | None = None) -> Security | None:
    market = market or a_share_market(code)
    if market is None or len(code) != 6 or not code.isdigit():
        return None
    suffix = {"SH": "SS", "SZ": "SZ", "BJ": "BJ"}.get(market)
    if suffix is None:
        return None
    index = (market == "SH" and code.startswith("000")) or (market == "SZ" and code.startswith("399"))
    fund = code.startswith(_FUND_PREFIXES.get(market, ()))
    return Security(f"{code}.{suffix}", code, market, "index" if index else "fund" if fund else "stock")



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
        if t in INDEX_ALIASES:
            t = INDEX_ALIASES[t]
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
_FUND_WORD = re.compile(r"ETF|LOF|REITs?|FOF|QDII|基金", re.I)  # 智能电动车ETF, 华夏上证50ETF


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
    latin_tail = _LATIN_TAIL.search(name)
    if latin_tail and not _SHARE_SUFFIX.search(name) and not _FUND_WORD.fullmatch(latin_tail.group(1)):
        name = latin_tail.group(1)  # '出售约1450万股Sea Limited' -> 'Sea Limited'
    else:
        # '首予三叶草生物-B' -> '三叶草生物-B'; '(01928.HK)及银娱' -> '银娱'
        name = clean_name(name, text[i - 1] if i else "") or ""
        if sum("\u4e00" <= c <= "\u9fff" for c in name) > 4:
            name = _NAME_CUT.sub("", name) or name  # '白酒股龙头贵州茅台' -> '贵州茅台'
    if not name or name.isdigit() or len(name) > 16:
        return None
    return name


# A bare 6-digit number in parentheses is a stock only with an equity prefix; bond
# prefixes (11, 12, ...) are too easily numbers of something else, and a fund's
# (15, 16, 51, 56, 58) counts only after a fund's name (智能电动车ETF（516380）) or when
# the reference list knows the fund.
_BARE_EQUITY_PREFIXES = ("600", "601", "603", "605", "688", "689", "900",
                         "000", "001", "002", "003", "300", "301", "200",
                         "43", "83", "87", "88", "920")


def _inline_security(m: re.Match[str], name: str | None) -> Security | None:
    g = m.groupdict()
    if g["hk"]:
        return hong_kong(g["hk"])
    if g["cn"]:
        return mainland(g["cn"], {"SS": "SH"}.get(g["cnx"], g["cnx"]))  # type: ignore[arg-type]
    if g["bare6"]:
        code = g["bare6"]
        if code.startswith(_BARE_EQUITY_PREFIXES):
            return mainland(code)
        sec = mainland(code)
        if sec is not None and sec.kind == "fund" and (
                (name and _FUND_WORD.search(name)) or sec.symbol in reference_list()):
            return sec
        return None
    if g["bare5"]:
        return hong_kong(g["bare5"])
    if g["us"]:
        return us(g["us"])
    return None


def _inline_found(text: str) -> Iterator[tuple[Security, str | None]]:
    for m in _INLINE.finditer(text):
        name = name_before(text, m.start())
        sec = _inline_security(m, name)
        if sec is not None:
            yield sec, name


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


# --- finding a security from what an investor types ----------------------------------

# Market prefixes and suffixes people type: sh600519, SZ.000001, 600519.sh, hk00700, 00700.hk
_TYPED_PREFIX = re.compile(r"(SH|SZ|BJ|HK)[.:]?(\d{1,6})")
_TYPED_SUFFIX = re.compile(r"(\d{1,6})\.(SH|SS|SZ|BJ|HK)")
_TYPED_SECID = re.compile(r"(\d{1,3})\.([A-Z0-9_]{1,8})")  # eastmoney: 116.03690, 1.600519
_TYPED_US = re.compile(r"US[.:]([A-Z][A-Z0-9.\-]{0,7})")  # US.AAPL


def typed_codes(text: str) -> list[Security]:
    """Every security a typed code can mean, likeliest first: '03690', '700', '1024.hk',
    '600519', 'sh600519', '600519.SH', 'HK.00700', '116.03690', 'nio', '^SPX'.

    A bare 6-digit 000xxx code is Shenzhen's stock first and Shanghai's index second
    (000001: 平安银行, then 上证指数); digits up to 5 long are Hong Kong codes.
    """
    t = unicodedata.normalize("NFKC", text).strip().upper().replace(" ", "")
    if not t:
        return []
    found: list[Security | None] = []
    if t.isdigit():
        if len(t) <= 5:
            found.append(hong_kong(t))
        elif len(t) == 6:
            found.append(mainland(t))
            if t.startswith("000"):
                found.append(mainland(t, "SH"))
    elif m := _TYPED_PREFIX.fullmatch(t) or _TYPED_SUFFIX.fullmatch(t):
        a, b = m.groups()
        code, market = (b, a) if a.isalpha() else (a, b)
        if market == "HK":
            found.append(hong_kong(code) if len(code) <= 5 else None)
        else:
            found.append(mainland(code, "SH" if market == "SS" else market))  # type: ignore[arg-type]
    elif m := _TYPED_US.fullmatch(t):
        found.append(us(m.group(1)))
    elif (m := _TYPED_SECID.fullmatch(t)) and (sec := from_eastmoney(*m.groups())) is not None:
        found.append(sec)
    else:
        found += [global_index(t), parse_symbol(t)]  # SPX, HSI: the index before a US ticker
    return list({s.symbol: s for s in found if s is not None}.values())


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


@dataclass(frozen=True, slots=True)
class _Entry:
    symbol: str
    names: tuple[str, ...]  # folded: name, name without share class, aliases
    english: str  # folded
    english_words: tuple[str, ...]
    initials: tuple[str, ...]
    shown: str  # the name as shown, for ordering shorter (closer) matches first
    known: bool  # in the store, not only in the reference list


class SecurityIndex:
    """The securities a user can pick, searchable by every form an investor types.

    Built once from (symbol, name, name_en) rows, such as the store's securities table;
    the reference list's securities and aliases (港交所, 银娱) are searchable too, after the
    store's. Pinyin initials are computed once per name.
    """

    def __init__(self, rows: Iterable[tuple[str, str | None, str | None]], *,
                 with_reference: bool = True) -> None:
        refs = reference_list() if with_reference else {}
        entries: dict[str, _Entry] = {}
        seen: list[tuple[str, str | None, str | None, bool]] = [(s, n, e, True) for s, n, e in rows if s]
        seen += [(r.symbol, r.name, r.name_en, False) for r in refs.values() if r.symbol not in INDEX_ALIASES]
        for symbol, name, name_en, known in seen:
            if symbol in entries:
                continue
            ref = refs.get(symbol)
            raw = [n for n in (name, ref.name if ref else None, *(ref.aliases if ref else ())) if n]
            names = tuple(dict.fromkeys(f for n in raw for f in (_fold(n), _fold(stem(n)))))
            english = _fold(name_en or (ref.name_en if ref else "") or "")
            entries[symbol] = _Entry(
                symbol, names, english, tuple(re.findall(r"[a-z0-9]+", english)),
                tuple(dict.fromkeys(i for n in raw if (i := initials(n)))),
                name or (ref.name if ref else "") or symbol, known)
        self.entries = list(entries.values())
        self.symbols = set(entries)
        self.known = {e.symbol for e in self.entries if e.known}

    @classmethod
    def of(cls, known: SecurityIndex | Iterable[tuple[str, str | None, str | None]] | Any) -> SecurityIndex:
        """An index from an index, (symbol, name, name_en) rows, or a DataFrame with those columns."""
        if isinstance(known, SecurityIndex):
            return known
        if hasattr(known, "itertuples"):  # a pandas DataFrame
            frame = known.reindex(columns=["symbol", "name", "name_en"])
            known = [(s, n if isinstance(n, str) else None, e if isinstance(e, str) else None)
                     for s, n, e in frame.itertuples(index=False)]
        return cls(known)

    def _rank(self, e: _Entry, q: str, latin: bool) -> int | None:
        """How well an entry matches a folded query: 1 exact name, 2 exact initials, 3 name
        starts so, 4 initials start so, 5 name contains it; None for no match."""
        if q in e.names or (latin and q == e.english):
            return 1
        if latin and len(q) >= 2 and q in e.initials:
            return 2
        if any(n.startswith(q) for n in e.names) or (
                latin and len(q) >= 2 and any(w.startswith(q) for w in (e.english, *e.english_words))):
            return 3
        if latin and len(q) >= 2 and any(i.startswith(q) for i in e.initials):
            return 4
        if (not latin or len(q) >= 2) and any(q in n for n in e.names) or (
                latin and len(q) >= 3 and q in e.english):
            return 5
        return None

    def resolve(self, text: str, limit: int = 10) -> list[str]:
        """Symbols ``text`` may mean, best first: a code the index holds, then names (exact,
        pinyin initials, start, part), the store's before the reference list's; last a
        well-formed code the index does not hold yet (a security to fetch)."""
        q = _fold(text)
        if not q:
            return []
        ranked: list[tuple[tuple[int, int, int, str], str]] = []
        codes = typed_codes(text)
        for i, sec in enumerate(codes):
            if sec.symbol in self.symbols:
                ranked.append(((0, sec.symbol not in self.known, i, ""), sec.symbol))
        latin = q.isascii()
        for e in self.entries:
            r = self._rank(e, q, latin)
            if r is not None:
                ranked.append(((r, not e.known, len(e.shown), e.symbol), e.symbol))
        for i, sec in enumerate(codes):
            if sec.symbol not in self.symbols:
                ranked.append(((9, 1, i, ""), sec.symbol))
        out = list(dict.fromkeys(symbol for _, symbol in sorted(ranked)))
        return out[:limit]


def resolve_security(text: str, known: SecurityIndex | Iterable[tuple[str, str | None, str | None]] | Any,
                     limit: int = 10) -> list[str]:
    """Yahoo symbols of the securities ``text`` may mean, best first (empty: none).

    ``text`` is anything an investor types: a code in any form (``03690``, ``1024.hk``,
    ``700``, ``600519``, ``sh600519``, ``600519.SH``, ``^SPX``), a name or part of one
    (``美团``, ``茅台``, ``Tencent``), or pinyin initials (``mt`` for 美团).
    ``known`` is a SecurityIndex (build it once and keep it), or the store's securities as
    (symbol, name, name_en) rows or a DataFrame with those columns.
    """
    return SecurityIndex.of(known).resolve(text, limit)
