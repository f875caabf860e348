"""The page script: every visitor's run draws ``dashboard.ui.page`` (``app.py`` serves it)."""

from dashboard.ui.page import main

main()
