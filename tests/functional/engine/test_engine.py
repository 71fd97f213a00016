"""The tick and the executor on moto, through the Lambda handlers (DESIGN §2, §4, §5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.sqs import JobMessage
from chalicelib.storage.jobs import JobStore
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import ACME, Pipeline, runs


def test_a_due_task_fires_once_and_its_run_is_recorded(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(args={"hello": "world"})
    assert task.next_run_at is not None
    pipeline.tick()  # 09:00:00: not due yet
    assert runs(services, task) == []

    clock.set(task.next_run_at)
    pipeline.tick()
    pipeline.deliver()
    [job] = runs(services, task)
    assert job.id == f"{task.id}:{int(task.next_run_at.timestamp() * 1000)}"
    assert job.status is JobStatus.COMPLETE
    assert job.trigger == "cron"
    assert job.attempt == 1
    assert job.result == {"n": 1}
    assert job.success_num == 1
    assert calls.seen == [{"job": job.id, "hello": "world"}]

    after = services.tasks.get(ACME, task.id)
    assert after.last_status == "complete"
    assert after.last_run_at == task.next_run_at
    assert after.next_run_at == task.next_run_at.replace(second=20)


def test_every_message_delivered_three_times_runs_its_action_once(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    tasks = [make_task(name=f"t{i}") for i in range(12)]
    clock.advance(10)
    pipeline.tick()
    assert pipeline.deliver(times=3) == 12
    assert len(calls.seen) == 12
    assert sorted(c["job"] for c in calls.seen) == sorted(runs(services, t)[0].id for t in tasks)


def test_catch_up_latest_runs_the_newest_missed_firing_once(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule="0 * * * *", catch_up="latest")  # next: 10:00
    clock.set(clock.now().replace(hour=13, minute=30))  # down from 09:00 to 13:30
    pipeline.tick()
    pipeline.deliver()
    [job] = runs(services, task)
    assert job.trigger == "catch_up"
    assert job.scheduled_for == clock.now().replace(minute=0)  # 13:00
    assert services.tasks.get(ACME, task.id).next_run_at == clock.now().replace(hour=14, minute=0)


def test_catch_up_all_runs_every_missed_firing_oldest_first(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule="0 * * * *", catch_up="all")
    clock.set(clock.now().replace(hour=13, minute=30))
    pipeline.tick()
    pipeline.deliver()
    assert [j.scheduled_for.hour for j in runs(services, task)] == [13, 12, 11, 10]
    assert [c["job"] for c in calls.seen] == [j.id for j in reversed(runs(services, task))]


def test_catch_up_skip_runs_nothing_missed(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule="0 * * * *", catch_up="skip")
    clock.set(clock.now().replace(hour=13, minute=30))
    pipeline.tick()
    assert runs(services, task) == []
    assert services.tasks.get(ACME, task.id).next_run_at == clock.now().replace(hour=14, minute=0)


def test_retries_back_off_and_end_failed_when_attempts_run_out(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(action="fail", args={"message": "boom"}, retry_attempts=2, retry_delay=0)
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    [job] = runs(services, task)
    assert job.status is JobStatus.FAILED
    assert job.attempt == 3
    assert job.max_attempts == 3
    assert job.error == "boom"
    assert services.tasks.get(ACME, task.id).last_status == "failed"


def test_pause_after_failures_disables_the_task(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(action="fail", pause_after_failures=2)
    for _ in range(2):
        clock.advance(10)
        pipeline.tick()
        pipeline.deliver()
    paused = services.tasks.get(ACME, task.id)
    assert not paused.enabled
    assert paused.next_run_at is None
    assert paused.paused_reason == "paused after 2 consecutive failed runs"
    assert paused.version == 2
    clock.advance(10)
    pipeline.tick()
    assert len(runs(services, task)) == 2


def test_keep_runs_keeps_the_newest_finished_runs(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(keep_runs=3)
    fired = []
    for _ in range(5):
        clock.advance(10)
        fired.append(clock.now())
        pipeline.tick()
        pipeline.deliver()
    kept = runs(services, task)
    assert [job.scheduled_for for job in kept] == fired[:-4:-1]
    assert {job.status for job in kept} == {JobStatus.COMPLETE}


def wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Wait for another thread's work (never for scheduling: the clock is fake)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("the condition never held")


def start_in_background(pipeline: Pipeline, calls: Calls, expect_seen: int) -> threading.Thread:
    """Run what is queued in a thread (the `block` action holds its slot)."""
    bodies = [m["Body"] for m in pipeline.receive()]
    worker = threading.Thread(target=pipeline.services.executor.handle_batch, args=(bodies,))
    worker.start()
    wait_until(lambda: len(calls.seen) >= expect_seen)
    return worker


def second_firing_while_first_runs(
    pipeline: Pipeline, clock: FakeClock, calls: Calls
) -> threading.Thread:
    """Fire a `block` task, keep that run going, and fire it again (not yet delivered)."""
    clock.advance(10)
    pipeline.tick()
    first = start_in_background(pipeline, calls, 1)
    clock.advance(10)
    pipeline.tick()
    return first


def test_on_overlap_skip_records_skipped_while_a_run_is_active(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(on_overlap="skip", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)
    pipeline.deliver()
    calls.release.set()
    first.join(10)
    newest, oldest = runs(services, task)
    assert newest.status is JobStatus.SKIPPED
    assert oldest.status is JobStatus.COMPLETE
    assert len(calls.seen) == 1


def deliver_once(pipeline: Pipeline) -> None:
    """One round of delivery: what is queued now, not what that sends."""
    pipeline.services.executor.handle_batch([m["Body"] for m in pipeline.receive()])


def deliver_only(pipeline: Pipeline, job_id: str) -> None:
    """Hand the executor the queued messages of one job; the others go back."""
    for message in pipeline.receive():
        if JobMessage.parse(message["Body"]).job_id == job_id:
            pipeline.services.executor.handle_batch([message["Body"]])
        else:
            pipeline.services.sqs.send(JobMessage.parse(message["Body"]))


def test_on_overlap_queue_gives_a_free_slot_to_the_oldest_waiting_firing(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(on_overlap="queue", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)
    clock.advance(10)
    pipeline.tick()
    deliver_once(pipeline)  # the second and third firings find the slot taken: they wait
    _, second, third = sorted(runs(services, task), key=lambda j: j.scheduled_for)
    assert (second.status, third.status) == (JobStatus.SCHEDULED, JobStatus.SCHEDULED)

    calls.release.set()
    first.join(10)  # the first run ends and wakes the oldest waiting firing
    services.sqs.send(JobMessage(third.id))  # a stray delivery (the watchdog's)
    deliver_only(pipeline, third.id)  # the newer one comes by first: not its turn
    still = JobStore(services.settings, services.tables).get(third.id)
    assert still is not None
    assert still.job.status is JobStatus.SCHEDULED
    deliver_only(pipeline, second.id)
    pipeline.deliver()
    oldest, second, third = sorted(runs(services, task), key=lambda j: j.scheduled_for)
    assert [seen["job"] for seen in calls.seen] == [oldest.id, second.id, third.id]
    assert {oldest.status, second.status, third.status} == {JobStatus.COMPLETE}


def test_on_overlap_buffer_one_keeps_only_the_newest_waiting_firing(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(on_overlap="buffer_one", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)
    deliver_once(pipeline)  # the second firing waits
    clock.advance(10)
    pipeline.tick()
    deliver_once(pipeline)  # the third displaces it
    calls.release.set()
    first.join(10)
    pipeline.deliver()
    oldest, second, third = sorted(runs(services, task), key=lambda j: j.scheduled_for)
    assert oldest.status is JobStatus.COMPLETE
    assert second.status is JobStatus.SKIPPED
    assert second.error == "skipped: a newer firing waits"
    assert third.status is JobStatus.COMPLETE


def test_on_overlap_terminate_cancels_the_oldest_run_and_starts(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(on_overlap="terminate", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)
    second = start_in_background(pipeline, calls, 2)
    first.join(10)  # the first run sees ctx.cancelled and returns
    calls.release.set()
    second.join(10)
    newest, oldest = runs(services, task)
    assert oldest.status is JobStatus.CANCELLED
    assert oldest.result == {"stopped": True}
    assert newest.status is JobStatus.COMPLETE


def test_on_overlap_allow_runs_side_by_side(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(on_overlap="allow", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)
    second = start_in_background(pipeline, calls, 2)
    # Both runs are under way at once: neither can end before the release.
    assert [j.status for j in runs(services, task)] == [JobStatus.ACTIVE] * 2
    calls.release.set()
    first.join(10)
    second.join(10)
    assert [j.status for j in runs(services, task)] == [JobStatus.COMPLETE] * 2


def test_trigger_backfill_and_runs_routes(
    api: Api,
    make_token: Callable[..., Token],
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
) -> None:
    member = make_token("acme")
    created = body(
        api.post(
            "/v1/scheduled-tasks",
            token=member,
            json_body={"name": "r", "schedule": "0 * * * *", "action": "record"},
        )
    )
    path = f"/v1/scheduled-tasks/{created['id']}"

    triggered = api.post(f"{path}/trigger", token=member)
    assert triggered.status_code == 202
    assert body(triggered)["trigger"] == "api"
    assert body(triggered)["status"] == "queued"

    backfill = api.post(
        f"{path}/backfill",
        token=member,
        json_body={"start": "2027-01-04T05:00:00Z", "end": "2027-01-04T08:00:00Z"},
    )
    assert backfill.status_code == 202
    assert [j["scheduled_for"] for j in body(backfill)["jobs"]] == [
        "2027-01-04T05:00:00Z",
        "2027-01-04T06:00:00Z",
        "2027-01-04T07:00:00Z",
    ]
    pipeline.deliver()
    assert len(calls.seen) == 4

    listed = body(api.get(f"{path}/runs?limit=3", token=member))
    assert [j["status"] for j in listed["jobs"]] == ["complete"] * 3
    assert listed["jobs"][0]["trigger"] == "api"
    rest = body(api.get(f"{path}/runs?cursor={listed['next_cursor']}", token=member))
    assert [j["scheduled_for"] for j in rest["jobs"]] == ["2027-01-04T05:00:00Z"]

    api.patch(path, token=member, json_body={"api_trigger": False})
    assert api.post(f"{path}/trigger", token=member).status_code == 403
    outsider = make_token("globex")
    assert api.get(f"{path}/runs", token=outsider).status_code == 404
    bad = api.post(
        f"{path}/backfill",
        token=member,
        json_body={"start": "2027-01-04T08:00:00Z", "end": "2027-01-04T05:00:00Z"},
    )
    assert bad.status_code == 422
