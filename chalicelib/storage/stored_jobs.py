"""A job as stored (`StoredJob`: the domain `Job` with what only storage and
the executor need), how a run ends (`Outcome`), a dead letter, and the one
place rows of the jobs table become these and back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.clock import from_ms, to_ms
from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.storage.job_listing import action_shard, status_shard
from chalicelib.storage.tables import JobRecord
from chalicelib.tasks.model import Task

#: The one partition of the sparse `dead_letters` index.
DEAD_LETTER_PARTITION = "dead"


@dataclass(frozen=True)
class RunPolicy:
    """What an executor needs to run a job, fixed when the job is made."""

    timeout_s: float = 300
    retry_backoff: str = "constant"
    retry_delay_s: float = 60
    keep_for_s: float = 2_592_000
    log_max_size: int = 65_536
    log_on_full: str = "drop_new"

    @classmethod
    def of(cls, task: Task) -> RunPolicy:
        """The policy a task's jobs run under, fixed when each job is made."""
        return cls(
            timeout_s=task.timeout,
            retry_backoff=task.retry_backoff.value,
            retry_delay_s=task.retry_delay,
            keep_for_s=task.keep_for,
            log_max_size=task.log_max_size,
            log_on_full=task.log_on_full.value,
        )


@dataclass(frozen=True)
class StoredJob:
    job: Job
    policy: RunPolicy
    created_at: datetime
    lease_until: datetime | None
    due_at: datetime | None
    #: The last attempt's log on a row written before logs moved to the
    #: attempts table (empty on every newer row).
    log: str
    log_truncated: bool
    result_truncated: bool
    #: A service run: how many failed runs of its lineage came right before it.
    restarts: int = 0


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the executor records it."""

    status: JobStatus
    result: Any = None
    result_truncated: bool = False
    error: str | None = None
    success_num: int = 0
    failed_num: int = 0
    skip_num: int = 0


@dataclass(frozen=True)
class DeadLetter:
    """A job whose message SQS gave up on (DESIGN §1 dead-letter handler)."""

    job: Job
    dead_lettered_at: datetime
    receive_count: int


def to_stored(r: JobRecord) -> StoredJob:
    """The job a row of the jobs table holds."""
    status = JobStatus(r.status)
    if r.timestamp_ms is not None:
        timestamp_ms = int(r.timestamp_ms)
    elif status is JobStatus.SCHEDULED:  # rows written before it was stored
        timestamp_ms = int(r.scheduled_ms)
    else:
        timestamp_ms = int(r.finished_ms or r.started_ms or r.enqueued_ms or r.created_ms)
    job = Job(
        id=r.id,
        project_id=r.project_id,
        action=r.action,
        args=r.args or {},
        status=status,
        task_id=r.task_id,
        resource_id=r.resource_id,
        correlation_id=r.correlation_id,
        trigger=Trigger(r.trigger),
        attempt=int(r.attempt),
        max_attempts=int(r.max_attempts),
        scheduled_for=from_ms(int(r.scheduled_ms)),
        enqueued_at=from_ms(int(r.enqueued_ms)) if r.enqueued_ms else None,
        started_at=from_ms(int(r.started_ms)) if r.started_ms else None,
        finished_at=from_ms(int(r.finished_ms)) if r.finished_ms else None,
        timestamp_ms=timestamp_ms,
        result=r.result,
        error=r.error,
        cancel_requested=bool(r.cancel_requested),
        requires_approval=bool(r.requires_approval),
        approval_request_id=r.approval_request_id,
        success_num=int(r.success_num or 0),
        failed_num=int(r.failed_num or 0),
        skip_num=int(r.skip_num or 0),
        expires_at=from_ms(int(r.start_by_ms)) if r.start_by_ms else None,
        retry_of=r.retry_of,
        requested_by=r.requested_by,
        requested_by_token=r.requested_by_token,
    )
    policy = RunPolicy(
        timeout_s=float(r.timeout_s),
        retry_backoff=r.retry_backoff,
        retry_delay_s=float(r.retry_delay_s),
        keep_for_s=float(r.keep_for_s),
        log_max_size=int(r.log_max_size),
        log_on_full=r.log_on_full,
    )
    return StoredJob(
        job=job,
        policy=policy,
        created_at=from_ms(int(r.created_ms)),
        lease_until=from_ms(int(r.lease_until_ms)) if r.lease_until_ms else None,
        due_at=from_ms(int(r.due_ms)) if r.due_ms is not None else None,
        log=r.log or "",
        log_truncated=bool(r.log_truncated),
        result_truncated=bool(r.result_truncated),
        restarts=int(r.restarts or 0),
    )


def to_dead_letter(r: JobRecord) -> DeadLetter:
    """The dead letter a row of the jobs table holds (in the `dead_letters` index)."""
    return DeadLetter(
        job=to_stored(r).job,
        dead_lettered_at=from_ms(int(r.dead_lettered_ms or 0)),
        receive_count=int(r.dead_letter_receives or 0),
    )


def new_row(
    model: type[JobRecord],
    job: Job,
    policy: RunPolicy,
    *,
    due_shard: str,
    due_at: datetime | None,
    now: datetime,
    restarts: int,
) -> JobRecord:
    """The row of a new job, of `model` (a stage's bound jobs model). Its
    `timestamp_ms` is its fire time if it is `scheduled`, else `now`; it is in
    the `due` index (in `due_shard`, at `due_at`) only with a `due_at`."""
    at = job.scheduled_for if job.status is JobStatus.SCHEDULED else now
    return model(
        id=job.id,
        project_id=job.project_id,
        task_id=job.task_id,
        action=job.action,
        args=job.args,
        status=job.status.value,
        project_status=f"{job.project_id}#{job.status.value}",
        timestamp_ms=to_ms(at),
        status_shard=status_shard(job.id, job.status),
        action_shard=action_shard(job.id, job.action),
        project_correlation=(
            f"{job.project_id}#{job.correlation_id}" if job.correlation_id else None
        ),
        correlation_id=job.correlation_id,
        resource_id=job.resource_id,
        trigger=job.trigger.value,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        restarts=restarts,
        created_ms=to_ms(now),
        scheduled_ms=to_ms(job.scheduled_for),
        enqueued_ms=to_ms(job.enqueued_at) if job.enqueued_at else None,
        due_shard=due_shard if due_at is not None else None,
        due_ms=to_ms(due_at) if due_at is not None else None,
        requires_approval=job.requires_approval,
        approval_request_id=job.approval_request_id,
        start_by_ms=to_ms(job.expires_at) if job.expires_at else None,
        retry_of=job.retry_of,
        requested_by=job.requested_by,
        requested_by_token=job.requested_by_token,
        timeout_s=policy.timeout_s,
        retry_backoff=policy.retry_backoff,
        retry_delay_s=policy.retry_delay_s,
        keep_for_s=policy.keep_for_s,
        log_max_size=policy.log_max_size,
        log_on_full=policy.log_on_full,
    )
