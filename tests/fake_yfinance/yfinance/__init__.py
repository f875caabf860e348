"""A stand-in for the yfinance package (beside one for akshare) in processes a test starts (a server, the app's
background work): put ``tests/fake_yfinance`` first on PYTHONPATH, and the project root
after it. ``download`` answers like yfinance on a machine without a network (frames shaped
by ``tests.yfstub``), after ``FAKE_YFINANCE_DELAY`` seconds; each call is appended to the
file ``FAKE_YFINANCE_CALLS`` (one JSON object a line) when that is set, before the delay.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tests.yfstub import DNS, NO_TZ, FakeDownload

__version__ = "0.0-test"



def _offline(symbols: list[str], *_: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return {}, {s: DNS if i < 2 else NO_TZ for i, s in enumerate(symbols)}


_fake = FakeDownload(_offline)


def download(tickers: Any = None, start: str | None = None, end: str | None = None, **kwargs: Any) -> Any:
    calls = os.environ.get("FAKE_YFINANCE_CALLS")
    if calls:
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        with open(calls, "a", encoding="utf-8") as f:
            f.write(json.dumps({"pid": os.getpid(), "tickers": symbols, "start": start, "end": end}) + "\n")
    time.sleep(float(os.environ.get("FAKE_YFINANCE_DELAY") or 0))
    return _fake(tickers, start, end, **kwargs)
