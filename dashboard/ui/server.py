"""The server around the page: ``app.py`` serves ``page.py`` as an ``st.App`` whose lifespan
draws the page once, for nobody, as the server starts.

A fresh server's first page pays for its imports (pandas, DuckDB, plotly, Streamlit's
elements), the store's first reads and the default view's queries and figure: about a second
and a half at a million articles, while the browser itself takes about one to load its
scripts. Drawn as the server starts, by a session whose messages go nowhere, that work is done
(or under way, in the caches every session shares) when the first visitor's run begins; the
server answers from the start, the warm-up is in the script runner's thread.

This module imports only Streamlit's runtime: the page's imports are the warm-up's work.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime import Runtime

from dashboard import background

log = logging.getLogger(__name__)

_RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN


class Nobody:
    """A session client that keeps nothing: it only says when the page's run has ended (a run
    cut short for a rerun goes on)."""

    client_context = None

    def __init__(self, ended: Callable[[], None]) -> None:
        self.ended, self.messages = ended, 0

    def write_forward_msg(self, msg: ForwardMsg) -> None:
        self.messages += 1
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished != _RERUN:
            self.ended()


def warm_up(runtime: Runtime, loop: asyncio.AbstractEventLoop) -> str:
    """Start one run of the page in a session of its own, closed (on the event loop, as the
    runtime requires) when the run ends. Returns the session's id."""
    ids: list[str] = []

    def ended() -> None:
        log.info("the page was drawn once at start (%d messages)", client.messages)
        loop.call_soon_threadsafe(_close, runtime, ids)

    client = Nobody(ended)
    ids.append(runtime.connect_session(client=client, user_info={}))
    rerun = BackMsg()
    rerun.rerun_script.query_string = ""
    runtime.handle_backmsg(ids[0], rerun)
    return ids[0]


def _close(runtime: Runtime, ids: list[str]) -> None:
    try:
        runtime.close_session(ids[0])
    except Exception:  # the server is stopping: the session goes with it
        log.debug("warm-up session not closed", exc_info=True)


def stop_quietly_on_signals() -> None:
    """SIGTERM and Ctrl-C stop the server gracefully and it exits with status 0, as the classic
    ``streamlit run`` does. Uvicorn, which serves an ``st.App``, shuts down as gracefully but then
    raises the signal again, so a stopped server would die of SIGTERM or end in click's
    "Aborted!" (status 1): here a signal only asks uvicorn's server to exit (a second Ctrl-C
    still forces it)."""
    try:
        import uvicorn
    except ImportError:
        return
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if not isinstance(server, uvicorn.Server):  # not served by uvicorn's own loop: leave it be
        return

    def stop(sig: int, frame: object) -> None:
        if server.should_exit and sig == signal.SIGINT:
            server.force_exit = True
        server.should_exit = True
        background.server_stopping()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """``st.App``'s lifespan: the warm-up starts with the server and never holds it up; a
    failure of it is logged, and the first visitor's page simply does the work itself."""
    stop_quietly_on_signals()
    try:
        warm_up(Runtime.instance(), asyncio.get_running_loop())
    except Exception:
        log.warning("could not draw the page at start", exc_info=True)
    yield
