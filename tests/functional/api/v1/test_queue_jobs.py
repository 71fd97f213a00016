"""`/v1/queue` job reads and steering through `chalice.test.Client` on moto:
get (2), cancel (3), logs (12) and the action catalogue (16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.actions import Registry
from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.jobs.service import RESULT_POLL_S, QueueService
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import RunPolicy
from chalicelib.tasks.model import MAX_RUN_TIMEOUT_S, Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine.test_engine import start_in_background
from tests.functional.engine_helpers import ACME, Pipeline, runs

JOBS = "/v1/queue/jobs"


def test_a_job_reads_back_with_its_log_and_is_hidden_from_other_projects(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    task = make_task(action="fail", args={"message": "boom"})
    job = services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    member = make_token("acme")

    got = api.get(f"{JOBS}/{job.id}", token=member)
    assert got.status_code == 200
    shown = body(got)
    assert (shown["id"], shown["status"], shown["error"]) == (job.id, "failed", "boom")
    assert shown["trigger"] == "api"
    logs = body(api.get(f"{JOBS}/{job.id}/logs", token=member))
    assert logs["truncated"] is False
    assert logs["log"].endswith("ERROR boom\n")

    outsider = make_token("globex")
    for path in (f"{JOBS}/{job.id}", f"{JOBS}/{job.id}/logs"):
        hidden = api.get(path, token=outsider)
        assert hidden.status_code == 404
        assert body(hidden)["status"] == 404
    assert api.post(f"{JOBS}/{job.id}/cancel", token=outsider).status_code == 404
    assert api.get(f"{JOBS}/nope", token=member).status_code == 404
    assert api.get(f"{JOBS}/{job.id}").status_code == 401


def test_cancelling_a_job_that_has_not_started_ends_it_and_it_never_runs(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    calls: Calls,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    task = make_task()
    job = services.runs.trigger(ACME, task.id)
    member = make_token("acme")

    cancelled = api.post(f"{JOBS}/{job.id}/cancel", token=member)
    assert cancelled.status_code == 200
    assert body(cancelled)["status"] == "cancelled"
    pipeline.deliver()  # its message comes: nothing runs
    assert calls.seen == []
    [only] = runs(services, task)
    assert only.status is JobStatus.CANCELLED

    again = api.post(f"{JOBS}/{job.id}/cancel", token=member)
    assert again.status_code == 409
    assert "already ended (cancelled)" in body(again)["detail"]


def test_cancelling_a_running_job_asks_it_to_stop_and_it_ends_cancelled(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    task = make_task(action="block")
    job = services.runs.trigger(ACME, task.id)
    running = start_in_background(pipeline, calls, 1)
    member = make_token("acme")

    asked = body(api.post(f"{JOBS}/{job.id}/cancel", token=member))
    assert (asked["status"], asked["cancel_requested"]) == ("active", True)
    running.join(10)  # the executor's watcher turns the flag into ctx.cancelled
    assert not running.is_alive()
    ended = body(api.get(f"{JOBS}/{job.id}", token=member))
    assert (ended["status"], ended["error"]) == ("cancelled", "cancelled")
    assert ended["result"] == {"stopped": True}


def test_the_action_catalogue_lists_every_action_with_its_args_schema(
    api: Api, make_token: Callable[..., Token]
) -> None:
    listed = api.get("/v1/queue/actions", token=make_token("acme"))
    assert listed.status_code == 200
    actions = {a["name"]: a for a in body(listed)["actions"]}
    assert {"echo", "sleep", "fail", "http_request", "send_message"} <= set(actions)
    assert {"trigger_ai", "run_query", "invoke_lambda"} <= set(actions)
    sleep = actions["sleep"]
    assert sleep["args_schema"]["properties"]["seconds"]["maximum"] == MAX_RUN_TIMEOUT_S
    assert sleep["requires_approval"] is False
    assert api.get("/v1/queue/actions").status_code == 401


def queue_job(services: Services, clock: FakeClock, n: int, **fields: object) -> Job:
    """A job stored directly, as a submission would store it (for read-side tests that
    need fixed ids and statuses; submission itself: test_queue_submit.py)."""
    job = Job(
        id=f"job_test{n:03d}",
        project_id=str(fields.pop("project_id", "acme")),
        action=str(fields.pop("action", "echo")),
        status=JobStatus(str(fields.pop("status", "queued"))),
        trigger=Trigger.QUEUE,
        scheduled_for=clock.now(),
        timestamp_ms=0,
        **fields,
    )
    clock.advance(1)  # distinct creation times: newest first is well defined
    JobStore(services.settings, services.tables).create(
        job, RunPolicy(), due_at=clock.now(), now=clock.now()
    )
    return job


def ids(response: Any) -> list[str]:
    return [job["id"] for job in body(response)["jobs"]]


def test_listing_jobs_filters_through_indexes_and_pages_newest_first(
    services: Services,
    api: Api,
    clock: FakeClock,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    member = make_token("acme")
    first = queue_job(services, clock, 1, correlation_id="order-7")
    second = queue_job(services, clock, 2, action="sleep", correlation_id="order-7")
    third = queue_job(services, clock, 3)
    queue_job(services, clock, 4, project_id="globex", correlation_id="order-7")
    task = make_task()
    clock.advance(1)
    triggered = services.runs.trigger(ACME, task.id)
    JobStore(services.settings, services.tables).end(
        JobStore(services.settings, services.tables).get(third.id),  # type: ignore[arg-type]
        JobStatus.CANCELLED,
        now=clock.now(),
        error="cancelled",
    )

    assert ids(api.get(JOBS, token=member)) == [triggered.id, third.id, second.id, first.id]
    assert ids(api.get(f"{JOBS}?status=cancelled", token=member)) == [third.id]
    assert ids(api.get(f"{JOBS}?action=sleep", token=member)) == [second.id]
    assert ids(api.get(f"{JOBS}?task_id={task.id}", token=member)) == [triggered.id]
    assert ids(api.get(f"{JOBS}?correlation_id=order-7", token=member)) == [second.id, first.id]
    assert ids(api.get(f"{JOBS}?correlation_id=order-7&action=echo", token=member)) == [first.id]
    assert ids(api.get("/v1/queue/correlation/order-7", token=member)) == [second.id, first.id]
    # Another project's task id lists nothing.
    assert ids(api.get(f"{JOBS}?task_id={task.id}", token=make_token("globex"))) == []

    seen: list[str] = []
    cursor = None
    while True:
        page = body(
            api.get(f"{JOBS}?limit=2" + (f"&cursor={cursor}" if cursor else ""), token=member)
        )
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [triggered.id, third.id, second.id, first.id]

    bad = api.get(f"{JOBS}?status=sleeping", token=member)
    assert bad.status_code == 422
    assert body(bad)["errors"][0]["location"] == "query.status"
    # A cursor of one project's list does not open another project's.
    acme_cursor = body(api.get(f"{JOBS}?limit=1", token=member))["next_cursor"]
    foreign = api.get(f"{JOBS}?cursor={acme_cursor}", token=make_token("globex"))
    assert foreign.status_code == 422
    assert body(foreign)["errors"][0]["location"] == "query.cursor"


def test_result_long_polls_until_the_job_ends(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    actions: Registry,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    member = make_token("acme")
    task = make_task(args={"n": 7})
    job = services.runs.trigger(ACME, task.id)

    # Not ended within `wait`: its status as it is, after `wait` seconds.
    started = clock.now()
    waited = body(api.get(f"{JOBS}/{job.id}/result?wait=5", token=member))
    assert waited == {"status": "queued", "result": None, "error": None}
    assert (clock.now() - started).total_seconds() == pytest.approx(5, abs=0.3)

    # Ends while it waits: answered at the next look, not at the deadline.
    def run_meanwhile(seconds: float) -> None:
        pipeline.deliver()
        clock.advance(seconds)

    polling = QueueService(
        JobStore(services.settings, services.tables),
        services.attempt_store,
        services.sqs,
        actions,
        services.approvals,
        clock,
        services.ids,
        run_meanwhile,
        settings=services.settings,
    )
    started = clock.now()
    ended = polling.result(ACME, job.id, wait_s=20)
    assert (ended.status, ended.result) == (JobStatus.COMPLETE, {"n": 1})
    assert (clock.now() - started).total_seconds() == RESULT_POLL_S

    done = body(api.get(f"{JOBS}/{job.id}/result", token=member))
    assert done == {"status": "complete", "result": {"n": 1}, "error": None}
    too_long = api.get(f"{JOBS}/{job.id}/result?wait=21", token=member)
    assert too_long.status_code == 422
    assert body(too_long)["errors"][0]["location"] == "query.wait"
    assert api.get(f"{JOBS}/{job.id}/result", token=make_token("globex")).status_code == 404


def test_depth_counts_the_projects_waiting_jobs(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    empty = body(api.get("/v1/queue/depth", token=member))
    assert empty == {
        "scheduled": 0,
        "queued": 0,
        "active": 0,
        "awaiting_approval": 0,
        "dead_letter": 0,
        "oldest_queued_age_seconds": None,
    }
    oldest = queue_job(services, clock, 1)
    queue_job(services, clock, 2)
    queue_job(services, clock, 3, status=JobStatus.SCHEDULED)
    queue_job(services, clock, 4, project_id="globex")
    clock.advance(30)

    depth = body(api.get("/v1/queue/depth", token=member))
    assert (depth["queued"], depth["scheduled"], depth["active"]) == (2, 1, 0)
    assert depth["dead_letter"] == 0  # counted in tests/functional/api/v1/test_queue_submit.py
    since = oldest.enqueued_at or oldest.scheduled_for
    assert depth["oldest_queued_age_seconds"] == (clock.now() - since).total_seconds()
    assert body(api.get("/v1/queue/depth", token=make_token("globex")))["queued"] == 1
    assert api.get("/v1/queue/depth").status_code == 401
