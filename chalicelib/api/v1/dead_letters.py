"""`/v1/queue/dead-letters`: jobs whose messages SQS gave up on (admin; DESIGN §7
routes 14, 15).

The dead-letter handler takes each message off the dead-letter queue, ends its
job `failed` with the reason, and keeps the job listed here until an admin
redrives it (or it expires with `keep_for`). Redriving runs it again: a failed
job is never reopened, so it runs as a new job (`retry_of` the old one).
"""

from __future__ import annotations

from datetime import datetime

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.common import ListQuery
from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.jobs.model import Job, public_job_id

bp = Blueprint(__name__)
TAGS = ("Queue",)


class DeadLetterView(BaseModel):
    job_id: str
    receive_count: int = Field(description="How often SQS delivered the message before giving up.")
    dead_lettered_at: datetime
    job: Job


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterView]
    next_cursor: str | None = None


class RedriveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=200, description="Most dead letters moved by this call.")


class RedrivenView(BaseModel):
    job_id: str
    new_job_id: str | None = Field(
        description="The job that runs it again; null when its message was simply sent again."
    )


class RedriveResult(BaseModel):
    redriven: list[RedrivenView]
    remaining: bool = Field(description="Whether dead letters are left (call again).")


@endpoint(
    bp,
    "GET",
    "/v1/queue/dead-letters",
    summary="Dead letters",
    surface=PROBLEMS,
    tags=TAGS,
    auth="admin",
    query=ListQuery,
    response=DeadLetterList,
    errors=(401, 403, 422),
)
def list_dead_letters(call: Call) -> DeadLetterList:
    """14. Every project's dead-lettered jobs, newest first."""
    q: ListQuery = call.query
    page = call.services.queue.dead_letters(limit=q.limit, cursor=q.cursor)
    return DeadLetterList(
        dead_letters=[
            DeadLetterView(
                job_id=public_job_id(d.job.id),
                receive_count=d.receive_count,
                dead_lettered_at=d.dead_lettered_at,
                job=d.job,
            )
            for d in page.items
        ],
        next_cursor=page.next_cursor,
    )


@endpoint(
    bp,
    "POST",
    "/v1/queue/dead-letters/redrive",
    summary="Redrive dead letters",
    surface=PROBLEMS,
    tags=TAGS,
    auth="admin",
    body=RedriveBody,
    response=RedriveResult,
    errors=(400, 401, 403, 422),
)
def redrive(call: Call) -> RedriveResult:
    """15. Moves up to `limit` dead letters back to the queue, oldest last."""
    body: RedriveBody = call.body
    moved, remaining = call.services.queue.redrive(limit=body.limit)
    return RedriveResult(
        redriven=[
            RedrivenView(job_id=public_job_id(m.job_id), new_job_id=m.new_job_id) for m in moved
        ],
        remaining=remaining,
    )
