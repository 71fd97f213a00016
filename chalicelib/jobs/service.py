"""The queue's reads and steering of jobs (DESIGN §5, §7 queue endpoints)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from chalicelib.actions import Registry
from chalicelib.approvals.service import ApprovalService
from chalicelib.auth.service import Principal
from chalicelib.clock import Clock, IdFactory, to_ms
from chalicelib.engine.dispatch import Dispatcher
from chalicelib.engine.handoff import send_stored_job
from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.jobs.model import (
    MADE_ID_PREFIXES,
    STARTABLE,
    Attempt,
    Job,
    JobStatus,
    Trigger,
    asked_by,
    job_keys,
    public_job_id,
    user_job_key,
)
from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.limits import ensure_args_fit
from chalicelib.settings import Settings
from chalicelib.storage.attempts import AttemptLog, AttemptStore
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.job_reads import JobFilter
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.pages import Page
from chalicelib.storage.stored_jobs import DeadLetter, RunPolicy, StoredJob
from chalicelib.tasks.model import (
    ACTION_NAME,
    MAX_DURATION_S,
    MAX_RUN_TIMEOUT_S,
    ONE_DAY_S,
    Backoff,
    Seconds,
    checked_run_timeout,
)

#: Most jobs `GET /v1/queue/correlation/{id}` returns (newest first).
MAX_CORRELATED = 200
#: Longest `result?wait=` long-poll, and how often it looks again.
MAX_RESULT_WAIT_S = 20
RESULT_POLL_S = 0.25
#: Attempts of a cancel that races the job's own progress (queued -> active).
_CANCEL_ATTEMPTS = 3
#: Statuses a job may be retried from by hand (`POST …/retry`).
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED})

_JOB_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class JobSubmission(BaseModel):
    """`POST /v1/queue/jobs`: one job, with ARQ's submission semantics (DESIGN §5)."""

    model_config = ConfigDict(
        extra="forbid",
        # "Not both" in the schema too, so that a client generated from
        # /openapi.json knows it: a body naming both (neither null) is invalid.
        json_schema_extra={
            "not": {
                "required": ["defer_until", "defer_by"],
                "properties": {"defer_until": {"type": "string"}, "defer_by": {"type": "number"}},
            }
        },
    )

    action: str = Field(pattern=ACTION_NAME, description="A registered action.")
    args: dict[str, Any] = Field(
        default_factory=dict, description="The action's arguments (checked against its model)."
    )
    job_id: str | None = Field(
        None,
        pattern=_JOB_ID,
        description=(
            "Makes the submission idempotent: while a job with this id exists in the "
            "project, submitting it again answers 409 and creates nothing. Ids belong to "
            "their project: another project may use the same id for its own job."
        ),
    )
    defer_until: AwareDatetime | None = Field(None, description="Start no earlier (RFC 3339).")
    defer_by: Seconds | None = Field(None, ge=0, le=MAX_DURATION_S, description="Start this late.")
    expires: Seconds | None = Field(
        None,
        gt=0,
        le=MAX_DURATION_S,
        description="Seconds from submission: not started by then, the job ends `expired`.",
    )
    max_tries: int = Field(1, ge=1, le=100, description="Attempts in all (1: no retries).")
    retry_delay: Seconds = Field(60, ge=0, le=ONE_DAY_S, description="The d of the backoff.")
    retry_backoff: Backoff = Field(Backoff.CONSTANT, description="Delay before retry k.")
    timeout: Seconds = Field(
        300,
        gt=0,
        json_schema_extra={"maximum": MAX_RUN_TIMEOUT_S},
        description="A run past it fails; at most what one executor invocation holds.",
    )
    correlation_id: str | None = Field(None, min_length=1, max_length=128)
    resource_id: str | None = Field(None, min_length=1, max_length=256)
    requires_approval: bool = Field(
        False, description="Wait for a human first (also when the action requires it)."
    )

    @field_validator("timeout")
    @classmethod
    def _fits_one_invocation(cls, seconds: float) -> float:
        return checked_run_timeout(seconds)


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


@dataclass(frozen=True)
class Redriven:
    job_id: str
    #: The job that runs it again (a failed one is never reopened); None when
    #: the dead-lettered job had not ended and its message was sent again.
    new_job_id: str | None


class QueueService:
    def __init__(
        self,
        jobs: JobStore,
        attempts: AttemptStore,
        queue: JobQueue,
        actions: Registry,
        approvals: ApprovalService,
        clock: Clock,
        ids: IdFactory,
        sleep: Callable[[float], None],
        *,
        settings: Settings,
    ) -> None:
        self._dispatcher = Dispatcher(
            jobs, queue, approvals, clock, lookahead_s=settings.lookahead_s
        )
        self._queue = queue
        self._jobs = jobs
        self._attempts = attempts
        self._actions = actions
        self._approvals = approvals
        self._clock = clock
        self._ids = ids
        self._sleep = sleep
        self._settings = settings

    # ------------------------------------------------------------ submitting
    def submit(self, principal: Principal, sub: JobSubmission) -> Job:
        """Validate and enqueue one job (202). 409 when `job_id` is taken."""
        ensure_args_fit(sub.args, self._settings.max_args_bytes)
        self._actions.checked(sub.action, sub.args)
        if sub.defer_until is not None and sub.defer_by is not None:
            raise ValidationFailed.at("body.defer_by", "give defer_until or defer_by, not both")
        now = self._clock.now()
        start = now
        if sub.defer_until is not None:
            start = max(now, sub.defer_until)
        elif sub.defer_by is not None:
            start = now + timedelta(seconds=sub.defer_by)
        expires_at = now + timedelta(seconds=sub.expires) if sub.expires is not None else None
        if expires_at is not None and expires_at < start:
            raise ValidationFailed.at(
                "body.expires", "ends before the job may start (its defer time)", sub.expires
            )
        if sub.job_id is not None:
            self._refuse_stored_before_scoping(principal, sub.job_id)
        job = Job(
            id=(
                user_job_key(principal.project_id, sub.job_id)
                if sub.job_id is not None
                else self._ids.new_id("job")
            ),
            project_id=principal.project_id,
            action=sub.action,
            args=sub.args,
            status=JobStatus.QUEUED,
            trigger=Trigger.QUEUE,
            max_attempts=sub.max_tries,
            scheduled_for=start,
            enqueued_at=now,
            timestamp_ms=to_ms(start),
            correlation_id=sub.correlation_id,
            resource_id=sub.resource_id,
            requires_approval=sub.requires_approval,
            expires_at=expires_at,
            **asked_by(principal),
        )
        policy = RunPolicy(
            timeout_s=sub.timeout,
            retry_backoff=sub.retry_backoff.value,
            retry_delay_s=sub.retry_delay,
        )
        return self._enqueue(job, policy)

    def _enqueue(self, job: Job, policy: RunPolicy) -> Job:
        """Store a new job and hand it on (`Dispatcher`). Conflict if its id is taken."""
        dispatched = self._dispatcher.dispatch(job, policy)
        if not dispatched.created:
            raise Conflict(f"a job with id '{public_job_id(job.id)}' exists")
        return dispatched.job

    def _refuse_stored_before_scoping(self, principal: Principal, job_id: str) -> None:
        """409 if the project's job submitted with `job_id` before ids were scoped
        to their project is still stored, under its bare id. A bare key shaped
        like a Tickwork-made id may be Tickwork's own job, so it is not looked at.
        One GetItem, only for a submission that names its `job_id`."""
        if job_id.startswith(MADE_ID_PREFIXES):
            return
        older = self._jobs.get(job_id)
        if older is not None and older.job.project_id == principal.project_id:
            raise Conflict(f"a job with id '{job_id}' exists")

    def retry(self, principal: Principal, job_id: str) -> Job:
        """A new job (trigger `retry`, `retry_of` the old) for a failed, cancelled
        or expired one. 409 for any other status."""
        old = self._stored(principal, job_id)
        if old.job.status not in RETRYABLE:
            raise Conflict(
                f"job '{job_id}' is {old.job.status.value}; only failed, cancelled or expired "
                "jobs can be retried"
            )
        return self._rerun(old, asker=principal)

    def _rerun(self, old: StoredJob, *, asker: Principal | None = None) -> Job:
        """`old` again as a new job. `asker`: the token that asked for this run
        (a manual retry); without it (a redrive) the old job's asker stays."""
        now = self._clock.now()
        job = old.job.model_copy(
            update={
                "id": self._ids.new_id("job"),
                "status": JobStatus.QUEUED,
                "trigger": Trigger.RETRY,
                "attempt": 0,
                "scheduled_for": now,
                "enqueued_at": now,
                "started_at": None,
                "finished_at": None,
                "timestamp_ms": to_ms(now),
                "result": None,
                "error": None,
                "cancel_requested": False,
                "approval_request_id": None,
                "success_num": 0,
                "failed_num": 0,
                "skip_num": 0,
                "expires_at": None,
                "retry_of": old.job.id,
                **(asked_by(asker) if asker is not None else {}),
            }
        )
        return self._enqueue(job, old.policy)

    # ------------------------------------------------------------ dead letters
    def dead_letters(self, *, limit: int, cursor: str | None) -> Page[DeadLetter]:
        """Every project's dead-lettered jobs, newest first (admin)."""
        return self._jobs.dead_letters(limit=limit, cursor=cursor)

    def redrive(self, *, limit: int) -> tuple[list[Redriven], bool]:
        """Move up to `limit` dead letters back to the queue (admin): a job the
        dead-letter handler failed runs again as a new job (`retry_of` it); one
        that had not ended gets its message again. Returns what moved and whether
        dead letters remain."""
        page = self._jobs.dead_letters(limit=limit, cursor=None)
        moved = []
        for letter in page.items:
            if not self._jobs.take_dead_letter(letter.job.id):
                continue  # another redrive took it
            stored = self._jobs.get(letter.job.id)
            if stored is None:
                continue
            if stored.job.status.terminal:
                moved.append(Redriven(stored.job.id, self._rerun(stored).id))
            else:
                send_stored_job(
                    self._queue, self._jobs, JobMessage(stored.job.id), 0, now=self._clock.now()
                )
                moved.append(Redriven(stored.job.id, None))
        return moved, page.next_cursor is not None

    def _stored(self, principal: Principal, job_id: str) -> StoredJob:
        """The project's job shown as `job_id` (a path's id): one GetItem in the
        common case, two when the id's shape points at the other key first."""
        for key in job_keys(principal.project_id, job_id):
            stored = self._jobs.get(key)
            # Another project's job is indistinguishable from a missing one.
            if stored is not None and stored.job.project_id == principal.project_id:
                return stored
        raise NotFound(f"job '{job_id}' not found")

    def get(self, principal: Principal, job_id: str) -> Job:
        return self._stored(principal, job_id).job

    def detail(self, principal: Principal, job_id: str) -> tuple[Job, list[Attempt]]:
        """The job and every attempt it made, first first."""
        job = self._stored(principal, job_id).job
        return job, self._attempts.of(job.id) if job.attempt else []

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

    def logs(self, principal: Principal, job_id: str, attempt: int | None = None) -> AttemptLog:
        """Attempt `attempt`'s log (default: the last attempt's). A running
        attempt's log is kept when it ends; a job not started has none."""
        stored = self._stored(principal, job_id)
        last = stored.job.attempt
        if attempt is not None and not 1 <= attempt <= last:
            raise NotFound(f"job '{job_id}' has no attempt {attempt} (it made {last})")
        n = attempt or last
        if n == 0:
            return AttemptLog("", False, 0)
        found = self._attempts.log(stored.job.id, n)
        if found is not None:
            return found
        if n == last:  # running, or a row from before attempts were kept: its own log
            return AttemptLog(stored.log, stored.log_truncated, n)
        raise NotFound(f"attempt {n} of job '{job_id}' was not kept (it ran before attempts were)")

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
                self._jobs.request_cancel(stored.job.id)
            elif status is JobStatus.AWAITING_APPROVAL:
                if not self._approvals.withdraw(principal, stored):
                    continue  # decided meanwhile: look again
            else:
                assert status in STARTABLE
                try:
                    self._jobs.end(
                        stored, JobStatus.CANCELLED, now=self._clock.now(), error="cancelled"
                    )
                except StorageConflict:
                    continue  # it started (or ended) meanwhile: look again
            return self._stored(principal, job_id).job
        raise Conflict(f"job '{job_id}' keeps changing; try again")

    def depth(self, principal: Principal) -> Depth:
        """The project's jobs by waiting status and its dead letters (index
        counts: they read those jobs only, never the table)."""

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
            dead_letter=self._jobs.count_dead_letters(principal.project_id),
            oldest_queued_age_seconds=age,
        )

    def action_names(self) -> list[str]:
        """The registered actions' names, sorted (no schemas built)."""
        return self._actions.names()

    def actions(self) -> list[ActionInfo]:
        return [
            ActionInfo(a.name, a.description, a.schema(), self._approvals.action_default(a.name))
            for a in self._actions.all()
        ]
