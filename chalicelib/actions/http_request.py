"""`http_request`: call a URL and check its status (DESIGN §6).

The URL is a user's, so the SSRF guard (`netguard`) checks the host of the
first request and of every redirect before any byte is sent.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.actions.base import Action, ActionContext, ActionFailed
from chalicelib.actions.netguard import AddressPolicy
from chalicelib.actions.transport import Response, send, shown, time_left_s

#: Largest response body kept in the result; the stored result caps at 64 KiB.
MAX_RESPONSE_BYTES = 32 * 1024
#: Redirects followed, each checked by the SSRF guard like the first request.
MAX_REDIRECTS = 5
#: Response headers a result keeps: the ones a later step may want.
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "etag",
    "last-modified",
    "retry-after",
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpRequestArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=8192, description="http:// or https:// URL.")
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(
        None,
        description="A string is sent as it is (text/plain unless headers say); "
        "any other JSON value is sent as JSON.",
    )
    expect_status: int | list[int] | None = Field(
        None, description="Status(es) that count as success; default any 2xx."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _sendable(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"bad header name {name!r}")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {name!r} holds a line break")
        return value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: int | list[int] | None) -> int | list[int] | None:
        listed = [value] if isinstance(value, int) else value or []
        if any(not 100 <= status <= 599 for status in listed):
            raise ValueError("statuses are 100-599")
        return value


def expected(status: int, expect: int | list[int] | None) -> bool:
    if expect is None:
        return 200 <= status < 300
    return status in ([expect] if isinstance(expect, int) else expect)


def encode_body(body: Any, headers: dict[str, str]) -> tuple[bytes | None, dict[str, str]]:
    """The bytes to send and the headers with a Content-Type for them."""
    if body is None:
        return None, headers
    has_type = any(name.lower() == "content-type" for name in headers)
    if isinstance(body, str):
        kind, data = "text/plain; charset=utf-8", body.encode()
    else:
        kind, data = "application/json", json.dumps(body).encode()
    return data, headers if has_type else {**headers, "Content-Type": kind}


def decode_body(response: Response) -> Any:
    """JSON when the response says JSON (and is whole), else text."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if (kind == "application/json" or kind.endswith("+json")) and not response.truncated:
        try:
            return json.loads(response.body)
        except ValueError:
            pass
    return response.body.decode(_charset(response) or "utf-8", errors="replace")


def _charset(response: Response) -> str | None:
    for part in response.headers.get("content-type", "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            try:
                "".encode(value.strip('"'))
            except LookupError:
                return None
            return value.strip('"')
    return None


def http_request(ctx: ActionContext, args: HttpRequestArgs) -> Any:
    body, headers = encode_body(args.body, args.headers)
    policy = AddressPolicy.for_jobs(ctx.settings)
    response = send(
        args.method,
        args.url,
        headers=headers,
        body=body,
        timeout_s=time_left_s(ctx.deadline, ctx.clock.now()),
        max_body_bytes=MAX_RESPONSE_BYTES,
        policy=policy,
        max_redirects=MAX_REDIRECTS,
    )
    ctx.log.info(f"{args.method} {shown(args.url)} -> {response.status}")
    result: dict[str, Any] = {
        "status": response.status,
        "headers": {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers},
        "body": decode_body(response),
    }
    if response.truncated:
        result["body_truncated"] = True
    if response.url != args.url:
        result["url"] = response.url
    if not expected(response.status, args.expect_status):
        ctx.log.warning(f"response body: {str(result['body'])[:500]}")
        raise ActionFailed(
            f"{args.method} {shown(response.url)} answered {response.status}, "
            f"expected {_expectation(args.expect_status)}"
        )
    return result


def _expectation(expect: int | list[int] | None) -> str:
    if expect is None:
        return "2xx"
    return str(expect) if isinstance(expect, int) else " or ".join(map(str, expect))


ACTION = Action(
    "http_request",
    HttpRequestArgs,
    http_request,
    "Calls a URL (public addresses only, unless the operator allows more) and "
    "fails unless the status is expected.",
)
