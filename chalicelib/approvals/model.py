"""Human-in-the-loop approval requests (DESIGN §5): statuses and the domain type."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ApprovalRequest(BaseModel):
    """A request as stored and as `/v1/queue/hitl` shows it."""

    id: str
    project_id: str
    job_id: str
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: ApprovalStatus
    requested_at: datetime
    expires_at: datetime = Field(
        description="Undecided by then, it expires and its job is rejected."
    )
    requested_by: str | None = Field(
        None,
        description=(
            "Who asked for the run, as `<name> (<token id>)`: the submitting token of a "
            "queue job, the token that triggered or backfilled a task's run, else the "
            "token that last created or changed the task (cron, catch-up, restart). "
            "Null for runs recorded before it was kept."
        ),
    )
    decided_at: datetime | None = None
    decided_by: str | None = Field(
        None, description="The deciding token as `<name> (<token id>)`; null when it expired."
    )
    reason: str | None = Field(
        None, description="The rejection's reason, the approval's comment, or `expired`."
    )


def approval_request_id(job_id: str) -> str:
    """The one request a job can have: holding a job twice makes one request.
    The id goes into URL paths, so a user job key's `/` becomes `~`, which no
    project id, job id or Tickwork-made id contains: still one id per job."""
    return f"apr_{job_id.replace('/', '~')}"
