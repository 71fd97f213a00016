"""HTTP for actions, on the standard library (`http.client`).

The Lambda package stays lean: no httpx or requests at run time. One call is
one request (plus the redirects the caller allows), with the run's remaining
time as the socket timeout and the body read up to a cap. When an
`AddressPolicy` is given, each hop's host is resolved and checked, and the
socket goes to the checked address (TLS still verifies the host name).
Network failures become `ActionFailed` with a message a user can act on.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from chalicelib.actions.base import ActionFailed
from chalicelib.actions.netguard import AddressPolicy

#: Statuses after which a request goes on to the `Location` header.
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Headers not carried to another origin by a redirect (they hold credentials).
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True)
class Response:
    status: int
    #: Names lower-cased; repeated headers joined with ", ".
    headers: dict[str, str]
    body: bytes
    #: The body was longer than the cap and was cut.
    truncated: bool
    #: The URL that answered (after redirects).
    url: str

    def json(self) -> Any:
        """The body as JSON; ActionFailed if it is not."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ActionFailed(
                f"{self.url} answered {self.status} with a body that is not JSON"
            ) from exc


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an already checked address, whatever DNS answers now."""

    def __init__(self, host: str, port: int, timeout: float, address: str | None) -> None:
        super().__init__(host, port, timeout=timeout)
        if address is not None:
            self._create_connection = _connect_to(address)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As `_PinnedHTTPConnection`; the certificate is still checked against `host`."""

    def __init__(self, host: str, port: int, timeout: float, address: str | None) -> None:
        super().__init__(host, port, timeout=timeout)
        if address is not None:
            self._create_connection = _connect_to(address)


def _connect_to(address: str) -> Any:
    def connect(host_port: tuple[str, int], timeout: float, source: Any = None) -> socket.socket:
        return socket.create_connection((address, host_port[1]), timeout, source)

    return connect


def send(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout_s: float,
    max_body_bytes: int,
    policy: AddressPolicy | None = None,
    max_redirects: int = 0,
) -> Response:
    """One HTTP exchange. `timeout_s` bounds each connect and read; the body is
    read up to `max_body_bytes`. Redirects are followed up to `max_redirects`
    times, each hop checked by `policy` like the first; with 0 a 3xx is returned
    as it is."""
    headers = dict(headers or {})
    for _ in range(max_redirects + 1):
        response = _send_once(method, url, headers, body, timeout_s, max_body_bytes, policy)
        location = response.headers.get("location")
        if response.status not in REDIRECTS or not location or max_redirects == 0:
            return response
        next_url = urljoin(url, location)
        if _origin(next_url) != _origin(url):
            headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            # What browsers and every HTTP library do: the body is not sent again.
            method, body = ("HEAD" if method == "HEAD" else "GET"), None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        url = next_url
    raise ActionFailed(f"more than {max_redirects} redirects, last to {url}")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _send_once(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout_s: float,
    max_body_bytes: int,
    policy: AddressPolicy | None,
) -> Response:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionFailed(f"not an http(s) URL: {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ActionFailed(f"bad port in URL: {url}") from exc
    address = policy.resolve(parts.hostname, port) if policy is not None else None
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(parts.hostname, port, timeout_s, address)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request(method, target, body=body, headers=headers)
        answer = connection.getresponse()
        content = answer.read(max_body_bytes + 1)
        found = _headers(answer)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # ValueError: http.client's refusal of a header it cannot send.
        raise ActionFailed(f"{method} {shown(url)} failed: {_describe(exc)}") from exc
    finally:
        connection.close()
    return Response(
        status=answer.status,
        headers=found,
        body=content[:max_body_bytes],
        truncated=len(content) > max_body_bytes,
        url=url,
    )


def _headers(answer: http.client.HTTPResponse) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in answer.getheaders():
        key = name.lower()
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def shown(url: str) -> str:
    """`url` without its query string or user info (they may hold secrets),
    for logs and error messages."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<bad URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def time_left_s(deadline: datetime, now: datetime) -> float:
    """Seconds until the run's deadline: the socket timeout of its requests."""
    left = (deadline - now).total_seconds()
    if left <= 0:
        raise ActionFailed("the run's deadline passed before the request")
    return left
