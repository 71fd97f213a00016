"""The queue's reads and steering of jobs (DESIGN §5, §7 queue endpoints)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.actions import Registry
from chalicelib.auth import Principal
from chalicelib.clock import Clock
from chalicelib.errors import Conflict, NotFound
from chalicelib.jobs import STARTABLE, Job, JobStatus
from chalicelib.messaging import JobQueue
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.jobs import JobFilter, JobStore, StoredJob
from chalicelib.storage.pages import Page

#: Most jobs `GET /v1/queue/correlation/{id}` returns (newest first).
MAX_CORRELATED = 200
#: Longest `result?wait=` long-poll, and how often it looks again.
MAX_RESULT_WAIT_S = 20
RESULT_POLL_S = 0.25
#: Attempts of a cancel that races the job's own progress (queued -> active).
_CANCEL_ATTEMPTS = 3


@dataclass(frozen=True)
class JobLog:
    log: str
    truncated: bool


@dataclass(frozen=True)
class Depth:
    scheduled: int
    queued: int
    active: int
    awaiting_approval: int
    dead_letter: int
    oldest_queued_age_seconds: float | None


@dataclass(frozen=True)
class ActionInfo:
    name: str
    description: str
    args_schema: dict[str, Any]
    requires_approval: bool


class QueueService:
    def __init__(
        self,
        jobs: JobStore,
        queue: JobQueue,
        actions: Registry,
        clock: Clock,
        sleep: Callable[[float], None],
    ) -> None:
        self._queue = queue
        self._jobs = jobs
        self._actions = actions
        self._clock = clock
        self._sleep = sleep

    def _stored(self, principal: Principal, job_id: str) -> StoredJob:
        stored = self._jobs.get(job_id)
        # Another project's job is indistinguishable from a missing one.
        if stored is None or stored.job.project_id != principal.project_id:
            raise NotFound(f"job '{job_id}' not found")
        return stored

    def get(self, principal: Principal, job_id: str) -> Job:
        return self._stored(principal, job_id).job

    def list_jobs(
        self, principal: Principal, *, limit: int, cursor: str | None, where: JobFilter
    ) -> Page[Job]:
        return self._jobs.list_project(
            principal.project_id, limit=limit, cursor=cursor, where=where
        )

    def correlated(self, principal: Principal, correlation_id: str) -> list[Job]:
        """The project's jobs sharing `correlation_id`, newest first (at most MAX_CORRELATED)."""
        page = self._jobs.list_project(
            principal.project_id,
            limit=MAX_CORRELATED,
            cursor=None,
            where=JobFilter(correlation_id=correlation_id),
        )
        return page.items

    def result(self, principal: Principal, job_id: str, *, wait_s: float) -> Job:
        """The job once it is terminal, or as it is after `wait_s` seconds (a
        long-poll: one consistent read every RESULT_POLL_S)."""
        deadline = self._clock.now() + timedelta(seconds=min(wait_s, MAX_RESULT_WAIT_S))
        while True:
            job = self._stored(principal, job_id).job
            if job.status.terminal or self._clock.now() >= deadline:
                return job
            self._sleep(RESULT_POLL_S)

    def logs(self, principal: Principal, job_id: str) -> JobLog:
        stored = self._stored(principal, job_id)
        return JobLog(stored.log, stored.log_truncated)

    def cancel(self, principal: Principal, job_id: str) -> Job:
        """Not started: `cancelled` at once, and it never runs. Running: it gets
        `cancel_requested` and ends `cancelled` when its action returns or sees
        `ctx.cancelled`. Ended: 409."""
        for _ in range(_CANCEL_ATTEMPTS):
            stored = self._stored(principal, job_id)
            status = stored.job.status
            if status.terminal:
                raise Conflict(f"job '{job_id}' already ended ({status.value})")
            if status is JobStatus.ACTIVE:
                self._jobs.request_cancel(job_id)
            else:
                assert status in STARTABLE or status is JobStatus.AWAITING_APPROVAL
                try:
                    self._jobs.end(
                        stored, JobStatus.CANCELLED, now=self._clock.now(), error="cancelled"
                    )
                except StorageConflict:
                    continue  # it started (or ended) meanwhile: look again
            return self._stored(principal, job_id).job
        raise Conflict(f"job '{job_id}' keeps changing; try again")

    def depth(self, principal: Principal) -> Depth:
        """The project's jobs by waiting status (index counts) and the stage's
        dead-letter queue (SQS's count; the queue is shared by all projects)."""

        def count(status: JobStatus) -> int:
            return self._jobs.count_in_status(principal.project_id, status)

        oldest = self._jobs.oldest_in_status(principal.project_id, JobStatus.QUEUED)
        age = None
        if oldest is not None:
            since = oldest.enqueued_at or oldest.scheduled_for
            age = max(0.0, (self._clock.now() - since).total_seconds())
        return Depth(
            scheduled=count(JobStatus.SCHEDULED),
            queued=count(JobStatus.QUEUED),
            active=count(JobStatus.ACTIVE),
            awaiting_approval=count(JobStatus.AWAITING_APPROVAL),
            dead_letter=self._queue.waiting("jobs-dlq"),
            oldest_queued_age_seconds=age,
        )

    def actions(self) -> list[ActionInfo]:
        return [
            ActionInfo(a.name, a.description, a.schema(), a.requires_approval)
            for a in self._actions.all()
        ]
