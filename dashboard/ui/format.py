"""How values and untrusted text are shown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from dashboard.figures import UP_DOWN
from dashboard.i18n import t

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|<>~$"})


def plain(text: str) -> str:
    """Untrusted text shown through markdown as literal characters: no markup, no HTML, and no
    Streamlit directives (``:material/home:``, ``:red[...]``, emoji codes), whose colons get a
    zero-width space after them."""
    return text.translate(_MD_SPECIAL).replace(":", ":\u200b")


def pct(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{value * 100:+.2f}%"


def missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def sign_colours(table: pd.DataFrame, columns: Sequence[str], lang: str) -> Styler:
    """``table`` with its return ``columns`` coloured by sign, red up and green down in 中文,
    the other way round in English, as the candles are; for ``st.dataframe``.

    Streamlit draws a Styler from what pandas' ``_compute`` and ``_translate`` give: a dict for
    every cell of the table, and the text of each (35 ms a run for the coverage table's 250
    rows). This Styler gives the colour rules alone, found a column at a time, and no texts (the
    values are shown as they are, formatted by the table's column_config). It must be a Styler
    itself, not a subclass: Streamlit knows one by its type's name."""
    styler = table.style
    up, down = UP_DOWN.get(lang, UP_DOWN["en"])

    def translate(*args: Any, **kwargs: Any) -> dict[str, Any]:
        rules = []
        for name in columns:
            j = table.columns.get_loc(name)
            values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            for colour, rows in ((up, np.flatnonzero(values > 0)), (down, np.flatnonzero(values < 0))):
                if len(rows):
                    rules.append({"props": [("color", colour)], "selectors": [f"row{r}_col{j}" for r in rows]})
        return {"table_styles": [], "cellstyle": rules, "body": []}

    styler._compute = lambda: styler  # type: ignore[method-assign]
    styler._translate = translate  # type: ignore[method-assign]
    return styler


def signed_pct(value: Any, lang: str) -> str:
    """A change as coloured markdown, e.g. ``:red[+2.10%]`` in 中文 for a rise."""
    if missing(value):
        return "—"
    colour = {"#d62728": "red", "#2ca02c": "green"}
    up, down = UP_DOWN.get(lang, UP_DOWN["en"])
    return f":{colour[up if value >= 0 else down]}[{value * 100:+.2f}%]"


def label_of(overview: pd.DataFrame) -> Callable[[str], str]:
    # labelled once, not one pandas lookup per option on every rerun (the picker lists them all)
    labels = {sym: f"{sym} {name} ({n})".replace("  ", " ")
              for sym, name, n in zip(overview["symbol"], overview["name"], overview["articles"], strict=True)}

    def fmt(symbol: str) -> str:
        return labels.get(symbol, symbol)

    return fmt


def failure_text(kind: str, reason: str, lang: str) -> str:
    """A price failure in the interface's language: in English the sources' own words (they
    name each source asked, in order), else the kind's sentence; the sources' words for the
    unforeseen."""
    if lang == "en":
        return reason
    localized = t(f"fail_{kind}", lang)
    return reason if localized == f"fail_{kind}" else localized


def rerun_part() -> None:
    """Rerun the fragment this code runs in; in a full run of the page, the page."""
    import streamlit as st
    from streamlit.errors import StreamlitInvalidLayoutContextError

    try:
        st.rerun(scope="fragment")
    except StreamlitInvalidLayoutContextError:
        st.rerun()
