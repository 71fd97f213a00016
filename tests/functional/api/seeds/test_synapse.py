"""`GET /_synapse/admin/v1/scheduled_tasks` through `chalice.test.Client` on moto
(DESIGN §7 "Seed surface: Synapse admin API"): Synapse's own scenarios, every
status mapping, the bounds, Matrix errors, and that indexes serve the filters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from chalicelib.api.seeds.synapse_view import TaskQuery, TaskStatus, list_jobs_as_tasks
from chalicelib.auth.service import Role
from chalicelib.clock import to_ms
from chalicelib.jobs.model import JobStatus
from chalicelib.storage.job_listing import StageFilter, StageListing
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import Pipeline

TASKS = "/_synapse/admin/v1/scheduled_tasks"
JOBS = "/v1/queue/jobs"
RESUME = "Tickwork-Next-Max-Timestamp"


def submit(api: Api, token: Token, action: str = "record", **fields: Any) -> dict[str, Any]:
    answer = api.post(JOBS, token=token, json_body={"action": action, **fields})
    assert answer.status_code == 202, answer.body
    job: dict[str, Any] = body(answer)
    return job


def listed(api: Api, token: Token | None, **params: Any) -> Any:
    query = f"?{urlencode(params)}" if params else ""
    return api.get(TASKS + query, token=token)


def tasks(api: Api, token: Token, **params: Any) -> list[dict[str, Any]]:
    answer = listed(api, token, **params)
    assert answer.status_code == 200, answer.body
    found: list[dict[str, Any]] = body(answer)["scheduled_tasks"]
    return found


def by_resource(found: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {t["resource_id"]: t for t in found}


def wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Wait for the background executor (never for scheduling: the clock is fake)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


@pytest.fixture
def running(pipeline: Pipeline, calls: Calls) -> Iterator[Callable[[], None]]:
    """`running()`: run what is queued in a thread, where `block` jobs stay
    `active` until the test ends."""
    threads: list[threading.Thread] = []

    def start() -> None:
        seen = len(calls.seen)
        bodies = [m["Body"] for m in pipeline.receive()]
        worker = threading.Thread(target=pipeline.services.executor.handle_batch, args=(bodies,))
        worker.start()
        threads.append(worker)
        wait_until(lambda: len(calls.seen) > seen)

    yield start
    calls.release.set()
    for worker in threads:
        worker.join(10)


@pytest.fixture
def admin(make_token: Callable[..., Token]) -> Token:
    """An admin of the bootstrap project, which has no jobs of its own."""
    token: Token = make_token("default", Role.ADMIN, "ops")
    return token


# ---------------------------------------------------------------- Synapse's scenarios
@pytest.fixture
def three_tasks(
    api: Api,
    pipeline: Pipeline,
    clock: FakeClock,
    make_token: Callable[..., Token],
    running: Callable[[], None],
) -> dict[str, dict[str, Any]]:
    """A running, a finished and a failed job, as Synapse's test schedules them."""
    member = make_token("acme")
    done = submit(api, member, "record", resource_id="room-done")
    broken = submit(api, member, "fail", args={"message": "the room is gone"}, resource_id="broken")
    pipeline.deliver()
    clock.advance(5)
    busy = submit(api, member, "block", resource_id="room-busy")
    running()
    return {"active": busy, "complete": done, "failed": broken}


def test_lists_a_running_a_finished_and_a_failed_job_as_synapse_tasks(
    api: Api, admin: Token, three_tasks: dict[str, dict[str, Any]]
) -> None:
    found = by_resource(tasks(api, admin))
    assert set(found) == {"room-busy", "room-done", "broken"}
    assert found["room-busy"] == {
        "id": three_tasks["active"]["id"],
        "action": "block",
        "status": "active",
        "timestamp_ms": to_ms(datetime(2027, 1, 4, 9, 0, 5, tzinfo=UTC)),
        "resource_id": "room-busy",
        "result": None,
        "error": None,
    }
    assert (found["room-done"]["status"], found["room-done"]["action"]) == ("complete", "record")
    assert found["room-done"]["result"] == {"n": 1}
    assert (found["broken"]["status"], found["broken"]["action"]) == ("failed", "fail")
    assert found["broken"]["error"] == "the room is gone"
    assert found["broken"]["result"] is None


def test_each_filter_narrows_the_list(
    api: Api, admin: Token, three_tasks: dict[str, dict[str, Any]]
) -> None:
    assert [t["resource_id"] for t in tasks(api, admin, status="active")] == ["room-busy"]
    assert [t["resource_id"] for t in tasks(api, admin, status="complete")] == ["room-done"]
    assert [t["resource_id"] for t in tasks(api, admin, action_name="block")] == ["room-busy"]
    assert [t["resource_id"] for t in tasks(api, admin, action_name="fail")] == ["broken"]
    assert tasks(api, admin, action_name="sleep") == []
    assert tasks(api, admin, max_timestamp=0) == []
    assert [t["id"] for t in tasks(api, admin, resource_id="broken")] == [
        three_tasks["failed"]["id"]
    ]
    assert tasks(api, admin, resource_id="broken", status="complete") == []
    assert tasks(api, admin, resource_id="broken", action_name="record") == []
    assert [t["resource_id"] for t in tasks(api, admin, action_name="fail", status="failed")] == [
        "broken"
    ]
    # Empty parameters filter nothing, as in Synapse; unknown ones are ignored.
    assert len(tasks(api, admin, status="", action_name="", job_status="active")) == 3


def test_a_member_is_answered_403_m_forbidden(
    api: Api, make_token: Callable[..., Token], three_tasks: dict[str, dict[str, Any]]
) -> None:
    answer = listed(api, make_token("acme"))
    assert answer.status_code == 403
    assert body(answer) == {"errcode": "M_FORBIDDEN", "error": "this endpoint needs an admin token"}


# ---------------------------------------------------------------- mapping
def test_every_job_status_maps_to_its_synapse_status_and_timestamp(
    api: Api,
    pipeline: Pipeline,
    clock: FakeClock,
    admin: Token,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
    running: Callable[[], None],
) -> None:
    member = make_token("acme")
    at: dict[str, int] = {}

    def job(status: str, action: str = "record", **fields: Any) -> dict[str, Any]:
        clock.advance(1)
        at[status] = to_ms(clock.now())
        return submit(api, member, action, resource_id=status, **fields)

    # A task whose second firing is skipped while its first still runs.
    make_task(on_overlap="skip", action="block", schedule="*/10 * * * * *")
    clock.advance(10)
    pipeline.tick()
    running()
    active_at = to_ms(clock.now())
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    skipped_at = to_ms(clock.now())

    job("complete")
    job("failed", "fail", args={"message": "no"})
    pipeline.deliver()
    job("expired", expires=1)
    clock.advance(2)
    pipeline.deliver()
    at["expired"] = to_ms(clock.now())  # when it was found too late
    cancelled = job("cancelled")
    assert api.post(f"{JOBS}/{cancelled['id']}/cancel", token=member).status_code == 200
    rejected = job("rejected", requires_approval=True)
    assert (
        api.post(
            f"/v1/queue/hitl/{rejected['approval_request_id']}/reject", token=member, json_body={}
        ).status_code
        == 200
    )
    job("awaiting_approval", requires_approval=True)
    job("scheduled", defer_by=3600)
    at["scheduled"] += 3600 * 1000  # its fire time
    job("queued")

    found = tasks(api, admin)
    shown = {t["resource_id"] or t["action"]: (t["status"], t["timestamp_ms"]) for t in found}
    by_action = {t["status"] for t in found if t["action"] == "block"}
    assert by_action == {"active", "complete"}  # the running firing and the skipped one
    assert {t["timestamp_ms"] for t in found if t["action"] == "block"} == {active_at, skipped_at}
    assert {k: v for k, v in shown.items() if k != "block"} == {
        "scheduled": ("scheduled", at["scheduled"]),
        "queued": ("scheduled", at["queued"]),
        "awaiting_approval": ("scheduled", at["awaiting_approval"]),
        "complete": ("complete", at["failed"]),  # both ran in that delivery
        "failed": ("failed", at["failed"]),
        "expired": ("failed", at["expired"]),
        "cancelled": ("failed", at["cancelled"]),
        "rejected": ("failed", at["rejected"]),
    }
    assert [t["timestamp_ms"] for t in found] == sorted(t["timestamp_ms"] for t in found)

    for status, expected in {
        "scheduled": {"scheduled", "queued", "awaiting_approval"},
        "active": {"block"},
        "complete": {"complete", "block"},
        "failed": {"failed", "expired", "cancelled", "rejected"},
    }.items():
        picked = {t["resource_id"] or t["action"] for t in tasks(api, admin, status=status)}
        assert picked == expected, status
    # The Synapse status is derived from the job's, which `/v1` shows as it is.
    expired = next(t for t in found if t["resource_id"] == "expired")
    assert body(api.get(f"{JOBS}/{expired['id']}", token=member))["status"] == "expired"


def test_a_retry_waits_as_scheduled_at_its_new_fire_time(
    api: Api, pipeline: Pipeline, clock: FakeClock, admin: Token, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    made = submit(api, member, "fail", args={"message": "flaky"}, max_tries=2, retry_delay=600)
    pipeline.deliver()
    [waiting] = tasks(api, admin)
    assert (waiting["id"], waiting["status"], waiting["error"]) == (
        made["id"],
        "scheduled",
        "flaky",
    )
    assert waiting["timestamp_ms"] == to_ms(clock.now()) + 600_000
    shown = body(api.get(f"{JOBS}/{made['id']}", token=member))
    assert shown["timestamp_ms"] == waiting["timestamp_ms"]


# ---------------------------------------------------------------- bounds
def test_the_newest_within_the_limit_oldest_first_and_where_to_continue(
    api: Api, clock: FakeClock, admin: Token, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    made = []
    for n in range(5):
        clock.advance(1)
        made.append(submit(api, member, args={"n": n}))
    oldest_first = [j["id"] for j in made]
    stamps = [to_ms(clock.now()) - 1000 * k for k in range(5)]  # newest first

    first = listed(api, admin, limit=2)
    assert [t["id"] for t in body(first)["scheduled_tasks"]] == oldest_first[3:]
    assert first.headers[RESUME] == str(stamps[2])
    rest = listed(api, admin, limit=3, max_timestamp=first.headers[RESUME])
    assert [t["id"] for t in body(rest)["scheduled_tasks"]] == oldest_first[:3]
    assert RESUME not in rest.headers  # nothing older is left

    assert [t["id"] for t in tasks(api, admin, max_timestamp=stamps[1])] == oldest_first[:4]
    assert tasks(api, admin, limit=0) == []
    assert len(tasks(api, admin, limit=1000)) == 5


def test_a_listing_stops_at_its_read_budget_and_continues_from_there(
    api: Api, pipeline: Pipeline, clock: FakeClock, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    needle = submit(api, member)
    assert api.post(f"{JOBS}/{needle['id']}/cancel", token=member).status_code == 200
    for n in range(12):
        clock.advance(1)
        submit(api, member, args={"n": n})
        pipeline.deliver()
    store = pipeline.services.job_listing

    # Many `record` jobs completed, one failed (cancelled) long ago: within a
    # small budget a listing answers what it found and where it stopped, and
    # following that finds the old one, with no answer read past the budget.
    query = TaskQuery(
        action_names=frozenset({"record"}), statuses=frozenset({TaskStatus.FAILED}), limit=2
    )
    found: list[str] = []
    answers = 0
    listing = None
    while listing is None or listing.resume_at_ms is not None:
        if listing is not None:
            query = replace(query, max_timestamp=listing.resume_at_ms)
        listing = list_jobs_as_tasks(store, query, read_budget=6)
        assert listing.items_read <= 6
        found += [t.id for t in listing.tasks]
        answers += 1
        # Each answer moves on: the next one starts strictly earlier. (How many
        # answers it takes depends on how the random job ids spread over the
        # index shards, so it is bounded only against a runaway loop.)
        if listing.resume_at_ms is not None and query.max_timestamp is not None:
            assert listing.resume_at_ms < query.max_timestamp
        assert answers < 100
    assert found == [needle["id"]]
    assert answers > 1

    whole = store.list_stage(
        StageFilter(actions=frozenset({"record"}), statuses=frozenset({JobStatus.CANCELLED})),
        limit=2,
    )
    assert ([j.id for j in whole.items], whole.resume_at_ms, whole.items_read) == (
        [needle["id"]],
        None,
        13,
    )


def test_jobs_sharing_a_millisecond_come_whole_in_the_next_answer(
    api: Api, clock: FakeClock, admin: Token, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    same = {submit(api, member, args={"n": n})["id"] for n in range(3)}
    clock.advance(1)
    newest = submit(api, member)["id"]

    first = listed(api, admin, limit=3)
    assert [t["id"] for t in body(first)["scheduled_tasks"]] == [newest]
    assert first.headers[RESUME] == str(to_ms(clock.now()) - 1000)
    rest = listed(api, admin, limit=3, max_timestamp=first.headers[RESUME])
    assert {t["id"] for t in body(rest)["scheduled_tasks"]} == same
    assert RESUME not in rest.headers

    # More of them than one answer holds: the rest of that millisecond is
    # skipped rather than asked for forever.
    crowded = listed(api, admin, limit=2, max_timestamp=first.headers[RESUME])
    assert len(body(crowded)["scheduled_tasks"]) == 2
    assert crowded.headers[RESUME] == str(to_ms(clock.now()) - 1001)


def test_a_response_stays_under_its_byte_bound(
    api: Api, pipeline: Pipeline, clock: FakeClock, admin: Token, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    for n in range(3):
        clock.advance(1)
        submit(api, member, "echo", args={"blob": str(n) * 2000})
        pipeline.deliver()  # each ends a second after the one before
    store = pipeline.services.job_listing
    listing = list_jobs_as_tasks(store, TaskQuery(), max_bytes=5000)
    # The newest two, oldest first.
    assert [t.result for t in listing.tasks] == [{"blob": "1" * 2000}, {"blob": "2" * 2000}]
    assert listing.resume_at_ms == listing.tasks[0].timestamp_ms - 1000
    assert len(list_jobs_as_tasks(store, TaskQuery(), max_bytes=10).tasks) == 1  # at least one


# ---------------------------------------------------------------- indexes
def test_filters_are_served_by_indexes_not_by_reading_every_job(
    api: Api, pipeline: Pipeline, clock: FakeClock, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    for n in range(20):
        submit(api, member, args={"n": n}, resource_id=f"bulk-{n % 4}")
    submit(api, member, "echo", resource_id="needle")
    clock.advance(1)
    pipeline.deliver()
    store = pipeline.services.job_listing

    by_resource = store.list_stage(StageFilter(resource_id="needle"), limit=1000)
    assert [j.resource_id for j in by_resource.items] == ["needle"]
    assert (by_resource.queries, by_resource.items_read) == (1, 1)

    by_action = store.list_stage(StageFilter(actions=frozenset({"echo"})), limit=1000)
    assert [j.action for j in by_action.items] == ["echo"]
    assert by_action.items_read == 1

    failed = store.list_stage(StageFilter(statuses=frozenset({JobStatus.FAILED})), limit=1000)
    assert (failed.items, failed.items_read) == ([], 0)

    before = store.list_stage(StageFilter(max_timestamp_ms=to_ms(clock.now()) - 1), limit=1000)
    assert (before.items, before.items_read) == ([], 0)

    # An unfiltered listing of 10 reads about 10 items, not 21.
    newest = store.list_stage(StageFilter(), limit=10)
    assert len(newest.items) == 10
    assert newest.items_read < 21


def test_a_row_written_before_timestamps_were_stored_joins_on_its_next_change(
    api: Api,
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    admin: Token,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    made = submit(api, member, resource_id="legacy")
    # The row as a version before these attributes wrote it.
    settings = services.settings
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region
    )
    dynamodb.update_item(
        TableName=settings.table_name("jobs"),
        Key={"id": {"S": made["id"]}},
        UpdateExpression="REMOVE timestamp_ms, status_shard, action_shard",
    )
    assert tasks(api, admin) == []
    # `/v1` still shows its timestamp, derived as before.
    shown = body(api.get(f"{JOBS}/{made['id']}", token=member))
    assert shown["timestamp_ms"] == to_ms(clock.now())

    clock.advance(3)
    pipeline.deliver()
    [joined] = tasks(api, admin, action_name="record")
    assert (joined["id"], joined["status"]) == (made["id"], "complete")
    assert joined["timestamp_ms"] == to_ms(clock.now())


# ---------------------------------------------------------------- projects
def test_an_admin_of_any_project_sees_every_project_s_jobs(
    api: Api, make_token: Callable[..., Token]
) -> None:
    acme = submit(api, make_token("acme"), resource_id="shared")
    globex = submit(api, make_token("globex"), resource_id="shared")
    for admin in (make_token("acme", Role.ADMIN), make_token("globex", Role.ADMIN)):
        found = tasks(api, admin, resource_id="shared")
        assert {t["id"] for t in found} == {acme["id"], globex["id"]}


# ---------------------------------------------------------------- auth and errors
def test_the_token_may_come_as_a_header_or_as_access_token(
    api: Api, admin: Token, make_token: Callable[..., Token]
) -> None:
    submit(api, make_token("acme"))
    by_query = api.get(f"{TASKS}?access_token={admin.secret}")
    assert by_query.status_code == 200
    assert len(body(by_query)["scheduled_tasks"]) == 1
    by_header = api.get(TASKS, headers={"X-Auth-Token": admin.secret})
    assert body(by_header) == body(by_query)


@pytest.mark.parametrize(
    ("path", "headers", "status", "errcode"),
    [
        (TASKS, {}, 401, "M_MISSING_TOKEN"),
        (f"{TASKS}?access_token=", {}, 401, "M_MISSING_TOKEN"),
        (TASKS, {"Authorization": "Basic abc"}, 401, "M_MISSING_TOKEN"),
        (TASKS, {"Authorization": "Bearer tw_nope"}, 401, "M_UNKNOWN_TOKEN"),
        (f"{TASKS}?access_token=tw_nope", {}, 401, "M_UNKNOWN_TOKEN"),
        (f"{TASKS}?status=cancelled", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?status=ACTIVE", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?max_timestamp=soon", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?max_timestamp=1.5", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?max_timestamp=99999999999999999999", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?limit=1001", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?limit=-1", "admin", 400, "M_INVALID_PARAM"),
        (f"{TASKS}?limit=all", "admin", 400, "M_INVALID_PARAM"),
    ],
)
def test_errors_are_matrix_errors(
    api: Api,
    admin: Token,
    path: str,
    headers: dict[str, str] | str,
    status: int,
    errcode: str,
) -> None:
    sent = admin.headers if headers == "admin" else headers
    assert isinstance(sent, dict)
    answer = api.get(path, headers=sent)
    assert answer.status_code == status
    error = body(answer)
    assert set(error) == {"errcode", "error"}
    assert error["errcode"] == errcode
    assert error["error"]


def test_a_bad_parameter_is_named_in_the_error(api: Api, admin: Token) -> None:
    error = body(listed(api, admin, status="paused"))
    assert error["errcode"] == "M_INVALID_PARAM"
    assert error["error"].startswith("Query parameter 'status': ")


def test_a_revoked_token_is_unknown(
    api: Api, admin: Token, make_token: Callable[..., Token]
) -> None:
    other = make_token("default", Role.ADMIN)
    assert api.delete(f"/v1/admin/tokens/{other.id}", token=admin).status_code == 204
    assert body(listed(api, other))["errcode"] == "M_UNKNOWN_TOKEN"


def test_an_internal_error_is_m_unknown_without_internals(
    api: Api, admin: Token, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(StageListing, "list_stage", broken)
    answer = listed(api, admin)
    assert answer.status_code == 500
    assert body(answer) == {"errcode": "M_UNKNOWN", "error": "internal error"}


def test_the_route_is_in_the_openapi_document(api: Api) -> None:
    doc = body(api.get("/openapi.json"))
    operation = doc["paths"][TASKS]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "action_name",
        "resource_id",
        "status",
        "max_timestamp",
        "limit",
        "access_token",
    }
    assert set(operation["responses"]) == {"200", "400", "401", "403"}
    error = operation["responses"]["403"]["content"]["application/json"]["schema"]["$ref"]
    assert doc["components"]["schemas"][error.rsplit("/", 1)[1]]["required"] == [
        "errcode",
        "error",
    ]
