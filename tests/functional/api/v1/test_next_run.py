"""A task's views say what fires next: the next firing that has not started,
although the tick handed the firings of its lookahead to SQS already and moved
the stored `next_run_at` past them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.auth.service import Role
from chalicelib.settings import Settings
from tests.conftest import FakeClock, Token
from tests.functional.api.v1.test_scheduled_tasks import TASKS, new_task
from tests.functional.conftest import Api, body


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The lookahead of a deployed tick (once a minute, 75 s ahead), so creating a
    # task hands the next 75 s of its firings to SQS at once.
    return replace(settings, lookahead_s=75.0)


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    return make_token("acme", Role.MEMBER)


def at(hms: str) -> str:
    return f"2027-01-04T{hms}Z"


def create(api: Api, member: Token, **fields: Any) -> dict[str, Any]:
    made = api.post(TASKS, token=member, json_body=new_task(**fields))
    assert made.status_code == 201, body(made)
    return body(made)  # type: ignore[no-any-return]


def test_next_run_at_is_the_next_firing_not_yet_started(
    api: Api, member: Token, clock: FakeClock
) -> None:
    task = create(api, member, schedule="*/5 * * * * *")
    # Made at 09:00:00: the firings to 09:01:15 are with SQS already.
    assert (task["next_run_at"], task["upcoming"][0]) == (at("09:00:05"), at("09:00:05"))
    clock.set(datetime(2027, 1, 4, 9, 0, 21, tzinfo=UTC))
    detail = body(api.get(f"{TASKS}/{task['id']}", token=member))
    assert detail["next_run_at"] == at("09:00:25")
    assert detail["upcoming"] == [at(f"09:00:{s}") for s in (25, 30, 35, 40, 45)]
    [listed] = body(api.get(TASKS, token=member))["scheduled_tasks"]
    assert listed["next_run_at"] == at("09:00:25")
    [catalogued] = body(api.get("/api/tasks", token=member))
    assert catalogued["next_run_at"] == at("09:00:25")

    off = api.patch(f"{TASKS}/{task['id']}", token=member, json_body={"enabled": False})
    assert (body(off)["next_run_at"], body(off)["upcoming"]) == (None, [])


def test_a_one_shot_handed_to_sqs_shows_until_its_time(
    api: Api, member: Token, clock: FakeClock
) -> None:
    task = create(api, member, schedule=f"@once {at('09:00:30')}")
    clock.set(datetime(2027, 1, 4, 9, 0, 10, tzinfo=UTC))
    detail = body(api.get(f"{TASKS}/{task['id']}", token=member))
    assert (detail["next_run_at"], detail["upcoming"]) == (at("09:00:30"), [at("09:00:30")])
    clock.set(datetime(2027, 1, 4, 9, 0, 31, tzinfo=UTC))
    detail = body(api.get(f"{TASKS}/{task['id']}", token=member))
    assert (detail["next_run_at"], detail["upcoming"]) == (None, [])
