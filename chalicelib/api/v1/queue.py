"""`/v1/queue`: reading and steering jobs, and the action catalogue (DESIGN §7).

Routes are numbered as DESIGN §7 numbers them.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.common import ListQuery
from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.jobs.model import Attempt, Job, JobStatus
from chalicelib.jobs.service import MAX_RESULT_WAIT_S, JobSubmission
from chalicelib.storage.job_reads import JobFilter

bp = Blueprint(__name__)
TAGS = ("Queue",)


class JobLogView(BaseModel):
    log: str = Field(description="The attempt's captured log.")
    truncated: bool = Field(description="Whether `log_max_size` cut it.")
    attempt: int = Field(description="Whose log it is (0: the job has not started).")


class LogQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attempt: int | None = Field(
        None, ge=1, description="Which attempt's log (1 is the first run); default the last."
    )


class JobView(Job):
    """A job with every attempt it made."""

    attempts: list[Attempt] = Field(
        description=(
            "Every attempt, first first: when it started and ended, how, and its error; "
            "its log is at `/logs?attempt=N`."
        )
    )


class ActionView(BaseModel):
    name: str
    description: str
    args_schema: dict[str, Any] = Field(description="JSON Schema of the action's `args`.")
    requires_approval: bool = Field(description="Whether its jobs wait for a human by default.")


class ActionList(BaseModel):
    actions: list[ActionView]


class JobListQuery(ListQuery):
    status: JobStatus | None = Field(None, description="Only jobs in this status.")
    action: str | None = Field(None, min_length=1, description="Only jobs of this action.")
    task_id: str | None = Field(None, min_length=1, description="Only runs of this scheduled task.")
    correlation_id: str | None = Field(
        None, min_length=1, description="Only jobs with this correlation id."
    )


class JobList(BaseModel):
    jobs: list[Job]
    next_cursor: str | None = None


class CorrelatedJobs(BaseModel):
    jobs: list[Job]


@endpoint(
    bp,
    "POST",
    "/v1/queue/jobs",
    summary="Submit a job",
    surface=PROBLEMS,
    tags=TAGS,
    status=202,
    body=JobSubmission,
    response=Job,
    errors=(400, 401, 409, 413, 422),
)
def submit_job(call: Call) -> Job:
    """1. Enqueue one job. `job_id` makes it idempotent (409 while the project's
    job of that id exists; another project's is its own job);
    `defer_until` or `defer_by` delay it; `expires` bounds its wait; args are
    checked against the action's model (422 at `body.args…`) and size (413)."""
    return call.services.queue.submit(call.who, call.body)


@endpoint(
    bp,
    "POST",
    "/v1/queue/jobs/{job_id}/retry",
    summary="Retry a job",
    surface=PROBLEMS,
    tags=TAGS,
    status=202,
    response=Job,
    errors=(401, 404, 409),
)
def retry_job(call: Call) -> Job:
    """13. A new job (trigger `retry`, `retry_of` this one) for a failed,
    cancelled or expired job; 409 for any other status."""
    return call.services.queue.retry(call.who, call.path["job_id"])


@endpoint(
    bp,
    "GET",
    "/v1/queue/jobs",
    summary="List jobs",
    surface=PROBLEMS,
    tags=TAGS,
    query=JobListQuery,
    response=JobList,
    errors=(401, 422),
)
def list_jobs(call: Call) -> JobList:
    """4. The project's jobs, newest first, with filters and a cursor."""
    q: JobListQuery = call.query
    where = JobFilter(
        status=q.status, action=q.action, task_id=q.task_id, correlation_id=q.correlation_id
    )
    page = call.services.queue.list_jobs(call.who, limit=q.limit, cursor=q.cursor, where=where)
    return JobList(jobs=page.items, next_cursor=page.next_cursor)


@endpoint(
    bp,
    "GET",
    "/v1/queue/correlation/{correlation_id}",
    summary="Jobs sharing a correlation id",
    surface=PROBLEMS,
    tags=TAGS,
    response=CorrelatedJobs,
    errors=(401,),
)
def correlated_jobs(call: Call) -> CorrelatedJobs:
    """9. The project's jobs with this `correlation_id`, newest first (at most 200;
    page through `GET /v1/queue/jobs?correlation_id=` for more)."""
    return CorrelatedJobs(
        jobs=call.services.queue.correlated(call.who, call.path["correlation_id"])
    )


@endpoint(
    bp,
    "GET",
    "/v1/queue/jobs/{job_id}",
    summary="Get a job",
    surface=PROBLEMS,
    tags=TAGS,
    response=JobView,
    errors=(401, 404),
)
def get_job(call: Call) -> JobView:
    """2. The job, whatever started it (a firing, a trigger, a submission), with
    its attempts."""
    job, attempts = call.services.queue.detail(call.who, call.path["job_id"])
    return JobView.model_validate({**dict(job), "attempts": attempts})


@endpoint(
    bp,
    "POST",
    "/v1/queue/jobs/{job_id}/cancel",
    summary="Cancel a job",
    surface=PROBLEMS,
    tags=TAGS,
    response=Job,
    errors=(401, 404, 409),
)
def cancel_job(call: Call) -> Job:
    """3. Not started: `cancelled` at once. Running: `cancel_requested`, then
    `cancelled` when the action returns or sees it. Already ended: 409."""
    return call.services.queue.cancel(call.who, call.path["job_id"])


class ResultQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    wait: float = Field(
        0,
        ge=0,
        le=MAX_RESULT_WAIT_S,
        allow_inf_nan=False,
        description="Seconds to wait for the job to end.",
    )


class JobResult(BaseModel):
    status: JobStatus
    result: Any = None
    error: str | None = None


@endpoint(
    bp,
    "GET",
    "/v1/queue/jobs/{job_id}/result",
    summary="A job's result, waiting for it",
    surface=PROBLEMS,
    tags=TAGS,
    query=ResultQuery,
    response=JobResult,
    errors=(401, 404, 422),
)
def job_result(call: Call) -> JobResult:
    """11. Answers as soon as the job is terminal, or after `wait` seconds
    (at most 20) with its current status."""
    q: ResultQuery = call.query
    job = call.services.queue.result(call.who, call.path["job_id"], wait_s=q.wait)
    return JobResult(status=job.status, result=job.result, error=job.error)


@endpoint(
    bp,
    "GET",
    "/v1/queue/jobs/{job_id}/logs",
    summary="A job's captured log",
    surface=PROBLEMS,
    tags=TAGS,
    query=LogQuery,
    response=JobLogView,
    errors=(401, 404, 422),
)
def job_logs(call: Call) -> JobLogView:
    """12. The log its action wrote in one attempt (default the last), capped at
    the task's `log_max_size`; 404 for an attempt the job did not make."""
    q: LogQuery = call.query
    found = call.services.queue.logs(call.who, call.path["job_id"], q.attempt)
    return JobLogView(log=found.log, truncated=found.truncated, attempt=found.attempt)


class DepthView(BaseModel):
    scheduled: int
    queued: int
    active: int
    awaiting_approval: int
    dead_letter: int = Field(description="Messages in the stage's dead-letter queue.")
    oldest_queued_age_seconds: float | None = Field(
        description="How long the oldest queued job has waited (null: none queued)."
    )


@endpoint(
    bp,
    "GET",
    "/v1/queue/depth",
    summary="Queue depth",
    surface=PROBLEMS,
    tags=TAGS,
    response=DepthView,
    errors=(401,),
)
def queue_depth(call: Call) -> DepthView:
    """5. The project's jobs by waiting status, from index counts (never a
    scan), and the dead-letter queue's size from SQS."""
    depth = call.services.queue.depth(call.who)
    return DepthView(
        scheduled=depth.scheduled,
        queued=depth.queued,
        active=depth.active,
        awaiting_approval=depth.awaiting_approval,
        dead_letter=depth.dead_letter,
        oldest_queued_age_seconds=depth.oldest_queued_age_seconds,
    )


@endpoint(
    bp,
    "GET",
    "/v1/queue/actions",
    summary="Registered actions",
    surface=PROBLEMS,
    tags=TAGS,
    response=ActionList,
    errors=(401,),
)
def list_actions(call: Call) -> ActionList:
    """16. Every action with its args JSON Schema and approval default."""
    return ActionList(
        actions=[
            ActionView(
                name=a.name,
                description=a.description,
                args_schema=a.args_schema,
                requires_approval=a.requires_approval,
            )
            for a in call.services.queue.actions()
        ]
    )
