"""The Streamlit entry point: `streamlit run app.py`. All of the app is in dashboard.ui."""

from dashboard.ui import main

main()
