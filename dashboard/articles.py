"""Read one Jekyll-style news post into an :class:`Article`, or say why it cannot be read.

Posts come from eastmoney mirrors: YAML front matter, then an HTML or markdown body
with embedded K-line blocks, a bare ``<http://...>`` source line, an optional digest
line (``> ...``) and a "返回..." navigation footer.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import functools
import hashlib
import html
import os
import re
import signal
import stat
import threading
import time as clock
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from frontmatter.default_handlers import YAMLHandler

from dashboard.securities import EMBED_BLOCK, Mention, find_mentions

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

# Publication instants outside [EARLIEST_PUBLISHED, LATEST_PUBLISHED) are refused: nothing
# downstream (sessions, charts, timestamps) has to handle years 1 or 9999.
EARLIEST_PUBLISHED = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_PUBLISHED = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive: the last day is 2099-12-31
MAX_UTC_OFFSET = timedelta(hours=14)  # the widest real offsets are -12:00 and +14:00

# Front matter is a few lines; these bounds keep a hostile one cheap to refuse.
MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_FRONT_MATTER_DEPTH = 16  # nested lists/mappings; real posts use at most 2
MAX_FRONT_MATTER_NODES = 10_000  # scalars, lists and mappings together

POST_TIME_LIMIT = 5.0  # seconds one file may take in parse_post_bounded; real posts take < 1 ms


class PostError(ValueError):
    """A post that cannot be ingested; the message says why, in plain words."""


@dataclass(slots=True)
class Article:
    id: str
    path: str
    title: str
    published_at: datetime  # tz-aware
    categories: list[str]
    tags: list[str]
    url: str | None
    source: str | None  # the original publisher, e.g. 证券时报网
    digest: str | None
    text: str
    dedup_key: str  # equal for the same article saved twice with an identical body
    mentions: list[Mention] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- front matter ------------------------------------------------------------------


class _FrontMatterLoader(getattr(yaml, "CBaseLoader", yaml.BaseLoader)):  # type: ignore[misc]
    """YAML with every scalar kept as the string it is written as.

    Safe YAML would read an unquoted ``01024`` as the octal number 532, and a bad date
    would raise inside the parser; as strings, a code stays a code and a date is
    :func:`parse_published`'s to judge. (Also twice as fast as the safe loader.)
    """


class _Handler(YAMLHandler):
    def load(self, fm: str, **kwargs: object) -> Any:
        return load_front_matter(fm)


def load_front_matter(fm: str) -> Any:
    """Front matter text to its value, every scalar a string; :class:`PostError` when it
    is malformed, too large, too deep, uses YAML aliases or repeats a key."""
    if len(fm) > MAX_FRONT_MATTER_BYTES // 4 and (size := len(fm.encode())) > MAX_FRONT_MATTER_BYTES:
        raise PostError(f"front matter is too large ({size:,} bytes; "
                        f"the limit is {MAX_FRONT_MATTER_BYTES // 1024} KiB)")
    simple = simple_front_matter(fm)
    if simple is not None:
        return simple
    try:
        return _yaml_front_matter(fm)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PostError(f"malformed YAML front matter{line}: {problem}") from None


_SIMPLE_LINE = re.compile(r"([A-Za-z_][\w-]*):(?:[ \t]+(.*?))?[ \t]*")
_PLAIN_START = set("-?:,[]{}#&*!|>'\"%@`")
# What YAML refuses (control characters) or reads as a line break (\r, \x85, \u2028, \u2029),
# and a stray byte-order mark: left to YAML.
_NOT_PLAIN = re.compile(r"[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                        r"\U00010000-\U0010ffff]")


def simple_front_matter(fm: str) -> dict[str, str] | None:
    """Front matter made only of ``key: scalar`` lines, read without a YAML parser.

    Nearly every post's front matter is this simple, and YAML's constructor costs a
    quarter of a post's parse time. Anything else (lists, escapes, comments, nesting,
    continuation lines) returns None and goes to YAML; on what it accepts, the result
    equals the YAML loader's (tests check both on real and generated posts). A repeated
    key raises :class:`PostError`, as it does on the YAML path.
    """
    if _NOT_PLAIN.search(fm):
        return None
    meta: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(fm.split("\n"), 1):
        if not line or line.isspace():
            continue
        m = _SIMPLE_LINE.fullmatch(line)
        if m is None:
            return None
        key = m.group(1)
        if key in meta:
            raise _duplicate_key(key, lines[key], number)
        value = m.group(2) or ""
        if value[:1] == '"':
            if len(value) < 2 or value[-1] != '"' or '"' in value[1:-1] or "\\" in value:
                return None
            value = value[1:-1]
        elif value[:1] == "'":
            if len(value) < 2 or value[-1] != "'" or "'" in value[1:-1]:
                return None
            value = value[1:-1]
        elif value[:1] in _PLAIN_START or ": " in value or " #" in value or "\t" in value:
            return None
        meta[key] = value
        lines[key] = number
    return meta


def _duplicate_key(key: str, first: int, again: int) -> PostError:
    return PostError(f"duplicate key {_shorten(key)!r} in front matter (lines {first} and {again})")


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


_NO_KEY = object()


def _yaml_front_matter(fm: str) -> Any:
    """What ``yaml.load(fm, Loader=_FrontMatterLoader)`` gives, built from the parser's
    events so that it can refuse, before building anything large: aliases (posts never
    need them, and nested ones make "billion laughs"), nesting deeper than
    MAX_FRONT_MATTER_DEPTH, more than MAX_FRONT_MATTER_NODES values, repeated keys, and
    keys that are not text. No recursion, so no depth can overflow a stack."""
    root: Any = None
    stack: list[Any] = []  # open lists and mappings
    pending: list[Any] = []  # per open mapping: the key waiting for its value, or _NO_KEY
    key_lines: list[dict[str, int]] = []  # per open mapping: the line each key is on
    nodes = documents = 0
    for event in yaml.parse(fm, Loader=_FrontMatterLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent):
            raise PostError(f"front matter uses a YAML alias (*{_shorten(str(event.anchor), 30)}) at line "
                            f"{line}: aliases are not allowed in posts")
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise PostError(f"front matter holds more than one YAML document (line {line})")
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            if isinstance(event, yaml.MappingEndEvent):
                pending.pop()
                key_lines.pop()
            continue
        if isinstance(event, yaml.ScalarEvent):
            value: Any = event.value
        elif isinstance(event, yaml.SequenceStartEvent):
            value = []
        elif isinstance(event, yaml.MappingStartEvent):
            value = {}
        else:  # stream start and end, document end
            continue
        nodes += 1
        if nodes > MAX_FRONT_MATTER_NODES:
            raise PostError(f"front matter has too many values (more than {MAX_FRONT_MATTER_NODES:,})")
        if not stack:
            root = value
        elif isinstance(stack[-1], list):
            stack[-1].append(value)
        elif pending[-1] is _NO_KEY:
            if not isinstance(value, str):
                raise PostError(f"front matter key at line {line} is a {_kind(value)}, not text")
            if value in stack[-1]:
                raise _duplicate_key(value, key_lines[-1][value], line)
            pending[-1] = value
            key_lines[-1][value] = line
        else:
            stack[-1][pending[-1]] = value
            pending[-1] = _NO_KEY
        if not isinstance(value, str):
            if len(stack) >= MAX_FRONT_MATTER_DEPTH:
                raise PostError(f"front matter is nested too deeply (more than {MAX_FRONT_MATTER_DEPTH} "
                                f"levels) at line {line}")
            stack.append(value)
            if isinstance(value, dict):
                pending.append(_NO_KEY)
                key_lines.append({})
    return root


def _kind(value: object) -> str:
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else "value"


_HANDLER = _Handler()

# --- dates -------------------------------------------------------------------------

_DATE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
    r"\s*(Z|[+-]\d{1,2}(?::?\d{2})?)?$"
)

# A naive local time in the shape eastmoney's posts use (a subset of what _DATE reads, ASCII only).
_PLAIN_DATE = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d", re.ASCII)


def parse_published(value: object, site_tz: str) -> datetime:
    """A tz-aware publication instant from a front-matter date; naive times are in ``site_tz``.

    The instant must lie in [EARLIEST_PUBLISHED, LATEST_PUBLISHED) and its UTC offset
    within MAX_UTC_OFFSET; anything else is a :class:`PostError`.
    """
    tz = ZoneInfo(site_tz)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PostError("missing date in front matter")
    if isinstance(value, (dict, list)):
        raise PostError(f"date is a {_kind(value)}, not a date")
    if isinstance(value, datetime):
        published = value if value.tzinfo else value.replace(tzinfo=tz)
    elif isinstance(value, date):
        published = datetime.combine(value, time(0, 0), tzinfo=tz)
    elif isinstance(value, str):
        published = _date_from_text(value.strip(), tz)
    else:
        raise PostError(f"unparseable date {value!r} in front matter")
    return _in_supported_range(published, value.strip() if isinstance(value, str) else value)


def _date_from_text(text: str, tz: ZoneInfo) -> datetime:
    if _PLAIN_DATE.fullmatch(text):  # the common "2021-11-26 23:58:00", read in C
        try:
            return datetime.fromisoformat(text).replace(tzinfo=tz)
        except ValueError:  # day 32, hour 25: said below
            pass
    m = _DATE.match(text)
    naive = None
    if m:
        y, mo, d, hh, mm, ss, frac, off = m.groups()
        try:
            naive = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                             int((frac or "0").ljust(6, "0")))
        except ValueError:  # day 32, hour 25, ...
            pass
    if naive is None:
        raise PostError(f"unparseable date {_shorten(text)!r} in front matter")
    if off is None:
        return naive.replace(tzinfo=tz)
    sign, digits = ("+", "00") if off == "Z" else (off[0], off[1:].replace(":", ""))
    hours, minutes = (digits[:-2], digits[-2:]) if len(digits) > 2 else (digits, "00")
    if int(minutes) > 59:
        raise PostError(f"unparseable date {_shorten(text)!r} in front matter")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    if offset > MAX_UTC_OFFSET:
        raise PostError(f"UTC offset {off} of date {_shorten(text)!r} is beyond ±{_hhmm(MAX_UTC_OFFSET)}")
    return naive.replace(tzinfo=timezone(-offset if sign == "-" else offset))


def _in_supported_range(published: datetime, value: object) -> datetime:
    offset = published.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise PostError(f"UTC offset of date {_shorten(str(value))!r} is beyond ±{_hhmm(MAX_UTC_OFFSET)}")
    # Years far outside the range are refused before any arithmetic that could overflow;
    # only the years at its ends need the exact comparison.
    year = published.year
    inside = EARLIEST_PUBLISHED.year < year < LATEST_PUBLISHED.year - 1 or (
        EARLIEST_PUBLISHED.year - 1 <= year <= LATEST_PUBLISHED.year
        and EARLIEST_PUBLISHED <= published < LATEST_PUBLISHED)
    if not inside:
        last = (LATEST_PUBLISHED - timedelta(days=1)).date()
        shown = _shorten(value if isinstance(value, str) else str(value))
        raise PostError(f"publication date {shown} is outside the supported range "
                        f"{EARLIEST_PUBLISHED.date()} … {last} (UTC)")
    return published


def _hhmm(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- body --------------------------------------------------------------------------

_SOURCE_LINE = re.compile(r"\s*<(https?://[^>\s]+)>\s*")
_FOOTER_LINE = re.compile(r"\s*\[返回[^\]]*\]\([^)]*\).*")
# Every pattern here runs in time linear in its input, hostile input included: inner
# classes exclude the opening delimiter (so a failed attempt cannot rescan what the next
# attempt will scan), and a pattern with a closing delimiter that may be missing falls
# back to matching the rest of the text (so a missing closer is looked for only once).
_COMMENT = re.compile(r"<!--(?:.*?(-->)|.*)", re.S)  # group 1 is None when left open
_RAW_TEXT = ("script", "style", "noscript", "template")  # elements whose content is not text
_RAW_TEXT_CLOSE = {name: re.compile(rf"</{name}\s*>", re.I) for name in _RAW_TEXT}
_HIDDEN_STYLE = re.compile(r"display:\s*none", re.I)
_OPEN_TAG = re.compile(r"<(\w++)[^<>]*+$")
_CLOSE_TAG = re.compile(r"</(\w+)\s*>")
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|li|tr|blockquote|center|section|table)\s*>", re.I)
# A tag: no '<' inside, quoted attribute values may hold '>' (eastmoney writes '<' as &lt;),
# so a bare '<' in text stays text instead of swallowing everything to the next '>'.
_TAG = re.compile(r"""<[^<>"']*+(?:(?:"[^<"]*+"|'[^<']*+')[^<>"']*+)*+>""")
# Runs of spaces, tabs, ideographic and no-break spaces become one space. A translation and a
# search for a literal run, done only where needed, cost a quarter of one pass of a character
# class over the text (which regular expressions scan character by character).
_SPACE_LIKE = "\t\r\f\v\u3000\xa0"
_TO_SPACE = str.maketrans(dict.fromkeys(_SPACE_LIKE, " "))
_SPACE_RUN = re.compile(" {2,}")
_LOOKS_HTML = re.compile(r"<(?:p|div|span|br|a|strong|img|center|!--)[\s>/]", re.I)
# Link text and target hold no '[' (as in CommonMark, where the innermost brackets link).
_MD_IMAGE = re.compile(r"!\[[^\[\]]*+\]\([^)\[]*+\)")
_MD_LINK = re.compile(r"\[([^\[\]]*+)\]\([^)\[]*+\)")
_MD_MARK = re.compile(r"(\*\*|__|^#{1,6}\s+)", re.M)
_PUBLISHER = re.compile(r"[（(]\s*文章来源[：:]\s*([^）)\n]{1,30}?)\s*[）)]")
_TRAILING_PUBLISHER = re.compile(r"[。！？!?”\"]\s*[（(]([^（）()\n\d]{2,12})[）)]\s*$")
_TAIL = 1500
_INFO_CODE = re.compile(r"(?<!\d)(\d{18})(?!\d)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def html_to_text(fragment: str) -> str:
    """Readable text of an HTML fragment: one paragraph a line, entities decoded.

    Eastmoney bodies are machine-written, well-formed HTML; a few passes of regular
    expressions read them four times faster than an HTML parser (lexbor) does, which the
    ingest throughput target needs. Quoted attributes may contain '>'; a '<' that opens
    no tag is text. Time is linear in the fragment's length, whatever it holds.
    """
    if "<!--" in fragment:
        fragment = _COMMENT.sub(_closed_only, EMBED_BLOCK.sub(_closed_only, fragment))
    if "<script" in fragment or "<style" in fragment or "<noscript" in fragment or "<template" in fragment:
        fragment = _drop_raw_text(fragment)
    if "display:" in fragment:
        fragment = _drop_hidden(fragment)
    text = _TAG.sub("", _BLOCK_END.sub("\n", fragment))
    return html.unescape(text) if "&" in text else text


def _closed_only(m: re.Match[str]) -> str:
    """Drop a matched block or comment; keep one left open (group 1 is None) as it is."""
    return "" if m.group(1) is not None else m.group(0)


def _drop_raw_text(fragment: str) -> str:
    r"""Remove script, style, noscript and template elements with what they hold: the same
    as ``re.sub(r"<(script|style|noscript|template)\b.*?</\1\s*>", "", ..., flags=re.S | re.I)``
    but a closing tag that is missing is looked for once, not once for every opening tag."""
    out, pos, at = [], 0, 0
    names: tuple[str, ...] = _RAW_TEXT
    while (m := _raw_text_opening(names).search(fragment, at)) is not None:
        name = m.lastgroup or ""
        close = _RAW_TEXT_CLOSE[name].search(fragment, m.end())
        if close is None:  # no later opening tag of this element can be closed either
            names = tuple(n for n in names if n != name)
            if not names:
                break
            at = m.start() + 1
            continue
        out.append(fragment[pos:m.start()])
        pos = at = close.end()
    out.append(fragment[pos:])
    return "".join(out)


@functools.cache
def _raw_text_opening(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("<(?:" + "|".join(f"(?P<{n}>{n})" for n in names) + r")\b", re.I)


def _drop_hidden(fragment: str) -> str:
    """Remove elements styled display:none (and what they hold)."""
    out, pos = [], 0
    closers = _Closers(fragment)
    for m in _HIDDEN_STYLE.finditer(fragment):
        if m.start() < pos:
            continue
        opening = _OPEN_TAG.search(fragment, max(pos, m.start() - 300), m.start())
        if opening is None:
            continue
        end = closers.after(opening.group(1), m.end())
        if end < 0:
            continue
        out.append(fragment[pos:opening.start()])
        pos = end
    out.append(fragment[pos:])
    return "".join(out)


class _Closers:
    """Where the first closing tag of an element at or after a position ends, for positions
    that only grow. Each name is searched for from where its last search ended, so no text
    is scanned twice for one name; past a few names (hostile input: thousands of distinct
    unclosed elements) one index of all closing tags replaces the searches."""

    NAMES_SEARCHED = 8

    def __init__(self, fragment: str) -> None:
        self.fragment = fragment
        self.found: dict[str, tuple[int, int]] = {}  # name -> (start, end) of the last found, or (-1, -1)
        self.index: dict[str, list[tuple[int, int]]] | None = None

    def after(self, name: str, at: int) -> int:
        key = name.lower()
        if self.index is None and key not in self.found and len(self.found) >= self.NAMES_SEARCHED:
            self.index = {}
            for c in _CLOSE_TAG.finditer(self.fragment):
                self.index.setdefault(c.group(1).lower(), []).append((c.start(), c.end()))
        if self.index is not None:
            spans = self.index.get(key, [])
            i = bisect.bisect_left(spans, (at, -1))
            return spans[i][1] if i < len(spans) else -1
        last = self.found.get(key)
        if last is not None and (last[0] < 0 or last[0] >= at):
            return last[1]  # none after an earlier position, or the one found is still ahead
        close = re.compile(rf"</{re.escape(name)}\s*>", re.I).search(self.fragment, at)
        self.found[key] = (close.start(), close.end()) if close else (-1, -1)
        return close.end() if close else -1


def markdown_to_text(fragment: str) -> str:
    if "](" in fragment:
        fragment = _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", fragment))
    if "**" in fragment or "__" in fragment or "#" in fragment:
        fragment = _MD_MARK.sub("", fragment)
    return html.unescape(fragment) if "&" in fragment else fragment


def _tidy(text: str) -> str:
    if any(c in text for c in _SPACE_LIKE):
        text = text.translate(_TO_SPACE)
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    return "\n".join(filter(None, map(str.strip, text.split("\n"))))  # lines stripped, empty ones dropped


def find_publisher(text: str) -> str | None:
    m = _PUBLISHER.search(text) if "文章来源" in text else None  # a literal's search is the faster scan
    if m:
        return m.group(1).strip()
    last = text[-60:]  # flash news end with the publisher: "...。（澎湃新闻）"
    if last.endswith(("）", ")")):
        m = _TRAILING_PUBLISHER.search(last)
        if m and _CJK.search(m.group(1)):
            return m.group(1).strip()
    return None


def _string_list(value: object, field_name: str, warnings: list[str]) -> list[str]:
    """Categories or tags: a string splits on spaces (as Jekyll does); of a list, the text
    items are kept. Anything else (a mapping, nested lists) is left out with a warning,
    rather than stored as its Python repr or costing the article."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()  # Jekyll splits a category string on spaces
    if not isinstance(value, (list, tuple)):
        warnings.append(f"{field_name} is a {_kind(value)}, not text: left out")
        return []
    kept = [v for v in value if isinstance(v, str)]
    if len(kept) < len(value):
        n = len(value) - len(kept)
        items = "item" if n == 1 else "items"
        warnings.append(f"{field_name}: {n} {items} not text (a list or mapping): left out")
    return kept


def decode(raw: bytes, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, list[str]]:
    """Post bytes to text: UTF-8 (with or without BOM), UTF-16 (with a byte-order mark, or
    starting with '---' without one) with a warning, else GBK/GB18030 with a warning.
    A NUL anywhere means the file is not text."""
    if len(raw) > max_bytes:
        raise _too_large(len(raw), max_bytes)
    if not raw.strip():
        raise PostError("empty file")
    utf16 = _utf16_encoding(raw) if raw[:2] in _UTF16_BOMS or b"\x00" in raw else None
    if utf16 is not None:
        encoding, how = utf16
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as e:
            raise PostError(f"not valid UTF-16 text (bad data at offset {e.start})") from None
        if "\x00" in text:
            raise PostError(f"binary file, not a text post (NUL character at offset {text.index(chr(0))})")
        if not text.strip("\ufeff \t\r\n"):
            raise PostError("empty file")
        return text, [f"decoded as UTF-16 ({how}), not UTF-8"]
    if b"\x00" in raw:
        raise PostError(f"binary file, not a text post (NUL byte at offset {raw.index(0)})")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as utf8_error:
        try:
            return raw.decode("gb18030"), ["decoded as GBK (GB18030), not UTF-8"]
        except UnicodeDecodeError:
            raise PostError(
                f"not UTF-8 or GBK text (bad byte at offset {utf8_error.start})"
            ) from None


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _utf16_encoding(raw: bytes) -> tuple[str, str] | None:
    """The UTF-16 codec a file is in, from its byte-order mark or, without one, from its
    opening '---' (every post starts with it; as UTF-8 or GBK those bytes hold no NUL)."""
    if raw.startswith(codecs.BOM_UTF16_LE):
        return "utf-16", "little-endian"
    if raw.startswith(codecs.BOM_UTF16_BE):
        return "utf-16", "big-endian"
    if b"\x00" not in raw[:64]:
        return None
    for encoding, how in (("utf-16-le", "little-endian, no byte-order mark"),
                          ("utf-16-be", "big-endian, no byte-order mark")):
        head = raw[:64].decode(encoding, errors="replace")
        if head.lstrip(" \t\r\n").startswith("---"):
            return encoding, how
    return None


def parse_post(raw: bytes, path: str, site_tz: str = "Asia/Shanghai",
               max_bytes: int = DEFAULT_MAX_BYTES) -> Article:
    """Parse one post's bytes; raise :class:`PostError` with the reason when it cannot be read."""
    text, warnings = decode(raw, path, max_bytes)
    text = text.lstrip("\ufeff \t\r\n").replace("\r\n", "\n")
    if not _HANDLER.detect(text):
        raise PostError("no front matter: the file must start with a '---' line")
    parts = _HANDLER.FM_BOUNDARY.split(text, 2)
    if len(parts) < 3:
        raise PostError("front matter is not closed by a second '---' line")
    _, fm, body = parts
    meta = load_front_matter(fm)
    if not meta:
        raise PostError("front matter is empty")
    if not isinstance(meta, dict):
        raise PostError("front matter is not a mapping of keys to values")

    title = meta.get("title")
    if isinstance(title, (dict, list)):
        raise PostError(f"title is a {_kind(title)}, not text")
    if title is None or not str(title).strip():
        raise PostError("missing title in front matter")
    title = " ".join(html.unescape(str(title)).split())
    published = parse_published(meta.get("date"), site_tz)
    categories = _string_list(meta.get("categories"), "categories", warnings)
    tags = _string_list(meta.get("tags"), "tags", warnings)

    # The source line and the navigation footer close the body; only its tail is searched.
    cut = max(0, len(body) - _TAIL)
    head, tail = body[:cut], body[cut:]
    url = None
    if "<http" in tail or "[返回" in tail:
        kept = []
        for line in tail.split("\n"):
            m = _SOURCE_LINE.fullmatch(line) if line.lstrip().startswith("<http") else None
            if m is not None:
                url = url or m.group(1)
            elif "[返回" not in line or not _FOOTER_LINE.fullmatch(line):  # the literal first: cheaper
                kept.append(line)
        body = head + "\n".join(kept)
    lines = body.lstrip().splitlines()
    first = 0
    while first < len(lines) and lines[first].startswith(">"):
        first += 1
    digest = _tidy(markdown_to_text(" ".join(line.lstrip("> ").strip() for line in lines[:first]))) or None
    content = "\n".join(lines[first:])
    clean = _tidy(html_to_text(content) if _LOOKS_HTML.search(content) else markdown_to_text(content))

    info = _INFO_CODE.search(url or "") or _INFO_CODE.search(Path(path).stem)
    normalized = f"{title}\n{clean}" if len(clean) < 80 else clean
    dedup_key = hashlib.blake2b(normalized.encode(), digest_size=12).hexdigest()
    article_id = info.group(1) if info else "h" + dedup_key[:16]

    return Article(
        id=article_id,
        path=path,
        title=title,
        published_at=published,
        categories=categories,
        tags=tags,
        url=url,
        source=find_publisher(clean) or (find_publisher(digest) if digest else None),
        digest=digest,
        text=clean,
        dedup_key=dedup_key,
        mentions=find_mentions(title, content, f"{digest}\n{clean}" if digest else clean),
        warnings=warnings,
    )


# --- time bound --------------------------------------------------------------------


def time_limit(seconds: float | None) -> _TimeLimit:
    """A context manager that raises :class:`PostError` ("took longer than N s to read;
    skipped") when its block runs longer than ``seconds`` (None or 0: no limit).

    Uses SIGALRM, so it works only in a process's main thread (a pool worker's, or the
    command line's) and does nothing elsewhere (other threads, Windows). An outer timer
    (pytest-timeout's, another time_limit's) keeps working: it is re-armed on exit with
    the time it had left, and is handed its alarm if it falls due first. Regular
    expressions and Python code are interrupted promptly; a single long call into C
    (one huge ``str.replace``) finishes first.
    """
    return _TimeLimit(seconds)


def _can_time(seconds: float) -> bool:
    """A limit is set and SIGALRM can enforce it: only in a process's main thread, not on Windows."""
    return seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _too_slow(seconds: float) -> PostError:
    return PostError(f"took longer than {seconds:g} s to read; skipped")


class _TimeLimit:
    def __init__(self, seconds: float | None) -> None:
        self.seconds = float(seconds or 0)
        self._active = False
        self._raised: PostError | None = None

    def __enter__(self) -> _TimeLimit:
        if not _can_time(self.seconds):
            return self
        self._raised = None
        self._began = clock.monotonic()
        self._outer = signal.setitimer(signal.ITIMER_REAL, 0)  # (delay, interval) of an outer timer
        self._active = True
        self._previous = signal.signal(signal.SIGALRM, self._alarm)
        outer = self._outer[0]
        signal.setitimer(signal.ITIMER_REAL, min(self.seconds, outer) if outer else self.seconds)
        return self

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        if not self._active:
            return
        if clock.monotonic() - self._began >= self.seconds - 0.001:
            self._restore()  # first, so that nothing after this can leave our handler armed
            self._raised = _too_slow(self.seconds)
            raise self._raised
        # The outer timer fell due first: hand its alarm on.
        self._restore(rearm_outer=False)
        if self._outer[1]:
            signal.setitimer(signal.ITIMER_REAL, self._outer[1], self._outer[1])
        if callable(self._previous):
            self._previous(signum, frame)
        elif self._previous == signal.SIG_DFL:
            signal.raise_signal(signum)

    def _restore(self, rearm_outer: bool = True) -> None:
        if not self._active:
            return
        self._active = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)
        delay, interval = self._outer
        if delay and rearm_outer:
            left = delay - (clock.monotonic() - self._began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._restore()
        if self._raised is not None and error is not self._raised:
            raise self._raised from error  # the block caught the alarm's error and went on


def time_limits(seconds: float | None) -> _TimeLimits:
    """:func:`time_limit` for each of a run of blocks: ``with time_limits(5) as each:`` then
    ``with each:`` around every block. The alarm's handler is installed once for the run and
    each block only re-arms the timer (installing it per post was 5% of a post's parse).
    Where another timer is armed when the run starts, each block is a :func:`time_limit`."""
    return _TimeLimits(seconds)


class _TimeLimits:
    def __init__(self, seconds: float | None) -> None:
        self.seconds = float(seconds or 0)
        self._each: Any = contextlib.nullcontext()
        self._installed = False
        self._armed = False
        self._began = 0.0
        self._raised: PostError | None = None

    def __enter__(self) -> Any:
        if not _can_time(self.seconds):
            return self._each
        if signal.getitimer(signal.ITIMER_REAL)[0]:  # an outer timer: handed on block by block
            self._each = _TimeLimit(self.seconds)
            return self._each
        self._previous = signal.signal(signal.SIGALRM, self._alarm)
        self._installed = True
        self._each = _Block(self)
        return self._each

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        # a timer left from an earlier block (blocks do not disarm it) is ignored
        if self._armed and clock.monotonic() - self._began >= self.seconds - 0.001:
            self._armed = False
            self._raised = _too_slow(self.seconds)
            raise self._raised

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            self._installed = self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)


class _Block:
    """One block of a :func:`time_limits` run: arms the run's timer, one system call."""

    __slots__ = ("run",)

    def __init__(self, run: _TimeLimits) -> None:
        self.run = run

    def __enter__(self) -> None:
        run = self.run
        run._raised = None
        run._began = clock.monotonic()
        signal.setitimer(signal.ITIMER_REAL, run.seconds)
        run._armed = True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        run = self.run
        run._armed = False
        if run._raised is not None and error is not run._raised:
            raise run._raised from error  # the block caught the alarm's error and went on


def parse_post_bounded(raw: bytes, path: str, site_tz: str = "Asia/Shanghai",
                       max_bytes: int = DEFAULT_MAX_BYTES,
                       seconds: float | None = POST_TIME_LIMIT) -> Article:
    """:func:`parse_post` in at most ``seconds`` (in a process's main thread; see
    :func:`time_limit`), so that no single file can hold up an ingest."""
    with time_limit(seconds):
        return parse_post(raw, path, site_tz, max_bytes)


def _too_large(size: int, max_bytes: int) -> PostError:
    return PostError(f"file is too large ({size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)")


# Opening a post never waits: a FIFO without a writer, or a terminal, opens at once (and never
# becomes this process's terminal); what it is is told by fstat afterwards.
_OPEN_NO_WAIT = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


def prefetch(paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Ask the kernel to start reading these post files now (``posix_fadvise`` WILLNEED), so
    that reading a folder from disk overlaps parsing the files before it: a folder not in the
    page cache is otherwise bound by its disk's latency, file after file. Best effort: files
    it cannot open, and anything but a regular file within ``max_bytes``, are left alone."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, _OPEN_NO_WAIT)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def read_bytes(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, size: int | None = None) -> bytes:
    """A post file's bytes; a huge file is rejected from its size (given, or looked up)
    without reading it, and anything but a regular file (a FIFO, a device, a folder) is
    refused without waiting on it."""
    if size is not None and size > max_bytes:
        raise _too_large(size, max_bytes)
    try:
        fd = os.open(path, _OPEN_NO_WAIT)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) \
                    else "a device or socket"
                raise PostError(f"not a regular file ({kind})")
            if st.st_size > max_bytes:
                raise _too_large(st.st_size, max_bytes)
            parts, got, want = [], 0, st.st_size + 1
            while got <= max_bytes:  # to the end, even if the file grew since its size was taken
                part = os.read(fd, min(want, max_bytes + 1 - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
                want = 1 << 16
        finally:
            os.close(fd)
    except OSError as e:
        raise PostError(f"cannot read file: {e.strerror or e}") from None
    if got > max_bytes:
        raise _too_large(got, max_bytes)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_post(path: str | Path, site_tz: str = "Asia/Shanghai",
              max_bytes: int = DEFAULT_MAX_BYTES, seconds: float | None = POST_TIME_LIMIT) -> Article:
    with time_limit(seconds):
        return parse_post(read_bytes(path, max_bytes), str(path), site_tz, max_bytes)
