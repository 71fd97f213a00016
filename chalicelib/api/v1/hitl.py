"""`/v1/queue/hitl`: human-in-the-loop approval requests (DESIGN §5, §7 routes 6, 7, 8, 10)."""

from __future__ import annotations

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.common import ListQuery
from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.approvals.model import ApprovalRequest, ApprovalStatus
from chalicelib.jobs.model import public_job_id

bp = Blueprint(__name__)
TAGS = ("Approvals",)


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(None, max_length=2000, description="Kept as the request's reason.")


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000, description="Kept on the request and job.")


class RequestListQuery(ListQuery):
    status: ApprovalStatus = Field(ApprovalStatus.PENDING, description="Requests in this status.")


class RequestList(BaseModel):
    requests: list[ApprovalRequest]
    next_cursor: str | None = None


def shown(request: ApprovalRequest) -> ApprovalRequest:
    """A request as the API shows it: its job by the job's public id."""
    return request.model_copy(update={"job_id": public_job_id(request.job_id)})


@endpoint(
    bp,
    "POST",
    "/v1/queue/hitl/{request_id}/approve",
    summary="Approve a held job",
    surface=PROBLEMS,
    tags=TAGS,
    body=ApproveBody,
    response=ApprovalRequest,
    errors=(400, 401, 403, 404, 409, 422),
)
def approve(call: Call) -> ApprovalRequest:
    """6. The job is queued and runs. A request is decided once: again → 409.
    With `TICKWORK_APPROVAL_SELF=deny`, the run's asker or its task's last changer → 403."""
    body: ApproveBody = call.body
    return shown(call.services.approvals.approve(call.who, call.path["request_id"], body.comment))


@endpoint(
    bp,
    "POST",
    "/v1/queue/hitl/{request_id}/reject",
    summary="Reject a held job",
    surface=PROBLEMS,
    tags=TAGS,
    body=RejectBody,
    response=ApprovalRequest,
    errors=(400, 401, 403, 404, 409, 422),
)
def reject(call: Call) -> ApprovalRequest:
    """7. The job ends `rejected`, with the reason kept. Decided once: again → 409.
    With `TICKWORK_APPROVAL_SELF=deny`, the run's asker or its task's last changer → 403."""
    body: RejectBody = call.body
    return shown(call.services.approvals.reject(call.who, call.path["request_id"], body.reason))


@endpoint(
    bp,
    "GET",
    "/v1/queue/hitl",
    summary="List approval requests",
    surface=PROBLEMS,
    tags=TAGS,
    query=RequestListQuery,
    response=RequestList,
    errors=(401, 422),
)
def list_requests(call: Call) -> RequestList:
    """8. The project's requests in `status` (default `pending`), newest first."""
    q: RequestListQuery = call.query
    page = call.services.approvals.list_requests(call.who, q.status, limit=q.limit, cursor=q.cursor)
    return RequestList(requests=[shown(r) for r in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "GET",
    "/v1/queue/hitl/{request_id}",
    summary="Get an approval request",
    surface=PROBLEMS,
    tags=TAGS,
    response=ApprovalRequest,
    errors=(401, 404),
)
def get_request(call: Call) -> ApprovalRequest:
    """10. One request; another project's answers 404."""
    return shown(call.services.approvals.get(call.who, call.path["request_id"]))
