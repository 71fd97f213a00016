"""Bounded waiting (`on_overlap: queue`, `queue_max`) and waiting firings that
send nothing: the run that frees a slot wakes the oldest (DESIGN §4)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from chalicelib.jobs.model import Job, JobStatus
from chalicelib.jobs.sqs import REDELIVERY_GRACE, JobMessage
from chalicelib.settings import Settings
from chalicelib.storage.binding import Tables
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.storage.task_slots import SlotState
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock
from tests.functional.engine.test_engine import wait_until
from tests.functional.engine_helpers import ACME, Pipeline, executor_over, runs

#: Fires once a year: every run in these tests is a trigger the test makes.
YEARLY = "0 0 1 1 *"


def queued_ids(pipeline: Pipeline) -> list[str]:
    """Job ids of the messages in SQS now (taken out of the queue)."""
    return [JobMessage.parse(m["Body"]).job_id for m in pipeline.receive()]


def deliver(services: Services, job_ids: list[str]) -> None:
    for job_id in job_ids:
        services.executor.handle_batch([JobMessage(job_id).body()])


def trigger(services: Services, clock: FakeClock, task: Task) -> Job:
    clock.advance(1)  # one firing a second: their queue order is their fire order
    return services.runs.trigger(ACME, task.id)


def run_holding_slot(
    services: Services, pipeline: Pipeline, clock: FakeClock, calls: Calls, task: Task
) -> tuple[Job, threading.Thread]:
    """Trigger a `block` task and run that job in a thread: it holds a slot."""
    job = trigger(services, clock, task)
    assert queued_ids(pipeline) == [job.id]
    seen = len(calls.seen)
    worker = threading.Thread(target=deliver, args=(services, [job.id]))
    worker.start()
    wait_until(lambda: len(calls.seen) > seen)
    return job, worker


def waiting_firings(
    services: Services, pipeline: Pipeline, clock: FakeClock, task: Task, n: int
) -> list[Job]:
    """Trigger `n` firings and deliver each once: they find no slot."""
    jobs = [trigger(services, clock, task) for _ in range(n)]
    deliver(services, queued_ids(pipeline))
    return jobs


def status(services: Services, job: Job) -> JobStatus:
    stored = JobStore(services.settings, services.tables).get(job.id)
    assert stored is not None
    return stored.job.status


def test_a_firing_that_finds_queue_max_waiting_ends_skipped_queue_full(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue", queue_max=2)
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    one, two, three = waiting_firings(services, pipeline, clock, task, 3)
    assert [status(services, j) for j in (one, two, three)] == [
        JobStatus.SCHEDULED,
        JobStatus.SCHEDULED,
        JobStatus.SKIPPED,
    ]
    skipped = next(j for j in runs(services, task) if j.id == three.id)
    assert skipped.error == "skipped: queue full (2 firings wait)"
    assert skipped.started_at is None

    calls.release.set()
    first.join(10)
    pipeline.deliver()
    assert [status(services, j) for j in (one, two)] == [JobStatus.COMPLETE] * 2


def test_queue_max_0_skips_a_firing_that_finds_no_slot_at_once(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue", queue_max=0)
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    (late,) = waiting_firings(services, pipeline, clock, task, 1)
    assert status(services, late) is JobStatus.SKIPPED
    assert TaskStore(services.settings, services.tables).slots(task.id).queued == []
    calls.release.set()
    first.join(10)
    assert queued_ids(pipeline) == []  # nobody waits: nothing to wake


def test_two_firings_racing_for_the_last_place_cannot_both_join(
    services: Services, make_task: Callable[..., Task]
) -> None:
    task = make_task(schedule=YEARLY, on_overlap="queue", queue_max=2)
    store = TaskStore(services.settings, services.tables)
    assert store.join_queue(task.id, "000000000000001|a", 2)
    barrier = threading.Barrier(2)
    joined: dict[str, bool] = {}

    def join(entry: str) -> None:
        barrier.wait()
        joined[entry] = store.join_queue(task.id, entry, 2)

    racers = [
        threading.Thread(target=join, args=(e,)) for e in ("000000000000002|b", "000000000000003|c")
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(10)
    assert sorted(joined.values()) == [False, True]
    assert len(store.slots(task.id).queued) == 2
    # A firing already in the queue (a duplicate delivery) keeps its place.
    assert store.join_queue(task.id, "000000000000001|a", 2)


def test_waiting_firings_send_nothing_and_the_run_that_ends_wakes_the_oldest(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue")
    holder, first = run_holding_slot(services, pipeline, clock, calls, task)
    older, newer = waiting_firings(services, pipeline, clock, task, 2)
    assert queued_ids(pipeline) == []  # waiting sends no message
    clock.advance(60)
    pipeline.tick()
    assert queued_ids(pipeline) == []  # nor does the tick, a minute on

    calls.release.set()
    first.join(10)
    assert queued_ids(pipeline) == [older.id]  # the ended run's hand-over, and nothing else
    deliver(services, [older.id])
    assert queued_ids(pipeline) == [newer.id]
    deliver(services, [newer.id])
    assert queued_ids(pipeline) == []
    ran = [seen["job"] for seen in calls.seen]
    assert ran == [holder.id, older.id, newer.id]
    assert [status(services, j) for j in (older, newer)] == [JobStatus.COMPLETE] * 2


def test_a_cancelled_waiting_firing_does_not_block_the_next(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue", queue_max=2)
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    cancelled, waiting = waiting_firings(services, pipeline, clock, task, 2)
    services.queue.cancel(ACME, cancelled.id)
    calls.release.set()
    first.join(10)
    assert queued_ids(pipeline) == [waiting.id]  # woken past the cancelled one
    (left,) = (
        TaskStore(services.settings, services.tables).slots(task.id).queued
    )  # the dead entry is dropped
    assert left.endswith(f"|{waiting.id}")
    deliver(services, [waiting.id])
    assert status(services, waiting) is JobStatus.COMPLETE
    assert TaskStore(services.settings, services.tables).slots(task.id).queued == []
    # The cancelled one's place is free again.
    clock.advance(1)
    assert len(waiting_firings(services, pipeline, clock, task, 1)) == 1
    assert queued_ids(pipeline) == []


def test_a_full_queue_of_firings_cancelled_after_their_wake_up_does_not_skip_the_next(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue", queue_max=1)
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    (woken,) = waiting_firings(services, pipeline, clock, task, 1)
    calls.release.set()
    first.join(10)
    services.queue.cancel(ACME, woken.id)  # after its hand-over, before its delivery
    deliver(services, queued_ids(pipeline))  # ended: nothing runs, nobody else is woken
    (late,) = waiting_firings(services, pipeline, clock, task, 1)
    assert status(services, late) is JobStatus.COMPLETE
    assert TaskStore(services.settings, services.tables).slots(task.id).queued == []


def test_the_watchdog_starts_a_waiting_firing_whose_hand_over_was_lost(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue")
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    (waiting,) = waiting_firings(services, pipeline, clock, task, 1)
    calls.release.set()
    first.join(10)
    assert queued_ids(pipeline) == [waiting.id]  # the hand-over, lost: taken and dropped
    clock.advance(REDELIVERY_GRACE.total_seconds() - 60)
    pipeline.tick()
    assert queued_ids(pipeline) == []
    clock.advance(60)
    pipeline.tick()
    assert queued_ids(pipeline) == [waiting.id]
    deliver(services, [waiting.id])
    assert status(services, waiting) is JobStatus.COMPLETE


def test_parallelism_2_hands_over_as_many_firings_as_slots_freed(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="queue", parallelism=2)
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    _, second = run_holding_slot(services, pipeline, clock, calls, task)
    one, two, three = waiting_firings(services, pipeline, clock, task, 3)
    calls.release.set()
    first.join(10)
    second.join(10)
    # Both freed slots are handed over (a firing may be woken twice); the third waits.
    assert set(queued_ids(pipeline)) == {one.id, two.id}
    assert status(services, three) is JobStatus.SCHEDULED
    deliver(services, [one.id, two.id])
    assert three.id in queued_ids(pipeline)  # woken by the run that ended first
    deliver(services, [three.id])
    assert [status(services, j) for j in (one, two, three)] == [JobStatus.COMPLETE] * 3


def test_buffer_one_waiting_firing_sends_nothing_and_is_woken(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, action="block", on_overlap="buffer_one")
    _, first = run_holding_slot(services, pipeline, clock, calls, task)
    older, newer = waiting_firings(services, pipeline, clock, task, 2)
    assert status(services, older) is JobStatus.SKIPPED
    assert queued_ids(pipeline) == []
    calls.release.set()
    first.join(10)
    assert queued_ids(pipeline) == [newer.id]
    deliver(services, [newer.id])
    assert status(services, newer) is JobStatus.COMPLETE


class SlotFreedBeforeJoin(TaskStore):
    """The run holding the slot ends between a firing's failed take and its
    join: that run's hand-over sees no entry to wake."""

    def __init__(self, settings: Settings, tables: Tables, holder: str) -> None:
        super().__init__(settings, tables)
        self.holder = holder
        self.hand_over_saw: list[str] | None = None

    def join_queue(self, task_id: str, entry: str, queue_max: int) -> bool:
        if self.hand_over_saw is None:
            self.hand_over_saw = self.give_back_slot(task_id, self.holder).queued
        return super().join_queue(task_id, entry, queue_max)


def test_a_slot_freed_between_the_failed_take_and_the_join_is_taken(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule=YEARLY, on_overlap="queue")
    store = TaskStore(services.settings, services.tables)
    assert store.take_slot(task.id, "running-elsewhere", 1)
    racing = SlotFreedBeforeJoin(services.settings, services.tables, "running-elsewhere")
    executor = executor_over(services, clock, tasks=racing)
    job = trigger(services, clock, task)
    executor.handle_batch([JobMessage(j).body() for j in queued_ids(pipeline)])
    assert racing.hand_over_saw == []  # the run that ended had nobody to wake
    assert status(services, job) is JobStatus.COMPLETE
    assert store.slots(task.id) == SlotState(frozenset(), [], None)


def test_a_firing_whose_message_comes_first_lets_the_earlier_firing_start_first(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
    calls: Calls,
) -> None:
    task = make_task(schedule=YEARLY, on_overlap="queue", action="record")
    earlier = trigger(services, clock, task)
    later = trigger(services, clock, task)
    assert queued_ids(pipeline) == [earlier.id, later.id]

    # SQS keeps no order: the later firing's message is delivered first, with
    # the slot free. It waits for the earlier one instead of taking the slot.
    deliver(services, [later.id])
    assert calls.seen == []
    assert status(services, later) is JobStatus.SCHEDULED

    deliver(services, [earlier.id])  # runs, and when it ends wakes the later one
    pipeline.deliver()
    assert [c["job"] for c in calls.seen] == [earlier.id, later.id]
    assert status(services, later) is JobStatus.COMPLETE


def test_a_schedules_firing_delivered_first_lets_the_one_before_it_start_first(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
    calls: Calls,
) -> None:
    # Two missed firings of a schedule (ids `<task>:<fire ms>`): the newer one
    # finds the firing before it by its id and waits for it.
    make_task(schedule="* * * * *", on_overlap="queue", catch_up="all")
    clock.advance(150)
    pipeline.tick()
    earlier, later = sorted(queued_ids(pipeline))[:2]
    deliver(services, [later])
    assert calls.seen == []
    stored = JobStore(services.settings, services.tables).get(later)
    assert stored is not None and stored.job.status is JobStatus.SCHEDULED

    deliver(services, [earlier])
    pipeline.deliver()
    assert [c["job"] for c in calls.seen][:2] == [earlier, later]


def test_a_backfilled_firing_delivered_first_lets_the_one_before_it_start_first(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
    calls: Calls,
) -> None:
    task = make_task(schedule="0 * * * *", on_overlap="queue")
    start = clock.now() - timedelta(hours=3)
    jobs = services.runs.backfill(ACME, task.id, start, clock.now())
    assert len(jobs) >= 2
    assert sorted(queued_ids(pipeline)) == sorted(j.id for j in jobs)
    first, second = jobs[0].id, jobs[1].id
    deliver(services, [second])
    assert calls.seen == []
    deliver(services, [first])
    pipeline.deliver()
    assert [c["job"] for c in calls.seen][:2] == [first, second]


class ReadCountingJobs(JobStore):
    """The jobs store, noting every job it reads by id."""

    def __init__(self, settings: Settings, tables: Tables) -> None:
        super().__init__(settings, tables)
        self.read: list[str] = []

    def get(self, job_id: str) -> StoredJob | None:
        self.read.append(job_id)
        return super().get(job_id)


def test_a_firing_whose_previous_firing_finished_last_reads_only_its_own_job(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(on_overlap="queue")  # every 10 s
    jobs = ReadCountingJobs(services.settings, services.tables)
    executor = executor_over(services, clock, jobs=jobs)
    fired: list[str] = []
    for _ in range(2):
        clock.advance(10)
        pipeline.tick()
        [job_id] = queued_ids(pipeline)
        fired.append(job_id)
        executor.handle_batch([JobMessage(job_id).body()])
    first, second = fired
    assert [job.status for job in runs(services, task)] == [JobStatus.COMPLETE] * 2
    # The second knew from its task that the first had ended: it read no other job.
    assert jobs.read.count(first) == 1 and second in jobs.read
    assert jobs.read[jobs.read.index(second) :] == [second]
