"""A task names a registered action with args it accepts, on create and on PATCH
(after the merge), as a queue submission must (issue: a task with an unknown
action was created and then failed at every firing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.auth.service import Role
from chalicelib.tasks.model import MAX_RUN_TIMEOUT_S
from tests.conftest import Token
from tests.functional.api.v1.test_scheduled_tasks import TASKS, assert_problem, new_task
from tests.functional.conftest import Api, body


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    return make_token("acme", Role.MEMBER)


def create(api: Api, member: Token, **fields: Any) -> Any:
    return api.post(TASKS, token=member, json_body=new_task(**fields))


def test_an_unknown_action_is_refused_at_body_action(api: Api, member: Token) -> None:
    problem = assert_problem(create(api, member, action="no_such_action"), 422, "body.action")
    [error] = problem["errors"]
    assert error["value"] == "no_such_action"
    assert "GET /v1/queue/actions" in error["message"]
    listed = api.get(TASKS, token=member)
    assert body(listed)["scheduled_tasks"] == []


def test_args_the_action_refuses_are_422_at_their_field(api: Api, member: Token) -> None:
    problem = assert_problem(
        create(api, member, action="sleep", args={"seconds": -1}), 422, "body.args.seconds"
    )
    assert len(problem["errors"]) == 1
    assert_problem(create(api, member, action="sleep", args={}), 422, "body.args.seconds")
    assert_problem(
        create(api, member, action="sleep", args={"seconds": 1, "extra": True}),
        422,
        "body.args.extra",
    )
    made = create(api, member, action="sleep", args={"seconds": 1})
    assert made.status_code == 201, body(made)


def test_a_patch_is_checked_after_the_merge(api: Api, member: Token) -> None:
    made = create(api, member, action="sleep", args={"seconds": 1})
    path = f"{TASKS}/{body(made)['id']}"
    # The merged args keep `seconds` and add a field the model forbids.
    assert_problem(
        api.patch(path, token=member, json_body={"args": {"unknown": 1}}), 422, "body.args.unknown"
    )
    # Changing the action alone leaves args the new action does not accept.
    assert_problem(
        api.patch(path, token=member, json_body={"action": "fail"}), 422, "body.args.seconds"
    )
    assert_problem(
        api.patch(path, token=member, json_body={"action": "no_such_action"}), 422, "body.action"
    )
    unchanged = body(api.get(path, token=member))
    assert (unchanged["action"], unchanged["args"], unchanged["version"]) == (
        "sleep",
        {"seconds": 1},
        1,
    )
    # Both at once (null removes `seconds`, RFC 7396) is a valid task.
    moved = api.patch(
        path,
        token=member,
        json_body={"action": "fail", "args": {"seconds": None, "message": "x"}},
    )
    assert moved.status_code == 200, body(moved)
    assert (body(moved)["action"], body(moved)["args"]) == ("fail", {"message": "x"})


def test_a_sleep_is_no_longer_than_a_run_may_take(api: Api, member: Token) -> None:
    # A sleep past the run bound could only end `timeout`: refused where it is given.
    too_long = create(api, member, action="sleep", args={"seconds": MAX_RUN_TIMEOUT_S + 1})
    assert_problem(too_long, 422, "body.args.seconds")
    longest = create(
        api, member, action="sleep", args={"seconds": MAX_RUN_TIMEOUT_S}, timeout=MAX_RUN_TIMEOUT_S
    )
    assert longest.status_code == 201, body(longest)
