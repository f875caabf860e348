"""Hostile posts (issue 10): the bodies that made the cleaning patterns super-linear, YAML
alias bombs and the other bad inputs, for tests, for an end-to-end ingest of a folder of
them, and to time reading them.

    python benchmarks/hostile.py [--sizes 50000 200000 800000] [--repeat 5]
    python benchmarks/hostile.py --write FOLDER     # one file per case, for an ingest run

Timing prints min/median/max seconds per case and size: linear patterns grow 4x from one
size to the next (the previous ones grew 16x and took over 10 s each at 200k characters).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATE = "2021-12-08 10:46:18 +0800"


def _run(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def pathological_bodies(n: int = 200_000) -> dict[str, str]:
    """Bodies of about ``n`` characters, each of which the previous patterns read in time
    quadratic in ``n``."""
    return {
        "p_then_lt": "<p>" + "<" * n,
        "unclosed_quotes_in_tags": "<p>" + _run('<a title="x', n),
        "quote_chain": "<p>" + _run("<\"'", n),
        "text_lt_between_tags": "<p>" + _run("< b ", n),
        "unclosed_br": "<p>" + _run("<br ", n),
        "unclosed_closing_tag": "<p>" + _run("</p ", n),
        "unclosed_comments": "<p>" + _run("<!--", n),
        "unclosed_embed_blocks": "<p>" + _run("<!-- EM_StockImg_Start -->", n),
        "unclosed_scripts": "<p>" + _run("<script>", n),
        "unclosed_styles": "<p>" + _run("<style ", n),
        "hidden_without_close": "<p>" + _run('<div style="display:none">', n),
        "hidden_many_names": "<p>" + "".join(f'<x{i} style="display:none">' for i in range(n // 28)),
        "hidden_long_tag_names": "<p>" + _run("<aaaaaaaaaaaaaaaaaaaa display:none ", n),
        "md_link_runs": _run("[a](", n),
        "md_image_runs": _run("![a](", n),
        "md_link_text_runs": _run("[a", n) + "]",
        "md_footer_runs": _run("[返回x](", n),
        "keytip_without_close": "<p>" + _run('data-code="1,600000"', n),
        "keytip_attributes": "<p>" + _run('data-code="1,600000" ', n),
        "digest_lines": _run(">\n", n),
    }


def billion_laughs(key: str) -> str:
    """Front matter lines whose ``key`` expands to 9**9 (387 million) strings."""
    lines = ['lol0: &a0 "lol"']
    lines += [f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + f"\n{key}: *a9"


def _post(front: str, body: str = "正文。") -> bytes:
    return f"---\n{front}\n---\n{body}\n".encode()


def hostile_posts(n: int = 200_000) -> dict[str, bytes]:
    """File name -> bytes of every bad post of issue 10's Posts part (bodies of ``n``
    characters). Each must be read, or refused with a reason, within moments."""
    good = f"title: t\ndate: {DATE}"
    posts = {f"body-{name}.md": _post(good, body) for name, body in pathological_bodies(n).items()}
    for stamp in ("9999-12-31 23:59:59", "0001-01-01 00:00:00"):
        for offset in ("", " +14:00", " -14:00"):
            name = f"date-{stamp[:4]}{offset.strip().replace(':', '')}.md"
            posts[name] = _post(f"title: t\ndate: {stamp}{offset}")
    posts["date-offset-1500.md"] = _post("title: t\ndate: 2021-12-08 10:00:00 +15:00")
    for key in ("title", "tags", "categories", "date"):
        title = "" if key in ("title", "date") else "\ntitle: t"
        date = "" if key == "date" else f"\ndate: {DATE}"
        posts[f"bomb-{key}.md"] = _post(billion_laughs(key) + title + date)
    posts["front-matter-too-large.md"] = _post(f'{good}\nnote: "{"x" * 70_000}"')
    posts["front-matter-too-deep.md"] = _post(f"{good}\nx: {'[' * 5000}")
    posts["front-matter-too-many-values.md"] = _post(f"{good}\nx: [{','.join(['a'] * 20_000)}]")
    posts["title-mapping.md"] = _post(f"title: {{zh: 标题, en: title}}\ndate: {DATE}")
    posts["title-list.md"] = _post(f"title: [a, b]\ndate: {DATE}")
    posts["tags-with-mapping.md"] = _post(f"{good}\ntags: [a, {{b: c}}]\ncategories: {{x: y}}")
    posts["duplicate-title.md"] = _post(f"title: one\ndate: {DATE}\ntitle: two")
    posts["duplicate-title-yaml.md"] = _post(f"title: one\ndate: {DATE}\ntags: [a]\ntitle: two")
    posts["nul-after-8k.md"] = _post(good, "正文" * 3000 + "\x00" + "正文")
    text = _post(f'title: "美团快手互通"\ndate: {DATE}', "美团-W(03690.HK)涨。").decode()
    posts["utf16-le-bom.md"] = ("\ufeff" + text).encode("utf-16-le")
    posts["utf16-be-bom.md"] = ("\ufeff" + text).encode("utf-16-be")
    posts["utf16-le.md"] = text.encode("utf-16-le")
    posts["utf16-be.md"] = text.encode("utf-16-be")
    return posts


def write_folder(folder: Path, n: int = 200_000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, raw in hostile_posts(n).items():
        (folder / name).write_bytes(raw)
        paths.append(folder / name)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 800_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", type=Path, help="write the hostile posts into this folder and stop")
    args = parser.parse_args()
    if args.write:
        print(f"{len(write_folder(args.write))} files in {args.write}")
        return
    from dashboard.articles import PostError, parse_post

    def timed(raw: bytes, name: str) -> str:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            try:
                parse_post(raw, name)
            except PostError:
                pass
            times.append(time.perf_counter() - t)
        return f"{min(times):.4f}/{statistics.median(times):.4f}/{max(times):.4f}"

    by_size = {n: hostile_posts(n) for n in args.sizes}
    sizes = "".join(f"{n:>24,}" for n in args.sizes)
    print(f"{'body of n characters':32s}{sizes}   (min/median/max s)")
    for name in (k for k in by_size[args.sizes[0]] if k.startswith("body-")):
        print(f"{name:32s}" + "".join(f"{timed(by_size[n][name], name):>24s}" for n in args.sizes))
    print(f"\n{'other case':32s}{'':>24s}")
    for name, raw in by_size[args.sizes[0]].items():
        if not name.startswith("body-"):
            print(f"{name:32s}{timed(raw, name):>24s}")

if __name__ == "__main__":
    main()
