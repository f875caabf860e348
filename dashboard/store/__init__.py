"""The store: where articles, securities, prices and reactions live.

``duckdb`` is the embedded store a local dashboard uses (one file beside the app).
"""

from dashboard.store.duckdb import (
    SCHEMA,
    SCHEMA_VERSION,
    Generation,
    NotAStore,
    ReadView,
    Snapshot,
    Store,
    StoreBusy,
    ensure_schema,
)

__all__ = ["SCHEMA", "SCHEMA_VERSION", "Generation", "NotAStore", "ReadView", "Snapshot", "Store", "StoreBusy",
           "ensure_schema"]
