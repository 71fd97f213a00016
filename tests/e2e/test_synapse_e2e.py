"""`GET /_synapse/admin/v1/scheduled_tasks` on `make run` over HTTP (DESIGN §7
"Seed surface: Synapse admin API"): each filter, each status mapping, each
Matrix error, the bounds, and an admin's view across projects.

The stack runs on real time: jobs are set up once per module and waited for
with bounded polls; the tests assert what the listing shows, not timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ADMIN_SECRET, HELD_RUN_S, LocalStack, free_port
from tests.e2e.test_engine_e2e import parse, wait_for

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_synapse_e2e")

TASKS = "/_synapse/admin/v1/scheduled_tasks"
JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"
RESUME = "tickwork-next-max-timestamp"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        tmp_path_factory.mktemp("synapse"), free_port(), env={"TICKWORK_TICK_SECONDS": "1"}
    )
    stack.start()
    yield stack
    stack.stop()


def issue(stack: LocalStack, project: str, role: str = "member") -> str:
    with stack.client(ADMIN_SECRET) as admin:
        made = admin.post(
            "/v1/admin/tokens", json={"project_id": project, "role": role, "name": "e2e"}
        )
        assert made.status_code == 201, made.text
        secret: str = made.json()["token"]
        return secret


@pytest.fixture(scope="module")
def north(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(issue(stack, "north")) as client:
        yield client


@pytest.fixture(scope="module")
def south(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(issue(stack, "south")) as client:
        yield client


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(ADMIN_SECRET) as client:
        yield client


def submit(client: httpx.Client, action: str = "echo", **fields: Any) -> dict[str, Any]:
    answer = client.post(JOBS, json={"action": action, **fields})
    assert answer.status_code == 202, answer.text
    made: dict[str, Any] = answer.json()
    return made


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"{JOBS}/{job_id}").json()
    return found


def ended(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once it is terminal (long-polls its result)."""
    for _ in range(6):
        answer = client.get(f"{JOBS}/{job_id}/result", params={"wait": 20}).json()
        if answer["status"] in ("complete", "failed", "cancelled", "rejected", "expired"):
            return job(client, job_id)
    raise AssertionError(f"job {job_id} never ended")


def tasks(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = client.get(TASKS, params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["scheduled_tasks"]
    return found


#: Each job set up below, by its resource id: (its job status, its Synapse status).
EXPECTED = {
    "s-done": ("complete", "complete"),
    "s-broken": ("failed", "failed"),
    "s-running": ("active", "active"),
    "s-later": ("scheduled", "scheduled"),
    "s-held": ("awaiting_approval", "scheduled"),
    "s-cancelled": ("cancelled", "failed"),
    "s-rejected": ("rejected", "failed"),
    "s-expired": ("expired", "failed"),
}

#: The resources of project `north`'s jobs; the others are `south`'s.
NORTH = {"s-done", "s-broken", "s-running", "s-later", "s-held"}


@pytest.fixture(scope="module")
def jobs(north: httpx.Client, south: httpx.Client) -> Iterator[dict[str, dict[str, Any]]]:
    """One job in each status the stack can hold still, over two projects, by resource id."""
    made = {
        "s-done": submit(north, args={"k": 1}, resource_id="s-done"),
        "s-broken": submit(north, "fail", args={"message": "e2e boom"}, resource_id="s-broken"),
        "s-running": submit(north, "sleep", args={"seconds": HELD_RUN_S}, resource_id="s-running"),
        "s-later": submit(north, defer_by=3600, resource_id="s-later"),
        "s-held": submit(north, requires_approval=True, resource_id="s-held"),
        "s-cancelled": submit(south, defer_by=3600, resource_id="s-cancelled"),
        "s-rejected": submit(south, requires_approval=True, resource_id="s-rejected"),
        "s-expired": submit(south, requires_approval=True, expires=1, resource_id="s-expired"),
    }
    south.post(f"{JOBS}/{made['s-cancelled']['id']}/cancel")
    south.post(f"{HITL}/{made['s-rejected']['approval_request_id']}/reject", json={})
    ended(north, made["s-done"]["id"])
    ended(north, made["s-broken"]["id"])
    wait_for(lambda: job(north, made["s-running"]["id"])["status"] == "active")
    # Approved after its deadline, it ends `expired` instead of running.
    deadline = parse(made["s-expired"]["expires_at"]).timestamp()
    wait_for(lambda: time.time() > deadline)
    south.post(f"{HITL}/{made['s-expired']['approval_request_id']}/approve", json={})
    ended(south, made["s-expired"]["id"])
    owner = {resource: north if resource in NORTH else south for resource in made}
    yield {resource: job(owner[resource], j["id"]) for resource, j in made.items()}
    # Stop the sleeper before the stack stops, so that nothing is running then.
    north.post(f"{JOBS}/{made['s-running']['id']}/cancel")
    ended(north, made["s-running"]["id"])


def ours(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["resource_id"]: t for t in found if t["resource_id"] in EXPECTED}


def test_every_job_shows_its_synapse_status_and_timestamp(
    admin: httpx.Client, jobs: dict[str, dict[str, Any]]
) -> None:
    found = tasks(admin)
    shown = ours(found)
    assert {r: jobs[r]["status"] for r in shown} == {r: s[0] for r, s in EXPECTED.items()}
    assert {r: t["status"] for r, t in shown.items()} == {r: s[1] for r, s in EXPECTED.items()}
    for resource, task in shown.items():
        source = jobs[resource]
        assert (task["id"], task["action"]) == (source["id"], source["action"])
        assert task["timestamp_ms"] == source["timestamp_ms"], resource
        assert (task["result"], task["error"]) == (source["result"], source["error"])
    assert shown["s-broken"]["error"] == "e2e boom"
    assert shown["s-done"]["result"] == {"k": 1}
    # In increasing `timestamp_ms`, as Synapse's store orders them: a scheduled
    # job's timestamp is its fire time, an hour ahead, so it lists last.
    assert found[-1]["resource_id"] == "s-later"
    stamps = [t["timestamp_ms"] for t in found]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("status", ["scheduled", "active", "complete", "failed"])
def test_the_status_filter(
    admin: httpx.Client, jobs: dict[str, dict[str, Any]], status: str
) -> None:
    found = tasks(admin, status=status)
    assert {t["status"] for t in found} <= {status}
    assert set(ours(found)) == {r for r, s in EXPECTED.items() if s[1] == status}


def test_the_action_resource_and_timestamp_filters(
    admin: httpx.Client, jobs: dict[str, dict[str, Any]]
) -> None:
    assert [t["resource_id"] for t in tasks(admin, action_name="sleep")] == ["s-running"]
    assert [t["resource_id"] for t in tasks(admin, action_name="fail")] == ["s-broken"]
    assert tasks(admin, action_name="nope") == []
    assert [t["id"] for t in tasks(admin, resource_id="s-rejected")] == [jobs["s-rejected"]["id"]]
    assert tasks(admin, resource_id="s-rejected", status="complete") == []
    assert tasks(admin, resource_id="s-done", action_name="fail") == []
    echo_failed = ours(tasks(admin, action_name="echo", status="failed"))
    assert set(echo_failed) == {"s-cancelled", "s-rejected", "s-expired"}

    assert tasks(admin, max_timestamp=0) == []
    later = jobs["s-later"]["timestamp_ms"]
    assert "s-later" not in ours(tasks(admin, max_timestamp=later - 1))
    assert "s-later" in ours(tasks(admin, max_timestamp=later))  # inclusive
    running = jobs["s-running"]["timestamp_ms"]
    assert all(t["timestamp_ms"] <= running for t in tasks(admin, max_timestamp=running))


def test_limit_bounds_the_list_and_the_header_continues_it(
    admin: httpx.Client, jobs: dict[str, dict[str, Any]]
) -> None:
    everything = tasks(admin)
    assert tasks(admin, limit=0) == []
    # Each answer holds the newest of what is left, oldest first; the header
    # reaches back to the older ones.
    older_first: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    for _ in range(len(everything)):
        answer = admin.get(TASKS, params=params)
        page = answer.json()["scheduled_tasks"]
        assert [t["timestamp_ms"] for t in page] == sorted(t["timestamp_ms"] for t in page)
        older_first = [t["id"] for t in page] + older_first
        if RESUME not in answer.headers:
            break
        params["max_timestamp"] = answer.headers[RESUME]
    assert older_first == [t["id"] for t in everything]
    assert len(tasks(admin, limit=1000)) == len(everything)


def test_repeated_status_and_action_name_list_the_union(
    admin: httpx.Client, jobs: dict[str, dict[str, Any]]
) -> None:
    both = admin.get(TASKS, params=[("status", "active"), ("status", "complete")])
    assert both.status_code == 200, both.text
    assert set(ours(both.json()["scheduled_tasks"])) == {"s-running", "s-done"}
    actions = admin.get(TASKS, params=[("action_name", "sleep"), ("action_name", "fail")])
    assert set(ours(actions.json()["scheduled_tasks"])) == {"s-running", "s-broken"}
    bad = admin.get(TASKS, params=[("status", "active"), ("status", "paused")])
    assert (bad.status_code, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_a_header_and_access_token_together_are_401(stack: LocalStack) -> None:
    answer = httpx.get(
        f"{stack.url}{TASKS}",
        params={"access_token": ADMIN_SECRET},
        headers={"Authorization": f"Bearer {ADMIN_SECRET}"},
    )
    assert answer.status_code == 401
    assert answer.json()["errcode"] == "M_MISSING_TOKEN"


def test_an_admin_of_any_project_sees_every_project(
    stack: LocalStack, jobs: dict[str, dict[str, Any]]
) -> None:
    with stack.client(issue(stack, "north", "admin")) as north_admin:
        assert set(ours(tasks(north_admin))) == set(EXPECTED)
        assert [t["id"] for t in tasks(north_admin, resource_id="s-cancelled")] == [
            jobs["s-cancelled"]["id"]
        ]


def test_the_token_may_come_as_access_token(stack: LocalStack, admin: httpx.Client) -> None:
    by_query = httpx.get(f"{stack.url}{TASKS}", params={"access_token": ADMIN_SECRET, "limit": 5})
    assert by_query.status_code == 200
    assert by_query.json() == admin.get(TASKS, params={"limit": 5}).json()


@pytest.mark.parametrize(
    ("params", "secret", "status", "errcode"),
    [
        ({}, None, 401, "M_MISSING_TOKEN"),
        ({"access_token": "tw_nope"}, None, 401, "M_UNKNOWN_TOKEN"),
        ({}, "tw_nope", 401, "M_UNKNOWN_TOKEN"),
        ({}, "member", 403, "M_FORBIDDEN"),
        ({"status": "paused"}, ADMIN_SECRET, 400, "M_INVALID_PARAM"),
        ({"max_timestamp": "yesterday"}, ADMIN_SECRET, 400, "M_INVALID_PARAM"),
        ({"limit": 1001}, ADMIN_SECRET, 400, "M_INVALID_PARAM"),
        ({"limit": -1}, ADMIN_SECRET, 400, "M_INVALID_PARAM"),
    ],
)
def test_errors_are_matrix_errors(
    stack: LocalStack, params: dict[str, Any], secret: str | None, status: int, errcode: str
) -> None:
    token = issue(stack, "north") if secret == "member" else secret
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{stack.url}{TASKS}", params=params, headers=headers)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()
    assert set(error) == {"errcode", "error"}
    assert error["errcode"] == errcode


def test_the_route_is_documented(stack: LocalStack) -> None:
    doc = httpx.get(f"{stack.url}/openapi.json").json()
    assert "get" in doc["paths"][TASKS]
