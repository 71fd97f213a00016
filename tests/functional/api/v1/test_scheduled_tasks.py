"""`/v1/scheduled-tasks` through chalice.test.Client on moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.auth.service import Role
from chalicelib.storage.tasks import TaskStore
from chalicelib.wiring import Services
from tests.conftest import FakeClock, Token
from tests.functional.conftest import Api, body

TASKS = "/v1/scheduled-tasks"


def new_task(**overrides: Any) -> dict[str, Any]:
    return {"name": "nightly-report", "schedule": "0 2 * * *", "action": "echo", **overrides}


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    return make_token("acme", Role.MEMBER)


@pytest.fixture
def create(api: Api, member: Token) -> Callable[..., dict[str, Any]]:
    def make(token: Token | None = None, **overrides: Any) -> dict[str, Any]:
        response = api.post(TASKS, token=token or member, json_body=new_task(**overrides))
        assert response.status_code == 201, body(response)
        return body(response)  # type: ignore[no-any-return]

    return make


def assert_problem(response: Any, status: int, location: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, body(response)
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = body(response)
    assert set(problem) == {"$schema", "type", "title", "status", "detail", "instance", "errors"}
    assert problem["status"] == status
    assert problem["$schema"].endswith("/schemas/ErrorModel.json")
    if location is not None:
        assert location in [e["location"] for e in problem["errors"]], problem
    return problem  # type: ignore[no-any-return]


# ---------------------------------------------------------------- the cycle
def test_create_applies_every_default_of_design_4(create: Callable[..., dict[str, Any]]) -> None:
    task = create()
    assert (
        task
        | {
            "kind": "task",
            "timezone": "UTC",
            "args": {},
            "enabled": True,
            "description": "",
            "group": "",
            "catch_up": "latest",
            "catch_up_window": 86400,
            "on_overlap": "queue",
            "parallelism": 1,
            "pause_after_failures": 0,
            "retry_attempts": 0,
            "retry_backoff": "constant",
            "retry_delay": 60,
            "timeout": 300,
            "restart": "never",
            "restart_backoff": "constant",
            "restart_delay": 60,
            "instances": 1,
            "keep_runs": 100,
            "keep_for": 2592000,
            "log_max_size": 65536,
            "log_on_full": "drop_new",
            "api_trigger": True,
            "requires_approval": False,
        }
        == task
    )
    assert task["project_id"] == "acme"
    assert task["version"] == 1
    # The fake clock stands at 2027-01-04T09:00:00Z.
    assert task["next_run_at"] == "2027-01-05T02:00:00Z"
    assert task["created_at"] == task["updated_at"] == "2027-01-04T09:00:00Z"
    assert task["last_run_at"] is None and task["last_status"] is None


def test_create_get_list_patch_delete(api: Api, member: Token, clock: FakeClock) -> None:
    created = body(
        api.post(
            TASKS,
            token=member,
            json_body=new_task(
                timezone="Europe/Amsterdam",
                args={"to": "ops"},
                group="reports",
            ),
        )
    )
    task_id = created["id"]

    got = api.get(f"{TASKS}/{task_id}", token=member)
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'
    assert body(got)["upcoming"] == [
        "2027-01-05T01:00:00Z",
        "2027-01-06T01:00:00Z",
        "2027-01-07T01:00:00Z",
        "2027-01-08T01:00:00Z",
        "2027-01-09T01:00:00Z",
    ]

    listed = body(api.get(TASKS, token=member))
    assert [t["id"] for t in listed["scheduled_tasks"]] == [task_id]
    assert "upcoming" not in listed["scheduled_tasks"][0]
    assert listed["next_cursor"] is None

    clock.advance(60)
    patched = api.patch(
        f"{TASKS}/{task_id}",
        token=member,
        json_body={"schedule": "30 6 * * MON-FRI", "args": {"cc": "boss"}, "description": None},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, body(patched)
    task = body(patched)
    assert task["version"] == 2
    assert task["args"] == {"to": "ops", "cc": "boss"}  # merge patch merges objects
    assert task["next_run_at"] == "2027-01-05T05:30:00Z"
    assert task["updated_at"] == "2027-01-04T09:01:00Z"
    assert patched.headers["ETag"] == '"2"'

    assert api.delete(f"{TASKS}/{task_id}", token=member).status_code == 204
    assert_problem(api.get(f"{TASKS}/{task_id}", token=member), 404)
    assert body(api.get(TASKS, token=member))["scheduled_tasks"] == []
    # The name is free again.
    assert api.post(TASKS, token=member, json_body=new_task()).status_code == 201


# ---------------------------------------------------------------- names and versions
def test_duplicate_name_in_a_project_is_409_but_other_projects_may_reuse_it(
    api: Api, create: Callable[..., dict[str, Any]], make_token: Callable[..., Token]
) -> None:
    create()
    assert_problem(api.post(TASKS, token=make_token("acme"), json_body=new_task()), 409)
    assert api.post(TASKS, token=make_token("globex"), json_body=new_task()).status_code == 201


def test_rename_onto_a_taken_name_is_409_and_frees_the_old_name_on_success(
    api: Api, member: Token, create: Callable[..., dict[str, Any]]
) -> None:
    first = create(name="first")
    create(name="second")
    assert_problem(
        api.patch(f"{TASKS}/{first['id']}", token=member, json_body={"name": "second"}), 409
    )
    renamed = api.patch(f"{TASKS}/{first['id']}", token=member, json_body={"name": "third"})
    assert body(renamed)["name"] == "third"
    assert api.post(TASKS, token=member, json_body=new_task(name="first")).status_code == 201


def test_stale_if_match_is_412_and_changes_nothing(
    api: Api, member: Token, create: Callable[..., dict[str, Any]]
) -> None:
    task = create()
    api.patch(f"{TASKS}/{task['id']}", token=member, json_body={"description": "v2"})
    stale = api.patch(
        f"{TASKS}/{task['id']}",
        token=member,
        json_body={"description": "lost update"},
        headers={"If-Match": '"1"'},
    )
    assert_problem(stale, 412)
    assert body(api.get(f"{TASKS}/{task['id']}", token=member))["description"] == "v2"


def test_patch_validates_the_merged_task(
    api: Api, member: Token, create: Callable[..., dict[str, Any]]
) -> None:
    task = create()
    path = f"{TASKS}/{task['id']}"
    assert_problem(
        api.patch(path, token=member, json_body={"schedule": "61 * * * *"}), 422, "body.schedule"
    )
    assert_problem(api.patch(path, token=member, json_body={"id": "other"}), 422, "body.id")
    assert_problem(
        api.patch(path, token=member, json_body={"timeout": "soon"}), 422, "body.timeout"
    )
    # null resets to the default, and a task without a schedule is refused.
    assert body(api.patch(path, token=member, json_body={"timeout": 5}))["timeout"] == 5
    assert body(api.patch(path, token=member, json_body={"timeout": None}))["timeout"] == 300
    assert_problem(
        api.patch(path, token=member, json_body={"schedule": None}), 422, "body.schedule"
    )


# ---------------------------------------------------------------- enable / disable
#: Later than any fire time: every task in the `due` index is due by then.
END_OF_TIME_MS = 2**53


def due_index_ids(services: Services) -> set[str]:
    """The tasks the tick finds in the `due` index, whenever they fire."""
    store = TaskStore(services.settings, services.tables)
    return {
        task.id
        for shard in range(services.settings.due_shards)
        for task in store.due(shard, END_OF_TIME_MS)
    }


def test_disable_clears_next_run_and_leaves_the_due_index(
    api: Api,
    services: Services,
    member: Token,
    clock: FakeClock,
    create: Callable[..., dict[str, Any]],
) -> None:
    task = create(schedule="*/10 * * * *")
    assert task["id"] in due_index_ids(services)
    path = f"{TASKS}/{task['id']}"

    disabled = body(api.patch(path, token=member, json_body={"enabled": False}))
    assert disabled["next_run_at"] is None
    assert body(api.get(path, token=member))["upcoming"] == []
    assert task["id"] not in due_index_ids(services)

    # Enabling again starts from now: the disabled hours are not caught up.
    clock.advance(3 * 3600 + 25)
    enabled = body(api.patch(path, token=member, json_body={"enabled": True}))
    assert enabled["next_run_at"] == "2027-01-04T12:10:00Z"
    assert task["id"] in due_index_ids(services)


def test_a_disabled_task_can_be_created(
    services: Services, create: Callable[..., dict[str, Any]]
) -> None:
    assert create(enabled=False)["next_run_at"] is None
    assert create(name="other")["id"] in due_index_ids(services)


def test_every_is_measured_from_creation_and_restarts_on_schedule_change(
    api: Api, member: Token, clock: FakeClock, create: Callable[..., dict[str, Any]]
) -> None:
    clock.advance(7)  # 09:00:07
    task = create(schedule="@every 90s")
    assert task["next_run_at"] == "2027-01-04T09:01:37Z"
    clock.advance(100)  # 09:01:47
    patched = body(
        api.patch(f"{TASKS}/{task['id']}", token=member, json_body={"schedule": "@every 1m"})
    )
    assert patched["next_run_at"] == "2027-01-04T09:02:47Z"


def test_once_in_the_past_is_refused(api: Api, member: Token) -> None:
    past = api.post(TASKS, token=member, json_body=new_task(schedule="@once 2027-01-04T08:00:00Z"))
    assert_problem(past, 422, "body.schedule")
    # Exactly now (10:00+01:00 is 09:00Z) has passed too: firings are strictly later.
    now = api.post(
        TASKS, token=member, json_body=new_task(schedule="@once 2027-01-04T10:00:00+01:00")
    )
    assert_problem(now, 422, "body.schedule")
    future = api.post(
        TASKS, token=member, json_body=new_task(schedule="@once 2027-01-04T10:30:00+01:00")
    )
    assert body(future)["next_run_at"] == "2027-01-04T09:30:00Z"
    assert body(api.get(f"{TASKS}/{body(future)['id']}", token=member))["upcoming"] == [
        "2027-01-04T09:30:00Z"
    ]


def test_a_service_needs_no_schedule_and_never_fires_on_one(
    create: Callable[..., dict[str, Any]],
) -> None:
    service = create(kind="service", schedule=None, instances=2)
    assert service["schedule"] is None
    assert service["next_run_at"] is None  # started at once by the create call
    assert service["upcoming"] == []


# ---------------------------------------------------------------- listing
def test_list_pages_with_an_opaque_cursor_and_filters(
    api: Api, member: Token, create: Callable[..., dict[str, Any]]
) -> None:
    for i in range(5):
        create(name=f"task-{i}", group="even" if i % 2 == 0 else "odd", enabled=i != 4)
    seen: list[str] = []
    cursor = None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = body(api.get(TASKS + query, token=member))
        assert len(page["scheduled_tasks"]) <= 2
        seen += [t["name"] for t in page["scheduled_tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"task-{i}" for i in range(5)]

    def names(query: str) -> list[str]:
        return [t["name"] for t in body(api.get(TASKS + query, token=member))["scheduled_tasks"]]

    assert names("?group=even") == ["task-0", "task-2", "task-4"]
    assert names("?enabled=false") == ["task-4"]
    assert names("?enabled=true&group=even") == ["task-0", "task-2"]
    assert names("?action=echo") == [f"task-{i}" for i in range(5)]
    assert names("?action=sleep") == []


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("?limit=0", "query.limit"),
        ("?limit=201", "query.limit"),
        ("?limit=x", "query.limit"),
        ("?cursor=garbage", "query.cursor"),
        ("?enabled=maybe", "query.enabled"),
    ],
)
def test_bad_list_parameters_are_422(api: Api, member: Token, query: str, location: str) -> None:
    assert_problem(api.get(TASKS + query, token=member), 422, location)


def test_a_cursor_from_another_project_is_refused(
    api: Api, create: Callable[..., dict[str, Any]], make_token: Callable[..., Token]
) -> None:
    for i in range(3):
        create(name=f"t{i}")
    cursor = body(api.get(TASKS + "?limit=1", token=make_token("acme")))["next_cursor"]
    assert cursor
    assert_problem(
        api.get(f"{TASKS}?cursor={cursor}", token=make_token("globex")), 422, "query.cursor"
    )


# ---------------------------------------------------------------- tenancy
def test_another_projects_task_is_404_for_every_verb(
    api: Api, create: Callable[..., dict[str, Any]], make_token: Callable[..., Token]
) -> None:
    task = create()
    outsider = make_token("globex", Role.ADMIN)
    path = f"{TASKS}/{task['id']}"
    assert_problem(api.get(path, token=outsider), 404)
    assert_problem(api.patch(path, token=outsider, json_body={"description": "x"}), 404)
    assert_problem(api.delete(path, token=outsider), 404)
    assert body(api.get(TASKS, token=outsider))["scheduled_tasks"] == []
    assert body(api.get(path, token=make_token("acme")))["description"] == ""


# ---------------------------------------------------------------- errors
def test_missing_and_unknown_tokens_are_401(api: Api) -> None:
    problem = assert_problem(api.get(TASKS), 401)
    assert "missing token" in problem["detail"]
    assert_problem(api.get(TASKS, headers={"Authorization": "Bearer tw_nope"}), 401)
    assert_problem(api.get(TASKS, headers={"X-Auth-Token": "tw_nope"}), 401)


def test_x_auth_token_header_authenticates(api: Api, member: Token) -> None:
    response = api.get(TASKS, headers={"X-Auth-Token": member.secret})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"schedule": "* * * *"}, "body.schedule"),
        ({"schedule": "0 25 * * *"}, "body.schedule"),
        ({"schedule": "@reboot"}, "body.schedule"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"action": "Not An Action"}, "body.action"),
        ({"on_overlap": "sometimes"}, "body.on_overlap"),
        ({"parallelism": 0}, "body.parallelism"),
        ({"log_max_size": 262145}, "body.log_max_size"),
        ({"timeout": 0}, "body.timeout"),
        ({"name": ""}, "body.name"),
        ({"surprise": True}, "body.surprise"),
        ({"args": [1, 2]}, "body.args"),
    ],
)
def test_invalid_fields_are_422_pointing_at_the_field(
    api: Api, member: Token, overrides: dict[str, Any], location: str
) -> None:
    problem = assert_problem(
        api.post(TASKS, token=member, json_body=new_task(**overrides)), 422, location
    )
    assert problem["instance"] == TASKS


def test_missing_required_fields_are_422(api: Api, member: Token) -> None:
    problem = assert_problem(api.post(TASKS, token=member, json_body={}), 422)
    assert {"body.name", "body.action", "body.schedule"} <= {
        e["location"] for e in problem["errors"]
    }


@pytest.mark.parametrize("raw", ["{not json", "", "[1,"])
def test_malformed_json_is_400(api: Api, member: Token, raw: str) -> None:
    assert_problem(api.post(TASKS, token=member, body=raw), 400)


def test_args_over_64_kib_are_413(api: Api, member: Token) -> None:
    big = {"blob": "x" * (64 * 1024)}
    assert_problem(api.post(TASKS, token=member, json_body=new_task(args=big)), 413, "body.args")
    ok = {"blob": "x" * (60 * 1024)}
    created = api.post(TASKS, token=member, json_body=new_task(args=ok))
    assert created.status_code == 201
    # A patch whose merged args outgrow the cap is refused too, and changes nothing.
    path = f"{TASKS}/{body(created)['id']}"
    more = {"more": "y" * (8 * 1024)}
    assert_problem(api.patch(path, token=member, json_body={"args": more}), 413, "body.args")
    assert body(api.get(path, token=member))["args"] == ok
