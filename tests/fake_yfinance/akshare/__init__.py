"""A stand-in for akshare in processes a test starts (beside the stand-in yfinance, on the same
PYTHONPATH): every eastmoney history function raises what akshare raises on a machine without
a network (``tests.akstub.offline_error``), so the app's fetch falls back on Yahoo as it would
offline, and no test process reaches for the network.
"""

from __future__ import annotations

from typing import Any

from tests.akstub import offline_error

__version__ = "0.0-test"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)

    def offline(*args: Any, **kwargs: Any) -> Any:
        raise offline_error()

    return offline
