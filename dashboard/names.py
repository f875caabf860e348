"""What each security is called.

Three sources, best first: the project's reference list (``data/securities.csv``), the
text of the site's own links to a security, and the names printed before inline codes.
Names printed before codes come from headlines such as ``大摩：首予三叶草生物-B(02197.HK)``,
so the broker-note words stuck to them (首予, 维持, 上调, 列, 及 ...) are cut, and every
mention across the store is pooled: the part the mentions share (``港交所`` in
``下调港交所`` / ``维持港交所``) is the name.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "securities.csv"


@dataclass(frozen=True, slots=True)
class Reference:
    symbol: str
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()  # other names investors use: 港交所, 银娱


@functools.cache
def reference_list(path: Path = REFERENCE_FILE) -> dict[str, Reference]:
    """The list of well-known securities the project keeps in data/ (symbol -> Reference)."""
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as f:
        return {
            row["symbol"]: Reference(row["symbol"], row["name"], row.get("name_en") or "",
                                     tuple(a for a in (row.get("aliases") or "").split("|") if a))
            for row in csv.DictReader(f)
            if row.get("symbol") and row.get("name")
        }


# --- one name, cleaned of the words around it ----------------------------------------

SHARE_CLASS = re.compile(r"-(?:[A-Z]{1,2})$")  # 美团-W, 京东集团-SW, 三叶草生物-B

# Words of broker notes and headlines that end up before a name: 首予三叶草生物-B, 维持渣打集团.
# No listed name contains one of these, so everything up to the last of them is cut.
_NOTE_WORDS = (
    "首次覆盖", "首次给予", "首次评级", "恢复覆盖", "开始覆盖", "覆盖", "首予", "首选", "首推", "维持",
    "重申", "给予", "予以", "上调", "下调", "调高", "调低", "调升", "调降", "上修", "下修", "评级",
    "看好", "看淡", "唱好", "唱淡", "推荐", "增持", "减持", "买入", "卖出", "沽出", "纳入", "剔除",
    "列入", "相中", "青睐", "港股", "美股", "A股", "H股", "中概股",
)
_NOTE_CUT = re.compile("^.*(?:" + "|".join(sorted(_NOTE_WORDS, key=len, reverse=True)) + ")")
# Single characters cut only at the start: verbs (升颐海国际, 列金沙中国, 予...) and connectives
# (...及银娱). No listed name starts with one of these.
_LEADING = frozenset("升降列予及与或并将把对给被从让")
# 和 starts real names (和黄医药, 和誉-B), so it is a connective only right after another
# security: 金沙中国(01928.HK)和银河娱乐(00027.HK).
_AFTER_SECURITY = frozenset(")）]】")  # not after a comma: '公告，和黄医药(00013.HK)'


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def clean_name(raw: str | None, before: str = "") -> str | None:
    """A name as printed before a code, without the headline words stuck to it.

    ``before`` is the character printed just before the name, if any (a closing bracket
    means the name follows another security, so a leading 和 is a connective).
    """
    if not raw:
        return None
    name = unicodedata.normalize("NFKC", raw).strip(" -·")
    cut = _NOTE_CUT.sub("", name)
    if cut != name and len(cut.strip(" -·")) >= 2:
        name = cut.strip(" -·")
    while len(name) >= 3 and _is_cjk(name[1]) and (
            name[0] in _LEADING or (name[0] == "和" and before in _AFTER_SECURITY)):
        name, before = name[1:], ""
    if not name or name.isdigit():
        return None
    return name


def stem(name: str) -> str:
    """A name without its share-class marker: 美团-W -> 美团."""
    return SHARE_CLASS.sub("", name)


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    suffix = a[len(a) - n:] if n else ""
    # latin names share whole words only: "Sunoco Lp" and "Sinoco Lp" share "Lp", not "noco Lp"
    if suffix and suffix[0].isascii() and suffix[0].isalnum():
        for other in (a, b):
            i = len(other) - len(suffix)
            if i > 0 and other[i - 1].isascii() and other[i - 1].isalnum():
                suffix = suffix.split(" ", 1)[1] if " " in suffix else ""
                break
    return suffix.strip()


_MOST_FORMS = 40


def choose_name(counts: Mapping[str, int]) -> str | None:
    """The one name for a security, from every name its mentions give (name -> count).

    Each name is cleaned; then the name the mentions share is taken: the longest part at the
    end of most of them (港交所 from 下调港交所 and 维持港交所), unless one full name
    holds the majority of those mentions (中国平安 over a stray 平安).
    """
    cleaned: Counter[str] = Counter()
    for raw, n in counts.items():
        name = clean_name(raw)
        if name:
            cleaned[name] += n
    if not cleaned:
        return None
    stems: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = defaultdict(Counter)  # stem key -> printed forms
    for name, n in cleaned.items():
        key = stem(name).casefold()
        stems[key] += n
        forms[key][name] += n
    # the most printed forms decide (a pair-wise comparison: bounded for much-covered securities)
    keys = sorted(k for k, _ in stems.most_common(_MOST_FORMS))
    stems = Counter({k: stems[k] for k in keys})
    cores = set(stems)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            core = _common_suffix(a, b)
            if len(core) >= 2:
                cores.add(core)

    def support(core: str) -> int:
        return sum(n for s, n in stems.items() if s.endswith(core))

    best = max(cores, key=lambda c: (support(c), c in stems, len(c), c))
    backing = support(best)
    whole = [s for s in stems if s.endswith(best) and s != best and 2 * stems[s] > backing]
    if whole:
        best = whole[0]
    if best in forms:
        return forms[best].most_common(1)[0][0]
    # a core no mention prints on its own: keep the printed form's case and share class
    printed: Counter[str] = Counter()
    for key, f in forms.items():
        if key.endswith(best):
            for name, n in f.items():
                s = stem(name)
                printed[s[len(s) - len(best):] + name[len(s):]] += n
    return printed.most_common(1)[0][0]


# --- every security in the store -------------------------------------------------------

def name_securities(con: duckdb.DuckDBPyConnection, symbols: Sequence[str] | None = None,
                    reference: Mapping[str, Reference] | None = None) -> None:
    """Name each security (or only ``symbols``): the reference list first, then the text
    of the site's links to it, then the names printed before its inline codes, each pooled
    over every mention in the store."""
    import pyarrow as pa  # here: finding mentions (which imports this module) needs no pyarrow

    refs = reference_list() if reference is None else reference
    only = list(symbols) if symbols is not None else None
    rows = con.execute(
        "SELECT symbol, how = 'link', name, count(*) FROM mentions "
        "WHERE name IS NOT NULL AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], symbol)) "
        "GROUP BY ALL", [only, only]).fetchall()
    said: dict[str, tuple[Counter[str], Counter[str]]] = defaultdict(lambda: (Counter(), Counter()))
    for symbol, link, name, n in rows:
        if symbol not in refs:
            said[symbol][0 if link else 1][name] += n
    from_posts = {s: choose_name(link) or choose_name(inline) for s, (link, inline) in said.items()}
    wanted = [(r.symbol, r.name, r.name_en or None) for r in refs.values()]
    wanted += [(s, n, None) for s, n in from_posts.items() if n]
    if only is not None:
        keep = set(only)
        wanted = [w for w in wanted if w[0] in keep]
    names = pa.table({k: pa.array(v, pa.string()) for k, v in zip(
        ("symbol", "name", "name_en"), map(list, zip(*wanted, strict=True)) if wanted else ([], [], []),
        strict=True)})
    con.register("chosen_names", names)
    # a security no source names keeps no name: the table says what is known, nothing else
    con.execute("""
        UPDATE securities s SET name = n.name, name_en = n.name_en
        FROM (SELECT s.symbol, c.name, c.name_en FROM securities s LEFT JOIN chosen_names c USING (symbol)
              WHERE ?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], s.symbol)) n
        WHERE s.symbol = n.symbol
          AND (s.name IS DISTINCT FROM n.name OR s.name_en IS DISTINCT FROM n.name_en)
    """, [only, only])
    con.unregister("chosen_names")


# --- what an investor types --------------------------------------------------------------

@functools.lru_cache(maxsize=65536)
def initials(name: str) -> str:
    """Pinyin initials of a Chinese name, as investors type them: 美团-W -> 'mt', 招商银行 -> 'zsyh'.

    pypinyin reads characters in their words (银行 is 'yh', 重庆 'cq'), which a character
    table cannot. Latin parts are kept as they are (TCL科技 -> 'tclkj'); '' without Chinese.
    """
    base = stem(unicodedata.normalize("NFKC", name))
    if not any(_is_cjk(c) for c in base):
        return ""
    from pypinyin import Style, lazy_pinyin

    parts = lazy_pinyin(base, style=Style.FIRST_LETTER, errors=lambda s: [c for c in s if c.isalnum()])
    return "".join(parts).casefold()
