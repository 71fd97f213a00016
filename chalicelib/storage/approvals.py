"""Approval storage: rows of the approvals table <-> `ApprovalRequest`, and the
transactions that change a request and its job together.

A request and its job never disagree: holding a job (job -> `awaiting_approval`,
request created), deciding (request -> approved/rejected/expired, job -> queued
or rejected) and cancelling are single DynamoDB transactions conditioned on the
states the caller saw, so a decision is made once however many race.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.approvals.model import ApprovalRequest, ApprovalStatus
from chalicelib.clock import from_ms, to_ms
from chalicelib.jobs.model import Job, JobStatus
from chalicelib.settings import Settings
from chalicelib.storage.binding import Tables
from chalicelib.storage.errors import StorageConflict, failed_positions
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.pages import Page, decode_cursor, read_page
from chalicelib.storage.stored_jobs import RunPolicy, StoredJob
from chalicelib.storage.tables import ApprovalRecord, shard_of


class ApprovalStore:
    """A stage's approval requests; `jobs` is the same stage's job store."""

    def __init__(self, settings: Settings, tables: Tables, jobs: JobStore) -> None:
        self._settings = settings
        self._approvals = tables.approvals
        self._job_model = tables.jobs
        self._jobs = jobs
        self._connection = tables.connection

    def _shard(self, request_id: str) -> str:
        return str(shard_of(request_id, self._settings.due_shards))

    @staticmethod
    def _to_request(r: ApprovalRecord) -> ApprovalRequest:
        return ApprovalRequest(
            id=r.id,
            project_id=r.project_id,
            job_id=r.job_id,
            action=r.action,
            args=r.args or {},
            status=ApprovalStatus(r.status),
            requested_at=from_ms(int(r.requested_ms)),
            expires_at=from_ms(int(r.expires_ms)),
            requested_by=r.requested_by,
            decided_at=from_ms(int(r.decided_ms)) if r.decided_ms else None,
            decided_by=r.decided_by,
            reason=r.reason,
        )

    # ------------------------------------------------------------ reads
    def get(self, request_id: str) -> ApprovalRequest | None:
        try:
            return self._to_request(self._approvals.get(request_id, consistent_read=True))
        except self._approvals.DoesNotExist:
            return None

    def list_project(
        self, project_id: str, status: ApprovalStatus, *, limit: int, cursor: str | None
    ) -> Page[ApprovalRequest]:
        """A project's requests in `status`, newest first."""
        key = f"{project_id}#{status.value}"
        results = self._approvals.by_project_status.query(
            key,
            scan_index_forward=False,
            page_size=limit,
            last_evaluated_key=decode_cursor(cursor, expect={"project_status": key}),
        )
        page = read_page(self._approvals, results, limit)
        return Page([self._to_request(r) for r in page.items], page.next_cursor)

    def due(self, shard: int, until: datetime) -> list[ApprovalRequest]:
        """Pending requests of one shard whose approval window ends by `until`."""
        return [
            self._to_request(r)
            for r in self._approvals.due.query(
                str(shard), self._approvals.expires_ms <= to_ms(until)
            )
        ]

    # ------------------------------------------------------------ transactions
    def _new_record(self, request: ApprovalRequest, keep_for_s: float) -> ApprovalRecord:
        return self._approvals(
            id=request.id,
            project_id=request.project_id,
            job_id=request.job_id,
            action=request.action,
            args=request.args,
            status=request.status.value,
            project_status=f"{request.project_id}#{request.status.value}",
            requested_ms=to_ms(request.requested_at),
            expires_ms=to_ms(request.expires_at),
            requested_by=request.requested_by,
            due_shard=self._shard(request.id),
            # Kept as long as the job it decides.
            expires_at_s=request.expires_at + timedelta(seconds=keep_for_s),
        )

    def hold(self, stored: StoredJob, request: ApprovalRequest, keep_for_s: float) -> None:
        """Create `request` and move its job to `awaiting_approval`, together.
        StorageConflict if the job moved on or the request exists already."""
        record = self._new_record(request, keep_for_s)
        job_row, actions, condition = self._jobs.transition(
            stored,
            JobStatus.AWAITING_APPROVAL,
            [
                self._job_model.approval_request_id.set(request.id),
                self._job_model.requires_approval.set(True),
                # The request's own deadline drives it from now on.
                self._job_model.due_shard.remove(),
                self._job_model.due_ms.remove(),
            ],
            at=request.requested_at,
        )
        self._write(
            lambda tx: (
                tx.update(job_row, actions=actions, condition=condition),
                tx.save(record, condition=self._approvals.id.does_not_exist()),
            )
        )

    def create_held(
        self,
        job: Job,
        policy: RunPolicy,
        request: ApprovalRequest,
        *,
        now: datetime,
        restarts: int = 0,
    ) -> None:
        """Put a new job that is born awaiting approval together with its request.
        StorageConflict("job") if a job with its id exists."""
        job_row = self._jobs.new_record(job, policy, due_at=None, now=now, restarts=restarts)
        record = self._new_record(request, policy.keep_for_s)
        self._write(
            lambda tx: (
                tx.save(job_row, condition=self._job_model.id.does_not_exist()),
                tx.save(record, condition=self._approvals.id.does_not_exist()),
            ),
            conflict_at_0="job",
        )

    def settle(
        self,
        request: ApprovalRequest,
        stored: StoredJob,
        *,
        decision: ApprovalStatus,
        job_status: JobStatus,
        job_actions: list[Any],
        now: datetime,
        decided_by: str | None,
        reason: str | None,
    ) -> None:
        """Decide a pending request and move its job, together. StorageConflict
        ("decided") if the request was decided meanwhile, ("job") if the job moved."""
        actions: list[Any] = [
            self._approvals.status.set(decision.value),
            self._approvals.project_status.set(f"{request.project_id}#{decision.value}"),
            self._approvals.decided_ms.set(to_ms(now)),
            self._approvals.due_shard.remove(),
        ]
        actions.append(
            self._approvals.decided_by.set(decided_by)
            if decided_by
            else self._approvals.decided_by.remove()
        )
        actions.append(
            self._approvals.reason.set(reason) if reason else self._approvals.reason.remove()
        )
        job_row, job_updates, job_condition = self._jobs.transition(
            stored, job_status, job_actions, at=now
        )
        self._write(
            lambda tx: (
                tx.update(
                    self._approvals(id=request.id),
                    actions=actions,
                    condition=self._approvals.status == ApprovalStatus.PENDING.value,
                ),
                tx.update(job_row, actions=job_updates, condition=job_condition),
            ),
            conflict_at_0="decided",
            conflict_at_1="job",
        )
        if job_status.terminal:
            self._jobs.ended(stored, job_status, now)

    def _write(
        self,
        fill: Any,
        *,
        conflict_at_0: str = "changed",
        conflict_at_1: str = "changed",
    ) -> None:
        try:
            with TransactWrite(connection=self._connection) as tx:
                fill(tx)
        except TransactWriteError as exc:
            failed = failed_positions(exc)
            if 0 in failed:
                raise StorageConflict(conflict_at_0) from exc
            if 1 in failed:
                raise StorageConflict(conflict_at_1) from exc
            raise
