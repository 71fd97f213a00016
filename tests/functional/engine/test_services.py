"""Services (`kind: service`, DESIGN §4): `instances` runs kept alive with
`restart`, `restart_backoff` and `restart_delay`, on moto through the real handlers.

Restart delays here are at least 900 s, so restarts wait in the `due` index
for the tick (moto would hold a shorter SQS delay for real seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from chalicelib.engine.executor import LEASE_MARGIN_S
from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.tasks.model import Task, TaskSpec
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine.test_engine import start_in_background, wait_until
from tests.functional.engine.test_engine_faults import dying_executor
from tests.functional.engine_helpers import ACME, Pipeline, runs


def service(services: Services, **spec: object) -> Task:
    fields = {"name": "svc", "kind": "service", "action": "record", **spec}
    return services.tasks.create(ACME, TaskSpec.model_validate(fields))


def by_status(jobs: list[Job], status: JobStatus) -> list[Job]:
    return [job for job in jobs if job.status is status]


def test_a_service_starts_its_instances_at_once_and_ignores_its_schedule(
    services: Services, pipeline: Pipeline, clock: FakeClock, calls: Calls
) -> None:
    task = service(services, instances=3, schedule="0 0 1 1 *")
    assert task.next_run_at == clock.now()
    assert services.tasks.get(ACME, task.id).next_run_at == clock.now()

    pipeline.tick()
    pipeline.deliver()

    jobs = runs(services, task)
    assert sorted(job.id.rsplit(":", 1)[1] for job in jobs) == ["0.0", "1.0", "2.0"]
    assert {(job.status, job.trigger) for job in jobs} == {(JobStatus.COMPLETE, Trigger.CRON)}
    assert len(calls.seen) == 3
    # Started once; `restart: never` (the default) keeps it stopped.
    assert services.tasks.get(ACME, task.id).next_run_at is None
    clock.advance(3600)
    pipeline.tick()
    assert len(runs(services, task)) == 3


@pytest.mark.parametrize(
    ("restart", "action", "restarts"),
    [
        ("always", "record", True),
        ("always", "fail", True),
        ("on_failure", "fail", True),
        ("on_failure", "record", False),
        ("never", "fail", False),
    ],
)
def test_restart_policy_decides_whether_an_ended_run_comes_back(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    restart: str,
    action: str,
    restarts: bool,
) -> None:
    task = service(services, restart=restart, action=action, restart_delay=1000)
    pipeline.tick()
    pipeline.deliver()
    ended_at = clock.now()

    jobs = runs(services, task)
    waiting = by_status(jobs, JobStatus.SCHEDULED)
    if not restarts:
        assert waiting == []
        return
    [again] = waiting
    assert again.trigger is Trigger.RESTART
    assert again.id.endswith(":0.1")
    assert again.scheduled_for == ended_at + timedelta(seconds=1000)

    clock.advance(999)
    pipeline.tick()
    assert pipeline.deliver() == 0  # not before its time
    clock.advance(1)
    pipeline.tick()
    pipeline.deliver()
    assert services.runs.runs(ACME, task.id, limit=10, cursor=None).items[0].id.endswith(":0.2")


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        ("constant", [1000, 1000, 1000]),
        ("linear", [1000, 2000, 3000]),
        ("exponential", [1000, 2000, 4000]),
    ],
)
def test_restart_backoff_grows_with_consecutive_failures(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    backoff: str,
    delays: list[int],
) -> None:
    task = service(
        services,
        restart="on_failure",
        action="fail",
        restart_backoff=backoff,
        restart_delay=1000,
    )
    pipeline.tick()
    seen: list[int] = []
    for _ in delays:
        pipeline.deliver()
        [waiting] = by_status(runs(services, task), JobStatus.SCHEDULED)
        delay = (waiting.scheduled_for - clock.now()).total_seconds()
        seen.append(round(delay))
        clock.set(waiting.scheduled_for)
        pipeline.tick()
    assert seen == delays


def test_a_complete_run_resets_the_backoff(
    services: Services, pipeline: Pipeline, clock: FakeClock, calls: Calls
) -> None:
    task = service(
        services,
        restart="always",
        action="fail",
        restart_backoff="exponential",
        restart_delay=1000,
    )
    pipeline.tick()
    pipeline.deliver()  # failed: k=1
    [waiting] = by_status(runs(services, task), JobStatus.SCHEDULED)
    clock.set(waiting.scheduled_for)
    pipeline.tick()
    pipeline.deliver()  # failed again: k=2, 2000 s
    [waiting] = by_status(runs(services, task), JobStatus.SCHEDULED)
    assert (waiting.scheduled_for - clock.now()).total_seconds() == 2000

    # The service is healed. The restart already made keeps the action it was
    # made with (fails: k=3); the one after runs the new action and completes,
    # and the restart after a complete run waits `restart_delay` again.
    services.tasks.patch(ACME, task.id, {"action": "record", "args": {}}, None)
    clock.set(waiting.scheduled_for)
    pipeline.tick()
    pipeline.deliver()
    [waiting] = by_status(runs(services, task), JobStatus.SCHEDULED)
    assert (waiting.scheduled_for - clock.now()).total_seconds() == 4000
    assert waiting.action == "record"
    clock.set(waiting.scheduled_for)
    pipeline.tick()
    pipeline.deliver()
    jobs = runs(services, task)
    assert by_status(jobs, JobStatus.COMPLETE)
    [waiting] = by_status(jobs, JobStatus.SCHEDULED)
    assert (waiting.scheduled_for - clock.now()).total_seconds() == 1000


def test_disabling_a_service_cancels_its_pending_restart(
    services: Services, pipeline: Pipeline, clock: FakeClock
) -> None:
    task = service(services, restart="always", restart_delay=1000)
    pipeline.tick()
    pipeline.deliver()
    services.tasks.patch(ACME, task.id, {"enabled": False}, None)
    clock.advance(1000)
    pipeline.tick()
    pipeline.deliver()
    statuses = sorted(job.status.value for job in runs(services, task))
    assert statuses == ["cancelled", "complete"]
    assert services.tasks.get(ACME, task.id).next_run_at is None


def test_raising_instances_starts_only_the_missing_runs(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = service(services, action="block", instances=1)
    pipeline.tick()
    first = start_in_background(pipeline, calls, 1)

    clock.advance(5)
    patched = services.tasks.patch(ACME, task.id, {"instances": 2}, None)
    assert patched.next_run_at == clock.now()
    pipeline.tick()  # starts instances 0 and 1 afresh: one of them is surplus
    one, other = [m["Body"] for m in pipeline.receive()]
    second = threading.Thread(target=services.executor.handle_batch, args=([one],))
    second.start()
    wait_until(lambda: len(calls.seen) == 2)
    services.executor.handle_batch([other])  # both slots are held: skipped
    calls.release.set()
    first.join(10)
    second.join(10)

    jobs = runs(services, task)
    assert len(by_status(jobs, JobStatus.COMPLETE)) == 2
    [surplus] = by_status(jobs, JobStatus.SKIPPED)
    assert surplus.error == "skipped: the service already runs 2 instance(s)"
    assert len(calls.seen) == 2


def test_a_service_run_whose_executor_died_is_restarted(
    services: Services, pipeline: Pipeline, clock: FakeClock
) -> None:
    task = service(services, restart="on_failure", restart_delay=1000, timeout=30)
    pipeline.tick()
    dying = dying_executor(services, clock)
    dying.handle_batch([m["Body"] for m in pipeline.receive()])  # runs, then "dies"
    clock.advance(30 + LEASE_MARGIN_S + 1)
    pipeline.tick()  # the lease ran out: sent again
    pipeline.deliver()  # no attempts left: failed, and restarted per `on_failure`
    jobs = runs(services, task)
    [failed] = by_status(jobs, JobStatus.FAILED)
    assert failed.error == "lease expired: the executor stopped"
    [waiting] = by_status(jobs, JobStatus.SCHEDULED)
    assert waiting.trigger is Trigger.RESTART
    assert (waiting.scheduled_for - clock.now()).total_seconds() == 1000


def test_a_service_created_over_the_api_starts_without_waiting_for_a_tick(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    created = api.post(
        "/v1/scheduled-tasks",
        token=member,
        json_body={"name": "svc", "kind": "service", "action": "record", "instances": 2},
    )
    assert created.status_code == 201
    task = services.tasks.get(ACME, body(created)["id"])
    assert task.next_run_at is None  # fired by the create call itself
    assert len(pipeline.receive()) == 2
    assert {job.status for job in runs(services, task)} == {JobStatus.QUEUED}
