"""`http_request` over real HTTP: results, statuses, redirects, the SSRF guard (DESIGN §6)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.actions import ActionFailed
from chalicelib.actions.http_request import MAX_RESPONSE_BYTES, HttpRequestArgs, http_request
from chalicelib.actions.netguard import AddressPolicy, AddressRefused
from chalicelib.actions.transport import send
from chalicelib.jobs.model import JobStatus
from chalicelib.settings import Settings
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import FakeClock
from tests.functional.action_helpers import (
    LOOPBACK,
    FakeServer,
    Received,
    Reply,
    action_context,
    fake_servers,
    json_reply,
)
from tests.functional.engine_helpers import Pipeline, runs

Serve = Callable[[Callable[[Received], Reply]], FakeServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    with fake_servers() as factory:
        yield factory


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The pipeline tests' stage, calling servers on this machine."""
    return replace(settings, http_allow_networks=LOOPBACK)


def call(
    clock: FakeClock, allow: tuple[str, ...] = LOOPBACK, timeout_s: float = 5, **args: Any
) -> Any:
    ctx = action_context(Settings(http_allow_networks=allow), clock, timeout_s=timeout_s)
    return http_request(ctx, HttpRequestArgs.model_validate(args))


def test_a_get_returns_status_kept_headers_and_the_json_body(
    serve: Serve, clock: FakeClock
) -> None:
    server = serve(lambda r: json_reply(200, {"ok": True}, {"ETag": '"v1"', "X-Other": "no"}))
    result = call(clock, url=f"{server.url}/items?page=2", headers={"X-Trace": "abc"})
    assert result == {
        "status": 200,
        "headers": {"content-type": "application/json", "content-length": "12", "etag": '"v1"'},
        "body": {"ok": True},
    }
    [request] = server.received
    assert (request.method, request.path) == ("GET", "/items?page=2")
    assert request.headers["x-trace"] == "abc"


@pytest.mark.parametrize(
    ("body", "content_type", "sent"),
    [
        ({"n": 1}, "application/json", b'{"n": 1}'),
        ([1, 2], "application/json", b"[1, 2]"),
        ("plain words", "text/plain; charset=utf-8", b"plain words"),
    ],
)
def test_a_body_is_sent_as_json_or_as_the_string_it_is(
    serve: Serve, clock: FakeClock, body: Any, content_type: str, sent: bytes
) -> None:
    server = serve(lambda r: (201, {"Content-Type": "text/plain"}, b"made"))
    result = call(clock, url=server.url, method="post", body=body)
    assert (result["status"], result["body"]) == (201, "made")
    [request] = server.received
    assert request.method == "POST"
    assert request.headers["content-type"] == content_type
    assert request.body == sent


def test_a_content_type_given_by_the_job_is_kept(serve: Serve, clock: FakeClock) -> None:
    server = serve(lambda r: (204, {}, b""))
    call(clock, url=server.url, method="PUT", body="<a/>", headers={"content-type": "text/xml"})
    assert server.received[0].headers["content-type"] == "text/xml"


def test_a_status_not_expected_fails_the_run_with_it(serve: Serve, clock: FakeClock) -> None:
    server = serve(lambda r: json_reply(503, {"error": "busy"}))
    with pytest.raises(
        ActionFailed, match=r"GET http://127\.0\.0\.1:\d+/x answered 503, expected 2xx"
    ):
        call(clock, url=f"{server.url}/x?token=secret")
    with pytest.raises(ActionFailed, match="answered 503, expected 200 or 204"):
        call(clock, url=server.url, expect_status=[200, 204])
    assert call(clock, url=server.url, expect_status=503)["body"] == {"error": "busy"}


def test_a_long_body_is_cut_and_says_so(serve: Serve, clock: FakeClock) -> None:
    server = serve(
        lambda r: (200, {"Content-Type": "application/json"}, b"[" + b"1," * 40_000 + b"1]")
    )
    result = call(clock, url=server.url)
    assert result["body_truncated"] is True
    assert len(result["body"]) == MAX_RESPONSE_BYTES  # cut JSON is kept as text


def test_a_slow_server_times_out_at_the_runs_deadline(serve: Serve, clock: FakeClock) -> None:
    release = threading.Event()

    def stall(request: Received) -> Reply:
        release.wait(10)
        return 200, {}, b"late"

    server = serve(stall)
    try:
        with pytest.raises(ActionFailed, match="timed out"):
            call(clock, url=server.url, timeout_s=0.3)
    finally:
        release.set()


def test_a_run_past_its_deadline_sends_nothing(serve: Serve, clock: FakeClock) -> None:
    server = serve(lambda r: (200, {}, b""))
    with pytest.raises(ActionFailed, match="deadline passed"):
        call(clock, url=server.url, timeout_s=-1)
    assert server.received == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("[fd00::1]", "private"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not global"),
        ("2130706433", "loopback"),  # 127.0.0.1 written as one number
    ],
)
def test_the_ssrf_guard_refuses_addresses_that_are_not_public(
    serve: Serve, clock: FakeClock, host: str, reason: str
) -> None:
    server = serve(lambda r: (200, {}, b"reached"))
    port = server.url.rsplit(":", 1)[1]
    with pytest.raises(AddressRefused, match=f": {reason} address"):
        call(clock, allow=(), timeout_s=1, url=f"http://{host}:{port}/latest/meta-data/")
    assert server.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_is_called_when_the_operator_allows_it(
    serve: Serve, clock: FakeClock, host: str
) -> None:
    server = serve(lambda r: (200, {}, b"reached"))
    port = server.url.rsplit(":", 1)[1]
    assert call(clock, url=f"http://{host}:{port}/")["body"] == "reached"
    assert len(server.received) == 1


def test_allowing_loopback_does_not_allow_the_metadata_service(clock: FakeClock) -> None:
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254: link-local"):
        call(clock, allow=LOOPBACK, timeout_s=1, url="http://169.254.169.254/latest/")


def test_the_request_goes_to_the_address_that_was_checked(serve: Serve) -> None:
    # "rebind.invalid" exists only in the policy's resolver: had the connection
    # asked DNS again, it could not have reached the server.
    server = serve(lambda r: (200, {}, b"pinned"))
    port = int(server.url.rsplit(":", 1)[1])

    def resolver(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        assert host == "rebind.invalid"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    policy = replace(AddressPolicy.from_cidrs(LOOPBACK), resolver=resolver)
    response = send(
        "GET", f"http://rebind.invalid:{port}/", timeout_s=5, max_body_bytes=100, policy=policy
    )
    assert response.body == b"pinned"
    assert server.received[0].headers["host"] == f"rebind.invalid:{port}"


def test_a_redirect_is_followed_within_the_origin(serve: Serve, clock: FakeClock) -> None:
    def moved(request: Received) -> Reply:
        if request.path == "/old":
            return 302, {"Location": "/new"}, b""
        return json_reply(200, {"at": request.path})

    server = serve(moved)
    result = call(clock, url=f"{server.url}/old", headers={"Authorization": "Bearer t"})
    assert result["body"] == {"at": "/new"}
    assert result["url"] == f"{server.url}/new"
    assert [r.headers.get("authorization") for r in server.received] == ["Bearer t"] * 2


def test_a_redirect_to_a_refused_address_is_refused(serve: Serve, clock: FakeClock) -> None:
    server = serve(lambda r: (307, {"Location": "http://169.254.169.254/latest/"}, b""))
    with pytest.raises(AddressRefused, match="link-local"):
        call(clock, url=server.url, timeout_s=1)
    assert len(server.received) == 1


def test_a_redirect_elsewhere_drops_credentials_and_a_303_becomes_a_get(
    serve: Serve, clock: FakeClock
) -> None:
    target = serve(lambda r: (200, {}, b"landed"))
    elsewhere = target.url.replace("127.0.0.1", "localhost") + "/landing"
    first = serve(lambda r: (303, {"Location": elsewhere}, b""))
    result = call(
        clock,
        url=first.url,
        method="POST",
        body={"a": 1},
        headers={"Authorization": "Bearer t", "Cookie": "s=1"},
    )
    assert result["body"] == "landed"
    [landed] = target.received
    assert (landed.method, landed.path, landed.body) == ("GET", "/landing", b"")
    assert "authorization" not in landed.headers and "cookie" not in landed.headers


def test_a_redirect_loop_ends_with_a_failure(serve: Serve, clock: FakeClock) -> None:
    server = serve(lambda r: (302, {"Location": "/again"}, b""))
    with pytest.raises(ActionFailed, match="more than 5 redirects"):
        call(clock, url=server.url)
    assert len(server.received) == 6


@pytest.mark.parametrize(
    "args",
    [
        {"url": "http://x", "method": "BREW"},
        {"url": "http://x", "headers": {"X-A": "1\r\nX-B: 2"}},
        {"url": "http://x", "headers": {"bad name": "1"}},
        {"url": "http://x", "expect_status": 999},
    ],
)
def test_args_that_cannot_be_sent_are_refused_by_the_model(args: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        HttpRequestArgs.model_validate(args)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost"])
def test_urls_other_than_http_are_refused(clock: FakeClock, url: str) -> None:
    with pytest.raises(ActionFailed, match="not an http"):
        call(clock, url=url)


def test_through_the_pipeline_a_job_completes_or_fails_by_status(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    serve: Serve,
    make_task: Callable[..., Task],
) -> None:
    server = serve(lambda r: json_reply(200 if r.path == "/up" else 500, {"path": r.path}))
    up = make_task(action="http_request", args={"url": f"{server.url}/up"})
    down = make_task(action="http_request", args={"url": f"{server.url}/down"})
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    [done] = runs(services, up)
    assert done.status is JobStatus.COMPLETE
    assert done.result["status"] == 200 and done.result["body"] == {"path": "/up"}
    [failed] = runs(services, down)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and "answered 500, expected 2xx" in failed.error
    assert sorted(r.path for r in server.received) == ["/down", "/up"]
