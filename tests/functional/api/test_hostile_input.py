"""Hostile and edge-case input through `chalice.test.Client` on moto: bodies that
may be left out, empty filters, out-of-range instants, deep JSON, durations
DynamoDB cannot store. Each answers its surface's 4xx, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.auth.service import Role
from chalicelib.tasks.model import Task
from tests.conftest import Token
from tests.functional.conftest import Api, body

JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"
TASKS = "/v1/scheduled-tasks"
PROBLEM = "application/problem+json"


def raw_post(api: Api, path: str, token: Token, payload: bytes = b"") -> Any:
    """A POST with no Content-Type header at all (and by default no body), as
    `curl -X POST` sends it."""
    return api._client.http.request("POST", path, headers=token.headers, body=payload)


def held_request(api: Api, token: Token) -> str:
    answer = api.post(JOBS, token=token, json_body={"action": "record", "requires_approval": True})
    assert answer.status_code == 202, answer.body
    request_id: str = body(answer)["approval_request_id"]
    return request_id


def locations(answer: Any) -> list[str]:
    return [e["location"] for e in body(answer)["errors"]]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_needs_no_body_nor_content_type(
    api: Api, make_token: Callable[..., Token], decision: str
) -> None:
    member = make_token("acme")
    request_id = held_request(api, member)
    answer = raw_post(api, f"{HITL}/{request_id}/{decision}", member)
    assert answer.status_code == 200, answer.body
    assert body(answer)["status"] == ("approved" if decision == "approve" else "rejected")


def test_approving_another_projects_request_without_a_body_is_404(
    api: Api, make_token: Callable[..., Token]
) -> None:
    request_id = held_request(api, make_token("acme"))
    stranger = make_token("globex")
    for decision in ("approve", "reject"):
        answer = raw_post(api, f"{HITL}/{request_id}/{decision}", stranger)
        assert answer.status_code == 404, answer.body
        assert answer.headers["Content-Type"] == PROBLEM


def test_redrive_needs_no_body(api: Api, make_token: Callable[..., Token]) -> None:
    admin = make_token("default", Role.ADMIN)
    answer = raw_post(api, "/v1/queue/dead-letters/redrive", admin)
    assert answer.status_code == 200, answer.body
    assert body(answer) == {"redriven": [], "remaining": False}


def test_a_body_with_required_fields_still_may_not_be_empty(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    for path in (TASKS, JOBS):
        answer = raw_post(api, path, member)
        assert answer.status_code == 400, answer.body
        assert "empty" in body(answer)["detail"]


def test_the_openapi_document_says_which_bodies_may_be_left_out(api: Api) -> None:
    paths = body(api.get("/openapi.json"))["paths"]
    assert paths[HITL + "/{request_id}/approve"]["post"]["requestBody"]["required"] is False
    assert paths["/v1/queue/dead-letters/redrive"]["post"]["requestBody"]["required"] is False
    assert paths[TASKS]["post"]["requestBody"]["required"] is True


@pytest.mark.parametrize(
    ("path", "location"),
    [
        (f"{JOBS}?task_id=", "query.task_id"),
        (f"{JOBS}?action=", "query.action"),
        (f"{JOBS}?correlation_id=", "query.correlation_id"),
        (f"{JOBS}?status=", "query.status"),
        (f"{JOBS}?cursor=", "query.cursor"),
        (f"{TASKS}?action=", "query.action"),
        (f"{TASKS}?group=", "query.group"),
        (f"{HITL}?status=", "query.status"),
        ("/v1/schedules/preview?schedule=", "query.schedule"),
        ("/v1/schedules/preview?schedule=@daily&timezone=", "query.timezone"),
        (f"{JOBS}/j/result?wait=nan", "query.wait"),
        (f"{JOBS}/j/result?wait=inf", "query.wait"),
    ],
)
def test_empty_and_non_finite_query_values_are_422(
    api: Api, make_token: Callable[..., Token], path: str, location: str
) -> None:
    answer = api.get(path, token=make_token("acme"))
    assert answer.status_code == 422, answer.body
    assert locations(answer) == [location]


FAR_ONCE = "@once 9999-12-31T23:59:59-23:59"
EARLY_ONCE = "@once 0001-01-01T00:00:00+01:00"


@pytest.mark.parametrize("schedule", [FAR_ONCE, EARLY_ONCE, "@once 9998-06-01T00:00:00Z"])
def test_once_outside_the_datetime_range_is_422(
    api: Api, make_token: Callable[..., Token], schedule: str
) -> None:
    member = make_token("acme")
    created = api.post(
        TASKS, token=member, json_body={"name": "far", "schedule": schedule, "action": "echo"}
    )
    assert created.status_code == 422, created.body
    assert locations(created) == ["body.schedule"]
    preview = api.get(f"/v1/schedules/preview?schedule={schedule}", token=member)
    assert preview.status_code == 422, preview.body
    assert locations(preview) == ["query.schedule"]


@pytest.mark.parametrize(
    ("start", "end", "location"),
    [
        ("0001-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "body.start"),
        ("0001-01-01T00:00:00+01:00", "2027-01-01T00:00:00Z", "body.start"),
        ("1969-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "body.start"),
        ("9997-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "body.end"),
        ("9997-01-01T00:00:00Z", "9998-01-01T00:00:00Z", "body.end"),
    ],
)
def test_backfill_outside_the_datetime_range_is_422(
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
    start: str,
    end: str,
    location: str,
) -> None:
    task = make_task(schedule="@daily")
    answer = api.post(
        f"{TASKS}/{task.id}/backfill",
        token=make_token("acme"),
        json_body={"start": start, "end": end},
    )
    assert answer.status_code == 422, answer.body
    assert locations(answer) == [location]


def test_backfill_whose_next_fire_time_is_past_the_year_9999_is_422(
    api: Api, make_token: Callable[..., Token], make_task: Callable[..., Task]
) -> None:
    # After 9997-03-01 the next 29 February is in the year 10000.
    task = make_task(schedule="0 0 29 2 *")
    answer = api.post(
        f"{TASKS}/{task.id}/backfill",
        token=make_token("acme"),
        json_body={"start": "9997-03-01T00:00:00Z", "end": "9997-12-31T00:00:00Z"},
    )
    assert answer.status_code == 422, answer.body
    assert locations(answer) == ["body.end"]


@pytest.mark.parametrize("payload", ["[" * 100_000, '{"a":' * 100_000, "NaN", '{"name": Infinity}'])
def test_what_is_not_json_is_400(api: Api, make_token: Callable[..., Token], payload: str) -> None:
    answer = api.post(TASKS, token=make_token("acme"), body=payload)
    assert answer.status_code == 400, answer.body
    assert body(answer)["detail"].startswith("malformed JSON")


@pytest.mark.parametrize("value", [1e-300, 0.0005, 1.0001, 1e308, "1e999"])
def test_durations_are_finite_whole_milliseconds(
    api: Api, make_token: Callable[..., Token], value: Any
) -> None:
    member = make_token("acme")
    number = value if isinstance(value, str) else json.dumps(value)
    task = f'{{"name": "d", "schedule": "@daily", "action": "echo", "retry_delay": {number}}}'
    job = f'{{"action": "echo", "defer_by": {number}}}'
    for path, payload, location in (
        (TASKS, task, "body.retry_delay"),
        (JOBS, job, "body.defer_by"),
    ):
        answer = api.post(path, token=member, body=payload)
        assert answer.status_code == 422, answer.body
        assert locations(answer) == [location]


def test_a_millisecond_duration_is_stored_and_read_back(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    created = api.post(
        TASKS,
        token=member,
        json_body={"name": "ms", "schedule": "@daily", "action": "echo", "timeout": 0.25},
    )
    assert created.status_code == 201, created.body
    task = body(api.get(f"{TASKS}/{body(created)['id']}", token=member))
    assert task["timeout"] == 0.25
    spec = body(api.get("/openapi.json"))["components"]["schemas"]["JobSubmission"]
    assert spec["properties"]["expires"]["anyOf"][0] == {
        "exclusiveMinimum": 0,
        "maximum": 31622400,
        "multipleOf": 0.001,
        "type": "number",
    }
