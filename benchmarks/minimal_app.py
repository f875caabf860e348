"""The floor for benchmarks/browser_bench.py: the least a Streamlit page can do to show one
security's prices, one Plotly candlestick read from the same store, with nothing else.

    DASHBOARD_DB=store.duckdb BENCH_SYMBOL=0700.HK BENCH_FROM=2021-01-01 BENCH_TO=2022-12-31 \\
        streamlit run benchmarks/minimal_app.py

Plain DuckDB (or psycopg for a postgresql:// store) and Plotly, none of the dashboard's code, no caching: every page load reads the
prices again, as the dashboard's first load of a fresh server must.

With ``BENCH_CONTROLS=1`` (the floor for switching security and changing the dates) it also has
the two controls those steps use, a "Security" select box of every priced security in the
sidebar and a "Date range" input, and keeps its connection between runs, as any page that
lets one explore would.
"""

from __future__ import annotations

import os
from datetime import date

import duckdb
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(page_title="floor", layout="wide")
symbol = os.environ["BENCH_SYMBOL"]
SQL = "SELECT date, open, high, low, close FROM prices WHERE symbol = %s AND date BETWEEN %s AND %s ORDER BY date"
where = [symbol, os.environ["BENCH_FROM"], os.environ["BENCH_TO"]]


@st.cache_resource
def connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(os.environ["DASHBOARD_DB"], read_only=True)


if os.environ.get("BENCH_CONTROLS"):  # a DuckDB store (the floors of the app's own DuckDB runs)
    con = connection().cursor()
    options = [f"{sym} {name or ''}".strip() for sym, name in con.execute(
        "SELECT symbol, name FROM securities WHERE symbol IN (SELECT DISTINCT symbol FROM prices) "
        "ORDER BY symbol").fetchall()]
    first = next(i for i, o in enumerate(options) if o.split()[0] == symbol)
    symbol = st.sidebar.selectbox("Security", options, index=first).split()[0]
    lo, hi = date.fromisoformat(where[1]), date.fromisoformat(where[2])
    picked = st.sidebar.date_input("Date range", (lo, hi), format="YYYY-MM-DD")
    if isinstance(picked, tuple) and len(picked) == 2:
        lo, hi = picked
    prices = con.execute(SQL.replace("%s", "?"), [symbol, lo, hi]).df()
elif os.environ["DASHBOARD_DB"].startswith("postgresql://"):  # the shared store: plain psycopg
    import pandas as pd
    import psycopg

    with psycopg.connect(os.environ["DASHBOARD_DB"]) as pg:
        prices = pd.DataFrame(pg.execute(SQL, where).fetchall(), columns=["date", "open", "high", "low", "close"])
else:
    con = duckdb.connect(os.environ["DASHBOARD_DB"], read_only=True)
    try:
        prices = con.execute(SQL.replace("%s", "?"), where).df()
    finally:
        con.close()
st.header(symbol)
fig = go.Figure(go.Candlestick(x=prices["date"], open=prices["open"], high=prices["high"], low=prices["low"],
                               close=prices["close"], name="Price"))
fig.update_layout(xaxis_rangeslider_visible=False, height=520, margin=dict(l=10, r=10, t=30, b=10))
st.plotly_chart(fig)
