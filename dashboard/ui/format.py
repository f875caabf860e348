"""How values and untrusted text are shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

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


def sign_colour(value: Any, lang: str) -> str:
    """CSS for a return: red up and green down in 中文, the other way round in English, as the
    candles are."""
    if missing(value) or value == 0:
        return ""
    up, down = UP_DOWN.get(lang, UP_DOWN["en"])
    return f"color: {up if value > 0 else down}"


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
