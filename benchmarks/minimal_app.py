"""The floor for benchmarks/browser_bench.py: the least a Streamlit page can do to show one
security's prices, one Plotly candlestick read from the same store, with nothing else.

    DASHBOARD_DB=store.duckdb BENCH_SYMBOL=0700.HK BENCH_FROM=2021-01-01 BENCH_TO=2022-12-31 \\
        streamlit run benchmarks/minimal_app.py

Plain DuckDB (or psycopg for a postgresql:// store) and Plotly, none of the dashboard's code, no caching: every page load reads the
prices again, as the dashboard's first load of a fresh server must.
"""

from __future__ import annotations

import os

import duckdb
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(page_title="floor", layout="wide")
symbol = os.environ["BENCH_SYMBOL"]
SQL = "SELECT date, open, high, low, close FROM prices WHERE symbol = %s AND date BETWEEN %s AND %s ORDER BY date"
where = [symbol, os.environ["BENCH_FROM"], os.environ["BENCH_TO"]]
if os.environ["DASHBOARD_DB"].startswith("postgresql://"):  # the shared store: plain psycopg
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
