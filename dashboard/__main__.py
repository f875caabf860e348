import signal
import sys

from dashboard.cli import main

# `... | head` ends quietly. Only the program does this: main() called in a process (a test,
# a notebook) must leave that process's signals alone, or its next write to a closed socket
# kills it.
if hasattr(signal, "SIGPIPE"):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.exit(main())
