"""`GET /v1/schedules/preview` and `GET /v1/me`, through `chalice.test.Client`.

The fake clock stands at Monday 2027-01-04T09:00:00Z.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.auth.service import Role
from tests.conftest import Token
from tests.functional.conftest import Api, body

PREVIEW = "/v1/schedules/preview"


def preview(api: Api, token: Token, **params: Any) -> Any:
    return api.get(f"{PREVIEW}?{urlencode(params)}", token=token)


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    return make_token("acme", Role.MEMBER, "alice")


def test_preview_lists_fire_times_in_the_zone_and_describes_them(api: Api, member: Token) -> None:
    answer = preview(api, member, schedule="0 9 * * MON", timezone="Europe/Amsterdam", count=3)
    assert answer.status_code == 200
    assert body(answer) == {
        # 09:00 in Amsterdam (UTC+1 in winter) is 08:00Z; this Monday's has passed.
        "upcoming": ["2027-01-11T08:00:00Z", "2027-01-18T08:00:00Z", "2027-01-25T08:00:00Z"],
        "description": "At 09:00 on Monday",
    }


@pytest.mark.parametrize(
    ("schedule", "first", "description"),
    [
        ("*/2 * * * * *", "2027-01-04T09:00:02Z", "Every 2 seconds"),
        ("@every 5m", "2027-01-04T09:05:00Z", "Every 5 minutes"),
        ("@daily", "2027-01-05T00:00:00Z", "At 00:00"),
        (
            "@once 2027-02-01T12:00:00+01:00",
            "2027-02-01T11:00:00Z",
            "Once, at 2027-02-01T11:00:00Z",
        ),
    ],
)
def test_preview_takes_every_kind_of_schedule(
    api: Api, member: Token, schedule: str, first: str, description: str
) -> None:
    found = body(preview(api, member, schedule=schedule))
    assert found["upcoming"][0] == first
    assert found["description"] == description


def test_preview_defaults_to_five_times_in_utc_and_caps_count(api: Api, member: Token) -> None:
    assert len(body(preview(api, member, schedule="* * * * *"))["upcoming"]) == 5
    assert (
        len(body(preview(api, member, schedule="@once 2027-02-01T00:00:00Z", count=5))["upcoming"])
        == 1
    )
    too_many = body(preview(api, member, schedule="* * * * *", count=51))
    assert too_many["status"] == 422
    assert [e["location"] for e in too_many["errors"]] == ["query.count"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"schedule": "0 0 30 2 *"}, "schedule"),
        ({"schedule": "@every 0s"}, "schedule"),
        ({"schedule": ""}, "schedule"),
        ({"schedule": "@once 2026-12-31T00:00:00Z"}, "schedule"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_preview_refuses_what_creating_a_task_refuses_with_the_same_error(
    api: Api, member: Token, params: dict[str, str], field: str
) -> None:
    refused = preview(api, member, **params)
    created = api.post(
        "/v1/scheduled-tasks", token=member, json_body={"name": "x", "action": "echo", **params}
    )
    assert refused.status_code == created.status_code == 422
    problem, create_problem = body(refused), body(created)
    assert refused.headers["Content-Type"] == "application/problem+json"
    # The same messages and values; the input is a query parameter here, a body field there.
    assert [(e["location"], e["message"], e["value"]) for e in problem["errors"]] == [
        (e["location"].replace("body.", "query."), e["message"], e["value"])
        for e in create_problem["errors"]
    ]
    assert [e["location"] for e in problem["errors"]] == [f"query.{field}"]


def test_preview_needs_a_schedule_and_a_token(api: Api, member: Token) -> None:
    missing = body(api.get(PREVIEW, token=member))
    assert missing["status"] == 422
    assert missing["errors"][0]["location"] == "query.schedule"
    assert api.get(f"{PREVIEW}?schedule=*+*+*+*+*").status_code == 401


def test_me_says_who_the_token_is(api: Api, make_token: Callable[..., Token]) -> None:
    admin = make_token("default", Role.ADMIN, "ops")
    member = make_token("acme", Role.MEMBER, "alice")
    assert body(api.get("/v1/me", token=admin)) == {
        "token_id": admin.id,
        "name": "ops",
        "project_id": "default",
        "role": "admin",
    }
    assert body(api.get("/v1/me", token=member))["role"] == "member"
    assert api.get("/v1/me").status_code == 401


def test_no_cors_headers_without_a_console_origin(api: Api, member: Token) -> None:
    answer = api.get("/v1/me", token=member, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers
