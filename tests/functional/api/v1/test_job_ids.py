"""Job ids belong to their project (DESIGN §5): a user's `job_id` is unique per
project and never collides with an id Tickwork makes, through
`chalice.test.Client` on moto with real SQS messages and a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.auth.service import Role
from chalicelib.clock import to_ms
from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import RunPolicy
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine.test_engine import start_in_background
from tests.functional.engine_helpers import Pipeline, runs

JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"


def submit(api: Api, token: Token, **fields: Any) -> Any:
    return api.post(JOBS, token=token, json_body={"action": "record", **fields})


def listed(api: Api, token: Token) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = body(api.get(JOBS, token=token))["jobs"]
    return jobs


def test_the_same_job_id_in_two_projects_makes_two_jobs(
    pipeline: Pipeline, api: Api, calls: Calls, make_token: Callable[..., Token]
) -> None:
    acme, globex = make_token("acme"), make_token("globex")
    mine = submit(api, acme, job_id="nightly:2027.01-04", args={"who": "acme"}, correlation_id="c")
    theirs = submit(api, globex, job_id="nightly:2027.01-04", args={"who": "globex"})
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert body(mine)["id"] == body(theirs)["id"] == "nightly:2027.01-04"

    pipeline.deliver()
    assert sorted(c["who"] for c in calls.seen) == ["acme", "globex"]
    for token, who in ((acme, "acme"), (globex, "globex")):
        shown = body(api.get(f"{JOBS}/nightly:2027.01-04", token=token))
        assert (shown["id"], shown["args"], shown["status"]) == (
            "nightly:2027.01-04",
            {"who": who},
            "complete",
        )
        assert [j["id"] for j in listed(api, token)] == ["nightly:2027.01-04"]
    correlated = body(api.get("/v1/queue/correlation/c", token=acme))["jobs"]
    assert [j["id"] for j in correlated] == ["nightly:2027.01-04"]

    # Within a project the id still makes the submission idempotent.
    again = submit(api, acme, job_id="nightly:2027.01-04", args={"who": "again"})
    assert again.status_code == 409
    assert "'nightly:2027.01-04'" in body(again)["detail"]
    assert [j["args"] for j in listed(api, acme)] == [{"who": "acme"}]


def test_a_job_id_shaped_like_the_next_firing_does_not_take_it(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
    make_token: Callable[..., Token],
) -> None:
    task = make_task()
    assert task.next_run_at is not None
    firing_id = f"{task.id}:{to_ms(task.next_run_at)}"
    member = make_token("acme")
    mine = submit(api, member, job_id=firing_id, args={"mine": True})
    assert mine.status_code == 202
    pipeline.deliver()

    clock.set(task.next_run_at)
    pipeline.tick()
    pipeline.deliver()
    [firing] = runs(services, task)
    assert (firing.id, firing.trigger, firing.status) == (firing_id, "cron", JobStatus.COMPLETE)
    assert sorted(c.get("mine", False) for c in calls.seen) == [False, True]
    shown = sorted((j["id"], j["trigger"], j["status"]) for j in listed(api, member))
    assert shown == [(firing_id, "cron", "complete"), (firing_id, "queue", "complete")]
    # The id in a path names Tickwork's job first when it has a Tickwork id's shape.
    assert body(api.get(f"{JOBS}/{firing_id}", token=member))["trigger"] == "cron"


def test_a_job_id_shaped_like_a_backfill_does_not_take_it(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    calls: Calls,
    make_task: Callable[..., Task],
    make_token: Callable[..., Token],
) -> None:
    task = make_task()
    member = make_token("acme")
    backfill_id = f"{task.id}:{to_ms(task.created_at)}:backfill"
    assert submit(api, member, job_id=backfill_id, args={"mine": True}).status_code == 202
    pipeline.deliver()

    made = api.post(
        f"/v1/scheduled-tasks/{task.id}/backfill",
        token=member,
        json_body={"start": "2027-01-04T09:00:00Z", "end": "2027-01-04T09:00:01Z"},
    )
    assert [j["id"] for j in body(made)["jobs"]] == [backfill_id]
    pipeline.deliver()
    [backfilled] = runs(services, task)
    assert (backfilled.trigger, backfilled.status) == (Trigger.BACKFILL, JobStatus.COMPLETE)
    assert len(calls.seen) == 2


def test_a_job_id_shaped_like_a_tickwork_job_id_is_the_users_own(
    pipeline: Pipeline, api: Api, calls: Calls, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    made = body(submit(api, member, args={"by": "tickwork"}))
    assert made["id"].startswith("job_")
    same = submit(api, member, job_id=made["id"], args={"by": "user"})
    assert same.status_code == 202  # not the Tickwork job's id: no conflict
    alone = body(submit(api, member, job_id="job_nightly", args={"by": "user"}))
    pipeline.deliver()

    assert sorted(c["by"] for c in calls.seen) == ["tickwork", "user", "user"]
    assert body(api.get(f"{JOBS}/{made['id']}", token=member))["args"] == {"by": "tickwork"}
    shown = body(api.get(f"{JOBS}/job_nightly", token=member))
    assert alone["id"] == "job_nightly"
    assert (shown["id"], shown["status"]) == ("job_nightly", "complete")


def test_a_held_user_id_job_is_approved_through_its_request_id_in_the_url(
    pipeline: Pipeline, api: Api, calls: Calls, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    job = body(submit(api, member, job_id="deploy:prod.v1", requires_approval=True))
    assert (job["id"], job["status"]) == ("deploy:prod.v1", "awaiting_approval")
    request_id = job["approval_request_id"]
    assert "/" not in request_id

    [pending] = body(api.get(HITL, token=member))["requests"]
    assert (pending["id"], pending["job_id"]) == (request_id, "deploy:prod.v1")
    assert body(api.get(f"{HITL}/{request_id}", token=member))["job_id"] == "deploy:prod.v1"
    assert api.get(f"{HITL}/{request_id}", token=make_token("globex")).status_code == 404
    approved = api.post(f"{HITL}/{request_id}/approve", token=member, json_body={})
    assert approved.status_code == 200, approved.body
    assert body(approved)["job_id"] == "deploy:prod.v1"

    pipeline.deliver()
    assert body(api.get(f"{JOBS}/deploy:prod.v1", token=member))["status"] == "complete"
    # Another project's job of the same id gets its own request.
    other = body(submit(api, make_token("globex"), job_id="deploy:prod.v1", requires_approval=True))
    assert other["approval_request_id"] != request_id


def test_cancel_result_logs_and_retry_work_through_the_user_id(
    pipeline: Pipeline, api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    submit(api, member, job_id="report.1", defer_by=300)
    cancelled = api.post(f"{JOBS}/report.1/cancel", token=member)
    assert body(cancelled)["status"] == "cancelled"
    result = body(api.get(f"{JOBS}/report.1/result", token=member))
    assert result == {"status": "cancelled", "result": None, "error": "cancelled"}
    assert api.get(f"{JOBS}/report.1/logs", token=member).status_code == 200

    retried = body(api.post(f"{JOBS}/report.1/retry", token=member))
    assert retried["id"].startswith("job_")
    assert (retried["retry_of"], retried["trigger"]) == ("report.1", "retry")
    pipeline.deliver()
    assert body(api.get(f"{JOBS}/{retried['id']}", token=member))["status"] == "complete"

    outsider = make_token("globex")
    for path in ("", "/result", "/logs"):
        assert api.get(f"{JOBS}/report.1{path}", token=outsider).status_code == 404
    for verb in ("cancel", "retry"):
        assert api.post(f"{JOBS}/report.1/{verb}", token=outsider).status_code == 404


def test_a_running_user_id_job_is_cancelled_through_its_id(
    pipeline: Pipeline, api: Api, calls: Calls, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    api.post(JOBS, token=member, json_body={"action": "block", "job_id": "long-one"})
    worker = start_in_background(pipeline, calls, 1)

    asked = body(api.post(f"{JOBS}/long-one/cancel", token=member))
    assert (asked["status"], asked["cancel_requested"]) == ("active", True)
    worker.join(10)
    assert not worker.is_alive()
    ended = body(api.get(f"{JOBS}/long-one", token=member))
    assert (ended["status"], ended["result"]) == ("cancelled", {"stopped": True})


def test_dead_letters_synapse_and_records_show_the_public_id(
    pipeline: Pipeline, api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    admin = make_token("default", Role.ADMIN, "ops")
    submit(api, member, job_id="lost:1", resource_id="r-lost")
    assert pipeline.dead_letter_all()

    [letter] = body(api.get("/v1/queue/dead-letters", token=admin))["dead_letters"]
    assert (letter["job_id"], letter["job"]["id"]) == ("lost:1", "lost:1")
    synapse = api.get("/_synapse/admin/v1/scheduled_tasks?resource_id=r-lost", token=admin)
    assert [t["id"] for t in body(synapse)["scheduled_tasks"]] == ["lost:1"]
    redriven = body(api.post("/v1/queue/dead-letters/redrive", token=admin, json_body={}))
    [moved] = redriven["redriven"]
    assert moved["job_id"] == "lost:1"
    again = body(api.get(f"{JOBS}/{moved['new_job_id']}", token=member))
    assert again["retry_of"] == "lost:1"


def test_a_job_stored_under_its_bare_id_before_scoping_still_reads_and_takes_its_id(
    services: Services, api: Api, clock: FakeClock, make_token: Callable[..., Token]
) -> None:
    # A row as submissions stored it before ids belonged to their project.
    now = clock.now()
    legacy = Job(
        id="old-report",
        project_id="acme",
        action="record",
        status=JobStatus.SCHEDULED,
        trigger=Trigger.QUEUE,
        scheduled_for=now.replace(hour=10),
        timestamp_ms=to_ms(now.replace(hour=10)),
    )
    store = JobStore(services.settings, services.tables)
    assert store.create(legacy, RunPolicy(), due_at=legacy.scheduled_for, now=now)
    member = make_token("acme")

    assert body(api.get(f"{JOBS}/old-report", token=member))["id"] == "old-report"
    assert submit(api, member, job_id="old-report").status_code == 409
    assert submit(api, make_token("globex"), job_id="old-report").status_code == 202
    assert api.get(f"{JOBS}/old-report", token=make_token("other")).status_code == 404
    assert body(api.post(f"{JOBS}/old-report/cancel", token=member))["status"] == "cancelled"
    assert [j["id"] for j in listed(api, member)] == ["old-report"]
