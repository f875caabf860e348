"""The Streamlit dashboard: the only package that imports Streamlit.

``page`` is the page every visitor's run draws (``page.py`` runs ``page.main``), its parts one
module each (``chart``, ``coverage``, ``reading``, ``sidebar`` ...); ``server`` is what
``app.py`` serves it with. Importing the package itself costs nothing: ``app.py`` imports
``server`` before the server starts, and the page's imports happen on its first run.
"""
