"""Third parties for the action tests: real HTTP servers on 127.0.0.1, and a run context.

A `FakeServer` answers every request with its `reply` function and keeps what
it received, so a test asserts the path, headers and body that really went
over the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.actions import ActionContext, LogCapture
from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.settings import Settings
from tests.conftest import FakeClock

#: What the local stack allows, and what these tests allow when they call 127.0.0.1.
LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: (status, headers, body) of an answer.
Reply = tuple[int, dict[str, str], bytes]


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(data).encode(),
    )


class FakeServer:
    """A real HTTP server in a thread, answering with `reply(request)`."""

    def __init__(self, reply: Callable[[Received], Reply]) -> None:
        self.reply = reply
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    self.command,
                    self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    self.rfile.read(length),
                )
                server.received.append(request)
                status, headers, body = server.reply(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: `shutdown` waits for the loop to notice.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()


@contextmanager
def fake_servers() -> Iterator[Callable[[Callable[[Received], Reply]], FakeServer]]:
    """A factory of started servers, all stopped at the end."""
    started: list[FakeServer] = []

    def serve(reply: Callable[[Received], Reply]) -> FakeServer:
        started.append(FakeServer(reply).start())
        return started[-1]

    try:
        yield serve
    finally:
        for server in started:
            server.stop()


def action_context(
    settings: Settings,
    clock: FakeClock,
    *,
    job_id: str = "tsk_1:1800000000000",
    attempt: int = 1,
    timeout_s: float = 10,
) -> ActionContext:
    """The context the executor gives a run, for calling an action directly."""
    job = Job(
        id=job_id,
        project_id="acme",
        action="test",
        status=JobStatus.ACTIVE,
        trigger=Trigger.CRON,
        attempt=attempt,
        scheduled_for=clock.now(),
        timestamp_ms=int(clock.now().timestamp() * 1000),
    )
    return ActionContext(
        job=job,
        log=LogCapture(65536, "drop_new", clock),
        deadline=clock.now() + timedelta(seconds=timeout_s),
        clock=clock,
        settings=settings,
    )
