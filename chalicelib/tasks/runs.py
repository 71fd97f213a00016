"""Runs of a task started by hand: trigger, backfill, and the run history (DESIGN §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.approvals.service import ApprovalService
from chalicelib.auth.service import Principal
from chalicelib.clock import Clock, IdFactory, to_ms
from chalicelib.engine.dispatch import Dispatcher
from chalicelib.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.jobs.model import Job, JobStatus, Trigger, asked_by, backfill_job_id
from chalicelib.jobs.sqs import JobQueue
from chalicelib.schedules.model import LATEST_INSTANT, fire_times, parse_schedule, parse_timezone
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.pages import Page
from chalicelib.storage.stored_jobs import RunPolicy
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Task

#: Most firings one backfill may create (DESIGN §7).
MAX_BACKFILL = 1000


#: Backfills cover fire times from the Unix epoch on (`timestamp_ms` is never negative).
EARLIEST_BACKFILL = datetime(1970, 1, 1, tzinfo=UTC)


def _in_range(location: str, instant: datetime) -> datetime:
    """`instant` in UTC, or 422 at `location` when it is before the epoch or
    outside what a datetime can hold in UTC (e.g. `0001-01-01T00:00:00+01:00`)."""
    try:
        utc = instant.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed.at(location, "is out of range", instant.isoformat()) from None
    if utc < EARLIEST_BACKFILL:
        raise ValidationFailed.at(
            location, f"must not be before {EARLIEST_BACKFILL.isoformat()}", instant.isoformat()
        )
    if utc >= LATEST_INSTANT:
        raise ValidationFailed.at(
            location, f"must be before {LATEST_INSTANT.isoformat()}", instant.isoformat()
        )
    return utc


class RunService:
    def __init__(
        self,
        tasks: TaskStore,
        jobs: JobStore,
        queue: JobQueue,
        clock: Clock,
        ids: IdFactory,
        *,
        approvals: ApprovalService,
        lookahead_s: float,
    ) -> None:
        self._tasks = tasks
        self._jobs = jobs
        self._dispatcher = Dispatcher(jobs, queue, approvals, clock, lookahead_s=lookahead_s)
        self._clock = clock
        self._ids = ids

    def _task(self, principal: Principal, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None or task.project_id != principal.project_id:
            raise NotFound(f"scheduled task '{task_id}' not found")
        return task

    def _job(
        self, task: Task, job_id: str, at: datetime, trigger: Trigger, asker: Principal
    ) -> Job:
        """A run of `task` that `asker` asked for: it, not the task's last
        changer, is the run's `requested_by` (HITL)."""
        now = self._clock.now()
        return Job(
            id=job_id,
            project_id=task.project_id,
            action=task.action,
            args=task.args,
            status=JobStatus.QUEUED if at <= now else JobStatus.SCHEDULED,
            task_id=task.id,
            trigger=trigger,
            max_attempts=task.retry_attempts + 1,
            scheduled_for=at,
            enqueued_at=now,
            timestamp_ms=to_ms(at),
            requires_approval=task.requires_approval,
            **asked_by(asker),
        )

    def _submit(self, task: Task, job: Job) -> Job:
        """The job as stored: this one, or for a repeated backfill the one that
        exists (perhaps long complete)."""
        return self._dispatcher.dispatch(job, RunPolicy.of(task)).job

    def trigger(self, principal: Principal, task_id: str) -> Job:
        """Run the task now, outside its schedule (`api_trigger` must allow it)."""
        task = self._task(principal, task_id)
        if not task.api_trigger:
            raise Forbidden("this task does not allow API triggers (api_trigger is false)")
        job = self._job(task, self._ids.new_id("job"), self._clock.now(), Trigger.API, principal)
        return self._submit(task, job)

    def backfill(
        self, principal: Principal, task_id: str, start: datetime, end: datetime
    ) -> list[Job]:
        """One job per fire time in [start, end), oldest first, at most MAX_BACKFILL."""
        task = self._task(principal, task_id)
        start, end = _in_range("body.start", start), _in_range("body.end", end)
        if end <= start:
            raise ValidationFailed.at("body.end", "must be after start", end.isoformat())
        if task.schedule is None:
            raise ValidationFailed.at("body", "a task without a schedule has no fire times")
        times: list[datetime] = []
        firings = fire_times(
            parse_schedule(task.schedule),
            parse_timezone(task.timezone),
            start - timedelta(microseconds=1),
            anchor=task.anchor_at,
        )
        try:
            for at in firings:
                if at >= end:
                    break
                if len(times) == MAX_BACKFILL:
                    raise ValidationFailed.at(
                        "body.end", f"the range holds more than {MAX_BACKFILL} fire times"
                    )
                times.append(at)
        except (OverflowError, ValueError):
            # The fire time after `end` is past the year 9999 (`0 0 29 2 *` skips years).
            raise ValidationFailed.at(
                "body.end", "is too late for this schedule", end.isoformat()
            ) from None
        jobs = []
        for at in times:
            # Past fire times run now, oldest first; the ids make a repeated backfill a no-op.
            job = self._job(task, backfill_job_id(task.id, at), at, Trigger.BACKFILL, principal)
            jobs.append(self._submit(task, job))
        return jobs

    def runs(
        self, principal: Principal, task_id: str, *, limit: int, cursor: str | None
    ) -> Page[Job]:
        task = self._task(principal, task_id)
        return self._jobs.runs_of_task(task.id, limit=limit, cursor=cursor)

    def runs_at_offset(
        self, principal: Principal, task_id: str, *, offset: int, limit: int
    ) -> tuple[Task, list[Job], int]:
        """The task, up to `limit` of its runs (newest fire time first) after
        skipping `offset`, and how many runs it has in all (for offset paging)."""
        task = self._task(principal, task_id)
        total = self._jobs.count_runs_of_task(task.id)
        jobs: list[Job] = []
        if offset < total:  # past the end there is nothing to read
            jobs = self._jobs.runs_of_task_at(task.id, offset=offset, limit=limit)
        return task, jobs, total
