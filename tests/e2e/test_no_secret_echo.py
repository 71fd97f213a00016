"""The local stack never shows a token: not in the answer to an unknown path,
not in its request log; and methods no route has get a 4xx, not a 501."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.e2e.conftest import LocalStack

SYNAPSE = "/_synapse/admin/v1/scheduled_tasks"


def test_no_token_is_echoed_in_answers_or_in_the_log(
    make_stack: Callable[..., LocalStack],
) -> None:
    # Request lines are printed with TICKWORK_LOG=debug only: the log at its fullest.
    stack = make_stack(env={"TICKWORK_LOG": "debug"})
    # The bootstrap admin token is printed at start by design: probe with another.
    with stack.client() as admin:
        issued = admin.post(
            "/v1/admin/tokens", json={"project_id": "default", "role": "admin", "name": "probe"}
        )
    assert issued.status_code == 201, issued.text
    secret = issued.json()["token"]
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        unknown = http.get("/no/such/path", headers={"Authorization": f"Bearer {secret}"})
        by_query = http.get(SYNAPSE, params={"access_token": secret, "limit": 1})
        unknown_by_query = http.get("/nowhere", params={"access_token": secret})
    assert unknown.status_code == 403
    assert unknown.json() == {"message": "Missing Authentication Token"}
    assert secret not in unknown.text
    assert by_query.status_code == 200, by_query.text
    assert unknown_by_query.status_code == 403
    assert secret not in unknown_by_query.text

    stack.stop()  # every line it wrote is in `output` now
    log = "".join(stack.output)
    assert f"GET {SYNAPSE}?access_token=[redacted]&limit=1 " in log
    assert "GET /nowhere?access_token=[redacted] " in log
    assert "GET /no/such/path " in log
    assert secret not in log


def test_methods_no_route_has_are_405_problems(stack: LocalStack) -> None:
    with stack.client() as http:
        trace = http.request("TRACE", "/v1/queue/jobs")
        custom = http.request("FOO", "/nowhere")
        put = http.put("/v1/queue/jobs", json={})
    assert trace.status_code == 405
    assert trace.headers["Content-Type"] == "application/problem+json"
    assert trace.headers["Allow"] == "GET, POST"
    assert trace.json()["status"] == 405
    assert trace.json()["instance"] == "/v1/queue/jobs"
    assert custom.status_code == 405
    assert "Allow" not in custom.headers
    assert put.status_code == 405  # a routed path: Chalice answers with its own 405
    assert set(put.headers["Allow"].split(", ")) == {"GET", "POST"}
