"""A minimal Streamlit client: opens a page of a running ``streamlit run`` server over its
websocket (the protocol the browser speaks: protobuf BackMsg/ForwardMsg) and collects what the
script drew, so a test can check that a real server answers, without a browser."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from google.protobuf.json_format import MessageToDict
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import ClientConnection, connect


@dataclass
class Page:
    finished: str = ""  # the script_finished status ("" if it never finished)
    texts: list[str] = field(default_factory=list)  # every element drawn, as JSON
    exceptions: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def has(self, text: str) -> bool:
        return any(text in t for t in self.texts)


def connect_page(base: str, timeout: float) -> ClientConnection:
    """The websocket a browser tab opens to a ``streamlit run`` server at ``base``."""
    url = base.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
    return connect(url, subprotocols=["streamlit"], open_timeout=timeout, max_size=None)


def forward_messages(ws: ClientConnection, timeout: float) -> Iterator[ForwardMsg]:
    """What the server sends, message by message, until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            raw = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            return
        fwd = ForwardMsg()
        fwd.ParseFromString(raw)
        yield fwd


def open_page(base: str, query: str = "", timeout: float = 60.0) -> Page:
    """Run the app's script once for a new session with ``query`` (``s=3690.HK&from=...``)."""
    started = time.monotonic()
    page = Page()
    with connect_page(base, timeout) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = query
        ws.send(msg.SerializeToString())
        for fwd in forward_messages(ws, timeout):
            kind = fwd.WhichOneof("type")
            if kind == "delta":
                d = MessageToDict(fwd.delta)
                text = json.dumps(d, ensure_ascii=False)
                page.texts.append(text)
                if '"exception"' in text:
                    page.exceptions.append(text)
                element = fwd.delta.new_element
                if element.WhichOneof("type") == "plotly_chart":  # the figure's JSON, decoded
                    page.texts.append(json.dumps(json.loads(element.plotly_chart.spec), ensure_ascii=False))
                elif element.WhichOneof("type") == "dataframe" and element.dataframe.arrow_data.data:
                    table = pa.ipc.open_stream(element.dataframe.arrow_data.data).read_all()
                    page.texts.append(table.to_pandas().to_csv())
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fwd.script_finished)
                if status != "FINISHED_EARLY_FOR_RERUN":
                    page.finished = status
                    break
    page.seconds = time.monotonic() - started
    return page


class Session:
    """A page left open, as a browser tab: it runs the fragments the app asks to rerun on a timer
    (``st.fragment(run_every=...)``), as the browser would, and keeps what each run draws."""

    def __init__(self, base: str, query: str = "", timeout: float = 60.0) -> None:
        self._conn = connect_page(base, timeout)
        self.ws = self._conn.__enter__()
        self.query = query
        self.timers: dict[str, float] = {}  # fragment id -> seconds between its runs
        self.page = self._run(BackMsg(), timeout)

    def _run(self, msg: BackMsg, timeout: float) -> Page:
        msg.rerun_script.query_string = self.query
        self.ws.send(msg.SerializeToString())
        page = Page()
        for fwd in forward_messages(self.ws, timeout):
            kind = fwd.WhichOneof("type")
            if kind == "auto_rerun":
                self.timers[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
            elif kind == "delta":
                element = fwd.delta.new_element
                page.texts.append(json.dumps(MessageToDict(fwd.delta), ensure_ascii=False))
                if element.WhichOneof("type") == "plotly_chart":
                    page.texts.append(json.dumps(json.loads(element.plotly_chart.spec), ensure_ascii=False))
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fwd.script_finished)
                if status == "FINISHED_SUCCESSFULLY":  # a whole run: what the page shows now
                    page.finished = status
                    return page
                if status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY" and not page.texts:
                    page.finished = status
                    return page
        return page

    def wait_for(self, text: str, timeout: float) -> float:
        """Let the page's timers run until it shows ``text``; the seconds that took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.timers:
                raise AssertionError("the page asked for no timed reruns")
            fragment, interval = next(iter(self.timers.items()))
            time.sleep(interval)
            msg = BackMsg()
            msg.rerun_script.fragment_id = fragment
            msg.rerun_script.is_auto_rerun = True
            page = self._run(msg, timeout=60)
            if page.finished == "FINISHED_SUCCESSFULLY":
                self.page = page
                if page.has(text):
                    return time.monotonic() - started
        raise AssertionError(f"the open page did not show {text!r} within {timeout:.0f} s")

    def close(self) -> None:
        self._conn.__exit__(None, None, None)
