"""What a visitor sees when a page fails: one sentence (``dashboard.errors``), never a
traceback; the traceback goes to the server's log. In hosted mode the sentence names nothing
of the server, and Streamlit's own error display (for what escapes this, e.g. a callback)
shows no details either (``client.showErrorDetails = "none"``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from dashboard import background
from dashboard.errors import explain, log_to_stderr

log = logging.getLogger("dashboard.ui")
F = TypeVar("F", bound=Callable[..., Any])


def _settings() -> tuple[bool, Any]:
    """(hosted, store path); hosted when the settings themselves cannot be read (say nothing)."""
    from dashboard.ui.resources import settings

    try:
        s = settings()
    except Exception:
        return True, None
    return s.hosted, s.store_label


def show_failure(exc: Exception) -> None:
    hosted, store = _settings()
    failure = explain(exc, store)
    log.error("the page failed: %s", failure.message, exc_info=exc)
    st.error(failure.sentence(public=hosted), icon=":material/error:")


def guarded(fn: F) -> F:
    """``fn`` (a page, or a fragment of one) with its failures shown as a sentence. Streamlit's
    own control flow (st.stop, st.rerun) is not an Exception and passes through."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        log_to_stderr()
        hosted, _ = _settings()
        if hosted:
            st.set_option("client.showErrorDetails", "none")
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if background.stopping():  # the store closed under it as the server exits: not a failure
                background.park()
            show_failure(e)
            return None

    return run  # type: ignore[return-value]
