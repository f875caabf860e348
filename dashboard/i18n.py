"""The interface's own words in English and Simplified Chinese. Headlines and names are
shown as published, never translated."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.reactions import AverageReaction

LANGUAGES = {"en": "English", "zh": "中文"}

TEXTS: dict[str, dict[str, str]] = {
    "title": {"en": "News & prices", "zh": "新闻与行情"},
    "subtitle": {"en": "Articles marked at the session they could first move the price",
                 "zh": "每篇文章标注在它最早可能影响股价的交易时段"},
    "language": {"en": "Language", "zh": "语言"},
    "security": {"en": "Security", "zh": "证券"},
    "securities_help": {"en": "Type a code in any form (03690, 1024.hk, 700, 600519), a name (美团) or "
                              "pinyin initials (mt) and press Enter; most covered first. Picking one charts it.",
                        "zh": "可输入任意形式的代码（03690、1024.hk、700、600519）、名称（美团）或拼音首字母（mt）"
                              "后回车；按报道数量排序，选中即画出它的图。"},
    "compare_with": {"en": "Compare with", "zh": "加入对比"},
    "compare_help": {"en": "More securities, charted below the first on the same dates, and together in "
                           "the Compare and Average views.",
                     "zh": "更多证券：在同一日期范围内画在第一只下方，并在“对比”和“平均反应”视图中一起计算。"},
    "range": {"en": "Date range", "zh": "日期范围"},
    "articles": {"en": "articles", "zh": "篇"},
    "n_articles": {"en": "{n} articles", "en_one": "1 article", "zh": "{n} 篇"},
    "ohlc": {"en": "Open {o}<br>High {h}<br>Low {l}<br>Close {c}",
             "zh": "开 {o}<br>高 {h}<br>低 {l}<br>收 {c}"},
    "n_sessions": {"en": "{n} sessions", "en_one": "1 session", "zh": "{n} 个交易日"},
    "view": {"en": "View", "zh": "视图"},
    "view_chart": {"en": "Chart & coverage", "zh": "K线与报道"},
    "view_compare": {"en": "Compare", "zh": "对比"},
    "view_average": {"en": "Average reaction", "zh": "平均反应"},
    "view_moves": {"en": "Big moves", "zh": "大幅波动"},
    "price": {"en": "Price", "zh": "价格"},
    "volume": {"en": "Volume", "zh": "成交量"},
    "news": {"en": "News", "zh": "新闻"},
    "shared": {"en": "Names several of them", "zh": "同时提及多只"},
    "change": {"en": "Change since start", "zh": "区间涨跌幅"},
    "no_securities": {"en": "No securities yet: ingest a folder of posts.",
                      "zh": "还没有证券数据：请先导入文章文件夹。"},
    "no_prices": {"en": "No prices for {symbol} yet.", "zh": "{symbol} 暂无行情数据。"},
    "no_prices_why": {"en": "Why: {reason}.", "zh": "原因：{reason}。"},
    "no_prices_never": {"en": "They have not been fetched yet.", "zh": "尚未获取。"},
    "no_prices_how": {
        "en": "Get them with **Fetch prices** in the sidebar, or from a CSV export: "
              "`python -m dashboard prices import {symbol}.csv`.",
        "zh": "可在侧栏点击**获取行情**，或导入CSV文件：`python -m dashboard prices import {symbol}.csv`。"},
    "no_prices_hosted": {"en": "The host has not loaded them.", "zh": "托管站点尚未加载这些数据。"},
    "prices_missing_in_range": {"en": "No prices for {symbol} in this date range.",
                                "zh": "{symbol} 在所选日期范围内没有行情。"},
    "coverage": {"en": "Related coverage", "zh": "相关报道"},
    "keyword": {"en": "Keyword in headline or text", "zh": "标题或正文关键词"},
    "publishers": {"en": "Publisher", "zh": "来源"},
    "categories": {"en": "Category", "zh": "栏目"},
    "download": {"en": "Download CSV", "zh": "下载CSV"},
    "col_time": {"en": "Time", "zh": "时间"},
    "col_title": {"en": "Headline", "zh": "标题"},
    "col_source": {"en": "Publisher", "zh": "来源"},
    "col_others": {"en": "Other securities", "zh": "其他证券"},
    "col_session": {"en": "Session", "zh": "交易日"},
    "col_day0": {"en": "Day 0", "zh": "当日涨跌"},
    "col_car11": {"en": "CAR −1…+1", "zh": "超额收益−1…+1"},
    "col_car05": {"en": "CAR 0…+5", "zh": "超额收益0…+5"},
    "col_volume": {"en": "Volume ×", "zh": "量比"},
    "col_unusual": {"en": "How unusual", "zh": "是否异常"},
    "col_link": {"en": "Original", "zh": "原文"},
    "col_symbol": {"en": "For", "zh": "证券"},
    "open_link": {"en": "open", "zh": "打开"},
    "rows_shown": {"en": "{n} articles", "en_one": "1 article", "zh": "共 {n} 篇"},
    "rows_capped": {"en": "showing the newest {n}", "zh": "仅显示最新 {n} 篇"},
    "pick_article": {"en": "Select a row to read the article.", "zh": "选择一行阅读文章。"},
    "session_pick": {"en": "Session {session}: {n} articles", "en_one": "Session {session}: 1 article",
                     "zh": "{session} 交易日：{n} 篇"},
    "clear": {"en": "Show all", "zh": "显示全部"},
    "click_marker": {"en": "Click a news marker to list that session's articles.",
                     "zh": "点击新闻标记可查看该交易日的文章。"},
    "reading": {"en": "Article", "zh": "文章"},
    "published": {"en": "Published", "zh": "发布时间"},
    "source": {"en": "Publisher", "zh": "来源"},
    "original": {"en": "Original article", "zh": "阅读原文"},
    "no_link": {"en": "No link to the original in this post.", "zh": "该文章没有原文链接。"},
    "named": {"en": "Securities named (click to chart)", "zh": "提及的证券（点击切换图表）"},
    "how_embed": {"en": "main subject", "zh": "主要标的"},
    "how_link": {"en": "linked", "zh": "链接"},
    "how_inline": {"en": "mentioned", "zh": "提及"},
    "reaction": {"en": "Reaction of {symbol}", "zh": "{symbol} 的价格反应"},
    "missing": {"en": "—", "zh": "—"},
    "compare_need_two": {"en": "Add a security under Compare with to compare it with the first.",
                         "zh": "请在“加入对比”中添加证券，与第一只进行对比。"},
    "compare_caption": {"en": "Performance from the first session in range; stars mark articles "
                              "that name more than one of them.",
                        "zh": "以区间首个交易日为基准的涨跌幅；星形标记表示同时提及多只证券的文章。"},
    "average_caption": {
        "en": "Mean cumulative abnormal return (security minus {bench}) from 5 sessions before to 10 "
              "after each article, with a 95% band where at least 5 events contribute; {n} events "
              "(a security's session) have prices around them.",
        "zh": "每篇文章前5至后10个交易日的平均累计超额收益（相对{bench}），"
              "至少5个事件的交易日显示95%置信区间；"
              "共 {n} 个事件（证券的交易日）有前后行情。"},
    "average_pooled": {"en": "Pooled over {symbols}: each article counts once for each of them it names.",
                       "zh": "合并 {symbols}：文章对其提及的每只证券各计一次。"},
    "pick_article_moves": {"en": "Click a headline to read the article.", "zh": "点击标题阅读文章。"},
    "average_none": {"en": "No article in the selection has prices around it yet.",
                     "zh": "所选文章周围暂无完整行情。"},
    "main_only": {"en": "Main subjects only (K-line blocks)", "zh": "仅主要标的（K线图块）"},
    "caar": {"en": "Mean CAR", "zh": "平均累计超额收益"},
    "band": {"en": "95% band", "zh": "95%置信区间"},
    "day": {"en": "Sessions from the article", "zh": "距文章的交易日"},
    "moves_caption": {"en": "The largest abnormal daily moves of {name} in range, with the articles "
                            "published in the session before and on the day.",
                      "zh": "{name} 在区间内最大的单日超额波动，以及当日及前一交易日的相关报道。"},
    "moves_none": {"en": "No abnormal returns: prices or the benchmark are missing.",
                   "zh": "无法计算超额收益：缺少行情或基准指数数据。"},
    "move_line": {"en": "**{date}** abnormal {ar} (stock {ret}, market {rm})",
                  "zh": "**{date}** 超额 {ar}（个股 {ret}，大盘 {rm}）"},
    "no_coverage": {"en": "No coverage found.", "zh": "未找到相关报道。"},
    "data": {"en": "Data", "zh": "数据"},
    "model": {"en": "Abnormal returns", "zh": "超额收益"},
    "model_market": {"en": "vs index", "zh": "相对指数"},
    "model_mm": {"en": "Market model", "zh": "市场模型"},
    "model_help": {"en": "Market model: alpha and beta fitted by least squares over the 120 sessions "
                         "from 130 to 11 before each article.",
                   "zh": "市场模型：以文章前第130至第11个交易日（共120个）做最小二乘估计alpha和beta。"},
    "any": {"en": "Any", "zh": "全部"},
    "price_header": {"en": "{symbol} · last close **{close}** ({date}) · **{change}** over the range",
                     "zh": "{symbol} · 最新收盘 **{close}**（{date}）· 区间涨跌 **{change}**"},
    "moving_averages": {"en": "MA 5/20/60", "zh": "均线 5/20/60"},
    "col_security": {"en": "Security", "zh": "证券"},
    "pick_security": {"en": "Code, name or pinyin initials", "zh": "代码、名称或拼音首字母"},
    "unknown_typed": {"en": "Nothing in the store matches {value!r}.", "zh": "数据中没有与 {value!r} 匹配的证券。"},
    "fail_network": {"en": "No price source could be reached (no network connection?)",
                     "zh": "无法连接行情数据源（网络不通？）"},
    "fail_rate_limited": {"en": "The price source is limiting requests; retry in a few minutes",
                          "zh": "行情数据源限制了请求频率，请几分钟后重试"},
    "fail_unknown_symbol": {"en": "No price source knows this symbol (mistyped, or delisted)",
                            "zh": "行情数据源不认识该代码（代码有误或已退市）"},
    "fail_no_data": {"en": "No price source has prices for the dates asked",
                     "zh": "行情数据源在所请求的日期范围内没有行情"},
    "posts_folder": {"en": "Posts folder", "zh": "文章文件夹"},
    "ingest": {"en": "Ingest / refresh news", "zh": "导入 / 刷新新闻"},
    "ingest_failed": {"en": "The ingest did not finish; see the server's log.", "zh": "导入未完成，请查看服务器日志。"},
    "ingested": {"en": "{new} new, {updated} updated, {unchanged} unchanged, {rejected} rejected",
                 "zh": "新增 {new}，更新 {updated}，未变 {unchanged}，拒绝 {rejected}"},
    "rejected_file": {"en": "Rejected {path}: {reason}", "zh": "已拒绝 {path}：{reason}"},
    "fetch": {"en": "Fetch prices", "zh": "获取行情"},
    "fetched": {"en": "Prices: {stored} fetched, {cached} already stored, {failed} failed",
                "zh": "行情：获取 {stored}，已有 {cached}，失败 {failed}"},
    "import_csv": {"en": "Import a price CSV (yfinance export)", "zh": "导入行情CSV（yfinance导出）"},
    "imported": {"en": "Imported {rows} rows for {symbol}", "zh": "已导入 {symbol} 的 {rows} 行"},
    "watching": {"en": "Watching the folder for new posts every {s} s.", "zh": "每 {s} 秒检查一次新文章。"},
    "hosted": {"en": "Hosted mode: browse and share views; the data is managed by the host.",
               "zh": "托管模式：可浏览和分享视图，数据由站点维护。"},
    "bad_param": {"en": "The link's {name}={value!r} is not valid; showing the default instead.",
                  "zh": "链接中的 {name}={value!r} 无效，已改用默认值。"},
    "unknown_security": {"en": "The link names {value!r}, which is not in the store; it is left out.",
                         "zh": "链接中的 {value!r} 不在数据中，已忽略。"},
    "unknown_article": {"en": "The linked article {value!r} is not in the store.",
                        "zh": "链接中的文章 {value!r} 不在数据中。"},
    "store_busy": {"en": "The store is being updated by another process; showing the last data.",
                   "zh": "数据正在被其他进程更新，暂时显示上一次的数据。"},
    "refreshing": {"en": "Checking the posts folder and prices in the background…",
                   "zh": "正在后台检查文章文件夹和行情…"},
    "first_run": {"en": "Preparing the data…", "zh": "正在准备数据…"},
    "boot_prices_failed": {"en": "Some prices could not be fetched: {reason}.",
                           "zh": "部分行情未能获取：{reason}。"},
    "sample_note": {"en": "Showing the sample posts in data/posts (written by the project, marked 示例).",
                    "zh": "当前显示 data/posts 中的示例文章（项目自撰，标注“示例”）。"},
    "share": {"en": "Share this view: copy the page address.", "zh": "分享此视图：复制页面地址即可。"},
    "events": {"en": "events", "zh": "个事件"},
    "sig_unusual": {"en": "{car} abnormal over {n} days, unusual: p {p}",
                    "en_one": "{car} abnormal over 1 day, unusual: p {p}",
                    "zh": "{n}日超额收益 {car}，显著（p {p}）"},
    "sig_noise": {"en": "{car} abnormal over {n} days, within normal noise: p {p}",
                  "en_one": "{car} abnormal over 1 day, within normal noise: p {p}",
                  "zh": "{n}日超额收益 {car}，属正常波动（p {p}）"},
    "sig_untested": {"en": "{car} abnormal over {n} days; too little price history to judge",
                     "en_one": "{car} abnormal over 1 day; too little price history to judge",
                     "zh": "{n}日超额收益 {car}（此前行情不足，无法判断是否异常）"},
    "sig_missing": {"en": "no abnormal return: prices or the benchmark are missing",
                    "zh": "缺少行情或基准指数，无法计算超额收益"},
    "significant_only": {"en": "Unusual only (p < {alpha})", "zh": "仅异常（p < {alpha}）"},
    "significance_help": {
        "en": "How unusual a move is: each stock's normal noise is the standard deviation σ of its daily "
              "abnormal returns over the 120 sessions ending 11 before the article (at least 60 needed). "
              "Over L days the noise is σ·√L; t = CAR ÷ (σ·√L), and p is the chance of a move at least "
              "this large in either direction if the news did nothing (Student's t). \"Unusual\" means "
              "p < 0.05: about 1 ordinary move in 20 still looks unusual, and other news on the same days "
              "counts too. Averages over several articles use the Boehmer–Musumeci–Poulsen test on the "
              "standardized CARs and Cowan's generalized sign test; their band needs at least 5 events.",
        "zh": "衡量波动是否异常：以文章前第130至第11个交易日（共120个，至少需60个）每日超额收益的标准差σ作为"
              "该股的正常波动；L日的正常波动为σ·√L，t = 累计超额收益 ÷ (σ·√L)，p值是在新闻毫无影响时出现"
              "同样大（涨或跌）波动的概率（t分布）。“显著”指 p < 0.05：约每20次普通波动仍有1次看似显著，"
              "且同期的其他消息也会计入。多篇文章的平均反应采用Boehmer–Musumeci–Poulsen标准化检验和"
              "Cowan广义符号检验；至少5个事件才显示置信区间。"},
    "avg_tests": {
        "en": "Mean CAR {car} over sessions {first}…{last} of {n} events: BMP t = {bmp_t}, p {bmp_p}; "
              "generalized sign test: {positive} of {n} positive ({expected} expected), z = {sign_z}, "
              "p {sign_p}.",
        "zh": "{n}个事件在第{first}…{last}日的平均累计超额收益 {car}：BMP检验 t = {bmp_t}，p {bmp_p}；"
              "广义符号检验：{positive}/{n} 为正（预期 {expected}），z = {sign_z}，p {sign_p}。"},
    "avg_band_none": {
        "en": "No band: at most {n} events behind any day, and a spread needs at least {min}.",
        "zh": "未显示置信区间：每日最多只有 {n} 个事件，至少需要 {min} 个才能估计离散程度。"},
    "avg_band_partial": {
        "en": "The band is drawn only where at least {min} events contribute; from day {day} on fewer do.",
        "zh": "置信区间仅在至少 {min} 个事件的交易日显示；自第 {day} 日起事件不足。"},
    "avg_untested": {
        "en": "No significance test: {n} events have enough price history around them, "
              "at least {min} needed.",
        "en_one": "No significance test: 1 event has enough price history around it, at least {min} needed.",
        "zh": "未做显著性检验：仅 {n} 个事件有足够的前后行情，至少需要 {min} 个。"},
    "avg_duplicates": {
        "en": "{articles} articles fall on {n} security-sessions; each session counts once.",
        "zh": "{articles} 篇文章落在 {n} 个证券交易日上，同一交易日只计一次。"},
    "avg_clustered": {
        "en": "{n} events share their day 0 with another security's ({sessions} sessions): they are not "
              "independent, so the tests overstate significance.",
        "zh": "{n} 个事件与其他证券的事件同在一个交易日（共 {sessions} 个交易日）：它们并不独立，"
              "检验会高估显著性。"},
    "avg_overlapping": {
        "en": "{n} events of one security lie within {span} sessions of another: their windows overlap "
              "and count the same days twice.",
        "zh": "同一证券有 {n} 个事件相隔不足 {span} 个交易日：事件窗口重叠，同一天的收益被重复计算。"},
    "method": {
        "en": "Day 0 is the first session that closes after publication (next session after the close, "
              "weekends and holidays). Returns use adjusted closes; CAR sums abnormal returns against "
              "the market index ({bench}).",
        "zh": "第0日为发布后第一个收盘的交易时段（收盘后或节假日发布则顺延）。收益率基于复权收盘价；"
              "累计超额收益为相对大盘指数（{bench}）的超额收益之和。"},
}


def t(key: str, lang: str, **values: object) -> str:
    entry = TEXTS.get(key)
    if entry is None:
        return key
    text = (entry.get(f"{lang}_one") if values.get("n") == 1 else None) or entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def percent(value: float, digits: int = 1) -> str:
    """A signed percentage with a true minus sign: +0.8%, −4.3%."""
    return f"{value * 100:+.{digits}f}%".replace("-", "\u2212")


def p_value(p: float, alpha: float = 0.05) -> str:
    """"= 0.01", "= 0.004", "< 0.001"; never rounded across ``alpha``."""
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.2g}"
    if (float(text) < alpha) != (p < alpha):
        text = f"{p:.3g}"
    return f"= {text}"


def reaction_sentence(car: float | None, p: float | None, sessions: int, lang: str,
                      alpha: float = 0.05) -> str:
    """A CAR over ``sessions`` days and its p-value, as an investor reads it at a glance:
    "−4.3% abnormal over 3 days, unusual: p = 0.01" / "3日超额收益 −4.3%，显著（p = 0.01）"."""
    if car is None:
        return t("sig_missing", lang)
    if p is None:
        return t("sig_untested", lang, car=percent(car), n=sessions)
    return t("sig_unusual" if p < alpha else "sig_noise", lang, car=percent(car), n=sessions,
             p=p_value(p, alpha))


def average_sentences(result: AverageReaction, lang: str) -> list[str]:
    """The tests' result, then what the sample allows and why the events are not independent."""
    out = []
    if result.bmp_t is not None or result.sign_z is not None:
        def num(v: float | None) -> str:
            return "—" if v is None else f"{v:.2f}".replace("-", "\u2212")

        first, last = (f"{d:+d}".replace("-", "\u2212") for d in result.window)
        out.append(t("avg_tests", lang, car=percent(result.car or 0.0, 2), first=first, last=last,
                     n=result.tested,
                     bmp_t=num(result.bmp_t), bmp_p="—" if result.bmp_p is None else p_value(result.bmp_p),
                     positive=result.positive,
                     expected=f"{(result.expected_positive or 0) * result.tested:.1f}",
                     sign_z=num(result.sign_z),
                     sign_p="—" if result.sign_p is None else p_value(result.sign_p)))
    out += [t(key, lang, **values) for key, values in (*result.notes, *result.warnings)]
    return out
