"""The executor: claim a job, apply its task's policies, run its action, record it.

One SQS message carries one job id. Everything the executor decides is made
safe against duplicate deliveries and crashes by conditional writes:
a job starts only through `JobStore.claim` from a startable status (or from
`active` once its lease ran out), and a finished job is never touched again.

Batch failures: `handle_batch` never raises for one record; it answers the
records SQS must deliver again, which the handler reports as partial batch
failures (the event source has `ReportBatchItemFailures`; docs/deploy.md), so
one record never costs its batch a re-run. A record that meets an
infrastructure error is re-sent as a fresh message with a growing delay,
counted in the message (seconds, where a reported record would wait out the
queue's visibility timeout); after MAX_REDELIVERIES its job is failed with the
error. Only when that re-send fails too is the record reported: SQS delivers it
again after the visibility timeout, and its redrive policy (maxReceiveCount)
moves it to the dead-letter queue at last, whose handler fails the job. A record
whose run would not fit in the invocation's remaining time is not started but
handed back the same way. The job's watchdog instant in the `due` index brings
back whatever is lost besides, so nothing loops forever or disappears.

This module holds the batch lanes and one job's way through its checks; the
parts it composes do the rest: `slots` (on_overlap and parallelism),
`runner` (the action under its deadline), `recorder` (outcomes, retries, the
end of a job that does not run) and `restarts` (a service's next run).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.actions import Registry
from chalicelib.clock import Clock
from chalicelib.engine.dispatch import Dispatcher
from chalicelib.engine.recorder import Recorder, Sleeper, end_or_ignore
from chalicelib.engine.restarts import Restarts
from chalicelib.engine.runner import Runner
from chalicelib.engine.slots import Slots
from chalicelib.jobs.model import STARTABLE, JobStatus, Trigger, is_user_job_key
from chalicelib.jobs.sqs import ARRIVE_EARLY_S, JobMessage, JobQueue, delay_until
from chalicelib.settings import Settings
from chalicelib.storage.attempts import AttemptStore
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import EXECUTOR_TIMEOUT_S, MAX_RUN_TIMEOUT_S, RUN_MARGIN_S, Task

if TYPE_CHECKING:  # approvals imports this module
    from chalicelib.approvals.service import ApprovalService

logger = logging.getLogger("tickwork.executor")

#: Added to a run's timeout to make its lease: claiming and recording. A run
#: starts only with its timeout plus this margin left in its invocation, so its
#: lease ends by the invocation's deadline (EXECUTOR_TIMEOUT_S), and that comes
#: long before the jobs queue's visibility timeout (6 x 900 s, infra/resources.py):
#: a message SQS delivers again after an executor died finds that lease run out.
LEASE_MARGIN_S = RUN_MARGIN_S
#: A message more than this early goes back to SQS; less, and the executor waits.
MAX_EARLY_WAIT_S = ARRIVE_EARLY_S + 1.0
#: Re-sends of one message after infrastructure errors before the job is failed.
MAX_REDELIVERIES = 5

#: Seconds left in the executor's invocation (Lambda's `get_remaining_time_in_millis`).
RemainingTime = Callable[[], float]


def _lane(body: str) -> str:
    """Records of one task's firings share a lane; anything else has its own."""
    try:
        job_id = JobMessage.parse(body).job_id
    except ValueError:
        return body
    if is_user_job_key(job_id):  # a user's `default/a:b` is no firing of `default/a`
        return job_id
    task_id, sep, _ = job_id.partition(":")
    return task_id if sep else job_id


def _fire_order(body: str) -> tuple[int, str]:
    try:
        job_id = JobMessage.parse(body).job_id
    except ValueError:
        return (0, body)
    if is_user_job_key(job_id):
        return (0, job_id)
    _, _, fire_ms = job_id.partition(":")
    head = fire_ms.split(":")[0]
    return (int(head) if head.isdigit() else 0, job_id)


class Executor:
    """Handles SQS batches of job messages: each job is checked, given a slot,
    claimed, run and recorded (see the module doc)."""

    def __init__(
        self,
        jobs: JobStore,
        tasks: TaskStore,
        queue: JobQueue,
        actions: Registry,
        clock: Clock,
        sleep: Sleeper,
        *,
        settings: Settings,
        approvals: ApprovalService,
        attempts: AttemptStore,
    ) -> None:
        self._approvals = approvals
        self._jobs = jobs
        self._tasks = tasks
        self._queue = queue
        self._clock = clock
        self._sleep = sleep
        self._slots = Slots(jobs, tasks, queue, clock)
        self._runner = Runner(jobs, tasks, actions, clock, sleep, settings=settings)
        dispatcher = Dispatcher(jobs, queue, approvals, clock, lookahead_s=settings.lookahead_s)
        self._recorder = Recorder(
            jobs,
            tasks,
            attempts,
            queue,
            clock,
            sleep,
            hand_over=self._slots.hand_over,
            restarts=Restarts(tasks, queue, clock, dispatcher),
        )

    # ------------------------------------------------------------ batches
    def handle_batch(
        self, bodies: list[str], remaining_s: RemainingTime | None = None
    ) -> list[int]:
        """Handle one SQS batch; never raises for a single record (see module doc).
        Returns the indexes in `bodies` of the records SQS must deliver again.

        Records of different tasks run side by side: each may wait for its own
        second, and one slow action must not make the others late. Firings of
        one task (ids `<task id>:<fire ms>`) run one after another, oldest
        first, as catch-up `all` promises. With `remaining_s` (the invocation's
        time left), a run starts only if its timeout fits in it.
        """
        lanes: dict[str, list[int]] = {}
        for index, body in enumerate(bodies):
            lanes.setdefault(_lane(body), []).append(index)

        def handle_lane(indexes: list[int]) -> list[int]:
            ordered = sorted(indexes, key=lambda i: _fire_order(bodies[i]))
            return [i for i in ordered if self._handle_record(bodies[i], remaining_s)]

        if len(lanes) == 1:
            return handle_lane(next(iter(lanes.values())))
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="lane") as pool:
            failed = [i for lane in pool.map(handle_lane, lanes.values()) for i in lane]
        return sorted(failed)

    def _handle_record(self, body: str, remaining_s: RemainingTime | None) -> bool:
        """Handle one record; True if SQS must deliver it again."""
        try:
            message = JobMessage.parse(body)
        except ValueError:
            logger.error("dropping a message that is not a job: %r", body[:200])
            return False
        try:
            self.handle(message, remaining_s)
        except Exception as exc:  # one record must not fail its batch
            logger.exception("job %s: infrastructure error", message.job_id)
            return not self._redeliver(message, exc)
        return False

    def _redeliver(self, message: JobMessage, exc: Exception) -> bool:
        """Re-send a message after an infrastructure error, or fail its job after
        MAX_REDELIVERIES. False when neither could be done: SQS must deliver it again."""
        try:
            if message.redeliveries >= MAX_REDELIVERIES:
                stored = self._jobs.get(message.job_id)
                if stored is not None and not stored.job.status.terminal:
                    end_or_ignore(
                        self._jobs,
                        self._clock,
                        stored,
                        JobStatus.FAILED,
                        f"infrastructure error: {exc}",
                    )
                return True
            again = message.again()
            self._queue.send(again, delay_s=2**again.redeliveries)
        except Exception:
            logger.exception("job %s: not re-sent; handed back to SQS", message.job_id)
            return False
        return True

    def handle_dead_letters(self, bodies: list[str], receives: list[int]) -> None:
        """Messages SQS gave up on: their jobs end `failed` with the reason."""
        for body, count in zip(bodies, receives, strict=True):
            try:
                message = JobMessage.parse(body)
            except ValueError:
                logger.error("dead letter that is not a job: %r", body[:200])
                continue
            stored = self._jobs.get(message.job_id)
            if stored is None or stored.job.status.terminal:
                continue
            running = stored.job.status is JobStatus.ACTIVE and (
                stored.lease_until is not None and stored.lease_until > self._clock.now()
            )
            if running:  # only a job whose executor is gone may be failed here
                continue
            reason = f"dead-lettered: message received {count} times without completing"
            task = self._tasks.get(stored.job.task_id) if stored.job.task_id else None
            # Also listed among the dead letters (GET /v1/queue/dead-letters) until redriven.
            self._recorder.end_job(
                stored, JobStatus.FAILED, reason, task, dead_letter_receives=count
            )

    # ------------------------------------------------------------ one job
    def handle(self, message: JobMessage, remaining_s: RemainingTime | None = None) -> None:
        # The row its creator sent saves the read; a stale one is caught by the
        # conditional writes below, as a read that raced a change would be.
        stored = self._jobs.from_row(message.job_id, message.row) if message.row else None
        if stored is None:
            stored = self._jobs.get(message.job_id)
        if stored is None:
            logger.warning("job %s does not exist; message dropped", message.job_id)
            return
        job = stored.job
        now = self._clock.now()
        if job.status.terminal or job.status is JobStatus.AWAITING_APPROVAL:
            return  # a duplicate delivery, or not ours to start
        if job.status is JobStatus.ACTIVE and stored.lease_until and stored.lease_until > now:
            return  # running elsewhere: a duplicate delivery
        wait_s = (job.scheduled_for - now).total_seconds()
        if wait_s > MAX_EARLY_WAIT_S:
            self._queue.send(message, delay_until(job.scheduled_for, now))
            return
        if wait_s > 0:
            self._sleep(wait_s)  # never early (DESIGN §2.8)

        task = self._tasks.get(job.task_id) if job.task_id else None
        if job.task_id and task is None and job.status in STARTABLE:
            end_or_ignore(self._jobs, self._clock, stored, JobStatus.CANCELLED, "task deleted")
            return
        scheduled_firing = job.trigger in (Trigger.CRON, Trigger.CATCH_UP, Trigger.RESTART)
        if task is not None and not task.enabled and scheduled_firing and job.status in STARTABLE:
            # Fired ahead within the lookahead (or a service restart), then the
            # task was disabled.
            end_or_ignore(self._jobs, self._clock, stored, JobStatus.CANCELLED, "task disabled")
            self._slots.pass_on_turn(stored, task)
            return
        if job.status in STARTABLE and job.expires_at is not None and now > job.expires_at:
            end_or_ignore(
                self._jobs,
                self._clock,
                stored,
                JobStatus.EXPIRED,
                "expired: not started before its deadline",
            )
            if task is not None:
                self._slots.pass_on_turn(stored, task)
            return
        if job.status in STARTABLE and self._approvals.needs_hold(job):
            self._approvals.hold(stored)  # the decision (or expiry) moves it on
            return
        if job.status is JobStatus.ACTIVE and job.attempt >= job.max_attempts:
            # Its executor died on the last attempt: nothing left to try.
            self._recorder.end_job(
                stored, JobStatus.FAILED, "lease expired: the executor stopped", task
            )
            return
        if remaining_s is not None and not self._fits(stored, message, remaining_s(), task):
            return
        if task is not None and not self._slots.take(stored, task):
            return
        lease_until = self._clock.now() + timedelta(
            seconds=stored.policy.timeout_s + LEASE_MARGIN_S
        )
        if job.status is JobStatus.ACTIVE:
            self._recorder.lost(stored)  # its executor stopped: this is the next attempt
        try:
            claimed = self._jobs.claim(stored, now=self._clock.now(), lease_until=lease_until)
        except StorageConflict:
            again = self._claim_after_conflict(stored, task, lease_until)
            if again is None:
                return
            claimed = again
        result = self._runner.run(claimed)
        self._recorder.record(claimed, result, task)

    def _fits(
        self, stored: StoredJob, message: JobMessage, remaining_s: float, task: Task | None
    ) -> bool:
        """Whether the run, its claim and its record fit in the invocation's
        remaining time. One that does not is sent again at once, for an
        invocation that has the time; one that no invocation could hold (a
        timeout stored before the bound existed) fails."""
        needed_s = stored.policy.timeout_s + LEASE_MARGIN_S
        if needed_s <= remaining_s:
            return True
        if needed_s > EXECUTOR_TIMEOUT_S:
            reason = (
                f"timeout {stored.policy.timeout_s:g} s is above {MAX_RUN_TIMEOUT_S} s, "
                "what one executor invocation holds"
            )
            self._recorder.end_job(stored, JobStatus.FAILED, reason, task)
            return False
        logger.info(
            "job %s: %.0f s left in this invocation, its run needs %.0f s; sent again",
            stored.job.id,
            remaining_s,
            needed_s,
        )
        self._queue.send(message, 0)
        return False

    def _claim_after_conflict(
        self, stored: StoredJob, task: Task | None, lease_until: datetime
    ) -> StoredJob | None:
        """The claim met a changed job. A woken firing whose first delivery was
        just recording its wait (`queued` -> `scheduled`) is still startable and
        holds the slot it was woken for: claim it as it is now, or nobody would
        start it until the watchdog. A job another delivery claimed is that
        delivery's; one that ended gives back the slot taken for it."""
        fresh = self._jobs.get(stored.job.id)
        if fresh is not None and fresh.job.status in STARTABLE:
            with contextlib.suppress(StorageConflict):
                return self._jobs.claim(fresh, now=self._clock.now(), lease_until=lease_until)
            return None
        if task is not None and (fresh is None or fresh.job.status.terminal):
            self._slots.hand_over(task, self._tasks.give_back_slot(task.id, stored.job.id))
        return None
