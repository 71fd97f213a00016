"""Jobs: one execution each (DESIGN §5) — statuses, their transitions, the domain type."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.clock import to_ms


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        JobStatus.COMPLETE,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.REJECTED,
        JobStatus.SKIPPED,
        JobStatus.EXPIRED,
    }
)

#: The one table of allowed transitions. Terminal states have no way out; an
#: active job goes back to `scheduled` for a retry, or is started again after
#: its lease ran out (active -> active, a new attempt).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.SCHEDULED: frozenset(
        {
            JobStatus.QUEUED,
            JobStatus.ACTIVE,
            JobStatus.AWAITING_APPROVAL,
            JobStatus.CANCELLED,
            JobStatus.SKIPPED,
            JobStatus.EXPIRED,
            JobStatus.FAILED,
        }
    ),
    JobStatus.AWAITING_APPROVAL: frozenset(
        {JobStatus.QUEUED, JobStatus.REJECTED, JobStatus.CANCELLED, JobStatus.EXPIRED}
    ),
    JobStatus.QUEUED: frozenset(
        {
            JobStatus.SCHEDULED,
            JobStatus.AWAITING_APPROVAL,
            JobStatus.ACTIVE,
            JobStatus.CANCELLED,
            JobStatus.SKIPPED,
            JobStatus.EXPIRED,
            JobStatus.FAILED,
        }
    ),
    JobStatus.ACTIVE: frozenset(
        {
            JobStatus.ACTIVE,
            JobStatus.SCHEDULED,
            JobStatus.COMPLETE,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }
    ),
    **{status: frozenset() for status in TERMINAL},
}

#: Statuses from which an executor may start a job.
STARTABLE = frozenset({JobStatus.SCHEDULED, JobStatus.QUEUED})


def can_move(current: JobStatus, new: JobStatus) -> bool:
    return new in TRANSITIONS[current]


class Trigger(StrEnum):
    CRON = "cron"
    CATCH_UP = "catch_up"
    API = "api"
    RETRY = "retry"
    RESTART = "restart"
    BACKFILL = "backfill"
    QUEUE = "queue"


class Job(BaseModel):
    """A job as stored and as `/v1` shows it (DESIGN §7 job fields)."""

    id: str
    project_id: str
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: JobStatus
    task_id: str | None = None
    resource_id: str | None = None
    correlation_id: str | None = None
    trigger: Trigger
    attempt: int = 0
    max_attempts: int = 1
    scheduled_for: datetime
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timestamp_ms: int = Field(description="Fire time while scheduled, else the last change.")
    result: Any = None
    error: str | None = None
    cancel_requested: bool = False
    requires_approval: bool = False
    approval_request_id: str | None = None
    success_num: int = 0
    failed_num: int = 0
    skip_num: int = 0
    expires_at: datetime | None = Field(
        None, description="A queue job not started by then ends `expired` (from `expires`)."
    )
    retry_of: str | None = Field(None, description="The job this one retries by hand.")


def firing_job_id(task_id: str, at: datetime) -> str:
    """Deterministic id of a task's firing: enqueueing it twice is a no-op."""
    return f"{task_id}:{to_ms(at)}"


def service_job_id(task_id: str, started: datetime, instance: int, generation: int) -> str:
    """Deterministic id of a service run: instance `instance` of the service
    started at `started`, restarted `generation` times. The restart of a run is
    the next generation, so recording it twice makes one job."""
    return f"{task_id}:{to_ms(started)}:{instance}.{generation}"


def is_service_job_id(job_id: str) -> bool:
    """Whether `job_id` names a service run (`<task>:<ms>:<instance>.<generation>`)."""
    parts = job_id.split(":")
    if len(parts) != 3:
        return False
    instance, dot, generation = parts[2].partition(".")
    return bool(dot) and instance.isdigit() and generation.isdigit()


def next_service_job_id(job_id: str) -> str:
    """The id of the run that restarts the service run `job_id`."""
    head, _, lineage = job_id.rpartition(":")
    instance, _, generation = lineage.partition(".")
    return f"{head}:{instance}.{int(generation) + 1}"
