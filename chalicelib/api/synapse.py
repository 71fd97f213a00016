"""`/_synapse/admin/v1/scheduled_tasks`: Synapse's admin listing of scheduled
tasks over every project's jobs (DESIGN §7; docs/api-synapse.md)."""

from __future__ import annotations

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.api.matrix_errors import MATRIX
from chalicelib.api.routing import Call, endpoint, json_response
from chalicelib.synapse import (
    MAX_LIMIT,
    MAX_RESPONSE_BYTES,
    ScheduledTask,
    TaskQuery,
    TaskStatus,
    list_tasks,
)

bp = Blueprint(__name__)
TAGS = ("Synapse admin",)

#: Set when matching tasks may remain beyond this response: ask again with
#: `max_timestamp` set to its value (`chalicelib.synapse.continue_from`).
RESUME_HEADER = "Tickwork-Next-Max-Timestamp"
#: DynamoDB numbers are 38 digits, but timestamps are milliseconds: keep them to 64 bits.
_INT64 = 2**63


class ScheduledTasksQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_name: str | None = Field(None, description="Only jobs of this action.")
    resource_id: str | None = Field(None, description="Only jobs with this `resource_id`.")
    status: TaskStatus | None = Field(
        None,
        description="Only jobs in this Synapse status: scheduled ← scheduled, queued, "
        "awaiting_approval; active ← active; complete ← complete, skipped; failed ← failed, "
        "cancelled, rejected, expired.",
    )
    max_timestamp: int | None = Field(
        None,
        ge=-_INT64,
        lt=_INT64,
        description="Only jobs whose `timestamp_ms` is at most this (ms since the epoch).",
    )
    limit: int = Field(
        MAX_LIMIT, ge=0, le=MAX_LIMIT, description="Most tasks listed, newest `timestamp_ms` first."
    )
    access_token: str | None = Field(
        None, description="The admin token, for clients that cannot send it as a header."
    )

    @field_validator("action_name", "resource_id", "status", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        # `?status=` filters nothing, as in Synapse.
        return None if value == "" else value


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
        "Every project's jobs in Synapse's scheduled-task shape, newest `timestamp_ms` "
        f"first: at most `limit` (default and most: {MAX_LIMIT}) of them and about "
        f"{MAX_RESPONSE_BYTES // 1_000_000} MB. When more may match, the "
        f"`{RESUME_HEADER}` response header says where to continue (as `max_timestamp`; "
        'the answers do not overlap). Errors are Matrix-style `{"errcode", "error"}`.'
    ),
)
def list_scheduled_tasks(call: Call) -> Response:
    """Synapse's `GET /_synapse/admin/v1/scheduled_tasks` over every project's jobs."""
    q: ScheduledTasksQuery = call.query
    listing = list_tasks(
        call.services.job_listing,
        TaskQuery(
            action_name=q.action_name,
            resource_id=q.resource_id,
            status=q.status,
            max_timestamp=q.max_timestamp,
            limit=q.limit,
        ),
    )
    headers = {RESUME_HEADER: str(listing.resume_at_ms)} if listing.resume_at_ms is not None else {}
    return json_response(ScheduledTaskList(scheduled_tasks=listing.tasks), headers=headers)
