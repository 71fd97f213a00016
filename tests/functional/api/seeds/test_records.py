"""`GET /v2/{project_id}/scheduled-tasks/{task_id}/records` on moto (DESIGN §7):
Huawei Workspace's record shape over a task's jobs, paging, auth and errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.auth.service import Role
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine.test_engine import second_firing_while_first_runs
from tests.functional.engine_helpers import ACME, Pipeline, runs


def path(task_id: str, project: str = "acme") -> str:
    return f"/v2/{project}/scheduled-tasks/{task_id}/records"


def records(api: Api, token: Token, task_id: str, query: str = "", **kw: Any) -> Any:
    response = api.get(path(task_id, kw.pop("project", token.project_id)) + query, token=token)
    assert response.status_code == 200, response.body
    return body(response)


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    return make_token("acme")


def test_each_job_is_a_record_with_the_seed_fields(
    api: Api,
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    member: Token,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule="0 9 * * MON-FRI", timezone="Asia/Shanghai", action="echo")
    triggered = services.runs.trigger(ACME, task.id)
    clock.advance(3)
    pipeline.deliver()
    [ran] = runs(services, task)
    assert ran.started_at is not None

    answer = records(api, member, task.id)
    assert answer == {
        "tasks_records": [
            {
                "id": triggered.id,
                "start_time": ran.started_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "task_type": "echo",
                "scheduled_type": "FIXED_TIME",
                "life_cycle_type": "api",
                "status": "SUCCESS",
                "success_num": 1,
                "failed_num": 0,
                "skip_num": 0,
                "time_zone": "Asia/Shanghai",
                "execute_task_id": triggered.id,
                "execute_object_type": "JOB",
            }
        ],
        "total_count": 1,
    }
    # 2027-01-04 09:00:03 UTC is 17:00:03 in Shanghai.
    assert answer["tasks_records"][0]["start_time"] == "2027-01-04 17:00:03"


def test_statuses_waiting_running_success_failed_skipped_cancelled(
    api: Api,
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    member: Token,
    make_task: Callable[..., Task],
) -> None:
    failing = make_task(action="fail", args={"message": "boom"})
    services.runs.trigger(ACME, failing.id)
    pipeline.deliver()
    [failed] = records(api, member, failing.id)["tasks_records"]
    assert (failed["status"], failed["failed_num"]) == ("FAILED", 1)

    waiting = make_task(schedule="0 0 1 1 *")
    queued = services.runs.trigger(ACME, waiting.id)
    [record] = records(api, member, waiting.id)["tasks_records"]
    assert record["status"] == "WAITING"
    # Not started: its fire time (the trigger's instant, 09:00:00 UTC).
    assert record["start_time"] == "2027-01-04 09:00:00"
    cancelled = api.post(f"/v1/queue/jobs/{queued.id}/cancel", token=member)
    assert cancelled.status_code == 200, cancelled.body
    [record] = records(api, member, waiting.id)["tasks_records"]
    assert (record["status"], record["skip_num"]) == ("CANCELLED", 1)

    # `*/10 * * * * *` fires at 09:00:10 and 09:00:20; the second meets the first running.
    blocking = make_task(on_overlap="skip", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)
    [newest, oldest] = records(api, member, blocking.id)["tasks_records"]
    assert (newest["status"], oldest["status"]) == ("WAITING", "RUNNING")
    assert {newest["scheduled_type"], oldest["scheduled_type"]} == {"DAY"}
    assert {newest["life_cycle_type"], oldest["life_cycle_type"]} == {"cron"}
    pipeline.deliver()
    calls.release.set()
    first.join(10)
    [newest, oldest] = records(api, member, blocking.id)["tasks_records"]
    assert (newest["status"], newest["skip_num"]) == ("SKIPPED", 1)
    assert oldest["start_time"] == "2027-01-04 09:00:10"
    assert (oldest["status"], oldest["success_num"]) == ("SUCCESS", 1)


def test_scheduled_type_follows_the_schedule_of_the_tasks_own_firings(
    api: Api,
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    member: Token,
    make_task: Callable[..., Task],
) -> None:
    # 2027-01-04 is a Monday; each task's first firing comes at a different time.
    expected = {
        "@once 2027-01-04T09:15:00Z": "FIXED_TIME",
        "@every 20m": "CUSTOM",
        "0 10 * * *": "DAY",
        "0 9 * * TUE": "WEEK",
        "0 9 6 * *": "MONTH",
        "0 9 7 1 *": "CUSTOM",
    }
    tasks = {schedule: make_task(schedule=schedule, catch_up="skip") for schedule in expected}
    for task in sorted(tasks.values(), key=lambda t: t.next_run_at or clock.now()):
        assert task.next_run_at is not None
        clock.set(task.next_run_at)
        pipeline.tick()
    for schedule, task in tasks.items():
        found = records(api, member, task.id)["tasks_records"]
        assert found, schedule
        assert {r["scheduled_type"] for r in found} == {expected[schedule]}, schedule
        assert {r["life_cycle_type"] for r in found} == {"cron"}, schedule


@pytest.fixture
def five_runs(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> Task:
    """A task with five finished runs, backfilled at 04:00 ... 08:00 (it is 09:00)."""
    task = make_task(schedule="0 * * * *")
    start = datetime.fromisoformat("2027-01-04T04:00:00Z")
    services.runs.backfill(ACME, task.id, start, clock.now())
    pipeline.deliver()
    assert len(runs(services, task)) == 5
    return task


@pytest.mark.parametrize(
    ("query", "newest_first"),
    [
        ("", slice(0, 5)),
        ("?limit=2", slice(0, 2)),
        ("?offset=2&limit=2", slice(2, 4)),
        ("?offset=3", slice(3, 5)),
        ("?offset=4&limit=100", slice(4, 5)),
        ("?offset=5", slice(0, 0)),  # exactly at the end
        ("?offset=1000", slice(0, 0)),  # past the end
        ("?limit=0", slice(0, 0)),
        ("?offset=2&limit=0", slice(0, 0)),
    ],
)
def test_paging_newest_first_with_offset_and_limit(
    api: Api,
    services: Services,
    member: Token,
    five_runs: Task,
    query: str,
    newest_first: slice,
) -> None:
    fire_hours = [job.scheduled_for.hour for job in runs(services, five_runs)]
    assert fire_hours == [8, 7, 6, 5, 4]
    ids = [job.id for job in runs(services, five_runs)][newest_first]
    answer = records(api, member, five_runs.id, query)
    assert answer["total_count"] == 5
    assert [r["id"] for r in answer["tasks_records"]] == ids
    assert {r["scheduled_type"] for r in answer["tasks_records"]} <= {"FIXED_TIME"}
    assert {r["life_cycle_type"] for r in answer["tasks_records"]} <= {"backfill"}


def test_default_limit_is_ten(
    api: Api, services: Services, member: Token, make_task: Callable[..., Task]
) -> None:
    task = make_task(schedule="0 0 1 1 *")
    for _ in range(12):
        services.runs.trigger(ACME, task.id)
    answer = records(api, member, task.id)
    assert (len(answer["tasks_records"]), answer["total_count"]) == (10, 12)
    rest = records(api, member, task.id, "?offset=10")
    assert len(rest["tasks_records"]) == 2
    assert not {r["id"] for r in rest["tasks_records"]} & {r["id"] for r in answer["tasks_records"]}


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    found: dict[str, Any] = body(response)
    assert set(found) == {
        "error_code",
        "error_msg",
        "error_detail",
        "encoded_authorization_message",
    }
    assert found["error_code"] == code
    return found


@pytest.mark.parametrize(
    "query",
    ["?limit=101", "?limit=-1", "?offset=-1", "?limit=ten", "?offset=1.5", "?offset="],
)
def test_invalid_offset_or_limit_is_400(
    api: Api, member: Token, make_task: Callable[..., Task], query: str
) -> None:
    task = make_task()
    found = error(api.get(path(task.id) + query, token=member), 400, "WKS.0001")
    assert "query." in found["error_detail"]


def test_auth_errors_and_cross_project_access(
    api: Api, make_token: Callable[..., Token], member: Token, make_task: Callable[..., Task]
) -> None:
    task = make_task()
    missing = error(api.get(path(task.id)), 401, "WKS.0002")
    assert "X-Auth-Token" in missing["error_detail"]
    error(api.get(path(task.id), headers={"X-Auth-Token": "tw_nope"}), 401, "WKS.0003")
    error(api.get(path(task.id), headers={"Authorization": "Bearer tw_nope"}), 401, "WKS.0003")

    # A token of another project: 403 on our project's path, 404 on its own.
    rival = make_token("rival", role=Role.ADMIN)
    error(api.get(path(task.id), token=rival), 403, "WKS.0004")
    error(api.get(path(task.id, "rival"), token=rival), 404, "WKS.0005")
    error(api.get(path("tsk_unknown"), token=member), 404, "WKS.0005")
    assert records(api, member, task.id)["total_count"] == 0


def test_x_auth_token_decides_whenever_it_is_present(
    api: Api, member: Token, make_task: Callable[..., Task]
) -> None:
    task = make_task()
    signature = "SDK-HMAC-SHA256 Access=fake, SignedHeaders=host;x-sdk-date, Signature=00"
    ok = api.get(path(task.id), headers={"X-Auth-Token": member.secret, "Authorization": signature})
    assert ok.status_code == 200, ok.body
    # A bad X-Auth-Token is not rescued by a good Bearer token, nor is an empty one.
    both = {"X-Auth-Token": "tw_nope", **member.headers}
    error(api.get(path(task.id), headers=both), 401, "WKS.0003")
    error(api.get(path(task.id), headers={"X-Auth-Token": " ", **member.headers}), 401, "WKS.0002")
    # Only a signature, no token: missing.
    error(api.get(path(task.id), headers={"Authorization": signature}), 401, "WKS.0002")


def test_records_appear_in_openapi_with_huawei_errors(api: Api) -> None:
    doc = body(api.get("/openapi.json"))
    operation = doc["paths"]["/v2/{project_id}/scheduled-tasks/{task_id}/records"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"project_id", "task_id", "offset", "limit"}
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (0, 100)
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}
    schema = operation["responses"]["404"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/HuaweiError")
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    listed = doc["components"]["schemas"][ok.rsplit("/", 1)[1]]
    assert set(listed["properties"]) == {"tasks_records", "total_count"}
    assert doc["components"]["schemas"]["RecordStatus"]["enum"] == [
        "WAITING",
        "RUNNING",
        "SUCCESS",
        "FAILED",
        "SKIPPED",
        "CANCELLED",
    ]
