"""Read one Jekyll-style news post into an :class:`Article`, or say why it cannot be read.

Posts come from eastmoney mirrors: YAML front matter, then an HTML or markdown body
with embedded K-line blocks, a bare ``<http://...>`` source line, an optional digest
line (``> ...``) and a "返回..." navigation footer.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from frontmatter.default_handlers import YAMLHandler
from selectolax.lexbor import LexborHTMLParser

from dashboard.securities import Mention, find_mentions

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


class _FrontMatterLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML, except that codes with a leading zero stay strings.

    YAML 1.1 reads ``01024`` as the octal number 532; in a post it is a stock code.
    """


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    raw = loader.construct_scalar(node)
    digits = str(raw).lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1:2].isdigit():
        return str(raw)
    return yaml.SafeLoader.construct_yaml_int(loader, node)  # type: ignore[arg-type]


_FrontMatterLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
# Dates stay strings: parse_published reads them, and a bad one is a reason, not a crash.
_FrontMatterLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                   lambda loader, node: loader.construct_scalar(node))


class _Handler(YAMLHandler):
    def load(self, fm: str, **kwargs: object) -> Any:
        return yaml.load(fm, Loader=_FrontMatterLoader)  # noqa: S506 - a safe loader


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

_SOURCE_LINE = re.compile(r"^\s*<(https?://[^>\s]+)>\s*$", re.M)
_FOOTER_LINE = re.compile(r"^\s*\[返回[^\]]*\]\([^)]*\).*$", re.M)
_EMBED_BLOCK = re.compile(r"<!--\s*EM_StockImg_Start\s*-->.*?<!--\s*EM_StockImg_End\s*-->", re.S)
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|li|tr|blockquote|center|section)\s*>", re.I)
_HIDDEN = 'script, style, noscript, [style*="display:none"], [style*="display: none"]'
_LOOKS_HTML = re.compile(r"<(?:p|div|span|br|a|strong|img|center|!--)[\s>/]", re.I)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARK = re.compile(r"(\*\*|__|^#{1,6}\s+)", re.M)
_PUBLISHER = re.compile(r"[（(]\s*文章来源[：:]\s*([^）)\n]{1,30}?)\s*[）)]")
_TRAILING_PUBLISHER = re.compile(r"[。！？!?”\"]\s*[（(]([^（）()\n\d]{2,12})[）)]\s*$")
_INFO_CODE = re.compile(r"(?<!\d)(\d{18})(?!\d)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def html_to_text(fragment: str) -> str:
    """Readable text of an HTML fragment: one paragraph a line, entities decoded."""
    fragment = _BLOCK_END.sub("\n", _EMBED_BLOCK.sub("", fragment))
    tree = LexborHTMLParser(fragment)
    for node in tree.css(_HIDDEN):
        node.decompose()
    root = tree.body
    return root.text(separator="") if root is not None else ""


def markdown_to_text(fragment: str) -> str:
    text = _MD_MARK.sub("", _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", fragment)))
    return html.unescape(text)


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.replace("\u3000", " ").splitlines())
    return "\n".join(line for line in lines if line)


def find_publisher(text: str) -> str | None:
    m = _PUBLISHER.search(text)
    if m:
        return m.group(1).strip()
    for line in reversed(text.splitlines()):
        m = _TRAILING_PUBLISHER.search(line)
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
        raise PostError(
            f"file is too large ({len(raw) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)"
        )
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

    m = _SOURCE_LINE.search(body)
    url = m.group(1) if m else None
    body = _FOOTER_LINE.sub("", _SOURCE_LINE.sub("", body))
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


def read_post(path: str | Path, site_tz: str = "Asia/Shanghai",
              max_bytes: int = DEFAULT_MAX_BYTES) -> Article:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:  # do not read a huge file only to reject it
            raise PostError(
                f"file is too large ({size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)"
            )
        raw = p.read_bytes()
    except OSError as e:
        raise PostError(f"cannot read file: {e.strerror or e}") from None
    return parse_post(raw, str(p), site_tz, max_bytes)
