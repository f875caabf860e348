"""The floor for benchmarks/browser_bench.py: the least a Streamlit page can do to show one
security's prices, one Plotly candlestick read from the same store, with nothing else.

    DASHBOARD_DB=store.duckdb BENCH_SYMBOL=0700.HK BENCH_FROM=2021-01-01 BENCH_TO=2022-12-31 \\
        streamlit run benchmarks/minimal_app.py

Plain DuckDB and Plotly, none of the dashboard's code, no caching: every page load reads the
prices again, as the dashboard's first load of a fresh server must.
"""

from __future__ import annotations

import os

import duckdb
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(page_title="floor", layout="wide")
symbol = os.environ["BENCH_SYMBOL"]
con = duckdb.connect(os.environ["DASHBOARD_DB"], read_only=True)
try:
    prices = con.execute(
        "SELECT date, open, high, low, close FROM prices WHERE symbol = ? AND date BETWEEN ? AND ? "
        "ORDER BY date",
        [symbol, os.environ["BENCH_FROM"], os.environ["BENCH_TO"]]).df()
finally:
    con.close()
st.header(symbol)
fig = go.Figure(go.Candlestick(x=prices["date"], open=prices["open"], high=prices["high"], low=prices["low"],
                               close=prices["close"], name="Price"))
fig.update_layout(xaxis_rangeslider_visible=False, height=520, margin=dict(l=10, r=10, t=30, b=10))
st.plotly_chart(fig)
