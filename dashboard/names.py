"""What each security is called: the project's reference list first, then what the posts call it."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from dashboard.securities import reference_list


def name_securities(con: duckdb.DuckDBPyConnection) -> None:
    """Name each security: the project's reference list first, then what the posts call it."""
    refs = reference_list()
    ref = pa.table({
        "symbol": [r.symbol for r in refs.values()],
        "name": [r.name for r in refs.values()],
        "name_en": [r.name_en for r in refs.values()],
    })
    con.register("reference_names", ref)
    con.execute("""
        UPDATE securities s SET name = n.name, name_en = n.name_en
        FROM (
            SELECT s.symbol,
                   coalesce(r.name, p.link_name, p.inline_name) AS name,
                   r.name_en
            FROM securities s
            LEFT JOIN reference_names r USING (symbol)
            LEFT JOIN (
                SELECT symbol,
                       mode(name) FILTER (WHERE how = 'link') AS link_name,
                       mode(name) FILTER (WHERE how = 'inline') AS inline_name
                FROM mentions WHERE name IS NOT NULL GROUP BY symbol
            ) p USING (symbol)
        ) n
        WHERE s.symbol = n.symbol
          AND (s.name IS DISTINCT FROM n.name OR s.name_en IS DISTINCT FROM n.name_en)
    """)
    con.unregister("reference_names")

