"""infra.api_server in this process: Chalice's handler behind the local stack's
server, on a small app of its own (no AWS), over real sockets."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.app import Chalice
from chalice.config import Config

from infra.api_server import LISTEN_BACKLOG, ApiServer
from infra.console_server import console_handler
from infra.stack_process import free_port

#: Guard of every blocking wait: a broken server fails the test, never hangs it.
WAIT_S = 30


class Served:
    def __init__(self, server: ApiServer, port: int) -> None:
        self.server = server
        self.port = port
        self.in_slow = threading.Event()
        self.release_slow = threading.Event()

    def connection(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)
        connection.auto_open = False  # a closed connection raises, never reopens quietly
        connection.connect()
        return connection


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    app = Chalice("api-server-test")
    port = free_port()
    box: list[Served] = []

    @app.route("/echo", methods=["POST"])
    def echo() -> dict[str, object]:
        request = app.current_request
        assert request is not None
        return {"got": request.json_body}

    @app.route("/slow")
    def slow() -> dict[str, object]:
        box[0].in_slow.set()
        box[0].release_slow.wait(WAIT_S)
        return {"slow": True}

    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    server = ApiServer(
        app,
        Config(chalice_stage="test"),
        "127.0.0.1",
        port,
        handler_cls=console_handler(tmp_path),
    )
    box.append(Served(server, port))
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    box[0].release_slow.set()
    if thread.is_alive():
        server.shutdown()
    thread.join(WAIT_S)


def answer(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    chunked = headers.get("Transfer-Encoding") == "chunked"
    connection.request(method, path, body=body, headers=headers, encode_chunked=chunked)
    response = connection.getresponse()
    content = response.read()
    assert not response.will_close, f"{method} {path} closed the connection"
    return response.status, content


def test_the_listening_socket_queues_a_burst() -> None:
    assert LISTEN_BACKLOG >= 128


def test_head_answers_carry_no_body_so_the_connection_stays_in_step(served: Served) -> None:
    connection = served.connection()
    sock = connection.sock
    # No route has HEAD: Chalice answers an error, and would write its body.
    status, content = answer(connection, "HEAD", "/echo")
    assert status >= 400
    assert content == b""
    status, content = answer(connection, "POST", "/echo", json.dumps({"a": 1}).encode())
    assert (status, json.loads(content)) == (200, {"got": {"a": 1}})
    assert connection.sock is sock


def test_a_chunked_body_reaches_the_app_and_the_next_request_follows(served: Served) -> None:
    connection = served.connection()
    sock = connection.sock
    chunks = iter([b'{"chunked"', b": true}"])
    status, content = answer(
        connection,
        "POST",
        "/echo",
        chunks,  # type: ignore[arg-type]  # http.client sends an iterable chunked
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert (status, json.loads(content)) == (200, {"got": {"chunked": True}})
    status, content = answer(connection, "POST", "/echo", b'{"b": 2}')
    assert (status, json.loads(content)) == (200, {"got": {"b": 2}})
    assert connection.sock is sock


def test_a_body_nobody_reads_is_not_taken_for_the_next_request(served: Served) -> None:
    connection = served.connection()
    # A console file is answered without reading the request's body.
    status, content = answer(connection, "GET", "/console/", b"GET /echo HTTP/1.1\r\n\r\n")
    assert (status, content) == (200, b"<!doctype html><title>console</title>")
    status, content = answer(connection, "POST", "/echo", b'{"c": 3}')
    assert (status, json.loads(content)) == (200, {"got": {"c": 3}})


def test_a_bad_chunked_body_is_refused_and_the_connection_closed(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=WAIT_S) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in received


def test_shutdown_ends_idle_connections_and_lets_a_busy_one_finish(served: Served) -> None:
    idle = served.connection()
    assert answer(idle, "POST", "/echo", b"{}")[0] == 200
    busy = served.connection()
    busy.request("GET", "/slow")
    assert served.in_slow.wait(WAIT_S)
    stopped = threading.Thread(target=served.server.shutdown)
    stopped.start()
    # The idle connection is closed by the server (end of stream, no reset).
    assert idle.sock is not None
    assert idle.sock.recv(1) == b""
    served.release_slow.set()
    response = busy.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"slow": True})
    assert busy.sock is None or busy.sock.recv(1) == b""
    stopped.join(WAIT_S)
    assert not stopped.is_alive()
    assert served.server.server.open_connections == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", served.port), timeout=WAIT_S).close()
