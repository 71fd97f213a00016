"""Synapse's own rules on `GET /_synapse/admin/v1/scheduled_tasks` (DESIGN §7):
increasing `timestamp_ms` as Synapse's store orders them (the newest of the
matches when more match than the limit), repeated `status` and `action_name`,
and two tokens refused as Synapse refuses them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.api.seeds.synapse_view import (
    MAX_ACTION_NAMES,
    TaskQuery,
    TaskStatus,
    list_jobs_as_tasks,
)
from chalicelib.auth.service import Role
from chalicelib.clock import to_ms
from chalicelib.jobs.model import JobStatus
from chalicelib.storage.job_listing import LISTING_SHARDS, StageFilter
from tests.conftest import FakeClock, Token
from tests.functional.api.seeds.test_synapse import JOBS, RESUME, TASKS, submit
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import Pipeline


def listed(api: Api, token: Token | None, params: list[tuple[str, Any]] | None = None) -> Any:
    """The listing with `params` as given, repeated names included."""
    query = f"?{urlencode(params)}" if params else ""
    return api.get(TASKS + query, token=token)


def tasks(api: Api, token: Token, *params: tuple[str, Any]) -> list[dict[str, Any]]:
    answer = listed(api, token, list(params))
    assert answer.status_code == 200, answer.body
    found: list[dict[str, Any]] = body(answer)["scheduled_tasks"]
    return found


def error(answer: Any, status: int, errcode: str) -> str:
    assert answer.status_code == status, answer.body
    found = body(answer)
    assert set(found) == {"errcode", "error"}
    assert found["errcode"] == errcode
    message: str = found["error"]
    return message


@pytest.fixture
def admin(make_token: Callable[..., Token]) -> Token:
    token: Token = make_token("default", Role.ADMIN, "ops")
    return token


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    token: Token = make_token("acme")
    return token


# ---------------------------------------------------------------- order
def test_tasks_are_listed_in_increasing_timestamp_ms(
    api: Api, clock: FakeClock, admin: Token, member: Token
) -> None:
    made = []
    for n in range(4):
        clock.advance(1)
        made.append(submit(api, member, args={"n": n}))
    # One deferred an hour: the newest timestamp, so it comes last.
    later = submit(api, member, defer_by=3600)

    found = tasks(api, admin)
    assert [t["id"] for t in found] == [j["id"] for j in made] + [later["id"]]
    stamps = [t["timestamp_ms"] for t in found]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_tasks_of_one_millisecond_are_ordered_by_id(api: Api, admin: Token, member: Token) -> None:
    same = [submit(api, member, args={"n": n})["id"] for n in range(6)]
    found = tasks(api, admin)
    assert {t["timestamp_ms"] for t in found} == {found[0]["timestamp_ms"]}
    assert [t["id"] for t in found] == sorted(same)


def test_over_the_limit_the_newest_are_listed_oldest_first_and_the_header_reaches_back(
    api: Api, clock: FakeClock, admin: Token, member: Token
) -> None:
    made = []
    for n in range(5):
        clock.advance(1)
        made.append(submit(api, member, args={"n": n})["id"])
    stamps = [to_ms(clock.now()) - 1000 * (4 - k) for k in range(5)]  # made[k]'s

    first = listed(api, admin, [("limit", 2)])
    assert [t["id"] for t in body(first)["scheduled_tasks"]] == made[3:]
    assert first.headers[RESUME] == str(stamps[2])
    second = listed(api, admin, [("limit", 2), ("max_timestamp", first.headers[RESUME])])
    assert [t["id"] for t in body(second)["scheduled_tasks"]] == made[1:3]
    third = listed(api, admin, [("limit", 2), ("max_timestamp", second.headers[RESUME])])
    assert [t["id"] for t in body(third)["scheduled_tasks"]] == made[:1]
    assert RESUME not in third.headers


def test_the_byte_bound_keeps_the_newest_too(
    api: Api, pipeline: Pipeline, clock: FakeClock, member: Token
) -> None:
    for n in range(3):
        clock.advance(1)
        submit(api, member, "echo", args={"blob": str(n) * 2000})
        pipeline.deliver()
    listing = list_jobs_as_tasks(pipeline.services.job_listing, TaskQuery(), max_bytes=5000)
    assert [t.result for t in listing.tasks] == [{"blob": "1" * 2000}, {"blob": "2" * 2000}]
    assert listing.resume_at_ms == listing.tasks[0].timestamp_ms - 1000


# ---------------------------------------------------------------- repeated filters
@pytest.fixture
def mixed(
    api: Api, pipeline: Pipeline, clock: FakeClock, member: Token
) -> dict[str, dict[str, Any]]:
    """By resource id: a complete `record`, a failed `fail`, a complete `echo`,
    a scheduled `record` and a scheduled `echo`."""
    made = {
        "done": submit(api, member, resource_id="done"),
        "broken": submit(api, member, "fail", args={"message": "no"}, resource_id="broken"),
        "echoed": submit(api, member, "echo", resource_id="echoed"),
    }
    pipeline.deliver()
    clock.advance(1)
    made["later"] = submit(api, member, defer_by=600, resource_id="later")
    made["later-echo"] = submit(api, member, "echo", defer_by=600, resource_id="later-echo")
    return made


def resources(found: list[dict[str, Any]]) -> set[str]:
    return {t["resource_id"] for t in found}


def test_repeated_statuses_list_the_union(
    api: Api, admin: Token, mixed: dict[str, dict[str, Any]]
) -> None:
    both = tasks(api, admin, ("status", "complete"), ("status", "failed"))
    assert resources(both) == {"done", "broken", "echoed"}
    stamps = [t["timestamp_ms"] for t in both]
    assert stamps == sorted(stamps)
    assert resources(tasks(api, admin, ("status", "scheduled"), ("status", "failed"))) == {
        "broken",
        "later",
        "later-echo",
    }
    # A value given twice counts once; an empty one among others filters nothing.
    assert resources(tasks(api, admin, ("status", "failed"), ("status", "failed"))) == {"broken"}
    assert resources(tasks(api, admin, ("status", ""), ("status", "failed"))) == {"broken"}
    assert len(tasks(api, admin, ("status", ""), ("status", ""))) == 5


def test_repeated_action_names_list_the_union_and_combine_with_other_filters(
    api: Api, admin: Token, mixed: dict[str, dict[str, Any]]
) -> None:
    echo_or_fail = tasks(api, admin, ("action_name", "echo"), ("action_name", "fail"))
    assert resources(echo_or_fail) == {"broken", "echoed", "later-echo"}
    assert resources(
        tasks(
            api,
            admin,
            ("action_name", "echo"),
            ("action_name", "record"),
            ("status", "complete"),
            ("status", "failed"),
        )
    ) == {"done", "echoed"}
    assert resources(
        tasks(
            api, admin, ("action_name", "echo"), ("action_name", "fail"), ("resource_id", "broken")
        )
    ) == {"broken"}
    assert tasks(api, admin, ("action_name", "sleep"), ("action_name", "nope")) == []


@pytest.mark.parametrize(
    "params",
    [
        [("status", "active"), ("status", "paused")],
        [("status", "failed"), ("status", "cancelled")],
        [("action_name", f"a{n}") for n in range(MAX_ACTION_NAMES + 1)],
    ],
)
def test_a_bad_value_among_repeated_ones_is_400(
    api: Api, admin: Token, params: list[tuple[str, str]]
) -> None:
    message = error(listed(api, admin, params), 400, "M_INVALID_PARAM")
    assert message.startswith(f"Query parameter '{params[0][0]}")


def test_several_actions_read_their_partitions_within_the_budget_and_continue(
    api: Api, pipeline: Pipeline, clock: FakeClock, member: Token
) -> None:
    # An old cancelled job of each action, then many of both that complete.
    needles = []
    for action in ("echo", "record"):
        made = submit(api, member, action)
        assert api.post(f"{JOBS}/{made['id']}/cancel", token=member).status_code == 200
        needles.append(made["id"])
    for n in range(12):
        clock.advance(1)
        submit(api, member, "echo" if n % 2 else "record", args={"n": n})
        pipeline.deliver()
    store = pipeline.services.job_listing

    whole = store.list_stage(
        StageFilter(
            actions=frozenset({"echo", "record"}), statuses=frozenset({JobStatus.CANCELLED})
        ),
        limit=10,
    )
    assert {j.id for j in whole.items} == set(needles)
    assert whole.resume_at_ms is None
    assert whole.queries >= 2 * LISTING_SHARDS  # every shard of both actions

    # Within a small budget the answers follow each other to the old ones.
    query = TaskQuery(
        action_names=frozenset({"echo", "record"}), statuses=frozenset({TaskStatus.FAILED}), limit=2
    )
    found: list[str] = []
    answers = 0
    while True:
        listing = list_jobs_as_tasks(store, query, read_budget=10)
        answers += 1
        assert listing.items_read <= 10
        found += [t.id for t in listing.tasks]
        if listing.resume_at_ms is None:
            break
        if query.max_timestamp is not None:
            assert listing.resume_at_ms < query.max_timestamp  # each answer moves on
        assert answers < 100
        query = replace(query, max_timestamp=listing.resume_at_ms)
    assert sorted(found) == sorted(needles)
    assert answers > 1  # the budget did stop the first one


def test_repeated_parameters_are_arrays_in_the_openapi_document(api: Api) -> None:
    doc = body(api.get("/openapi.json"))
    params = {p["name"]: p for p in doc["paths"][TASKS]["get"]["parameters"]}

    def array(schema: dict[str, Any]) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            s for s in schema.get("anyOf", [schema]) if s.get("type") == "array"
        ]
        assert len(found) == 1
        return found[0]

    assert array(params["status"]["schema"])["items"]["$ref"].endswith("/TaskStatus")
    assert array(params["action_name"]["schema"])["maxItems"] == MAX_ACTION_NAMES
    assert params["status"].get("explode", True) is True


# ---------------------------------------------------------------- two tokens
ADMIN = "<the admin's token>"


@pytest.mark.parametrize(
    ("header", "value", "access_token"),
    [
        ("Authorization", f"Bearer {ADMIN}", ADMIN),  # the same good token twice
        ("Authorization", f"Bearer {ADMIN}", "tw_nope"),
        ("Authorization", f"Bearer {ADMIN}", ""),  # even an empty parameter
        ("Authorization", "Basic abc", ADMIN),  # whatever the header holds
        ("Authorization", "", ADMIN),
        ("X-Auth-Token", ADMIN, ADMIN),
    ],
)
def test_a_header_and_access_token_together_are_401_m_missing_token(
    api: Api, admin: Token, member: Token, header: str, value: str, access_token: str
) -> None:
    submit(api, member)
    sent = {header: value.replace(ADMIN, admin.secret)}
    query = urlencode({"access_token": access_token.replace(ADMIN, admin.secret)})
    answer = api.get(f"{TASKS}?{query}", headers=sent)
    message = error(answer, 401, "M_MISSING_TOKEN")
    assert "access_token" in message
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_one_token_alone_still_works_either_way(api: Api, admin: Token, member: Token) -> None:
    submit(api, member)
    by_header = listed(api, admin)
    by_query = api.get(f"{TASKS}?{urlencode({'access_token': admin.secret})}")
    assert by_header.status_code == by_query.status_code == 200
    assert body(by_header) == body(by_query)
    assert len(body(by_query)["scheduled_tasks"]) == 1
