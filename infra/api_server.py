"""The local stack's HTTP server: Chalice's `LocalDevServer`, a thread per
connection as Chalice has it, made to hold many clients at once.

- **Keep-alive.** Chalice's handler speaks HTTP/1.1 and sends `Content-Length`
  with every answer, so a client reuses its connection. What would break a
  reused connection is mended here: an answer to `HEAD` carries no body (Chalice
  writes one, which the client would read as the start of the next answer), a
  request body nobody read is read before the next request (a `GET /console/`
  with a body), and a `Transfer-Encoding: chunked` body is decoded (Chalice reads
  only `Content-Length` bodies).
- **Backlog.** The listening socket queues up to `LISTEN_BACKLOG` connections
  not yet accepted (socketserver's default is 5; the kernel resets connections
  beyond the queue when a burst of clients connects at once).
- **Idle connections** close after `IDLE_TIMEOUT_S` without a request, and at
  `shutdown()` every connection stops reading: an idle one closes at once, one
  in the middle of a request finishes its answer and closes.
- `TCP_NODELAY`: an answer's headers and body are two writes; without it the
  body may wait for the client's delayed ACK on a reused connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

#: Connections the listening socket queues before `accept` (the kernel caps it
#: at net.core.somaxconn).
LISTEN_BACKLOG = socket.SOMAXCONN
#: Seconds a kept-alive connection may wait for its next request.
IDLE_TIMEOUT_S = 75.0
#: Largest request body read from chunks (API Gateway's payload limit is 10 MB).
MAX_CHUNKED_BODY = 10 * 1024 * 1024
request_log = logging.getLogger("tickwork.http")


class BadChunkedBody(ValueError):
    """A `Transfer-Encoding: chunked` body that does not parse, or is too large."""


def read_chunked(stream: BinaryIO, max_bytes: int = MAX_CHUNKED_BODY) -> bytes:
    """The body of a chunked request (RFC 9112 §7.1) read from `stream`, up to
    and including its trailer section; chunk extensions and trailers are dropped."""
    body = bytearray()
    while True:
        line = stream.readline(1026)
        if not line.endswith(b"\n"):
            raise BadChunkedBody("chunk size line missing or too long")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadChunkedBody(f"bad chunk size {size_text[:20]!r}") from None
        if size < 0 or len(body) + size > max_bytes:
            raise BadChunkedBody(f"body larger than {max_bytes} bytes")
        if size == 0:
            break
        chunk = stream.read(size)
        if len(chunk) != size:
            raise BadChunkedBody("chunk shorter than its size")
        end = stream.read(1)
        if end == b"\r":
            end = stream.read(1)
        if end != b"\n":
            raise BadChunkedBody("no line end after a chunk")
        body += chunk
    while True:  # trailer section, up to its empty line
        line = stream.readline(65537)
        if not line.endswith(b"\n"):
            raise BadChunkedBody("trailer section not ended")
        if line in (b"\r\n", b"\n"):
            return bytes(body)


def is_chunked(transfer_encoding: str | None) -> bool:
    """Whether a `Transfer-Encoding` header ends with `chunked` (the body's framing)."""
    if not transfer_encoding:
        return False
    codings = [c.strip().lower() for c in transfer_encoding.split(",")]
    return codings[-1] == "chunked"


def keep_alive_handler(handler_cls: type[ChaliceRequestHandler]) -> type[ChaliceRequestHandler]:
    """`handler_cls` with the keep-alive mends of this module's docstring."""

    class KeepAliveHandler(handler_cls):  # type: ignore[valid-type,misc]
        timeout = IDLE_TIMEOUT_S
        disable_nagle_algorithm = True

        def handle_one_request(self) -> None:
            #: The request's body once read (None: none, or not read yet).
            self._request_body: bytes | None = None
            #: Whether the request has a body no one read yet.
            self._body_pending = False
            super().handle_one_request()
            if self._body_pending and not self.close_connection:
                # Answered without reading the body: read it, or it would be
                # parsed as the next request.
                self._read_body()

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            length = self.headers.get("Content-Length")
            chunked = is_chunked(self.headers.get("Transfer-Encoding"))
            self._body_pending = chunked or bool(length and length.strip() != "0")
            if chunked:
                try:
                    self._request_body = read_chunked(self.rfile)
                except BadChunkedBody as bad:
                    self._body_pending = False
                    self.send_error(400, f"Bad chunked body: {bad}")
                    return False
                self._body_pending = False
                # Chalice's handler and the app see a body with a length.
                del self.headers["Transfer-Encoding"]
                del self.headers["Content-Length"]
                self.headers["Content-Length"] = str(len(self._request_body))
            return True

        def _read_body(self) -> bytes | None:
            if self._body_pending:
                self._body_pending = False
                length = int(self.headers.get("Content-Length", "0") or "0")
                self._request_body = self.rfile.read(length) if length > 0 else None
            return self._request_body

        def _parse_payload(self) -> tuple[dict[str, Any], bytes | None]:
            try:
                body = self._read_body()
            except ValueError:  # a Content-Length that is not a number
                self.close_connection = True
                body = None
            return dict(self.headers), body

        def _send_http_response_with_body(
            self, code: int, headers: dict[str, Any], body: str | bytes
        ) -> None:
            if self.command != "HEAD":
                super()._send_http_response_with_body(code, headers, body)
                return
            # The headers of the answer a GET would have, without its body.
            self.send_response(code)
            size = len(body if isinstance(body, bytes) else body.encode("utf-8"))
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self._send_headers(headers)

        def log_error(self, format: str, *args: Any) -> None:
            if format.startswith("Request timed out"):
                # An idle kept-alive connection reaching IDLE_TIMEOUT_S: routine.
                request_log.debug("%s closed an idle connection", self.address_string())
                return
            super().log_error(format, *args)

    KeepAliveHandler.__name__ = KeepAliveHandler.__qualname__ = f"KeepAlive{handler_cls.__name__}"
    return KeepAliveHandler


class ApiHTTPServer(ThreadedHTTPServer):
    """Chalice's threaded server with a deep backlog, knowing its open connections."""

    request_queue_size = LISTEN_BACKLOG
    # shutdown() must not wait for a request in progress (a long poll lasts 20 s);
    # the handler threads are daemons, as Chalice has them.
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: Callable[..., Any]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    @property
    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def stop_reading(self) -> None:
        """Let no open connection read another request: an idle one ends now
        (its thread sees the end of the stream), a busy one after its answer."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # closed meanwhile
                connection.shutdown(socket.SHUT_RD)


class ApiServer(LocalDevServer):
    """`LocalDevServer` on `ApiHTTPServer`, its handler mended for keep-alive."""

    server: ApiHTTPServer

    def __init__(
        self,
        app_object: Chalice,
        config: Config,
        host: str,
        port: int,
        handler_cls: type[ChaliceRequestHandler] = ChaliceRequestHandler,
    ) -> None:
        super().__init__(
            app_object,
            config,
            host,
            port,
            handler_cls=keep_alive_handler(handler_cls),
            server_cls=ApiHTTPServer,
        )

    def shutdown(self) -> None:
        """Stop accepting, end every connection, close the listening socket
        (from another thread than `serve_forever`'s)."""
        self.server.shutdown()
        self.server.stop_reading()
        self.server.server_close()
