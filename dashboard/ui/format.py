"""How values and untrusted text are shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from dashboard.i18n import t

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|<>~$"})


def plain(text: str) -> str:
    """Untrusted text shown through markdown as literal characters (no markup, no HTML)."""
    return text.translate(_MD_SPECIAL)


def pct(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{value * 100:+.2f}%"


def label_of(overview: pd.DataFrame) -> Callable[[str], str]:
    rows = overview.set_index("symbol")

    def fmt(symbol: str) -> str:
        if symbol not in rows.index:
            return symbol
        r = rows.loc[symbol]
        return f"{symbol} {r['name']} ({r['articles']})".replace("  ", " ")

    return fmt


def failure_text(kind: str, reason: str, lang: str) -> str:
    """A price failure in the interface's language; the source's own words for the unforeseen."""
    localized = t(f"fail_{kind}", lang)
    return reason if localized == f"fail_{kind}" else localized
