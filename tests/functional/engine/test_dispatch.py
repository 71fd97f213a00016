"""One dispatch path (chalicelib/engine/dispatch.py): every way of making a job follows
the same rules — a repeat answers what exists, far-future work waits in the
`due` index and not in SQS, and approval is held when the job may start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from chalicelib.jobs.model import JobStatus
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine.test_services import by_status, service
from tests.functional.engine_helpers import Pipeline, runs

TASKS = "/v1/scheduled-tasks"


def stored(services: Services, job_id: object) -> StoredJob:
    found = JobStore(services.settings, services.tables).get(str(job_id))
    assert found is not None
    return found


def create(api: Api, token: Token, **fields: object) -> dict[str, object]:
    made = api.post(
        TASKS,
        token=token,
        json_body={"name": "d", "schedule": "0 * * * *", "action": "record", **fields},
    )
    assert made.status_code == 201, made.body
    found: dict[str, object] = body(made)
    return found


def test_a_repeated_backfill_answers_the_jobs_as_they_are(
    api: Api, make_token: Callable[..., Token], pipeline: Pipeline, calls: Calls
) -> None:
    member = make_token("acme")
    task = create(api, member)
    window = {"start": "2027-01-04T05:00:00Z", "end": "2027-01-04T07:00:00Z"}
    first = body(api.post(f"{TASKS}/{task['id']}/backfill", token=member, json_body=window))
    assert [j["status"] for j in first["jobs"]] == ["queued", "queued"]
    pipeline.deliver()
    assert len(calls.seen) == 2

    again = api.post(f"{TASKS}/{task['id']}/backfill", token=member, json_body=window)
    assert again.status_code == 202
    jobs = body(again)["jobs"]
    assert [j["id"] for j in jobs] == [j["id"] for j in first["jobs"]]
    assert [j["status"] for j in jobs] == ["complete", "complete"]
    pipeline.deliver()
    assert len(calls.seen) == 2  # nothing ran twice


def test_a_backfill_reaching_past_the_lookahead_leaves_later_firings_to_the_due_index(
    api: Api,
    make_token: Callable[..., Token],
    pipeline: Pipeline,
    services: Services,
    clock: FakeClock,
    calls: Calls,
) -> None:
    member = make_token("acme")
    task = create(api, member)
    now = clock.now()  # 2027-01-04T09:00:00Z
    window = {"start": "2027-01-04T08:00:00Z", "end": "2027-01-04T12:00:00Z"}
    made = body(api.post(f"{TASKS}/{task['id']}/backfill", token=member, json_body=window))
    assert [j["status"] for j in made["jobs"]] == ["queued", "queued", "scheduled", "scheduled"]

    pipeline.deliver()  # the two due now went to SQS and ran
    assert len(calls.seen) == 2
    # The later two sent nothing: they wait in the due index for their time.
    later = [stored(services, j["id"]) for j in made["jobs"][2:]]
    assert [s.due_at for s in later] == [now + timedelta(hours=1), now + timedelta(hours=2)]

    # At 10:00 the tick sends the first of them (beside the task's own firing).
    clock.set(now + timedelta(hours=1))
    pipeline.tick()
    pipeline.deliver()
    assert [stored(services, j["id"]).job.status for j in made["jobs"]] == [
        JobStatus.COMPLETE,
        JobStatus.COMPLETE,
        JobStatus.COMPLETE,
        JobStatus.SCHEDULED,
    ]


def test_a_trigger_of_a_task_that_needs_approval_is_held_when_made(
    api: Api, make_token: Callable[..., Token], pipeline: Pipeline, calls: Calls
) -> None:
    member = make_token("acme")
    task = create(api, member, requires_approval=True)
    triggered = body(api.post(f"{TASKS}/{task['id']}/trigger", token=member))
    assert triggered["status"] == "awaiting_approval"
    request_id = triggered["approval_request_id"]
    assert pipeline.receive() == []  # nothing to run before the decision

    approved = api.post(f"/v1/queue/hitl/{request_id}/approve", token=member, json_body={})
    assert approved.status_code == 200
    pipeline.deliver()
    assert len(calls.seen) == 1


def test_a_restart_due_past_the_lookahead_waits_in_the_due_index(
    services: Services, pipeline: Pipeline, clock: FakeClock, calls: Calls
) -> None:
    # 600 s: within SQS's 900 s delay, but far beyond the tick's lookahead.
    task = service(services, restart="always", restart_delay=600)
    pipeline.tick()
    pipeline.deliver()
    assert len(calls.seen) == 1
    assert pipeline.receive() == []  # no message for the restart
    [restart] = by_status(runs(services, task), JobStatus.SCHEDULED)
    assert restart.scheduled_for == clock.now() + timedelta(seconds=600)
    assert stored(services, restart.id).due_at == restart.scheduled_for

    clock.advance(600)
    pipeline.tick()
    pipeline.deliver()
    assert len(calls.seen) == 2
