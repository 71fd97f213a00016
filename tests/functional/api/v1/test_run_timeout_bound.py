"""A run's `timeout` is bounded by what one executor invocation holds.

Lambda stops the executor at 900 s, so a task's or a queue job's `timeout`
above MAX_RUN_TIMEOUT_S (900 s less the claim-and-record margin) could never
finish: it is refused with 422 at `body.timeout`, the bound in the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.tasks.model import MAX_RUN_TIMEOUT_S
from tests.conftest import Token
from tests.functional.conftest import Api, body

TASKS = "/v1/scheduled-tasks"
JOBS = "/v1/queue/jobs"
TASK = {"name": "nightly", "schedule": "0 3 * * *", "action": "record"}


def refused_timeout(response: Any) -> str:
    assert response.status_code == 422, body(response)
    [error] = body(response)["errors"]
    assert error["location"] == "body.timeout"
    message: str = error["message"]
    return message


def test_a_task_timeout_above_the_bound_is_refused_on_create_and_on_patch(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    message = refused_timeout(
        api.post(TASKS, token=member, json_body={**TASK, "timeout": MAX_RUN_TIMEOUT_S + 1})
    )
    assert f"at most {MAX_RUN_TIMEOUT_S} s" in message

    created = api.post(TASKS, token=member, json_body={**TASK, "timeout": MAX_RUN_TIMEOUT_S})
    assert created.status_code == 201, body(created)
    task_id = body(created)["id"]
    patched = api.patch(f"{TASKS}/{task_id}", token=member, json_body={"timeout": 3600})
    assert f"at most {MAX_RUN_TIMEOUT_S} s" in refused_timeout(patched)
    shown = body(api.get(f"{TASKS}/{task_id}", token=member))
    assert shown["timeout"] == MAX_RUN_TIMEOUT_S


def test_a_queue_job_timeout_above_the_bound_is_refused(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    refused = api.post(JOBS, token=member, json_body={"action": "record", "timeout": 86_400})
    assert f"at most {MAX_RUN_TIMEOUT_S} s" in refused_timeout(refused)
    accepted = api.post(
        JOBS, token=member, json_body={"action": "record", "timeout": MAX_RUN_TIMEOUT_S}
    )
    assert accepted.status_code in (201, 202), body(accepted)


def test_the_bound_is_in_the_openapi_schema(api: Api) -> None:
    spec = body(api.get("/openapi.json"))
    schemas = spec["components"]["schemas"]
    maxima = {
        name: schema["properties"]["timeout"].get("maximum")
        for name, schema in schemas.items()
        if "timeout" in schema.get("properties", {})
    }
    assert maxima["TaskPatch"] == maxima["JobSubmission"] == MAX_RUN_TIMEOUT_S, maxima
