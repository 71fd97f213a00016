"""The Synapse admin listing of scheduled tasks (DESIGN §7 "Seed surface: Synapse
admin API"): Tickwork's jobs in the shape of Synapse's `TaskScheduler` tasks.

An adapter only: it maps statuses both ways and reads the job store's
stage-wide listing (`StageListing.list_stage`). Nothing here is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.jobs.model import JobStatus, public_job_id
from chalicelib.storage.job_listing import (
    LISTING_READ_BUDGET,
    JobSummary,
    StageFilter,
    StageListing,
)

#: Most tasks one response lists (and the default).
MAX_LIMIT = 1000
#: Most `action_name` values one request may give: each is read from its own
#: index partitions (`LISTING_SHARDS` of them), so ten cost as many Queries as
#: the unfiltered listing.
MAX_ACTION_NAMES = 10
#: Most bytes of tasks one response carries: a Lambda answers at most 6 MB, and
#: a thousand jobs with 64 KiB results each would be far more.
MAX_RESPONSE_BYTES = 4_000_000


class TaskStatus(StrEnum):
    """Synapse's `TaskStatus`."""

    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETE = "complete"
    FAILED = "failed"


#: The job statuses each Synapse status stands for (every job status once).
JOB_STATUSES: dict[TaskStatus, frozenset[JobStatus]] = {
    TaskStatus.SCHEDULED: frozenset(
        {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.AWAITING_APPROVAL}
    ),
    TaskStatus.ACTIVE: frozenset({JobStatus.ACTIVE}),
    TaskStatus.COMPLETE: frozenset({JobStatus.COMPLETE, JobStatus.SKIPPED}),
    TaskStatus.FAILED: frozenset(
        {JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.REJECTED, JobStatus.EXPIRED}
    ),
}
_TASK_STATUS = {job: task for task, jobs in JOB_STATUSES.items() for job in jobs}


def task_status(status: JobStatus) -> TaskStatus:
    """The Synapse status a job in `status` shows."""
    return _TASK_STATUS[status]


class ScheduledTask(BaseModel):
    """One job, as Synapse's admin API shows a scheduled task."""

    id: str = Field(description="The job id.")
    action: str = Field(description="The job's action.")
    status: TaskStatus
    timestamp_ms: int = Field(
        description="The job's fire time while `scheduled`, else when its status last changed."
    )
    resource_id: str | None
    result: Any = Field(description="What the action returned (JSON), once it did.")
    error: str | None


@dataclass(frozen=True)
class TaskQuery:
    """The listing's filters; `action_names`, `statuses`: any of these (None:
    any); `max_timestamp` is inclusive, `limit` at most MAX_LIMIT."""

    action_names: frozenset[str] | None = None
    resource_id: str | None = None
    statuses: frozenset[TaskStatus] | None = None
    max_timestamp: int | None = None
    limit: int = MAX_LIMIT


@dataclass(frozen=True)
class TaskListing:
    """Tasks in increasing `timestamp_ms` (then id), as Synapse's store orders
    them: the newest of the matches when more match than fit. `resume_at_ms`:
    older matching tasks may remain; ask again with `max_timestamp` set to it
    for the ones before these (see `continue_from`). `queries`, `items_read`:
    what the listing cost."""

    tasks: list[ScheduledTask]
    resume_at_ms: int | None
    queries: int
    items_read: int


def scheduled_task(job: JobSummary) -> ScheduledTask:
    return ScheduledTask(
        id=public_job_id(job.id),
        action=job.action,
        status=task_status(job.status),
        timestamp_ms=job.timestamp_ms,
        resource_id=job.resource_id,
        result=job.result,
        error=job.error,
    )


def list_jobs_as_tasks(
    listing: StageListing,
    query: TaskQuery,
    *,
    max_bytes: int = MAX_RESPONSE_BYTES,
    read_budget: int = LISTING_READ_BUDGET,
) -> TaskListing:
    """Every project's jobs as Synapse tasks in increasing `timestamp_ms`: the
    newest `query.limit` of the matches, within about `max_bytes` of JSON (at
    least one task, however large), reading at most about `read_budget` index
    items. They are read newest first, so that the bounds keep the newest, and
    handed back oldest first."""
    statuses = None
    if query.statuses is not None:
        statuses = frozenset(job for status in query.statuses for job in JOB_STATUSES[status])
    page = listing.list_stage(
        StageFilter(
            statuses=statuses,
            actions=query.action_names,
            resource_id=query.resource_id,
            max_timestamp_ms=query.max_timestamp,
        ),
        limit=min(query.limit, MAX_LIMIT),
        read_budget=read_budget,
    )
    tasks: list[ScheduledTask] = []
    size = 0
    resume_at = page.resume_at_ms
    for job in page.items:
        task = scheduled_task(job)
        size += len(task.model_dump_json()) + 1
        if tasks and size > max_bytes:
            resume_at = job.timestamp_ms
            break
        tasks.append(task)
    tasks, resume_at = continue_from(tasks, resume_at, query.max_timestamp)
    oldest_first = sorted(tasks, key=lambda task: (task.timestamp_ms, task.id))
    return TaskListing(oldest_first, resume_at, page.queries, page.items_read)


def continue_from(
    tasks: list[ScheduledTask], resume_at_ms: int | None, max_timestamp: int | None
) -> tuple[list[ScheduledTask], int | None]:
    """Make `max_timestamp=<resume_at_ms>` continue a listing exactly.

    `resume_at_ms` is where the listing stopped: every task it left out has a
    timestamp at most it. Tasks of exactly that millisecond are dropped from
    this answer, to come whole in the next, so that answers neither overlap
    nor leave a task out. When an answer holds only that millisecond's tasks
    (more of them than fit in one answer), it keeps them and the next answer
    starts a millisecond earlier: the rest of that millisecond is skipped,
    rather than asked for again and again.
    """
    if resume_at_ms is None:
        return tasks, None
    newer = [task for task in tasks if task.timestamp_ms > resume_at_ms]
    if newer:
        return newer, resume_at_ms
    if not tasks and (max_timestamp is None or resume_at_ms < max_timestamp):
        return [], resume_at_ms  # nothing found before the read budget ran out
    return tasks, resume_at_ms - 1
