"""A synthetic corpus shaped like the real eastmoney posts, for benchmarks.

The mix follows ../shared/posts: mostly one-paragraph flash news with inline codes,
some long HTML articles with keytip links and sector boards, some with embedded K-line
blocks; dates in the real shapes; a blank line before some files' front matter.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

HK = ["03690", "01024", "00700", "09988", "01810", "09618", "00388", "02318", "00005", "01211"]
A = ["600519", "000858", "601318", "600036", "000001", "300750", "002594", "600030", "601688",
     "000776", "601211", "600999", "601995", "601066", "600160", "300343", "600636", "002456"]
US = ["NIO", "AAPL", "TSLA", "BABA", "INTC", "AMZN"]
NAMES = ["美团-W", "快手-W", "腾讯控股", "阿里巴巴-W", "小米集团-W", "京东集团-SW", "香港交易所",
         "中国平安", "汇丰控股", "比亚迪股份"]
WORDS = ("市场 资金 业绩 增长 公告 投资者 监管 板块 指数 收盘 上涨 下跌 机构 研报 预期 营收 利润 "
         "合作 战略 平台 用户 电商 消费 科技 新能源 汽车 芯片 银行 保险 证券").split()
BOARDS = ["BK0473", "BK0475", "BK0474", "BK0493", "BK0839"]


def _sentence(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(WORDS) for _ in range(n)) + "。"


def _date(rng: random.Random, base: datetime) -> str:
    t = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 700))
    shape = rng.random()
    if shape < 0.5:
        return t.strftime("%Y-%m-%d %H:%M:%S")
    if shape < 0.95:
        return t.strftime("%Y-%m-%d %H:%M:%S +0800")
    return t.strftime("%Y-%m-%d %H:%M:%S +08:00")


def _embed(code: str, market: str) -> str:
    return (f'<!-- EM_StockImg_Start --><p style="text-align:center;"><a href="http://quote.eastmoney.com/'
            f'unify/r/{market}.{code}" data-code="{code}|{market}|5" data-code2="{code}|{market}|3|" '
            f'class="EmImageRemark" target="_blank"><img src="https://webquoteklinepic.eastmoney.com/'
            f'GetPic.aspx?nid={market}.{code}&imageType=k&token=28dfeb41d35cc81d84b4664d7c23c49f&at=1" '
            f'border="0" alt="K图 {code}_0" data-code="K {code}|{market}|5" width="578" height="276" />'
            f'</a></p><!-- EM_StockImg_End -->')


def _keytip(market: str, code: str, name: str) -> str:
    kind = "bk" if market == "90" else "stock"
    return (f'<span id="{kind}_{market}.{code}"><a href="http://quote.eastmoney.com/unify/r/'
            f'{market}.{code}" class="keytip" data-code="{market},{code}">{name}</a></span>'
            f'<span id="quote_{market}.{code}"></span>')


def _common(market: str, code: str, name: str) -> str:
    return (f'<span web="1" href="http://quote.eastmoney.com/unify/r/{market}.{code}" '
            f'class="em_stock_key_common" data-code="{market},{code}">{name}</span>')


def make_post(i: int, rng: random.Random) -> str:
    """One post; the mix of kinds and sizes follows ../shared/posts (29 real posts):
    about 80% one-paragraph flash news (300-1,100 bytes), 10% long articles with embedded
    K-line blocks (7-10 KB, like the seeds) and 10% long articles with keytip links to
    stocks and sector boards (8-14 KB, like the 2022 samples)."""
    info = f"2021{rng.randrange(10**13, 10**14)}"
    kind = rng.random()
    footer = "\n\n[返回东财滚动新闻](../emnews/)\n[返回首页](../)\n"
    if kind < 0.8:  # flash news, half of them with inline codes
        if rng.random() < 0.5:
            code, a = rng.choice(HK), rng.choice(A)
            text = (f"{rng.choice(NAMES)}({code}.HK){_sentence(rng, 12)}贵州茅台({a})"
                    f"{_sentence(rng, rng.randrange(10, 60))}")
        else:
            text = _sentence(rng, rng.randrange(10, 120))
        body = (f"{text}（财联社）\n\n<http://finance.eastmoney.com/news/1354,{info}.html>{footer}")
    elif kind < 0.9:  # long HTML with embedded K-line blocks
        codes = rng.sample(HK, 2)
        body = ('<p style="display:none;height:1px;overflow:hidden;"><br /></p>'
                + "".join(_embed(c, "116") for c in codes)
                + "\n ".join(f"<p>{_sentence(rng, rng.randrange(20, 60))}</p>"
                              for _ in range(rng.randrange(10, 22)))
                + f'<p>{_sentence(rng, 20)}<span id="Info.3224"><a href="http://data.eastmoney.com/'
                  f'invest/invest/default.html" class="infokey">分析师</a></span></p>'
                + '<p class="em_media">（文章来源：北京商报）</p>'
                + f"\n\n<http://finance.eastmoney.com/news/1354,{info}.html>{footer}")
    else:  # long HTML with keytip links to stocks and boards
        stocks = [(rng.choice(["0", "1"]), rng.choice(A)) for _ in range(rng.randrange(3, 10))]
        paras = []
        for _ in range(rng.randrange(12, 24)):
            extra = ""
            if rng.random() < 0.3:
                m, c = rng.choice(stocks)
                extra = _keytip(m, c, "某证券") + "、" + _common(m, c, "某证券")
            if rng.random() < 0.2:
                extra += _keytip("90", rng.choice(BOARDS), "证券")
            paras.append(f"<p>{_sentence(rng, rng.randrange(15, 45))}{extra}&lt;注&gt;</p>")
        body = ("> " + _sentence(rng, 20) + "\n\n" + "\n ".join(paras)
                + '<p class="em_media">（文章来源：证券时报网）</p>'
                + f"\n\n<http://finance.eastmoney.com/news/1353,{info}.html>{footer}")
    lead = "\n" if i % 50 == 0 else ""
    title = f"{rng.choice(NAMES)}{_sentence(rng, 6)}"
    return (f'{lead}---\nlayout: post\ntitle: "{title}"\ndate: {_date(rng, datetime(2021, 1, 1))}\n'
            f"categories: emnews\ntags: 东财滚动新闻\n---\n{body}")


def corpus_stats(folder: Path) -> str:
    sizes = [p.stat().st_size for p in folder.rglob("*.md")]
    return f"{len(sizes):,} files, mean {sum(sizes) / len(sizes) / 1024:.1f} KiB"


def write_corpus(folder: Path, n: int, seed: int = 7) -> Path:
    """Write ``n`` posts under ``folder`` (in sub-folders of 1,000); reuse an existing one."""
    marker = folder / f".complete-{n}-{seed}-v2"
    if marker.exists():
        return folder
    rng = random.Random(seed)
    for i in range(n):
        sub = folder / f"{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"2021-01-01-post{i:06d}.md").write_text(make_post(i, rng), encoding="utf-8")
    marker.touch()
    return folder
