"""Human in the loop (DESIGN §5): holding jobs for a decision, deciding, expiring.

A job needs approval when its submission asks for it, when its task says
`requires_approval`, or when its action does by default (the operator sets
which actions do: `TICKWORK_APPROVAL_ACTIONS`). It is held when it is due to
start — at submission for a job that may start at once, else when the executor
picks it up — so a request is always about a job that would run now.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from chalicelib.actions import Registry
from chalicelib.approvals.model import ApprovalRequest, ApprovalStatus, approval_request_id
from chalicelib.auth.service import Principal
from chalicelib.clock import Clock
from chalicelib.engine.dispatch import handoff
from chalicelib.engine.handoff import send_stored_job
from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.jobs.model import Job, JobStatus
from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.storage.approvals import ApprovalStore
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.pages import Page
from chalicelib.storage.stored_jobs import RunPolicy, StoredJob
from chalicelib.storage.tasks import TaskStore

logger = logging.getLogger("tickwork.approvals")


class ApprovalService:
    def __init__(
        self,
        approvals: ApprovalStore,
        jobs: JobStore,
        queue: JobQueue,
        actions: Registry,
        clock: Clock,
        *,
        tasks: TaskStore,
        ttl_s: float,
        approval_actions: tuple[str, ...] | None,
        approval_self: str = "allow",
        lookahead_s: float,
    ) -> None:
        self._lookahead = timedelta(seconds=lookahead_s)
        self._approvals = approvals
        self._jobs = jobs
        self._tasks = tasks
        #: TICKWORK_APPROVAL_SELF: whether a run's asker may decide its request.
        self._self_may_decide = approval_self == "allow"
        self._queue = queue
        self._actions = actions
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._approval_actions = approval_actions

    # ------------------------------------------------------------ holding
    def action_default(self, name: str) -> bool:
        """Whether jobs of action `name` wait for a human by default: the operator's
        list when set (`TICKWORK_APPROVAL_ACTIONS`), else the action's own default."""
        if self._approval_actions is not None:
            return name in self._approval_actions
        action = self._actions.get(name)
        return action is not None and action.requires_approval

    def required(self, job: Job) -> bool:
        """Whether `job` must wait for a human: asked for, or by its action's default.
        (A submission cannot turn an action's default off.)"""
        return job.requires_approval or self.action_default(job.action)

    def needs_hold(self, job: Job) -> bool:
        """A startable job that needs approval and has not been held yet."""
        return job.approval_request_id is None and self.required(job)

    def request_for(self, job: Job, now: datetime) -> ApprovalRequest:
        return ApprovalRequest(
            id=approval_request_id(job.id),
            project_id=job.project_id,
            job_id=job.id,
            action=job.action,
            args=job.args,
            status=ApprovalStatus.PENDING,
            requested_at=now,
            requested_by=job.requested_by,
            expires_at=now + self._ttl,
        )

    def hold(self, stored: StoredJob) -> None:
        """Move a due job to `awaiting_approval` with its request. Doing it twice
        (a duplicate delivery) is harmless: the second finds the job moved on."""
        now = self._clock.now()
        try:
            self._approvals.hold(
                stored, self.request_for(stored.job, now), stored.policy.keep_for_s
            )
        except StorageConflict:
            logger.info("job %s: already held or moved on", stored.job.id)

    def create_held(self, job: Job, policy: RunPolicy, *, restarts: int = 0) -> Job:
        """Store a new job that is born awaiting approval, with its request.
        StorageConflict("job") if its id is taken."""
        now = self._clock.now()
        self._approvals.create_held(
            job, policy, self.request_for(job, now), now=now, restarts=restarts
        )
        return job

    # ------------------------------------------------------------ reading
    def get(self, principal: Principal, request_id: str) -> ApprovalRequest:
        request = self._approvals.get(request_id)
        # Another project's request is indistinguishable from a missing one.
        if request is None or request.project_id != principal.project_id:
            raise NotFound(f"approval request '{request_id}' not found")
        return request

    def list_requests(
        self, principal: Principal, status: ApprovalStatus, *, limit: int, cursor: str | None
    ) -> Page[ApprovalRequest]:
        return self._approvals.list_project(
            principal.project_id, status, limit=limit, cursor=cursor
        )

    # ------------------------------------------------------------ deciding
    def approve(
        self, principal: Principal, request_id: str, comment: str | None
    ) -> ApprovalRequest:
        """Approve: the job is queued and runs. A decided request answers 409;
        403 under the four-eyes rule (`may_decide`)."""
        request, stored = self._pending(principal, request_id)
        now = self._clock.now()
        # Released as a dispatched job is handed on (chalicelib/engine/dispatch.py): a
        # held job was due, so it goes to SQS with its watchdog set behind it.
        plan = handoff(stored.job.scheduled_for, now, self._lookahead)
        self._settle(
            request,
            stored,
            ApprovalStatus.APPROVED,
            JobStatus.QUEUED,
            self._jobs.release_actions(stored, due_at=plan.due_at, now=now),
            by=principal.label,
            reason=comment,
        )
        if plan.delay_s is not None:
            send_stored_job(
                self._queue, self._jobs, JobMessage(stored.job.id), plan.delay_s, now=now
            )
        return self.get(principal, request_id)

    def reject(self, principal: Principal, request_id: str, reason: str | None) -> ApprovalRequest:
        """Reject: the job ends `rejected` with the reason. A decided request answers
        409; 403 under the four-eyes rule (`may_decide`)."""
        request, stored = self._pending(principal, request_id)
        self._settle(
            request,
            stored,
            ApprovalStatus.REJECTED,
            JobStatus.REJECTED,
            self._jobs.end_actions(
                stored,
                now=self._clock.now(),
                error=f"rejected: {reason}" if reason else "rejected",
            ),
            by=principal.label,
            reason=reason,
        )
        return self.get(principal, request_id)

    def withdraw(self, principal: Principal, stored: StoredJob) -> bool:
        """Cancel a job held for approval: its request is rejected with it. False
        if the request or the job moved on meanwhile (look again)."""
        request = self._approvals.get(stored.job.approval_request_id or "")
        if request is None or request.status is not ApprovalStatus.PENDING:
            return False
        try:
            self._settle(
                request,
                stored,
                ApprovalStatus.REJECTED,
                JobStatus.CANCELLED,
                self._jobs.end_actions(stored, now=self._clock.now(), error="cancelled"),
                by=principal.label,
                reason="job cancelled",
            )
        except Conflict:
            return False
        return True

    def expire_due(self, shard: int) -> int:
        """Expire the shard's pending requests whose window ended (the tick);
        their jobs end `rejected`. Returns how many expired."""
        now = self._clock.now()
        expired = 0
        for request in self._approvals.due(shard, now):
            if self._expire(request):
                expired += 1
        return expired

    def _expire(self, request: ApprovalRequest) -> bool:
        stored = self._jobs.get(request.job_id)
        if stored is None or stored.job.status is not JobStatus.AWAITING_APPROVAL:
            return False
        try:
            self._settle(
                request,
                stored,
                ApprovalStatus.EXPIRED,
                JobStatus.REJECTED,
                self._jobs.end_actions(
                    stored, now=self._clock.now(), error="rejected: approval expired"
                ),
                by=None,
                reason="expired",
            )
        except Conflict:
            return False  # decided meanwhile
        return True

    def may_decide(self, principal: Principal, stored: StoredJob | None) -> bool:
        """The four-eyes rule (TICKWORK_APPROVAL_SELF=deny): neither the token that
        asked for the run nor the one that last changed the task whose run it is
        (as the task is now) may decide it. Withdrawing (cancelling) is no decision."""
        if self._self_may_decide or stored is None:
            return True
        job = stored.job
        barred = {job.requested_by_token}
        if job.task_id is not None:
            task = self._tasks.get(job.task_id)
            if task is not None:
                barred.add(task.changed_by_token)
        return principal.token_id not in barred

    def _pending(self, principal: Principal, request_id: str) -> tuple[ApprovalRequest, StoredJob]:
        """The request to decide and its job, after the checks every decision
        makes, in this order: 404 (another project's), 403 (four eyes: nothing
        is written), 409 (decided, expired — an overdue request is expired on
        the way —, or its job moved on)."""
        request = self.get(principal, request_id)
        stored = self._jobs.get(request.job_id)
        if not self.may_decide(principal, stored):
            raise Forbidden(
                "with TICKWORK_APPROVAL_SELF=deny a token cannot decide a run it asked "
                "for, or a run of a task it last changed: another token of the project must"
            )
        if request.status is not ApprovalStatus.PENDING:
            raise Conflict(
                f"approval request '{request_id}' was already decided ({request.status})"
            )
        if self._clock.now() >= request.expires_at:
            self._expire(request)
            raise Conflict(f"approval request '{request_id}' expired at {request.expires_at}")
        if stored is None or stored.job.status is not JobStatus.AWAITING_APPROVAL:
            raise Conflict(f"the job of approval request '{request_id}' is no longer waiting")
        return request, stored

    def _settle(
        self,
        request: ApprovalRequest,
        stored: StoredJob,
        decision: ApprovalStatus,
        job_status: JobStatus,
        job_actions: list[Any],
        *,
        by: str | None,
        reason: str | None,
    ) -> None:
        try:
            self._approvals.settle(
                request,
                stored,
                decision=decision,
                job_status=job_status,
                job_actions=job_actions,
                now=self._clock.now(),
                decided_by=by,
                reason=reason,
            )
        except StorageConflict as exc:
            raise Conflict(
                f"approval request '{request.id}' was decided meanwhile"
                if exc.reason == "decided"
                else f"the job of approval request '{request.id}' moved on meanwhile"
            ) from exc
