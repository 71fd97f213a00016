"""Jobs: one execution each (DESIGN §5) — statuses, their transitions, the domain type."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_serializer, field_validator
from pydantic.json_schema import SkipJsonSchema

from chalicelib.auth.service import Principal
from chalicelib.clock import from_ms, to_ms


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
    requested_by: str | None = Field(
        None,
        description=(
            "Who asked for this run, as `<name> (<token id>)`: the submitting, triggering, "
            "backfilling or retrying token; for a firing or a service restart, the token "
            "that last created or changed its task."
        ),
    )
    #: The id of that token: what `TICKWORK_APPROVAL_SELF=deny` compares (kept
    #: on the row, not shown: `requested_by` names it).
    requested_by_token: SkipJsonSchema[str | None] = Field(None, exclude=True)

    # Jobs are stored to the millisecond: a job holds its times as stored, so
    # a submission's answer and every later read of the job agree.
    @field_validator("scheduled_for", "enqueued_at", "started_at", "finished_at", "expires_at")
    @classmethod
    def _as_stored(cls, instant: datetime | None) -> datetime | None:
        return None if instant is None else from_ms(to_ms(instant))

    # `id` and `retry_of` hold job keys (see `user_job_key`); every dump of a
    # Job is an API response, which shows the public id. Storage converts rows
    # field by field and never dumps a Job.
    @field_serializer("id")
    def _public_id(self, key: str) -> str:
        return public_job_id(key)

    @field_serializer("retry_of")
    def _public_retry_of(self, key: str | None) -> str | None:
        return None if key is None else public_job_id(key)


class AttemptStatus(StrEnum):
    """How one attempt of a job ended."""

    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Its executor stopped before recording it (its lease ran out).
    LOST = "lost"


class Attempt(BaseModel):
    """One attempt of a job, as `/v1` shows it; its log is read apart
    (`GET /v1/queue/jobs/{job_id}/logs?attempt=N`)."""

    attempt: int = Field(ge=1, description="1 for the first run, counting up with each retry.")
    status: AttemptStatus
    started_at: datetime | None = None
    finished_at: datetime | None = Field(None, description="None for a `lost` attempt.")
    error: str | None = None
    log_truncated: bool = Field(False, description="Whether `log_max_size` cut its log.")


#: Joins a project id and a user-given job id into the job's key. Project ids
#: (`^[a-z0-9][a-z0-9_-]{0,62}$`) and user job ids (`JobSubmission.job_id`)
#: never contain it, and no id Tickwork makes does: so a user's key is unique
#: per project and never equal to a firing's, a backfill's or a `job_…` id.
USER_KEY_SEP = "/"
#: How every id Tickwork makes starts: `job_<ulid>` (submissions without a
#: `job_id`, triggers, manual retries) and `tsk_<ulid>:…` (firings, catch-up,
#: backfills, service runs).
MADE_ID_PREFIXES = ("job_", "tsk_")


def user_job_key(project_id: str, job_id: str) -> str:
    """The key a job submitted with `job_id` is stored under in `project_id`."""
    return f"{project_id}{USER_KEY_SEP}{job_id}"


def is_user_job_key(key: str) -> bool:
    """Whether `key` is a user-given job id's key (`<project>/<job_id>`)."""
    return USER_KEY_SEP in key


def public_job_id(key: str) -> str:
    """The id the API shows for the job stored under `key`: a user-given id
    without its project; any other key (a Tickwork-made id, or a user id
    stored before ids were scoped to their project) as it is."""
    _, sep, job_id = key.partition(USER_KEY_SEP)
    return job_id if sep else key


def job_keys(project_id: str, shown_id: str) -> tuple[str, ...]:
    """The keys a job of `project_id` shown as `shown_id` may be stored under,
    likeliest first: the plain key for text shaped like a Tickwork-made id
    (`job_…`, `tsk_…`), else the user key; then the other (which also finds
    user jobs stored under their bare id before ids were scoped). Text with a
    `/` is no job's public id: no keys."""
    if USER_KEY_SEP in shown_id or not shown_id:
        return ()
    user = user_job_key(project_id, shown_id)
    if shown_id.startswith(MADE_ID_PREFIXES):
        return (shown_id, user)
    return (user, shown_id)


def asked_by(principal: Principal) -> dict[str, str]:
    """The `Job` fields naming the token that asked for a run."""
    return {"requested_by": principal.label, "requested_by_token": principal.token_id}


def firing_job_id(task_id: str, at: datetime) -> str:
    """Deterministic id of a task's firing: enqueueing it twice is a no-op."""
    return f"{task_id}:{to_ms(at)}"


def backfill_job_id(task_id: str, at: datetime) -> str:
    """Deterministic id of a backfilled firing: a repeated backfill is a no-op."""
    return f"{task_id}:{to_ms(at)}:backfill"


def service_job_id(task_id: str, started: datetime, instance: int, generation: int) -> str:
    """Deterministic id of a service run: instance `instance` of the service
    started at `started`, restarted `generation` times. The restart of a run is
    the next generation, so recording it twice makes one job."""
    return f"{task_id}:{to_ms(started)}:{instance}.{generation}"


def is_service_job_id(job_id: str) -> bool:
    """Whether `job_id` names a service run (`<task>:<ms>:<instance>.<generation>`)."""
    if is_user_job_key(job_id):  # a user's `a:1:2.3` is no service run
        return False
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
