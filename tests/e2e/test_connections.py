"""The local stack's HTTP connections: kept alive across every kind of answer,
a burst of clients all answered, idle connections closed at stop."""

from __future__ import annotations

import http.client
import json
import socket

from tests.e2e.conftest import ADMIN_SECRET, LocalStack

#: Guard of every blocking wait: a broken server fails the test, never hangs it.
WAIT_S = 120
BURST = 100
AUTH = {"Authorization": f"Bearer {ADMIN_SECRET}"}


def connect(stack: LocalStack) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=WAIT_S)
    connection.auto_open = False  # a connection the server closed raises, never reopens
    connection.connect()
    return connection


def test_one_connection_carries_answers_errors_and_console_files(stack: LocalStack) -> None:
    connection = connect(stack)
    sock = connection.sock
    assert sock is not None
    chunked_job = iter([b'{"action": "echo", ', b'"args": {"via": "chunks"}}'])
    requests: list[tuple[str, str, object, dict[str, str], int]] = [
        ("GET", "/v1/queue/depth", None, AUTH, 200),
        ("POST", "/v1/queue/jobs", b'{"action": 7}', AUTH, 422),
        ("GET", "/v1/queue/depth", None, {}, 401),
        ("GET", "/v1/no-such-path", None, AUTH, 403),
        ("TRACE", "/v1/queue/depth", None, AUTH, 405),
        ("HEAD", "/v1/queue/depth", None, AUTH, 0),  # whatever Chalice answers, no body
        ("GET", "/console", None, {}, 301),
        ("GET", "/console/", None, {}, 200),
        ("HEAD", "/console/config.js", None, {}, 200),
        ("GET", "/console/config.js", None, {}, 200),
        ("GET", "/console/no-such-file.js", None, {}, 404),
        ("GET", "/console/", b"a body no one reads", {}, 200),
        ("POST", "/v1/queue/jobs", chunked_job, {**AUTH, "Transfer-Encoding": "chunked"}, 202),
        ("GET", "/openapi.json", None, {}, 200),
    ]
    answered: list[tuple[str, str, int]] = []
    for method, path, body, headers, expected in requests:
        headers = {"Content-Type": "application/json", **headers}
        connection.request(
            method,
            path,
            body=body,  # type: ignore[arg-type]
            headers=headers,
            encode_chunked="Transfer-Encoding" in headers,
        )
        response = connection.getresponse()
        content = response.read()
        answered.append((method, path, response.status))
        assert response.getheader("Content-Length") is not None, answered[-1]
        if method == "HEAD":
            assert content == b""
        else:
            assert len(content) == int(response.getheader("Content-Length", "-1"))
        assert expected in (0, response.status), answered
        assert not response.will_close, answered
        assert connection.sock is sock, answered  # the same TCP connection all along
        if method == "POST" and response.status == 202:
            assert json.loads(content)["args"] == {"via": "chunks"}

    # The stack stops with this connection open and idle: it is closed, not reset.
    assert stack.stop() == 0
    assert sock.recv(1) == b""
    assert any("Tickwork stopped." in line for line in stack.output)


def test_a_burst_of_connections_opened_at_once_all_get_answers(stack: LocalStack) -> None:
    address = ("127.0.0.1", stack.port)
    sockets = []
    for _ in range(BURST):  # every connect started before any is accepted
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(address)
        sockets.append(sock)
    outcomes: list[object] = []
    try:
        for sock in sockets:
            sock.settimeout(WAIT_S)
            try:
                sock.sendall(
                    b"GET /v1/queue/actions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + f"Authorization: Bearer {ADMIN_SECRET}\r\n\r\n".encode()
                )
            except OSError as exc:
                outcomes.append(repr(exc))
        for sock in sockets:
            response = http.client.HTTPResponse(sock)
            try:
                response.begin()
                response.read()
                outcomes.append(response.status)
            except (OSError, http.client.HTTPException) as exc:
                outcomes.append(repr(exc))
    finally:
        for sock in sockets:
            sock.close()
    assert outcomes == [200] * BURST
