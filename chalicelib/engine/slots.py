"""Slots: how a job takes one of its task's `parallelism` slots, by `on_overlap`.

A firing that finds its task's slots full waits (`queue`, `buffer_one`), is
skipped, or ends the oldest run (`terminate`); a service run takes one of
`instances` slots. Waiting firings send nothing: the run that frees a slot
wakes them (`hand_over`), and the watchdog instant brings back a lost wake-up.
A slot whose holder ended without giving it back (a crash between the two
writes) is freed when a firing finds the slots full.
"""

from __future__ import annotations

import dataclasses

from chalicelib.clock import Clock, to_ms
from chalicelib.engine.policies import previous_fire_time
from chalicelib.engine.recorder import end_or_ignore
from chalicelib.jobs.model import (
    STARTABLE,
    Job,
    JobStatus,
    Trigger,
    backfill_job_id,
    firing_job_id,
)
from chalicelib.jobs.sqs import REDELIVERY_GRACE, JobMessage, JobQueue
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.storage.task_slots import SlotState
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Kind, OnOverlap, Task


def queue_entry(stored: StoredJob) -> str:
    """A firing's place in its task's queue: fire time first, so entries sort
    oldest first as strings."""
    return f"{to_ms(stored.job.scheduled_for):015d}|{stored.job.id}"


class Slots:
    """The slot policy of one executor: `take` a slot for a job about to start,
    `hand_over` freed slots to waiting firings, `pass_on_turn` of a firing that
    ended without running."""

    def __init__(self, jobs: JobStore, tasks: TaskStore, queue: JobQueue, clock: Clock) -> None:
        self._jobs = jobs
        self._tasks = tasks
        self._queue = queue
        self._clock = clock

    def take(self, stored: StoredJob, task: Task) -> bool:
        """Apply `on_overlap` against `parallelism`. True when the job may start."""
        job = stored.job
        if task.kind is Kind.SERVICE:
            return self._take_service_slot(stored, task)
        policy = task.on_overlap
        if policy is OnOverlap.ALLOW:
            return self._tasks.take_slot(task.id, job.id, None)
        if policy is OnOverlap.QUEUE:
            return self._take_slot_in_turn(stored, task)
        if self._tasks.take_slot(task.id, job.id, task.parallelism):
            if policy is OnOverlap.BUFFER_ONE:
                self._tasks.unbuffer(task.id, job.id)
            return True
        if self._free_stale_slots(task) and self._tasks.take_slot(
            task.id, job.id, task.parallelism
        ):
            return True
        if policy is OnOverlap.SKIP:
            end_or_ignore(
                self._jobs, self._clock, stored, JobStatus.SKIPPED, "skipped: parallelism reached"
            )
            return False
        if policy is OnOverlap.TERMINATE:
            self._terminate_oldest(task)
            return self._tasks.take_slot(task.id, job.id, None)
        if policy is OnOverlap.BUFFER_ONE:
            _, waiting = self._tasks.active_runs(task.id)
            if waiting is not None and waiting != job.id and self._is_newer(waiting, job.id):
                end_or_ignore(
                    self._jobs,
                    self._clock,
                    stored,
                    JobStatus.SKIPPED,
                    "skipped: a newer firing waits",
                )
                return False
            displaced = self._tasks.buffer(task.id, job.id)
            if displaced:
                older = self._jobs.get(displaced)
                if older is not None and older.job.status in STARTABLE:
                    end_or_ignore(
                        self._jobs,
                        self._clock,
                        older,
                        JobStatus.SKIPPED,
                        "skipped: a newer firing waits",
                    )
            # Take again once buffered: a slot that came free since the failed take
            # was given back by a run that found no waiting firing to wake.
            if self._tasks.take_slot(task.id, job.id, task.parallelism):
                self._tasks.unbuffer(task.id, job.id)
                return True
        return self._wait_for_slot(stored)

    def _wait_for_slot(self, stored: StoredJob) -> bool:
        """Wait as `scheduled`, sending nothing: the run that frees a slot wakes
        the firing (`hand_over`), and the watchdog instant REDELIVERY_GRACE from
        now brings it back if that wake-up is lost. False (it does not start now)."""
        self._jobs.wait_for_slot(stored, self._clock.now() + REDELIVERY_GRACE)
        return False

    def _take_slot_in_turn(self, stored: StoredJob, task: Task) -> bool:
        """`on_overlap: queue`: firings take free slots oldest first.

        A firing that finds no slot joins the task's queue; a free slot then
        goes to the oldest waiting firing, not to whichever newer firing comes
        by first (which would starve a waiting one when runs take longer than
        the schedule's period). The fast path, an empty queue and a free slot,
        is one conditional write. At most `queue_max` firings wait: joining is
        a conditional write on the queue's size, and a firing that finds it
        full ends `skipped`.
        """
        job = stored.job
        entry = queue_entry(stored)
        # SQS does not keep order: the previous firing's message may come after
        # this one's. While that firing has yet to start, this one queues
        # behind it instead of taking the free slot first.
        before = self._earlier_run_pending(stored, task)
        if not before and self._tasks.take_slot(task.id, job.id, task.parallelism, queue_turn=""):
            return True  # the queue is empty: nothing to leave
        joined = self._tasks.join_queue(task.id, entry, task.queue_max)
        if not joined and not self._join_after_full(task, entry):
            error = f"skipped: queue full ({task.queue_max} firings wait)"
            end_or_ignore(self._jobs, self._clock, stored, JobStatus.SKIPPED, error)
            return False
        # Take again once in the queue: a slot that came free since the failed
        # take was given back by a run that saw no entry of ours to wake.
        state = self._tasks.slots(task.id)
        holders = state.active - {job.id}
        free = task.parallelism - len(holders)
        ahead = self._waiting_ahead(task, entry, state, limit=max(free, 1))
        if ahead == 0 and free <= 0 and self._free_stale_slots(task, holders):
            free = 1
        if (
            not before
            and ahead < free
            and self._tasks.take_slot(task.id, job.id, task.parallelism, queue_turn=entry)
        ):
            self._tasks.leave_queue(task.id, entry)
            return True
        return self._wait_for_slot(stored)

    def _earlier_run_pending(self, stored: StoredJob, task: Task) -> bool:
        """Whether the task's run just before this one has yet to start (its
        message not yet delivered): then it goes first, and wakes this one when
        it ends. Not with `queue_max` 0, where nothing may wait."""
        if task.queue_max == 0:
            return False
        earlier = self._run_before(stored.job, task)
        return earlier is not None and earlier.job.status in STARTABLE

    def _run_before(self, job: Job, task: Task) -> StoredJob | None:
        """The task's run just before `job`, if it may not have ended. A
        schedule's firing (and a backfilled one) has a deterministic id: when
        it is the task's last finished run (the steady state: each run ends
        before the next fires), nothing is read; otherwise it is one GetItem of
        the previous fire time's id. Any other run looks on the task's
        `by_task` index (one Query of one item on DynamoDB)."""
        if job.trigger in (Trigger.CRON, Trigger.CATCH_UP, Trigger.BACKFILL):
            at = previous_fire_time(task, job.scheduled_for)
            if at is None:
                return None
            if job.trigger is Trigger.BACKFILL:
                previous = backfill_job_id(task.id, at)
            else:
                previous = firing_job_id(task.id, at)
            if previous == task.last_run_id:
                return None  # it finished: nothing to wait for
            return self._jobs.get(previous)
        return self._jobs.run_before(task.id, job.scheduled_for)

    def _join_after_full(self, task: Task, entry: str) -> bool:
        """The queue was full. With a slot free as well, its entries may be of
        firings that ended after they were woken (cancelled before their
        delivery), and no run is left to drop them: hand the free slots over,
        which drops dead entries, and try to join once more."""
        if task.queue_max == 0:
            return False
        state = self._tasks.slots(task.id)
        if len(state.active) >= task.parallelism:
            return False  # the next run to end drops any dead entries
        self.hand_over(task, state)
        return self._tasks.join_queue(task.id, entry, task.queue_max)

    def _waiting_ahead(self, task: Task, entry: str, state: SlotState, *, limit: int) -> int:
        """How many firings older than `entry` still wait (counted up to `limit`);
        drops entries of firings that ended while waiting (cancelled, expired)."""
        ahead = 0
        for other in state.queued:
            if other >= entry or ahead >= limit:
                break
            job_id = other.partition("|")[2]
            if job_id in state.active:
                continue  # it holds a slot already and is leaving the queue
            waiting = self._jobs.get(job_id)
            if waiting is not None and waiting.job.status in STARTABLE:
                ahead += 1
            else:
                self._tasks.leave_queue(task.id, other)
        return ahead

    def hand_over(self, task: Task, state: SlotState) -> None:
        """Slots came free (`state` as the write that freed them left it): wake
        as many waiting firings as slots are free, oldest first. Waiting firings
        send nothing, so this is what starts them (the watchdog is the backstop).
        Entries of firings that ended while waiting are dropped on the way, so a
        dead entry never takes a live one's wake-up; a duplicate wake-up is
        harmless (the firing finds it is not its turn, or that it runs)."""
        free = task.parallelism - len(state.active)
        for entry in state.queued:
            if free <= 0:
                return
            job_id = entry.partition("|")[2]
            if job_id in state.active:
                continue
            waiting = self._jobs.get(job_id)
            if waiting is None or waiting.job.status not in STARTABLE:
                self._tasks.leave_queue(task.id, entry)
                continue
            self._queue.send(JobMessage(job_id), 0)
            free -= 1
        if free > 0 and state.waiting_job is not None and state.waiting_job not in state.active:
            self._queue.send(JobMessage(state.waiting_job), 0)  # buffer_one's one firing

    def pass_on_turn(self, stored: StoredJob, task: Task) -> None:
        """A firing ended without running (its task disabled, its deadline past),
        perhaps woken for a free slot: drop its queue entry and wake the next
        waiting firing in its place."""
        if task.on_overlap not in (OnOverlap.QUEUE, OnOverlap.BUFFER_ONE):
            return
        entry = queue_entry(stored)
        state = self._tasks.slots(task.id)
        if entry in state.queued:
            self._tasks.leave_queue(task.id, entry)
            state = dataclasses.replace(state, queued=[e for e in state.queued if e != entry])
        elif state.waiting_job != stored.job.id:
            return  # it was not waiting: no wake-up to pass on
        self.hand_over(task, state)

    def _take_service_slot(self, stored: StoredJob, task: Task) -> bool:
        """A service run starts while fewer than `instances` runs are active; a
        run beyond that (after `instances` went down, or a stray restart) is
        `skipped`, which ends its lineage. `on_overlap` does not apply."""
        job_id = stored.job.id
        if self._tasks.take_slot(task.id, job_id, task.instances):
            return True
        if self._free_stale_slots(task) and self._tasks.take_slot(task.id, job_id, task.instances):
            return True
        reason = f"skipped: the service already runs {task.instances} instance(s)"
        end_or_ignore(self._jobs, self._clock, stored, JobStatus.SKIPPED, reason)
        return False

    def _is_newer(self, other_id: str, job_id: str) -> bool:
        other = self._jobs.get(other_id)
        mine = self._jobs.get(job_id)
        if other is None or mine is None or other.job.status not in STARTABLE:
            return False
        return other.job.scheduled_for > mine.job.scheduled_for

    def _free_stale_slots(self, task: Task, holders: frozenset[str] | None = None) -> bool:
        """Give back slots held by jobs that ended or vanished (a crash between a
        run's end and its slot's release). True if any slot was freed."""
        if holders is None:
            holders = frozenset(self._tasks.active_runs(task.id)[0])
        freed = False
        for holder in holders:
            stored = self._jobs.get(holder)
            if stored is None or stored.job.status.terminal:
                self._tasks.give_back_slot(task.id, holder)
                freed = True
        return freed

    def _terminate_oldest(self, task: Task) -> None:
        holders, _ = self._tasks.active_runs(task.id)
        running = [s for s in (self._jobs.get(h) for h in holders) if s is not None]
        if not running:
            return
        oldest = min(running, key=lambda s: s.job.started_at or s.job.scheduled_for)
        self._jobs.request_cancel(oldest.job.id)
        self._tasks.give_back_slot(task.id, oldest.job.id)
