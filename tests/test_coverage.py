"""The related-coverage list under a limit: only the newest rows are read (from the instant of
the limit-th newest), and they are exactly the head of the whole list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dashboard.coverage import related_coverage
from dashboard.ingest import ingest_folder
from tests.conftest import write_post

SITE_TZ = "Asia/Shanghai"


def test_a_limit_gives_the_head_of_the_whole_list(new_store: Any, tmp_path: Path) -> None:
    store = new_store()
    posts = tmp_path / "posts"
    # 60 articles, most sharing their minute with others (flash news often do); some name
    # both securities, so one article gives two rows at the same instant
    for i in range(60):
        names = "美团-W(03690.HK)" + ("与腾讯控股(00700.HK)" if i % 3 == 0 else "")
        write_post(posts, f"2022-01-{i:02d}.md", f"{names}今日公告第{i}号。",
                   title=f"快讯{i}", date=f"2022-01-{10 + i // 7:02d} 09:{30 + i % 2:02d}:00 +0800")
    ingest_folder(store, posts, workers=1)
    pair = ["3690.HK", "0700.HK"]
    with store.read() as con:
        every = related_coverage(con, pair, SITE_TZ)
        assert len(every) == 80
        times = every["published"]
        tied = [k for k in range(1, len(every)) if times.iloc[k - 1] == times.iloc[k]]
        assert len(tied) > 40
        for limit in (1, 2, 5, 13, 40, 79, 80, 81, *tied[:5]):
            head = related_coverage(con, pair, SITE_TZ, limit=limit)
            assert head.equals(every.head(limit)), limit
        one_day = related_coverage(con, ["3690.HK"], SITE_TZ, start=every["published"].iloc[-1].date(),
                                   end=every["published"].iloc[-1].date())
        assert related_coverage(con, ["3690.HK"], SITE_TZ, start=every["published"].iloc[-1].date(),
                                end=every["published"].iloc[-1].date(), limit=3).equals(one_day.head(3))
