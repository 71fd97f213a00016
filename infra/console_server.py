"""The local stack's HTTP front: the built console under `/console/`, the
Chalice app (LocalDevServer's handler) for every other path, untouched.

Static files are sent with the console's Content-Security-Policy as a header
(with `frame-ancestors`, which a `<meta>` cannot carry) and `nosniff`.

Where Chalice's local server would answer what API Gateway does not, this
handler answers as the deployed API does, and never shows a secret:
- an unknown path is 403 `{"message": "Missing Authentication Token"}`; Chalice's
  local gateway quotes the request's `Authorization` header in that body;
- a method no route has (`TRACE`, `CONNECT`, `FOO`) is a problem+json 405
  instead of `BaseHTTPRequestHandler`'s HTML 501;
- the request log redacts `?access_token=` and other secret-like query values.

The request log is at DEBUG on logger `tickwork.http` (`TICKWORK_LOG=debug`):
by default the terminal shows runs and errors, not a line per request. A
client that goes away mid-answer (a browser navigating on) is a DEBUG line,
not a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus, urlsplit

from chalice.app import Chalice
from chalice.local import ChaliceRequestHandler, LocalGatewayException, RouteMatcher

from chalicelib.api.errors.problems import ERROR_SCHEMA_PATH, ErrorModel
from infra.console_build import content_security_policy

PREFIX = "/console"
#: Methods Chalice's local handler dispatches; any other is answered 405 here.
HANDLED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: API Gateway's answer to a path no route has (without an `Authorization` echo).
MISSING_TOKEN_BODY = b'{"message": "Missing Authentication Token"}'
REDACTED = "[redacted]"
#: Query parameters whose values never reach the log (names compared decoded).
SECRET_PARAMS = frozenset(
    {"access_token", "token", "api_key", "apikey", "key", "secret", "password", "authorization"}
)
_QUERY = re.compile(r"\?([^\s#]*)")
_PARAM = re.compile(r"([^&;=]*)(=?)([^&;]*)")
_CREDENTIAL = re.compile(r"(?i)\b(Bearer|Basic|Token)(\s+|%20|\+)[^\s&;\"]+")
request_log = logging.getLogger("tickwork.http")
#: What writing to a client that closed its connection raises.
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def _redact_query(query: str) -> str:
    def one(match: re.Match[str]) -> str:
        name, eq, value = match.groups()
        if eq and value and unquote_plus(name).strip().lower() in SECRET_PARAMS:
            value = REDACTED
        return name + eq + value

    return _PARAM.sub(one, query)


def redact(line: str) -> str:
    """`line` (a request-log line) with secret query values and credentials hidden."""
    line = _QUERY.sub(lambda m: "?" + _redact_query(m.group(1)), line)
    return _CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + REDACTED, line)


def console_headers(csp: str) -> dict[str, str]:
    """Headers of every console answer (the API's answers stay Chalice's)."""
    return {
        "Content-Security-Policy": f"{csp}; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # The console is rebuilt at every start: always ask for the current files.
        "Cache-Control": "no-cache",
    }


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


def console_handler(root: Path) -> type[ChaliceRequestHandler]:
    """A request handler serving `root` (a built console) under `/console/`."""
    root = root.resolve()
    headers = console_headers(content_security_policy(""))

    class ConsoleRequestHandler(ChaliceRequestHandler):
        def __init__(
            self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Any
        ) -> None:
            self._routes = app_object.routes
            self._matcher = RouteMatcher(list(app_object.routes))
            super().__init__(request, client_address, server, app_object, config)

        if not TYPE_CHECKING:  # to type checkers, every missing attribute would be a handler

            def __getattr__(self, name: str) -> Callable[[], None]:
                # BaseHTTPRequestHandler looks up `do_<METHOD>` and answers 501 without one.
                if name.startswith("do_") and name[3:] not in HANDLED_METHODS:
                    return self._method_not_allowed
                raise AttributeError(name)

        def _method_not_allowed(self) -> None:
            path = urlsplit(self.path).path
            allowed: list[str] = []
            with contextlib.suppress(ValueError):  # ValueError: no route has this path
                allowed = sorted(self._routes[self._matcher.match_route(path).route])
            host = self.headers.get("Host", "localhost")
            document = ErrorModel(
                schema_=f"http://{host}{ERROR_SCHEMA_PATH}",
                title="Method Not Allowed",
                status=405,
                detail=f"method {self.command!r} is not allowed here",
                instance=path,
            )
            content = json.dumps(document.model_dump(mode="json", by_alias=True)).encode()
            self._parse_payload()  # read any body, so the connection stays usable
            extra = {"Allow": ", ".join(allowed)} if allowed else {}
            self.send_response(405)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _send_error_response(self, error: LocalGatewayException) -> None:
            if error.headers.get("x-amzn-ErrorType") == "UnauthorizedException":
                # An unknown path: answer without the caller's Authorization header.
                error.body = MISSING_TOKEN_BODY
                error.headers["x-amzn-ErrorType"] = "MissingAuthenticationTokenException"
            super()._send_error_response(error)

        def handle(self) -> None:
            try:
                super().handle()
            except CLIENT_GONE as gone:
                request_log.debug("%s went away: %s", self.address_string(), gone)
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            if request_log.isEnabledFor(logging.DEBUG):
                request_log.debug("%s %s", self.address_string(), redact(format % args))

        def log_error(self, format: str, *args: Any) -> None:
            # A request the server could not parse or answer: an error, always shown.
            request_log.warning("%s %s", self.address_string(), redact(format % args))

        def do_GET(self) -> None:
            if not self._serve_console(body=True):
                self._generic_handle()

        def do_HEAD(self) -> None:
            if not self._serve_console(body=False):
                self._generic_handle()

        def _serve_console(self, *, body: bool) -> bool:
            path = urlsplit(self.path).path
            if path != PREFIX and not path.startswith(PREFIX + "/"):
                return False
            if path == PREFIX:
                self._answer(301, b"", "text/plain", {"Location": PREFIX + "/"}, body)
                return True
            relative = unquote(path[len(PREFIX) + 1 :]) or "index.html"
            target = (root / relative).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root) or not target.is_file():
                self._answer(404, b"Not found\n", "text/plain; charset=utf-8", {}, body)
                return True
            kind = _TYPES.get(target.suffix) or (
                mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            )
            self._answer(200, target.read_bytes(), kind, {}, body)
            return True

        def _answer(
            self, status: int, content: bytes, kind: str, extra: dict[str, str], body: bool
        ) -> None:
            self.send_response(status)
            for name, value in {**headers, **extra}.items():
                self.send_header(name, value)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if body:
                self.wfile.write(content)

    return ConsoleRequestHandler
