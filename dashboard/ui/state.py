"""The view's state, and how it lives in the URL so a link reproduces a view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.i18n import LANGUAGES, t
from dashboard.securities import SecurityIndex

VIEWS = ["chart", "compare", "average", "moves"]
MODELS = ["market", "mm"]


@dataclass
class ViewState:
    securities: list[str]
    start: date
    end: date
    article: str | None
    view: str
    lang: str
    model: str = "market"


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def resolve_in_store(text: str, index: SecurityIndex, known: set[str]) -> str | None:
    """The stored security a typed text means (``03690``, ``1024.hk``, ``700``, ``美团``, ``mt``)."""
    return next((sym for sym in index.resolve(text, limit=20) if sym in known), None)


def read_url(overview: pd.DataFrame, index: Callable[[], SecurityIndex],
             lang_default: str) -> tuple[dict[str, Any], list[str]]:
    """Initial widget values from the query parameters, and notices for what was invalid.
    ``index`` is asked for only when the URL names a security by anything but its symbol
    (building one loads the pinyin tables: half a second of a first page)."""
    qp = st.query_params
    notices: list[str] = []
    lang = qp.get("lang", lang_default)
    if lang not in LANGUAGES:
        notices.append(t("bad_param", lang_default, name="lang", value=lang))
        lang = lang_default
    known = set(overview["symbol"])
    chosen = []
    for raw in ",".join(qp.get_all("s")).split(","):
        text = raw.strip()
        if not text:
            continue
        sym = text if text in known else resolve_in_store(text, index(), known)
        if sym is not None:
            chosen.append(sym)
        else:
            notices.append(t("unknown_security", lang, value=text))
    values: dict[str, Any] = {"lang": lang, "securities": list(dict.fromkeys(chosen))}
    for name in ("from", "to"):
        raw = qp.get(name)
        parsed = _parse_date(raw)
        if raw and parsed is None:
            notices.append(t("bad_param", lang, name=name, value=raw))
        values[name] = parsed
    if values["from"] and values["to"] and values["from"] > values["to"]:
        notices.append(t("bad_param", lang, name="from", value=qp.get("from")))
        values["from"] = values["to"] = None
    view = qp.get("view", "chart")
    if view not in VIEWS:
        notices.append(t("bad_param", lang, name="view", value=view))
        view = "chart"
    values["view"] = view
    values["article"] = qp.get("a") or None
    model = qp.get("m", "market")
    if model not in MODELS:
        notices.append(t("bad_param", lang, name="m", value=model))
        model = "market"
    values["model"] = model
    return values, notices


def write_url(state: ViewState) -> None:
    params = {"s": ",".join(state.securities), "from": state.start.isoformat(), "to": state.end.isoformat(),
              "view": state.view, "lang": state.lang}
    article = st.session_state.get("article", state.article)
    if article:
        params["a"] = article
    if state.model != "market":
        params["m"] = state.model
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
