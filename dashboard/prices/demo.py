"""The prices the project ships for its sample posts (``data/prices``: real daily prices of
the sample's securities around late 2021), so a first start with no network draws charts."""

from __future__ import annotations

from pathlib import Path

from dashboard.config import PROJECT_ROOT
from dashboard.store import Store

DEMO_PRICES = PROJECT_ROOT / "data" / "prices"


def import_demo_prices(store: Store, folder: Path = DEMO_PRICES,
                       benchmarks: dict[str, str] | None = None) -> list[str]:
    """Import the shipped price files when the store has no prices at all; the symbols imported."""
    from dashboard.prices import import_csv

    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        return []
    with store.read() as con:
        if con.execute("SELECT count(*) FROM prices").fetchall()[0][0]:
            return []
    return [import_csv(store, f, benchmarks=benchmarks)[0] for f in files]
