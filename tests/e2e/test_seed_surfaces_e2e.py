"""The task catalogue (`/api/tasks`) and execution records (`/v2`) on `make run`
over HTTP (DESIGN §7), and Huawei Cloud's own SDK reading records from it.

The stack runs on real time: tests wait for runs with bounded polls and assert
what the runs recorded, never how long anything took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import (  # type: ignore[import-untyped]
    BasicCredentials,
)
from huaweicloudsdkcore.exceptions.exceptions import (  # type: ignore[import-untyped]
    ClientRequestException,
)
from huaweicloudsdkcore.http.http_handler import HttpHandler  # type: ignore[import-untyped]
from huaweicloudsdkworkspace.v2 import (  # type: ignore[import-untyped]
    ListScheduledTasksRecordsRequest,
    WorkspaceClient,
)

from tests.e2e.conftest import ADMIN_SECRET, HELD_RUN_S, LocalStack, free_port
from tests.e2e.test_engine_e2e import parse, wait_for
from tests.e2e.test_queue_e2e import token

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_seed_surfaces_e2e")

TASKS = "/v1/scheduled-tasks"
PROJECT = "shop"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        tmp_path_factory.mktemp("seeds"), free_port(), env={"TICKWORK_TICK_SECONDS": "1"}
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def member_secret(stack: LocalStack) -> str:
    return token(stack, PROJECT, name="alice")


@pytest.fixture(scope="module")
def member(stack: LocalStack, member_secret: str) -> Iterator[httpx.Client]:
    with stack.client(member_secret) as client:
        yield client


@pytest.fixture(scope="module")
def rival_secret(stack: LocalStack) -> str:
    return token(stack, "rival", role="admin")


@pytest.fixture(scope="module")
def rival(stack: LocalStack, rival_secret: str) -> Iterator[httpx.Client]:
    with stack.client(rival_secret) as client:
        yield client


#: How far ahead `create_once_soon` puts its one-shot, and how often it tries.
ONCE_AHEAD_S = 3
ONCE_ATTEMPTS = 10


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    made = client.post(TASKS, json={"action": "echo", "schedule": "0 0 1 1 *", **fields})
    assert made.status_code == 201, made.text
    found: dict[str, Any] = made.json()
    return found


def create_once_soon(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A task whose `@once` fires a few seconds after the server receives it.

    The time is taken just before each request, and a request that reached the
    server after it (a loaded machine) is sent again with a later one: what the
    test sees never depends on how fast the machine is.
    """
    for _ in range(ONCE_ATTEMPTS):
        at = (datetime.now(UTC) + timedelta(seconds=ONCE_AHEAD_S)).replace(microsecond=0)
        made = client.post(
            TASKS, json={"action": "echo", "schedule": f"@once {at.isoformat()}", **fields}
        )
        if made.status_code == 201:
            found: dict[str, Any] = made.json()
            return found
        assert made.status_code == 422 and "in the past" in made.text, made.text
    raise AssertionError(f"no @once {ONCE_AHEAD_S} s ahead reached the server in time")


def trigger(client: httpx.Client, task_id: str) -> dict[str, Any]:
    made = client.post(f"{TASKS}/{task_id}/trigger")
    assert made.status_code == 202, made.text
    found: dict[str, Any] = made.json()
    return found


def records_path(task_id: str, project: str = PROJECT) -> str:
    return f"/v2/{project}/scheduled-tasks/{task_id}/records"


def records(client: httpx.Client, task_id: str, **params: Any) -> dict[str, Any]:
    answer = client.get(records_path(task_id), params=params)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def statuses_become(
    client: httpx.Client, task_id: str, wanted: list[str]
) -> Callable[[], list[dict[str, Any]]]:
    """A check for `wait_for`: the task's records (newest first) once their
    statuses are `wanted`."""

    def check() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = records(client, task_id)["tasks_records"]
        return found if [r["status"] for r in found] == wanted else []

    return check


# ------------------------------------------------------------ /api/tasks
def test_the_catalogue_lists_the_callers_tasks_in_nanoseconds(
    member: httpx.Client, rival: httpx.Client
) -> None:
    create(
        member,
        name="catalogue-report",
        schedule="0 9 * * MON-FRI",
        timezone="Europe/Amsterdam",
        retry_delay=2.5,
        timeout=90,
        group="reports",
    )
    create(member, name="catalogue-off", enabled=False)
    listed = member.get("/api/tasks")
    assert listed.status_code == 200, listed.text
    by_name = {t["name"]: t for t in listed.json()}
    report = by_name["catalogue-report"]
    assert (report["cron"], report["timezone"], report["group"]) == (
        "0 9 * * MON-FRI",
        "Europe/Amsterdam",
        "reports",
    )
    assert (report["retry_delay"], report["timeout"], report["keep_for"]) == (
        2_500_000_000,
        90_000_000_000,
        2_592_000_000_000_000,
    )
    assert report["next_run_at"].endswith("Z")
    assert parse(report["next_run_at"]).astimezone(ZoneInfo("Europe/Amsterdam")).hour == 9
    assert by_name["catalogue-off"]["next_run_at"] is None
    assert not {"catalogue-report", "catalogue-off"} & {
        t["name"] for t in rival.get("/api/tasks").json()
    }
    schema = member.get("/schemas/CatalogueTask.json").json()
    assert set(schema["properties"]) == set(report)


def test_catalogue_errors_are_problem_json_whose_schema_url_resolves(stack: LocalStack) -> None:
    with stack.client(None) as anonymous:
        answer = anonymous.get("/api/tasks")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["$schema"] == f"{stack.url}/schemas/ErrorModel.json"
    schema = httpx.get(problem["$schema"])
    assert schema.status_code == 200
    assert set(schema.json()["properties"]) == set(problem)
    with stack.client("tw_nope") as stranger:
        assert stranger.get("/api/tasks").json()["status"] == 401


# ------------------------------------------------------------ /v2 records
@pytest.fixture(scope="module")
def three_runs(member: httpx.Client) -> dict[str, Any]:
    """A task in Shanghai's zone triggered three times, each run complete."""
    task = create(member, name="records-three", timezone="Asia/Shanghai")
    jobs = [trigger(member, task["id"]) for _ in range(3)]
    wait_for(statuses_become(member, task["id"], ["SUCCESS"] * 3))
    return {"task": task, "jobs": jobs}


def test_records_of_finished_runs_map_every_field(
    member: httpx.Client, three_runs: dict[str, Any]
) -> None:
    answer = records(member, three_runs["task"]["id"])
    assert answer["total_count"] == 3
    newest_first = sorted(three_runs["jobs"], key=lambda j: j["scheduled_for"], reverse=True)
    assert [r["id"] for r in answer["tasks_records"]] == [j["id"] for j in newest_first]
    for record in answer["tasks_records"]:
        job = member.get(f"/v1/queue/jobs/{record['id']}").json()
        started = parse(job["started_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        assert record == {
            "id": job["id"],
            "start_time": started.strftime("%Y-%m-%d %H:%M:%S"),
            "task_type": "echo",
            "scheduled_type": "FIXED_TIME",
            "life_cycle_type": "api",
            "status": "SUCCESS",
            "success_num": 1,
            "failed_num": 0,
            "skip_num": 0,
            "time_zone": "Asia/Shanghai",
            "execute_task_id": job["id"],
            "execute_object_type": "JOB",
        }


def test_paging_edges(member: httpx.Client, three_runs: dict[str, Any]) -> None:
    task_id = three_runs["task"]["id"]
    everything = [r["id"] for r in records(member, task_id)["tasks_records"]]
    page = records(member, task_id, offset=1, limit=1)
    assert ([r["id"] for r in page["tasks_records"]], page["total_count"]) == (everything[1:2], 3)
    assert records(member, task_id, limit=0) == {"tasks_records": [], "total_count": 3}
    assert records(member, task_id, offset=3) == {"tasks_records": [], "total_count": 3}
    assert records(member, task_id, offset=50, limit=100) == {"tasks_records": [], "total_count": 3}


def test_statuses_of_runs_that_fail_wait_run_are_skipped_or_cancelled(
    member: httpx.Client,
) -> None:
    failing = create(member, name="records-fail", action="fail", args={"message": "boom"})
    trigger(member, failing["id"])
    [failed] = wait_for(statuses_become(member, failing["id"], ["FAILED"]))
    assert (failed["failed_num"], failed["task_type"]) == (1, "fail")

    held = create(member, name="records-held", requires_approval=True)
    waiting = trigger(member, held["id"])
    [record] = wait_for(statuses_become(member, held["id"], ["WAITING"]))
    # Not started: its fire time, in the task's zone (UTC).
    fire_time = parse(waiting["scheduled_for"]).strftime("%Y-%m-%d %H:%M:%S")
    assert (record["start_time"], record["time_zone"]) == (fire_time, "UTC")
    member.post(f"/v1/queue/jobs/{waiting['id']}/cancel")
    wait_for(statuses_become(member, held["id"], ["CANCELLED"]))

    sleeper = create(
        member,
        name="records-sleep",
        action="sleep",
        args={"seconds": HELD_RUN_S},
        on_overlap="skip",
    )
    running = trigger(member, sleeper["id"])
    wait_for(statuses_become(member, sleeper["id"], ["RUNNING"]))
    trigger(member, sleeper["id"])
    [skipped, _] = wait_for(statuses_become(member, sleeper["id"], ["SKIPPED", "RUNNING"]))
    assert skipped["skip_num"] == 1
    member.post(f"/v1/queue/jobs/{running['id']}/cancel")
    wait_for(statuses_become(member, sleeper["id"], ["SKIPPED", "CANCELLED"]))


def test_scheduled_type_of_the_schedules_own_firings(member: httpx.Client) -> None:
    now = datetime.now(UTC)
    # Today and tomorrow (UTC), so a run near midnight still fires every second.
    weekdays = ",".join(str(int(d.strftime("%w"))) for d in (now, now + timedelta(days=1)))
    days = ",".join(str(d.day) for d in (now, now + timedelta(days=1)))
    expected = {
        "* * * * * *": "DAY",
        f"* * * * * {weekdays}": "WEEK",
        f"* * * {days} * *": "MONTH",
        "@every 1s": "CUSTOM",
    }
    tasks = {
        schedule: create(member, name=f"records-{kind}-{i}", schedule=schedule)
        for i, (schedule, kind) in enumerate(expected.items())
    }
    once = create_once_soon(member, name="records-once")
    expected[once["schedule"]] = "FIXED_TIME"
    tasks[once["schedule"]] = once

    def fired(task_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = records(member, task_id)["tasks_records"]
        return found

    for schedule, task in tasks.items():
        found = wait_for(lambda task_id=task["id"]: fired(task_id))
        member.patch(f"{TASKS}/{task['id']}", json={"enabled": False})
        assert {r["scheduled_type"] for r in found} == {expected[schedule]}, schedule
        assert {r["life_cycle_type"] for r in found} == {"cron"}, schedule


def huawei_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {
        "error_code",
        "error_msg",
        "error_detail",
        "encoded_authorization_message",
    }
    assert answer.json()["encoded_authorization_message"] is None
    assert answer.json()["error_code"] == code


def test_errors_and_cross_project_access(
    stack: LocalStack,
    member: httpx.Client,
    rival: httpx.Client,
    member_secret: str,
    three_runs: dict[str, Any],
) -> None:
    task_id = three_runs["task"]["id"]
    path = records_path(task_id)
    huawei_error(member.get(path, params={"limit": 101}), 400, "WKS.0001")
    huawei_error(member.get(path, params={"offset": -1}), 400, "WKS.0001")
    huawei_error(member.get(path, params={"limit": "all"}), 400, "WKS.0001")
    huawei_error(httpx.get(stack.url + path), 401, "WKS.0002")
    huawei_error(httpx.get(stack.url + path, headers={"X-Auth-Token": "tw_x"}), 401, "WKS.0003")
    # X-Auth-Token decides, whatever Authorization says.
    with_both = {"X-Auth-Token": member_secret, "Authorization": "SDK-HMAC-SHA256 Signature=0"}
    assert httpx.get(stack.url + path, headers=with_both).status_code == 200
    huawei_error(rival.get(path), 403, "WKS.0004")
    huawei_error(rival.get(records_path(task_id, "rival")), 404, "WKS.0005")
    huawei_error(member.get(records_path("tsk_nope")), 404, "WKS.0005")
    with stack.client(ADMIN_SECRET) as admin:  # `default`'s admin is not `shop`'s
        huawei_error(admin.get(path), 403, "WKS.0004")


# ------------------------------------------------------------ Huawei Cloud SDK
def workspace_client(stack: LocalStack, project: str, secret: str) -> Any:
    """The official SDK pointed at the stack: fake AK/SK (the stack does not
    verify signatures) and our token added to every request by a handler."""

    def add_token(**kwargs: Any) -> None:
        kwargs["request"].header_params["X-Auth-Token"] = secret

    return (
        WorkspaceClient.new_builder()
        .with_credentials(BasicCredentials("FAKEAK", "FAKESK", project))
        .with_endpoint(stack.url)
        .with_http_handler(HttpHandler().add_request_handler(add_token))
        .build()
    )


def test_the_huawei_sdk_lists_records(
    stack: LocalStack,
    member: httpx.Client,
    member_secret: str,
    rival_secret: str,
    three_runs: dict[str, Any],
) -> None:
    client = workspace_client(stack, PROJECT, member_secret)
    task_id = three_runs["task"]["id"]
    answer = client.list_scheduled_tasks_records(
        ListScheduledTasksRecordsRequest(task_id=task_id, offset=0, limit=2)
    )
    assert answer.status_code == 200
    assert answer.total_count == 3
    assert len(answer.tasks_records) == 2
    first = answer.tasks_records[0]
    assert (first.status, first.task_type, first.scheduled_type) == (
        "SUCCESS",
        "echo",
        "FIXED_TIME",
    )
    assert (first.life_cycle_type, first.time_zone, first.success_num) == (
        "api",
        "Asia/Shanghai",
        1,
    )
    assert first.execute_task_id == first.id
    assert first.execute_object_type == "JOB"
    sent = {k: v for k, v in first.to_dict().items() if v is not None}
    assert sent == records(member, task_id, limit=1)["tasks_records"][0]
    rest = client.list_scheduled_tasks_records(
        ListScheduledTasksRecordsRequest(task_id=task_id, offset=2)
    )
    assert [r.id for r in rest.tasks_records] == [three_runs["jobs"][0]["id"]]

    with pytest.raises(ClientRequestException) as missing:
        client.list_scheduled_tasks_records(ListScheduledTasksRecordsRequest(task_id="tsk_nope"))
    assert (missing.value.status_code, missing.value.error_code) == (404, "WKS.0005")
    assert missing.value.encoded_auth_msg is None  # the SDK reads the field, null
    elsewhere = workspace_client(stack, PROJECT, rival_secret)
    with pytest.raises(ClientRequestException) as forbidden:
        elsewhere.list_scheduled_tasks_records(ListScheduledTasksRecordsRequest(task_id=task_id))
    assert (forbidden.value.status_code, forbidden.value.error_code) == (403, "WKS.0004")
