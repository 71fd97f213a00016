"""Recording: a finished run's outcome, its retry, and the end of a job that
does not run (RunResult -> the jobs table, the task's slots and run history).

Every write after the action ran is made `durably`: an infrastructure error
is retried in place, since giving up would leave the job to its lease and so
run the action again. A job that moved on meanwhile (a StorageConflict) keeps
its new state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from chalicelib.actions import Report
from chalicelib.clock import Clock
from chalicelib.engine.policies import backoff_delay_s
from chalicelib.engine.restarts import Restarts
from chalicelib.jobs.model import AttemptStatus, JobStatus, is_service_job_id
from chalicelib.jobs.sqs import MAX_DELAY_S, REDELIVERY_GRACE, JobMessage, JobQueue, delay_until
from chalicelib.storage.attempts import AttemptStore
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import Outcome, StoredJob
from chalicelib.storage.task_slots import SlotState
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Backoff, Task

logger = logging.getLogger("tickwork.executor")

#: Largest stored result, in bytes of JSON (DESIGN §6).
MAX_RESULT_BYTES = 64 * 1024
#: Tries of each write that records a finished run, and the first pause between them.
RECORD_ATTEMPTS = 6
RECORD_BACKOFF_S = 0.05

Sleeper = Callable[[float], None]
#: Slots came free (`state` as the write that freed them left it): wake waiting firings.
HandOver = Callable[[Task, SlotState], None]
T = TypeVar("T")


@dataclass(frozen=True)
class RunResult:
    """What one run of an action came to: the runner's answer, which `Recorder.record` writes."""

    status: JobStatus
    report: Report
    error: str | None
    log: str
    log_truncated: bool


def cap_result(result: Any) -> tuple[Any, bool]:
    """A result that fits MAX_RESULT_BYTES, and whether it was cut."""
    try:
        text = json.dumps(result, default=str)
    except (TypeError, ValueError):
        text = json.dumps(repr(result))
        result = json.loads(text)
    if len(text.encode()) <= MAX_RESULT_BYTES:
        return json.loads(text), False
    head = text.encode()[: MAX_RESULT_BYTES - 200].decode(errors="ignore")
    return {"truncated": True, "size": len(text.encode()), "head": head}, True


def _cancelled(run: RunResult) -> RunResult:
    """A run whose action returned after a cancel request came: it ends `cancelled`."""
    return dataclasses.replace(run, status=JobStatus.CANCELLED, error="cancelled")


def _outcome(run: RunResult) -> Outcome:
    result, cut = cap_result(run.report.result)
    return Outcome(
        status=run.status,
        result=result,
        result_truncated=cut,
        error=run.error,
        success_num=run.report.success_num,
        failed_num=run.report.failed_num,
        skip_num=run.report.skip_num,
    )


def durably(step: Callable[[], T], sleep: Sleeper) -> T:
    """Run one write that records a run whose action already ran, retrying
    infrastructure errors (throttling, a dropped connection) in place: giving
    up would leave the job to its lease, and so run the action again.
    A StorageConflict is an answer, not a failure, and is not retried."""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            return step()
        except StorageConflict:
            raise
        except Exception:
            if attempt == RECORD_ATTEMPTS:
                raise
            logger.warning("recording a run: attempt %d failed; again", attempt, exc_info=True)
            sleep(RECORD_BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def end_or_ignore(
    jobs: JobStore,
    clock: Clock,
    stored: StoredJob,
    status: JobStatus,
    error: str | None,
    *,
    dead_letter_receives: int | None = None,
) -> None:
    """End a job in `status`; a job that moved on meanwhile keeps its new state."""
    with contextlib.suppress(StorageConflict):
        jobs.end(
            stored,
            status,
            now=clock.now(),
            error=error,
            dead_letter_receives=dead_letter_receives,
        )


class Recorder:
    """Records what became of a job: a run's outcome or its retry, or the end
    of a job that is not running; frees its slot (`hand_over` wakes the next
    waiting firing) and sends a service run's restart."""

    def __init__(
        self,
        jobs: JobStore,
        tasks: TaskStore,
        attempts: AttemptStore,
        queue: JobQueue,
        clock: Clock,
        sleep: Sleeper,
        *,
        hand_over: HandOver,
        restarts: Restarts,
    ) -> None:
        self._jobs = jobs
        self._tasks = tasks
        self._attempts = attempts
        self._queue = queue
        self._clock = clock
        self._sleep = sleep
        self._hand_over = hand_over
        self._restarts = restarts

    def record(self, stored: StoredJob, run: RunResult, task: Task | None) -> None:
        job = stored.job
        now = self._clock.now()
        if run.status is JobStatus.FAILED and job.attempt < job.max_attempts:
            delay = backoff_delay_s(
                Backoff(stored.policy.retry_backoff), stored.policy.retry_delay_s, job.attempt
            )
            at = now + timedelta(seconds=delay)
            # Short delays ride on an SQS delay; longer ones wait for the tick.
            via_sqs = delay < MAX_DELAY_S
            self._keep_attempt(stored, run, now)
            self._durably(
                lambda: self._jobs.retry_later(
                    stored,
                    at=at,
                    due_at=at + REDELIVERY_GRACE if via_sqs else at,
                    error=run.error or "failed",
                )
            )
            if task is not None:
                freed = self._durably(lambda: self._tasks.give_back_slot(task.id, job.id))
                self._durably(lambda: self._hand_over(task, freed))
            if via_sqs:
                self._durably(lambda: self._queue.send(JobMessage(job.id), delay_until(at, now)))
            return
        # A service run's restart is written ahead of its finish and depends on
        # how it ended: it reads a late cancel request first.
        late_cancel = (
            run.status is JobStatus.COMPLETE
            and is_service_job_id(job.id)
            and self._durably(lambda: self._jobs.cancel_requested(job.id))
        )
        if late_cancel:
            run = _cancelled(run)
        started = job.started_at or now
        logger.info(
            "%s %s attempt %d: started %.0f ms after its time, ran %.0f ms",
            job.id,
            run.status.value,
            job.attempt,
            (started - job.scheduled_for).total_seconds() * 1000,
            (now - started).total_seconds() * 1000,
        )
        # Write-ahead, as the tick fires: the restart exists before this run
        # ends, and is sent once this run's slot is free for it.
        restart = self._durably(lambda: self._restarts.create(stored, run.status, task))
        self._keep_attempt(stored, run, now)
        status = run.status
        try:
            status = self._finish(stored, run, now)
        except StorageConflict:
            logger.warning("job %s changed while running; outcome not recorded", job.id)
        if task is not None:
            ended = self._durably(
                lambda: self._tasks.end_run(
                    task.id,
                    job.id,
                    status=status.value,
                    at=job.started_at or now,
                    failed=status is JobStatus.FAILED,
                    pause_after=task.pause_after_failures,
                )
            )
            self._durably(lambda: self._hand_over(task, ended.slots))
            if ended.kept > task.keep_runs:
                self._prune(task, ended.kept - task.keep_runs)
        self._restarts.send(restart)

    def _durably(self, step: Callable[[], T]) -> T:
        return durably(step, self._sleep)

    def _keep_attempt(self, stored: StoredJob, run: RunResult, now: datetime) -> None:
        """Keep the attempt with its log, before the job's own write: a reader
        who sees the job move on finds the attempt it ended."""
        self._durably(
            lambda: self._attempts.record(
                stored,
                AttemptStatus(run.status.value),
                now=now,
                error=run.error,
                log=run.log,
                log_truncated=run.log_truncated,
            )
        )

    def lost(self, stored: StoredJob) -> None:
        """Keep the attempt of an `active` job whose executor stopped before it
        recorded it (the lease ran out): before the job starts again or ends."""
        self._attempts.lost(stored, now=self._clock.now())

    def _finish(self, stored: StoredJob, run: RunResult, now: datetime) -> JobStatus:
        """Write the run's outcome; returns the status it ended in, or
        StorageConflict if the job moved on meanwhile. A run that
        completed finishes only if no cancel request came meanwhile (the
        request the watcher did not see, DESIGN §5: a running job asked to stop
        ends `cancelled` when its action returns): the condition reads the flag,
        so the common case costs no read."""
        complete = run.status is JobStatus.COMPLETE
        try:
            self._durably(
                lambda: self._jobs.finish(
                    stored, _outcome(run), now=now, unless_cancel_requested=complete
                )
            )
            return run.status
        except StorageConflict:
            if not complete:
                raise
        # The condition failed: a cancel request came, or the job moved on.
        fresh = self._durably(lambda: self._jobs.get(stored.job.id))
        asked_to_stop = (
            fresh is not None
            and fresh.job.status is JobStatus.ACTIVE
            and fresh.job.attempt == stored.job.attempt
            and fresh.job.cancel_requested
        )
        if asked_to_stop:
            self._keep_attempt(stored, _cancelled(run), now)
            cancelled = _outcome(_cancelled(run))
            self._durably(lambda: self._jobs.finish(stored, cancelled, now=now))
            return JobStatus.CANCELLED
        raise StorageConflict("changed while running")

    def _prune(self, task: Task, excess: int) -> None:
        """Delete the task's oldest finished runs beyond `keep_runs`. Best effort:
        a failure leaves them to the next run's pruning and to `keep_for`'s TTL."""
        try:
            deleted = self._jobs.prune_runs(task.id, excess)
            if deleted:
                self._tasks.forget_runs(task.id, len(deleted))
                self._attempts.forget(deleted)
        except Exception:
            logger.exception("task %s: pruning old runs failed", task.id)

    def end_job(
        self,
        stored: StoredJob,
        status: JobStatus,
        error: str,
        task: Task | None,
        *,
        dead_letter_receives: int | None = None,
    ) -> None:
        """End a job that is not running now, freeing its slot and restarting a
        service run as its `restart` policy says."""
        restart = self._restarts.create(stored, status, task)
        if stored.job.status is JobStatus.ACTIVE:  # its executor stopped
            self.lost(stored)
        end_or_ignore(
            self._jobs,
            self._clock,
            stored,
            status,
            error,
            dead_letter_receives=dead_letter_receives,
        )
        if task is not None:
            self._hand_over(task, self._tasks.give_back_slot(task.id, stored.job.id))
        self._restarts.send(restart)
