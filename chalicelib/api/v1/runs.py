"""`/v1/scheduled-tasks/{task_id}/trigger`, `/backfill` and `/runs`."""

from __future__ import annotations

from chalice.app import Blueprint
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chalicelib.api.common import ListQuery
from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.jobs.model import Job

bp = Blueprint(__name__)
TAGS = ("Scheduled tasks",)


class BackfillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(description="First fire time to include (RFC 3339).")
    end: AwareDatetime = Field(description="Fire times before this are included (RFC 3339).")


class JobList(BaseModel):
    jobs: list[Job]
    next_cursor: str | None = None


class BackfillResult(BaseModel):
    jobs: list[Job]


@endpoint(
    bp,
    "POST",
    "/v1/scheduled-tasks/{task_id}/trigger",
    summary="Run a task now",
    surface=PROBLEMS,
    tags=TAGS,
    status=202,
    response=Job,
    errors=(401, 403, 404),
)
def trigger_task(call: Call) -> Job:
    """Starts a run outside the schedule (trigger `api`); 403 when `api_trigger` is false."""
    return call.services.runs.trigger(call.who, call.path["task_id"])


@endpoint(
    bp,
    "POST",
    "/v1/scheduled-tasks/{task_id}/backfill",
    summary="Run a task for past fire times",
    surface=PROBLEMS,
    tags=TAGS,
    status=202,
    body=BackfillRequest,
    response=BackfillResult,
    errors=(400, 401, 404, 422),
)
def backfill_task(call: Call) -> BackfillResult:
    """One job per fire time in [start, end) (at most 1000), trigger `backfill`."""
    body: BackfillRequest = call.body
    return BackfillResult(
        jobs=call.services.runs.backfill(call.who, call.path["task_id"], body.start, body.end)
    )


@endpoint(
    bp,
    "GET",
    "/v1/scheduled-tasks/{task_id}/runs",
    summary="A task's runs",
    surface=PROBLEMS,
    tags=TAGS,
    query=ListQuery,
    response=JobList,
    errors=(401, 404, 422),
)
def task_runs(call: Call) -> JobList:
    """The task's jobs, newest fire time first."""
    q: ListQuery = call.query
    page = call.services.runs.runs(call.who, call.path["task_id"], limit=q.limit, cursor=q.cursor)
    return JobList(jobs=page.items, next_cursor=page.next_cursor)
