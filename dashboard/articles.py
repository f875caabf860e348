"""Read one Jekyll-style news post into an :class:`Article`, or say why it cannot be read.

Posts come from eastmoney mirrors: YAML front matter, then an HTML or markdown body
with embedded K-line blocks, a bare ``<http://...>`` source line, an optional digest
line (``> ...``) and a "返回..." navigation footer.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from frontmatter.default_handlers import YAMLHandler

from dashboard.securities import EMBED_BLOCK, Mention, find_mentions

DEFAULT_MAX_BYTES = 5 * 1024 * 1024


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
        simple = simple_front_matter(fm)
        if simple is not None:
            return simple
        return yaml.load(fm, Loader=_FrontMatterLoader)  # noqa: S506 - builds only str/list/dict


_SIMPLE_LINE = re.compile(r"([A-Za-z_][\w-]*):(?:[ \t]+(.*?))?[ \t]*")
_PLAIN_START = set("-?:,[]{}#&*!|>'\"%@`")


def simple_front_matter(fm: str) -> dict[str, str] | None:
    """Front matter made only of ``key: scalar`` lines, read without a YAML parser.

    Nearly every post's front matter is this simple, and YAML's constructor costs a
    quarter of a post's parse time. Anything else (lists, escapes, comments, nesting,
    continuation lines) returns None and goes to YAML; on what it accepts, the result
    equals the YAML loader's (tests check both on real and generated posts).
    """
    meta: dict[str, str] = {}
    for line in fm.split("\n"):
        if not line or line.isspace():
            continue
        m = _SIMPLE_LINE.fullmatch(line)
        if m is None or m.group(1) in meta:
            return None
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
        meta[m.group(1)] = value
    return meta


_HANDLER = _Handler()

# --- dates -------------------------------------------------------------------------

_DATE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
    r"\s*(Z|[+-]\d{1,2}(?::?\d{2})?)?$"
)


def parse_published(value: object, site_tz: str) -> datetime:
    """A tz-aware publication instant from a front-matter date; naive times are in ``site_tz``."""
    tz = ZoneInfo(site_tz)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PostError("missing date in front matter")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=tz)
    if isinstance(value, str):
        m = _DATE.match(value.strip())
        if m:
            y, mo, d, hh, mm, ss, frac, off = m.groups()
            try:
                naive = datetime(
                    int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                    int((frac or "0").ljust(6, "0")),
                )
                if off is None:
                    return naive.replace(tzinfo=tz)
                if off == "Z":
                    off = "+00"
                sign, digits = off[0], off[1:].replace(":", "")
                hours, minutes = (digits[:-2], digits[-2:]) if len(digits) > 2 else (digits, "00")
                offset = timedelta(hours=int(hours), minutes=int(minutes))
                return naive.replace(tzinfo=timezone(-offset if sign == "-" else offset))
            except ValueError:
                pass
    raise PostError(f"unparseable date {value!r} in front matter")


# --- body --------------------------------------------------------------------------

_SOURCE_LINE = re.compile(r"\s*<(https?://[^>\s]+)>\s*")
_FOOTER_LINE = re.compile(r"\s*\[返回[^\]]*\]\([^)]*\).*")
_COMMENT = re.compile(r"<!--.*?-->", re.S)  # also takes EM_StockImg markers' content out below
_SCRIPT = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>", re.S | re.I)
_HIDDEN_STYLE = re.compile(r"display:\s*none", re.I)
_OPEN_TAG = re.compile(r"<(\w+)[^<>]*$")
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|li|tr|blockquote|center|section|table)\s*>", re.I)
_TAG = re.compile(r"""<[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>""")
_SPACES = re.compile(r"[ \t\r\f\v\u3000\xa0]+")
_LOOKS_HTML = re.compile(r"<(?:p|div|span|br|a|strong|img|center|!--)[\s>/]", re.I)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
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
    ingest throughput target needs. Quoted attributes may contain '>'.
    """
    if "<!--" in fragment:
        fragment = _COMMENT.sub("", EMBED_BLOCK.sub("", fragment))
    if "<script" in fragment or "<style" in fragment or "<noscript" in fragment or "<template" in fragment:
        fragment = _SCRIPT.sub("", fragment)
    if "display:" in fragment:
        fragment = _drop_hidden(fragment)
    text = _TAG.sub("", _BLOCK_END.sub("\n", fragment))
    return html.unescape(text) if "&" in text else text


def _drop_hidden(fragment: str) -> str:
    """Remove elements styled display:none (and what they hold)."""
    out, pos = [], 0
    for m in _HIDDEN_STYLE.finditer(fragment):
        if m.start() < pos:
            continue
        opening = _OPEN_TAG.search(fragment, max(pos, m.start() - 300), m.start())
        if opening is None:
            continue
        close = re.search(rf"</{opening.group(1)}\s*>", fragment[m.end():], re.I)
        if close is None:
            continue
        out.append(fragment[pos:opening.start()])
        pos = m.end() + close.end()
    out.append(fragment[pos:])
    return "".join(out)


def markdown_to_text(fragment: str) -> str:
    if "](" in fragment:
        fragment = _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", fragment))
    if "**" in fragment or "__" in fragment or "#" in fragment:
        fragment = _MD_MARK.sub("", fragment)
    return html.unescape(fragment) if "&" in fragment else fragment


def _tidy(text: str) -> str:
    lines = (line.strip() for line in _SPACES.sub(" ", text).split("\n"))
    return "\n".join(line for line in lines if line)


def find_publisher(text: str) -> str | None:
    m = _PUBLISHER.search(text)
    if m:
        return m.group(1).strip()
    last = text[-60:]  # flash news end with the publisher: "...。（澎湃新闻）"
    if last.endswith(("）", ")")):
        m = _TRAILING_PUBLISHER.search(last)
        if m and _CJK.search(m.group(1)):
            return m.group(1).strip()
    return None


def _string_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()  # Jekyll splits a category string on spaces
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def decode(raw: bytes, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, list[str]]:
    """Post bytes to text: UTF-8 (with or without BOM), else GBK/GB18030 with a warning."""
    if len(raw) > max_bytes:
        raise _too_large(len(raw), max_bytes)
    if not raw.strip():
        raise PostError("empty file")
    if b"\x00" in raw[:8192]:
        raise PostError("binary file, not a text post")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as utf8_error:
        try:
            return raw.decode("gb18030"), ["decoded as GBK (GB18030), not UTF-8"]
        except UnicodeDecodeError:
            raise PostError(
                f"not UTF-8 or GBK text (bad byte at offset {utf8_error.start})"
            ) from None


def parse_post(raw: bytes, path: str, site_tz: str = "Asia/Shanghai",
               max_bytes: int = DEFAULT_MAX_BYTES) -> Article:
    """Parse one post's bytes; raise :class:`PostError` with the reason when it cannot be read."""
    text, warnings = decode(raw, path, max_bytes)
    text = text.lstrip("\ufeff \t\r\n").replace("\r\n", "\n")
    if not _HANDLER.detect(text):
        raise PostError("no front matter: the file must start with a '---' line")
    try:
        fm, body = _HANDLER.split(text)
    except ValueError:
        raise PostError("front matter is not closed by a second '---' line") from None
    try:
        meta = _HANDLER.load(fm)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PostError(f"malformed YAML front matter{line}: {problem}") from None
    if not meta:
        raise PostError("front matter is empty")
    if not isinstance(meta, dict):
        raise PostError("front matter is not a mapping of keys to values")

    title = meta.get("title")
    if title is None or not str(title).strip():
        raise PostError("missing title in front matter")
    title = " ".join(html.unescape(str(title)).split())
    published = parse_published(meta.get("date"), site_tz)

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
            elif not _FOOTER_LINE.fullmatch(line):
                kept.append(line)
        body = head + "\n".join(kept)
    digest_lines = []
    lines = body.lstrip().splitlines()
    while lines and lines[0].startswith(">"):
        digest_lines.append(lines.pop(0).lstrip("> ").strip())
    digest = _tidy(markdown_to_text(" ".join(digest_lines))) or None
    content = "\n".join(lines)
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
        categories=_string_list(meta.get("categories")),
        tags=_string_list(meta.get("tags")),
        url=url,
        source=find_publisher(clean) or (find_publisher(digest) if digest else None),
        digest=digest,
        text=clean,
        dedup_key=dedup_key,
        mentions=find_mentions(title, content, f"{digest}\n{clean}" if digest else clean),
        warnings=warnings,
    )


def _too_large(size: int, max_bytes: int) -> PostError:
    return PostError(f"file is too large ({size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)")


def read_bytes(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, size: int | None = None) -> bytes:
    """A post file's bytes; a huge file is rejected from its size (given, or looked up)
    without reading it."""
    try:
        size = os.path.getsize(path) if size is None else size
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise PostError(f"cannot read file: {e.strerror or e}") from None


def read_post(path: str | Path, site_tz: str = "Asia/Shanghai",
              max_bytes: int = DEFAULT_MAX_BYTES) -> Article:
    return parse_post(read_bytes(path, max_bytes), str(path), site_tz, max_bytes)
