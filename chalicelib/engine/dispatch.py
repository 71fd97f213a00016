"""One way a job is made and handed on (DESIGN §2, §5).

Every new job — a cron firing, a catch-up, a trigger, a backfill, a queue
submission, a manual retry, a redrive, a service restart — goes through
`Dispatcher.dispatch`, and a job released by its approval through the same
hand-on rule (`handoff`). The rules, the same for all:

- **Dedup by id.** A job whose id is stored is not made again: the caller gets
  the stored one (`Dispatched.created` is false) and decides what a repeat
  means (a repeated backfill answers what exists; a queue submission with a
  taken `job_id` is 409).
- **Approval when due.** A job that needs approval (`ApprovalService.required`)
  and may start now is born `awaiting_approval`, with its request, in one
  transaction; one that starts later is held by the executor when its time
  comes. Either way a request is about a run that would start now.
- **Soon through SQS, later through the `due` index.** A job that starts
  within the tick's lookahead is stored with its watchdog instant at its time
  (or now) plus REDELIVERY_GRACE and sent with DelaySeconds up to its time; one
  that starts later is stored `scheduled` with its watchdog instant at its
  time, and the tick sends it when that comes within its lookahead. Nothing is
  bounced through SQS every 15 minutes.
- **Nothing lost between the write and the send.** A send that fails after the
  write moves the watchdog to now, so the next tick sends it
  (`handoff.send_stored_job`); the tick, which sends a group's messages ten to a
  batch, takes the messages back (`send=False`) and advances its tasks only
  once SQS took them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.approvals.model import approval_request_id
from chalicelib.clock import Clock, to_ms
from chalicelib.engine.handoff import send_stored_job
from chalicelib.jobs.model import Job, JobStatus
from chalicelib.jobs.sqs import REDELIVERY_GRACE, JobMessage, JobQueue, delay_until, with_row
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import RunPolicy, StoredJob

if TYPE_CHECKING:
    from chalicelib.approvals.service import ApprovalService


@dataclass(frozen=True)
class Handoff:
    """How a job that may run is handed on: its watchdog instant, and the
    DelaySeconds of its SQS message (None: the tick sends it later)."""

    due_at: datetime
    delay_s: int | None


def handoff(at: datetime, now: datetime, lookahead: timedelta) -> Handoff:
    """The hand-on rule for a job due at `at` (see the module doc)."""
    if at <= now + lookahead:
        return Handoff(max(at, now) + REDELIVERY_GRACE, delay_until(at, now))
    return Handoff(at, None)


@dataclass(frozen=True)
class Dispatched:
    #: The job as stored: this call's, or the one already stored under its id.
    job: Job
    created: bool
    #: The message still to send (only with `send=False`), and its DelaySeconds.
    message: tuple[JobMessage, int] | None = None
    #: The stored job when it was not created (None if it vanished meanwhile).
    existing: StoredJob | None = None


class Dispatcher:
    def __init__(
        self,
        jobs: JobStore,
        queue: JobQueue,
        approvals: ApprovalService,
        clock: Clock,
        *,
        lookahead_s: float,
    ) -> None:
        self._jobs = jobs
        self._queue = queue
        self._approvals = approvals
        self._clock = clock
        self._lookahead = timedelta(seconds=lookahead_s)

    def handoff(self, at: datetime, now: datetime) -> Handoff:
        return handoff(at, now, self._lookahead)

    def dispatch(
        self, job: Job, policy: RunPolicy, *, restarts: int = 0, send: bool = True
    ) -> Dispatched:
        """Store a new job and hand it on, by the module's rules. `job.status` is
        set here (awaiting_approval, queued or scheduled). With `send=False`
        the message is returned instead of sent."""
        now = self._clock.now()
        if job.scheduled_for <= now and self._approvals.required(job):
            return self._born_held(job, policy, now, restarts)
        plan = self.handoff(job.scheduled_for, now)
        status = JobStatus.SCHEDULED if job.scheduled_for > now else JobStatus.QUEUED
        job = job.model_copy(update={"status": status})
        row = self._jobs.create(job, policy, due_at=plan.due_at, now=now, restarts=restarts)
        if row is None:
            return self._existing(job)
        if plan.delay_s is None:
            return Dispatched(job, True)
        message = with_row(job.id, row)  # the executor starts from it: no read
        if not send:
            return Dispatched(job, True, (message, plan.delay_s))
        send_stored_job(self._queue, self._jobs, message, plan.delay_s, now=now)
        return Dispatched(job, True)

    def _born_held(self, job: Job, policy: RunPolicy, now: datetime, restarts: int) -> Dispatched:
        held = job.model_copy(
            update={
                "status": JobStatus.AWAITING_APPROVAL,
                "requires_approval": True,
                "approval_request_id": approval_request_id(job.id),
                "timestamp_ms": to_ms(now),
            }
        )
        try:
            self._approvals.create_held(held, policy, restarts=restarts)
        except StorageConflict:
            return self._existing(job)
        return Dispatched(held, True)

    def _existing(self, job: Job) -> Dispatched:
        stored = self._jobs.get(job.id)
        return Dispatched(stored.job if stored else job, False, existing=stored)
