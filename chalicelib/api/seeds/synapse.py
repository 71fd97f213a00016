"""`/_synapse/admin/v1/scheduled_tasks`: Synapse's admin listing of scheduled
tasks over every project's jobs (DESIGN §7; docs/api-synapse.md)."""

from __future__ import annotations

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.api.errors.matrix import MATRIX
from chalicelib.api.routing import Call, endpoint, json_response
from chalicelib.api.seeds.synapse_view import (
    MAX_ACTION_NAMES,
    MAX_LIMIT,
    MAX_RESPONSE_BYTES,
    ScheduledTask,
    TaskQuery,
    TaskStatus,
    list_jobs_as_tasks,
)

bp = Blueprint(__name__)
TAGS = ("Synapse admin",)

#: Set when matching tasks may remain beyond this response: ask again with
#: `max_timestamp` set to its value (`chalicelib.api.seeds.synapse_view.continue_from`).
RESUME_HEADER = "Tickwork-Next-Max-Timestamp"
#: DynamoDB numbers are 38 digits, but timestamps are milliseconds: keep them to 64 bits.
_INT64 = 2**63


class ScheduledTasksQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Lists: the parameter may be repeated (`?status=active&status=scheduled`),
    # and a job matching any of the values is listed.
    action_name: list[str] | None = Field(
        None,
        max_length=MAX_ACTION_NAMES,
        description=f"Only jobs of these actions (repeatable, at most {MAX_ACTION_NAMES}).",
    )
    resource_id: str | None = Field(None, description="Only jobs with this `resource_id`.")
    status: list[TaskStatus] | None = Field(
        None,
        description="Only jobs in these Synapse statuses (repeatable): scheduled ← scheduled, "
        "queued, awaiting_approval; active ← active; complete ← complete, skipped; failed ← "
        "failed, cancelled, rejected, expired.",
    )
    max_timestamp: int | None = Field(
        None,
        ge=-_INT64,
        lt=_INT64,
        description="Only jobs whose `timestamp_ms` is at most this (ms since the epoch).",
    )
    limit: int = Field(
        MAX_LIMIT,
        ge=0,
        le=MAX_LIMIT,
        description="Most tasks listed: the newest of the matches, in increasing `timestamp_ms`.",
    )
    access_token: str | None = Field(
        None, description="The admin token, for clients that cannot send it as a header."
    )

    @field_validator("resource_id", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        # `?resource_id=` filters nothing, as in Synapse.
        return None if value == "" else value

    @field_validator("action_name", "status", mode="before")
    @classmethod
    def _empty_values_are_absent(cls, value: object) -> object:
        # `?status=` filters nothing, as in Synapse; nor does an empty value
        # among others (`?status=&status=active` is `?status=active`).
        values = [value] if isinstance(value, str) else value
        if isinstance(values, list):
            values = [v for v in values if v != ""]
            return values or None
        return value


class ScheduledTaskList(BaseModel):
    scheduled_tasks: list[ScheduledTask]


@endpoint(
    bp,
    "GET",
    "/_synapse/admin/v1/scheduled_tasks",
    summary="List scheduled tasks (Synapse admin API)",
    surface=MATRIX,
    tags=TAGS,
    auth="admin",
    query=ScheduledTasksQuery,
    response=ScheduledTaskList,
    errors=(400, 401, 403),
    description=(
        "Every project's jobs in Synapse's scheduled-task shape, in increasing "
        "`timestamp_ms` (as Synapse's store orders them): the newest `limit` (default and "
        f"most: {MAX_LIMIT}) of the matches, within about {MAX_RESPONSE_BYTES // 1_000_000} "
        f"MB. When older ones may match, the `{RESUME_HEADER}` response header says where "
        "to continue (as `max_timestamp`; the answers do not overlap). `status` and "
        "`action_name` may be repeated: a job matching any value is listed. A request with "
        "both a token header and `access_token` is 401 `M_MISSING_TOKEN`. "
        'Errors are Matrix-style `{"errcode", "error"}`.'
    ),
)
def list_scheduled_tasks(call: Call) -> Response:
    """Synapse's `GET /_synapse/admin/v1/scheduled_tasks` over every project's jobs."""
    q: ScheduledTasksQuery = call.query
    listing = list_jobs_as_tasks(
        call.services.job_listing,
        TaskQuery(
            action_names=frozenset(q.action_name) if q.action_name is not None else None,
            resource_id=q.resource_id,
            statuses=frozenset(q.status) if q.status is not None else None,
            max_timestamp=q.max_timestamp,
            limit=q.limit,
        ),
    )
    headers = {RESUME_HEADER: str(listing.resume_at_ms)} if listing.resume_at_ms is not None else {}
    return json_response(ScheduledTaskList(scheduled_tasks=listing.tasks), headers=headers)
