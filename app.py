"""The Streamlit entry point: `streamlit run app.py` serves the page (``page.py``, all of it in
``dashboard.ui``), drawn once as the server starts so the first visitor's page is quick
(``dashboard.ui.server``)."""

import streamlit as st

from dashboard.ui.server import lifespan

app = st.App("page.py", lifespan=lifespan)
