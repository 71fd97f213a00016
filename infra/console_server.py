"""The local stack's HTTP front: the built console under `/console/`, the
Chalice app (LocalDevServer's handler) for every other path, untouched.

Static files are sent with the console's Content-Security-Policy as a header
(with `frame-ancestors`, which a `<meta>` cannot carry) and `nosniff`.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from chalice.local import ChaliceRequestHandler

from infra.console_build import content_security_policy

PREFIX = "/console"


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
