"""`GET /v2/{project_id}/scheduled-tasks/{task_id}/records`: execution records
in Huawei Cloud Workspace's shape (DESIGN §7), so that SDK's
`ListScheduledTasksRecords` reads a task's jobs.

A thin adapter: the task comes from `TaskService` (404 for another project's),
the jobs from `JobStore`'s `by_task` index; the pure functions below map each
job to a record. Errors are Huawei-style `{error_code, error_msg, error_detail,
encoded_authorization_message}`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from chalice.app import Blueprint, Request, Response
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.routing import Call, endpoint
from chalicelib.auth.service import bearer_token
from chalicelib.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TickworkError,
    Unauthenticated,
    ValidationFailed,
)
from chalicelib.jobs.model import Job, JobStatus, Trigger, public_job_id
from chalicelib.schedules.model import ScheduleError, parse_schedule, parse_timezone
from chalicelib.tasks.model import Kind

bp = Blueprint(__name__)
TAGS = ("Execution records",)

MAX_LIMIT = 100
#: `start_time` as Huawei writes it: `yyyy-MM-dd HH:mm:ss`.
START_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# ------------------------------------------------------------ mappings (pure)
class ScheduledType(StrEnum):
    FIXED_TIME = "FIXED_TIME"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    CUSTOM = "CUSTOM"


class RecordStatus(StrEnum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


#: Every job status as a record status. A rejection (by a human, or by an
#: approval that expired) is a decision not to run: CANCELLED. An `expired` job
#: should have run and did not: FAILED.
RECORD_STATUS: dict[JobStatus, RecordStatus] = {
    JobStatus.SCHEDULED: RecordStatus.WAITING,
    JobStatus.AWAITING_APPROVAL: RecordStatus.WAITING,
    JobStatus.QUEUED: RecordStatus.WAITING,
    JobStatus.ACTIVE: RecordStatus.RUNNING,
    JobStatus.COMPLETE: RecordStatus.SUCCESS,
    JobStatus.FAILED: RecordStatus.FAILED,
    JobStatus.EXPIRED: RecordStatus.FAILED,
    JobStatus.SKIPPED: RecordStatus.SKIPPED,
    JobStatus.CANCELLED: RecordStatus.CANCELLED,
    JobStatus.REJECTED: RecordStatus.CANCELLED,
}

#: Jobs made for one instant someone asked for, not by the schedule's cycle.
_FIXED_TIME_TRIGGERS = frozenset({Trigger.API, Trigger.BACKFILL, Trigger.RETRY, Trigger.QUEUE})


def _restricted(values: Sequence[int | str], full: range) -> bool:
    return list(values) != ["*"] and set(values) != set(full)


def cron_cycle(cron: str) -> ScheduledType:
    """DAY, WEEK or MONTH for a cron restricted by nothing / by day of week /
    by day of month, judged on its day fields only (an hourly cron runs every
    day: DAY); CUSTOM when it restricts months, both day fields (which cron
    ORs), or names an nth weekday (`FRI#2`)."""
    day_of_month, month, day_of_week = cron.split()[-3:]  # seconds come first in 6 fields
    try:
        fields, nth_weekday = croniter.expand(f"0 0 {day_of_month} {month} {day_of_week}")
    except (ValueError, KeyError):
        return ScheduledType.CUSTOM
    days, months, weekdays = fields[2], fields[3], fields[4]
    by_day = _restricted(days, range(1, 32))
    by_weekday = _restricted(weekdays, range(7))
    if nth_weekday or _restricted(months, range(1, 13)) or (by_day and by_weekday):
        return ScheduledType.CUSTOM
    if by_weekday:
        return ScheduledType.WEEK
    if by_day:
        return ScheduledType.MONTH
    return ScheduledType.DAY


def scheduled_type(schedule: str | None, trigger: Trigger) -> ScheduledType:
    """The record's `scheduled_type`: FIXED_TIME for `@once` and for jobs made
    by a trigger, a backfill, a manual retry or the queue; for the schedule's
    own firings (`cron`, `catch_up`), the cron's cycle (see `cron_cycle`);
    CUSTOM for `@every` and for a service (`schedule` None: it has no cycle)."""
    if trigger in _FIXED_TIME_TRIGGERS:
        return ScheduledType.FIXED_TIME
    if schedule is None:
        return ScheduledType.CUSTOM
    try:
        parsed = parse_schedule(schedule)
    except ScheduleError:
        return ScheduledType.CUSTOM
    if parsed.kind == "once":
        return ScheduledType.FIXED_TIME
    if parsed.kind == "every":
        return ScheduledType.CUSTOM
    return cron_cycle(parsed.cron)


def record_counts(job: Job) -> tuple[int, int, int]:
    """(success_num, failed_num, skip_num). What the run recorded; a job that
    ended without recording any (skipped, cancelled, rejected or expired before
    it ran, or failed by the dead-letter queue) counts 1 in its status's column:
    FAILED in `failed_num`, SKIPPED and CANCELLED in `skip_num`."""
    counts = (job.success_num, job.failed_num, job.skip_num)
    if any(counts) or not job.status.terminal or job.status is JobStatus.COMPLETE:
        return counts
    return (0, 1, 0) if RECORD_STATUS[job.status] is RecordStatus.FAILED else (0, 0, 1)


def start_time(job: Job, zone: ZoneInfo) -> str:
    """When the run (its latest attempt) started, else its fire time, as
    `yyyy-MM-dd HH:mm:ss` wall-clock time in `zone`."""
    return (job.started_at or job.scheduled_for).astimezone(zone).strftime(START_TIME_FORMAT)


class ScheduledTaskRecord(BaseModel):
    """One execution (job) of a task, in Huawei Workspace's record shape."""

    id: str = Field(description="The job id.")
    start_time: str = Field(
        description="`yyyy-MM-dd HH:mm:ss` in `time_zone`: when the run (its latest attempt) "
        "started, or its fire time if it has not started."
    )
    task_type: str = Field(description="The action.")
    scheduled_type: ScheduledType
    life_cycle_type: Trigger = Field(description="Why the job exists (its trigger).")
    status: RecordStatus
    success_num: int
    failed_num: int
    skip_num: int
    time_zone: str = Field(description="The task's IANA time zone.")
    execute_task_id: str = Field(description="The job id.")
    execute_object_type: Literal["JOB"] = "JOB"


def record_of(job: Job, *, schedule: str | None, time_zone: str) -> ScheduledTaskRecord:
    """A task's job as a record. `schedule`: the task's (None for a service)."""
    success, failed, skipped = record_counts(job)
    return ScheduledTaskRecord(
        id=public_job_id(job.id),
        start_time=start_time(job, parse_timezone(time_zone)),
        task_type=job.action,
        scheduled_type=scheduled_type(schedule, job.trigger),
        life_cycle_type=job.trigger,
        status=RECORD_STATUS[job.status],
        success_num=success,
        failed_num=failed,
        skip_num=skipped,
        time_zone=time_zone,
        execute_task_id=public_job_id(job.id),
    )


# ------------------------------------------------------------ error surface
class HuaweiError(BaseModel):
    """A Huawei Cloud style error."""

    model_config = ConfigDict(title="HuaweiError")

    error_code: str = Field(description="Stable code, e.g. `WKS.0005`.")
    error_msg: str = Field(description="What the code means.")
    error_detail: str = Field(description="What went wrong this time.")
    # Required (no default), so that the schema says every error carries it.
    encoded_authorization_message: str | None = Field(
        description="Huawei's encoded explanation of an IAM authorization failure; Tickwork "
        "authorizes by token and project, not by IAM policies, so it is always null."
    )


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: str


INVALID_PARAMETER = ErrorCode("WKS.0001", 400, "Invalid parameter")
MISSING_TOKEN = ErrorCode("WKS.0002", 401, "Missing token")
INVALID_TOKEN = ErrorCode("WKS.0003", 401, "Invalid token")
WRONG_PROJECT = ErrorCode("WKS.0004", 403, "Forbidden")
TASK_NOT_FOUND = ErrorCode("WKS.0005", 404, "Scheduled task not found")
INTERNAL_ERROR = ErrorCode("WKS.9999", 500, "Internal error")

_MISSING_TOKEN_DETAIL = (
    "send the token as 'X-Auth-Token: <token>' or 'Authorization: Bearer <token>' "
    "(AK/SK signatures are not accepted)"
)


class RecordsSurface:
    """`/v2`: `X-Auth-Token` decides whenever it is present (the Huawei SDK also
    sends its own signature as `Authorization`), else `Authorization: Bearer`."""

    name = "v2"
    error_model: type[BaseModel] = HuaweiError
    error_media_type = "application/json"

    def token(self, request: Request) -> str | None:
        headers = {k.lower(): v for k, v in (request.headers or {}).items()}
        if "x-auth-token" in headers:
            return headers["x-auth-token"].strip() or None
        return bearer_token(headers)

    def error_code(self, error: TickworkError, request: Request) -> ErrorCode:
        if isinstance(error, BadRequest | ValidationFailed):
            return INVALID_PARAMETER
        if isinstance(error, Unauthenticated):
            return MISSING_TOKEN if self.token(request) is None else INVALID_TOKEN
        if isinstance(error, Forbidden):
            return WRONG_PROJECT
        if isinstance(error, NotFound):
            return TASK_NOT_FOUND
        return INTERNAL_ERROR

    def render_error(self, error: TickworkError, request: Request) -> Response:
        code = self.error_code(error, request)
        detail = _MISSING_TOKEN_DETAIL if code is MISSING_TOKEN else error.detail
        document = HuaweiError(
            error_code=code.code,
            error_msg=code.message,
            error_detail=detail,
            encoded_authorization_message=None,
        )
        return Response(
            body=json.dumps(document.model_dump(mode="json"), separators=(",", ":")),
            status_code=code.status,
            headers={"Content-Type": self.error_media_type},
        )


RECORDS = RecordsSurface()


# ------------------------------------------------------------ route
class RecordsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    offset: int = Field(0, ge=0, description="Records to skip, newest first.")
    limit: int = Field(
        10, ge=0, le=MAX_LIMIT, description="Records to answer; 0 answers only `total_count`."
    )


class ScheduledTaskRecordList(BaseModel):
    tasks_records: list[ScheduledTaskRecord]
    total_count: int = Field(description="All records of the task, whatever the page.")


@endpoint(
    bp,
    "GET",
    "/v2/{project_id}/scheduled-tasks/{task_id}/records",
    summary="A task's execution records (Huawei Workspace shape)",
    surface=RECORDS,
    tags=TAGS,
    query=RecordsQuery,
    response=ScheduledTaskRecordList,
    errors=(400, 401, 403, 404),
)
def list_records(call: Call) -> ScheduledTaskRecordList:
    """The task's jobs, newest fire time first, `offset` skipped and at most
    `limit` answered; `total_count` counts them all. The token must belong to
    `{project_id}` (else 403); another project's task answers 404."""
    q: RecordsQuery = call.query
    if call.who.project_id != call.path["project_id"]:
        raise Forbidden(f"this token does not belong to project '{call.path['project_id']}'")
    task, jobs, total = call.services.runs.runs_at_offset(
        call.who, call.path["task_id"], offset=q.offset, limit=q.limit
    )
    schedule = task.schedule if task.kind is Kind.TASK else None
    return ScheduledTaskRecordList(
        tasks_records=[record_of(j, schedule=schedule, time_zone=task.timezone) for j in jobs],
        total_count=total,
    )
