"""Job storage: rows of the jobs table <-> `Job`, and every conditional state change.

Each change of status is a conditional write on the status (and attempt) the
caller saw, so two executors, a tick and an API call can race without one
overwriting another; terminal states are never left (DESIGN §2.3, §2.5).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.clock import from_ms, to_ms
from chalicelib.jobs.model import STARTABLE, TERMINAL, Job, JobStatus, Trigger, can_move
from chalicelib.settings import Settings
from chalicelib.storage.errors import StorageConflict, condition_failed
from chalicelib.storage.job_listing import action_shard, status_shard
from chalicelib.storage.pages import Page, decode_cursor, read_page
from chalicelib.storage.tables import JobRecord, shard_of
from chalicelib.tasks.model import Task

logger = logging.getLogger("tickwork.jobs")

#: The one partition of the sparse `dead_letters` index.
DEAD_LETTER_PARTITION = "dead"


@dataclass(frozen=True)
class RunPolicy:
    """What an executor needs to run a job, fixed when the job is made."""

    timeout_s: float = 300
    retry_backoff: str = "constant"
    retry_delay_s: float = 60
    keep_for_s: float = 2_592_000
    log_max_size: int = 65_536
    log_on_full: str = "drop_new"

    @classmethod
    def of(cls, task: Task) -> RunPolicy:
        """The policy a task's jobs run under, fixed when each job is made."""
        return cls(
            timeout_s=task.timeout,
            retry_backoff=task.retry_backoff.value,
            retry_delay_s=task.retry_delay,
            keep_for_s=task.keep_for,
            log_max_size=task.log_max_size,
            log_on_full=task.log_on_full.value,
        )


@dataclass(frozen=True)
class StoredJob:
    job: Job
    policy: RunPolicy
    created_at: datetime
    lease_until: datetime | None
    due_at: datetime | None
    log: str
    log_truncated: bool
    result_truncated: bool
    #: A service run: how many failed runs of its lineage came right before it.
    restarts: int = 0


@dataclass(frozen=True)
class DeadLetter:
    """A job whose message SQS gave up on (DESIGN §1 dead-letter handler)."""

    job: Job
    dead_lettered_at: datetime
    receive_count: int


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the executor records it."""

    status: JobStatus
    result: Any = None
    result_truncated: bool = False
    error: str | None = None
    log: str = ""
    log_truncated: bool = False
    success_num: int = 0
    failed_num: int = 0
    skip_num: int = 0


@dataclass(frozen=True)
class JobFilter:
    """`GET /v1/queue/jobs` filters. The most selective one picks the index to
    query (correlation, task, status, else the project's); the rest filter."""

    status: JobStatus | None = None
    action: str | None = None
    task_id: str | None = None
    correlation_id: str | None = None


#: Told of each job this store moved to a terminal state: the job as it was just
#: before (its `started_at` is the last attempt's), the terminal status, and when.
#: Called after the conditional write succeeded, so a job is told once however
#: many deliveries raced to end it.
JobObserver = Callable[["StoredJob", JobStatus, datetime], None]


class JobStore:
    def __init__(self, settings: Settings, observer: JobObserver | None = None) -> None:
        self._settings = settings
        self._observer = observer

    def _ended(self, stored: StoredJob, status: JobStatus, now: datetime) -> None:
        if self._observer is None:
            return
        try:
            self._observer(stored, status, now)
        except Exception:  # what observes a job's end must never undo it
            logger.exception("job %s: observer failed", stored.job.id)

    def shard_of(self, job_id: str) -> str:
        return str(shard_of(job_id, self._settings.due_shards))

    # ------------------------------------------------------------ conversion
    @staticmethod
    def _to_stored(r: JobRecord) -> StoredJob:
        status = JobStatus(r.status)
        if r.timestamp_ms is not None:
            timestamp_ms = int(r.timestamp_ms)
        elif status is JobStatus.SCHEDULED:  # rows written before it was stored
            timestamp_ms = int(r.scheduled_ms)
        else:
            timestamp_ms = int(r.finished_ms or r.started_ms or r.enqueued_ms or r.created_ms)
        job = Job(
            id=r.id,
            project_id=r.project_id,
            action=r.action,
            args=r.args or {},
            status=status,
            task_id=r.task_id,
            resource_id=r.resource_id,
            correlation_id=r.correlation_id,
            trigger=Trigger(r.trigger),
            attempt=int(r.attempt),
            max_attempts=int(r.max_attempts),
            scheduled_for=from_ms(int(r.scheduled_ms)),
            enqueued_at=from_ms(int(r.enqueued_ms)) if r.enqueued_ms else None,
            started_at=from_ms(int(r.started_ms)) if r.started_ms else None,
            finished_at=from_ms(int(r.finished_ms)) if r.finished_ms else None,
            timestamp_ms=timestamp_ms,
            result=r.result,
            error=r.error,
            cancel_requested=bool(r.cancel_requested),
            requires_approval=bool(r.requires_approval),
            approval_request_id=r.approval_request_id,
            success_num=int(r.success_num or 0),
            failed_num=int(r.failed_num or 0),
            skip_num=int(r.skip_num or 0),
            expires_at=from_ms(int(r.start_by_ms)) if r.start_by_ms else None,
            retry_of=r.retry_of,
            requested_by=r.requested_by,
            requested_by_token=r.requested_by_token,
        )
        policy = RunPolicy(
            timeout_s=float(r.timeout_s),
            retry_backoff=r.retry_backoff,
            retry_delay_s=float(r.retry_delay_s),
            keep_for_s=float(r.keep_for_s),
            log_max_size=int(r.log_max_size),
            log_on_full=r.log_on_full,
        )
        return StoredJob(
            job=job,
            policy=policy,
            created_at=from_ms(int(r.created_ms)),
            lease_until=from_ms(int(r.lease_until_ms)) if r.lease_until_ms else None,
            due_at=from_ms(int(r.due_ms)) if r.due_ms is not None else None,
            log=r.log or "",
            log_truncated=bool(r.log_truncated),
            result_truncated=bool(r.result_truncated),
            restarts=int(r.restarts or 0),
        )

    # ------------------------------------------------------------ writes
    def create(
        self,
        job: Job,
        policy: RunPolicy,
        *,
        due_at: datetime | None,
        now: datetime,
        restarts: int = 0,
    ) -> bool:
        """Store a new job unless one with its id exists. True if this call created it.
        `due_at`: the tick's first watchdog instant for it (None: nothing to watch,
        e.g. a job awaiting approval, whose request carries the deadline)."""
        record = self.new_record(job, policy, due_at=due_at, now=now, restarts=restarts)
        try:
            record.save(condition=JobRecord.id.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def new_record(
        self,
        job: Job,
        policy: RunPolicy,
        *,
        due_at: datetime | None,
        now: datetime,
        restarts: int = 0,
    ) -> JobRecord:
        """The row of a new job, for `create` or a transaction (put it under
        `JobRecord.id.does_not_exist()`). Its `timestamp_ms` is its fire time
        if it is `scheduled`, else `now`."""
        at = job.scheduled_for if job.status is JobStatus.SCHEDULED else now
        return JobRecord(
            id=job.id,
            project_id=job.project_id,
            task_id=job.task_id,
            action=job.action,
            args=job.args,
            status=job.status.value,
            project_status=f"{job.project_id}#{job.status.value}",
            timestamp_ms=to_ms(at),
            status_shard=status_shard(job.id, job.status),
            action_shard=action_shard(job.id, job.action),
            project_correlation=(
                f"{job.project_id}#{job.correlation_id}" if job.correlation_id else None
            ),
            correlation_id=job.correlation_id,
            resource_id=job.resource_id,
            trigger=job.trigger.value,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            restarts=restarts,
            created_ms=to_ms(now),
            scheduled_ms=to_ms(job.scheduled_for),
            enqueued_ms=to_ms(job.enqueued_at) if job.enqueued_at else None,
            due_shard=self.shard_of(job.id) if due_at is not None else None,
            due_ms=to_ms(due_at) if due_at is not None else None,
            requires_approval=job.requires_approval,
            approval_request_id=job.approval_request_id,
            start_by_ms=to_ms(job.expires_at) if job.expires_at else None,
            retry_of=job.retry_of,
            requested_by=job.requested_by,
            requested_by_token=job.requested_by_token,
            timeout_s=policy.timeout_s,
            retry_backoff=policy.retry_backoff,
            retry_delay_s=policy.retry_delay_s,
            keep_for_s=policy.keep_for_s,
            log_max_size=policy.log_max_size,
            log_on_full=policy.log_on_full,
        )

    def transition(
        self,
        stored: StoredJob,
        new: JobStatus,
        actions: list[Any],
        *,
        at: datetime,
        also: Condition | None = None,
    ) -> tuple[JobRecord, list[Any], Condition]:
        """The update that moves a job from the status (and attempt) the caller saw
        to `new`: (row key, actions, condition), to run alone or in a transaction.
        `at` becomes the job's `timestamp_ms`: when the move happens, or for a
        move to `scheduled` the fire time the job then waits for (its new one
        when the move sets one). StorageConflict if the transition table
        forbids the move."""
        job = stored.job
        if not can_move(job.status, new):
            raise StorageConflict(f"{job.status} -> {new} is not allowed")
        condition = (JobRecord.status == job.status.value) & (JobRecord.attempt == job.attempt)
        if also is not None:
            condition &= also
        actions = [
            JobRecord.status.set(new.value),
            JobRecord.project_status.set(f"{job.project_id}#{new.value}"),
            JobRecord.timestamp_ms.set(to_ms(at)),
            JobRecord.status_shard.set(status_shard(job.id, new)),
            # Rows older than the listing indexes join them on their next move.
            JobRecord.action_shard.set(action_shard(job.id, job.action)),
            *actions,
        ]
        if new.terminal:
            actions += [JobRecord.due_shard.remove(), JobRecord.due_ms.remove()]
        return JobRecord(id=job.id), actions, condition

    def _move(
        self,
        stored: StoredJob,
        new: JobStatus,
        actions: list[Any],
        *,
        at: datetime,
        also: Condition | None = None,
    ) -> JobRecord:
        """Change status from the one the caller saw (and at its attempt); returns
        the row as written. `at`: as `transition` says."""
        record, actions, condition = self.transition(stored, new, actions, at=at, also=also)
        try:
            record.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):
                raise StorageConflict("changed") from exc
            raise
        return record

    def claim(self, stored: StoredJob, *, now: datetime, lease_until: datetime) -> StoredJob:
        """Start the job (a new attempt) and return it as started. StorageConflict
        if another claim won."""
        job = stored.job
        also = None
        if job.status is JobStatus.ACTIVE:
            # Only a job whose executor died (its lease ran out) starts again.
            also = JobRecord.lease_until_ms < to_ms(now)
        elif job.status not in STARTABLE:
            raise StorageConflict(f"{job.status} is not startable")
        started = self._move(
            stored,
            JobStatus.ACTIVE,
            [
                JobRecord.attempt.set(job.attempt + 1),
                JobRecord.started_ms.set(to_ms(now)),
                JobRecord.lease_until_ms.set(to_ms(lease_until)),
                JobRecord.due_ms.set(to_ms(lease_until)),
                JobRecord.due_shard.set(self.shard_of(job.id)),
            ],
            at=now,
            also=also,
        )
        return self._to_stored(started)

    def finish(self, stored: StoredJob, outcome: Outcome, *, now: datetime) -> None:
        """Record a run's terminal outcome; the row expires `keep_for` later (TTL)."""
        expires = now + timedelta(seconds=stored.policy.keep_for_s)
        self._move(
            stored,
            outcome.status,
            [
                JobRecord.finished_ms.set(to_ms(now)),
                JobRecord.result.set(outcome.result),
                JobRecord.result_truncated.set(outcome.result_truncated),
                JobRecord.error.set(outcome.error)
                if outcome.error is not None
                else JobRecord.error.remove(),
                JobRecord.log.set(outcome.log),
                JobRecord.log_truncated.set(outcome.log_truncated),
                JobRecord.success_num.set(outcome.success_num),
                JobRecord.failed_num.set(outcome.failed_num),
                JobRecord.skip_num.set(outcome.skip_num),
                JobRecord.expires_at_s.set(expires),
                JobRecord.lease_until_ms.remove(),
            ],
            at=now,
        )
        self._ended(stored, outcome.status, now)

    def retry_later(
        self,
        stored: StoredJob,
        *,
        at: datetime,
        due_at: datetime,
        error: str,
        log: str,
        log_truncated: bool,
    ) -> None:
        """A failed attempt that will be retried: back to `scheduled` until `at`."""
        self._move(
            stored,
            JobStatus.SCHEDULED,
            [
                JobRecord.scheduled_ms.set(to_ms(at)),
                JobRecord.due_ms.set(to_ms(due_at)),
                JobRecord.error.set(error),
                JobRecord.log.set(log),
                JobRecord.log_truncated.set(log_truncated),
                JobRecord.lease_until_ms.remove(),
            ],
            at=at,
        )

    def end(
        self,
        stored: StoredJob,
        status: JobStatus,
        *,
        now: datetime,
        error: str | None,
        dead_letter_receives: int | None = None,
    ) -> None:
        """End a job that is not running (skipped, expired, cancelled, failed by the
        DLQ). `dead_letter_receives`: the job ends because its message was
        dead-lettered after that many receives; it is listed among the dead
        letters, in the same write, until it is redriven or expires."""
        actions = self.end_actions(stored, now=now, error=error)
        if dead_letter_receives is not None:
            actions += [
                JobRecord.dead_letter_key.set(DEAD_LETTER_PARTITION),
                JobRecord.dead_lettered_ms.set(to_ms(now)),
                JobRecord.dead_letter_receives.set(dead_letter_receives),
            ]
        self._move(stored, status, actions, at=now)
        self._ended(stored, status, now)

    def release_actions(self, stored: StoredJob, *, due_at: datetime, now: datetime) -> list[Any]:
        """What releasing a held job to run writes (for a transaction through
        `transition`): handed to SQS now, its watchdog at `due_at`."""
        return [
            JobRecord.enqueued_ms.set(to_ms(now)),
            JobRecord.due_shard.set(self.shard_of(stored.job.id)),
            JobRecord.due_ms.set(to_ms(due_at)),
        ]

    def end_actions(self, stored: StoredJob, *, now: datetime, error: str | None) -> list[Any]:
        """What ending a job that is not running writes (for `end` or a transaction
        through `transition`, followed by `ended`)."""
        expires = now + timedelta(seconds=stored.policy.keep_for_s)
        return [
            JobRecord.finished_ms.set(to_ms(now)),
            JobRecord.error.set(error) if error is not None else JobRecord.error.remove(),
            JobRecord.expires_at_s.set(expires),
        ]

    def ended(self, stored: StoredJob, status: JobStatus, now: datetime) -> None:
        """Tell the observer of a terminal move written in a transaction."""
        self._ended(stored, status, now)

    # ------------------------------------------------------------ dead letters
    def take_dead_letter(self, job_id: str) -> bool:
        """Remove the job from the dead letters; True if this call did (so two
        redrives racing move it back once)."""
        try:
            JobRecord(id=job_id).update(
                actions=[
                    JobRecord.dead_letter_key.remove(),
                    JobRecord.dead_lettered_ms.remove(),
                    JobRecord.dead_letter_receives.remove(),
                ],
                condition=JobRecord.dead_letter_key.exists(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def dead_letters(self, *, limit: int, cursor: str | None) -> Page[DeadLetter]:
        """Every project's dead letters, newest first."""
        start = decode_cursor(cursor, expect={"dead_letter_key": DEAD_LETTER_PARTITION})
        results = JobRecord.dead_letters.query(
            DEAD_LETTER_PARTITION,
            scan_index_forward=False,
            page_size=limit,
            last_evaluated_key=start,
        )
        page = read_page(JobRecord, results, limit)
        return Page(
            [
                DeadLetter(
                    job=self._to_stored(r).job,
                    dead_lettered_at=from_ms(int(r.dead_lettered_ms or 0)),
                    receive_count=int(r.dead_letter_receives or 0),
                )
                for r in page.items
            ],
            page.next_cursor,
        )

    def count_dead_letters(self, project_id: str) -> int:
        """The project's dead letters (a COUNT Query of the small dead-letter index)."""
        return int(
            JobRecord.dead_letters.count(
                DEAD_LETTER_PARTITION, filter_condition=JobRecord.project_id == project_id
            )
        )

    def set_due(self, stored: StoredJob, due_at: datetime, *, enqueued: datetime | None) -> None:
        """Move the job's next watchdog instant (and note when it was handed to SQS)."""
        actions: list[Any] = [JobRecord.due_ms.set(to_ms(due_at))]
        if enqueued is not None:
            actions.append(JobRecord.enqueued_ms.set(to_ms(enqueued)))
        try:
            JobRecord(id=stored.job.id).update(
                actions=actions,
                condition=(JobRecord.status == stored.job.status.value)
                & (JobRecord.attempt == stored.job.attempt),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    def wait_for_slot(self, stored: StoredJob, due_at: datetime) -> None:
        """A queued job that found no free slot waits as `scheduled` (DESIGN §5)."""
        if stored.job.status is not JobStatus.QUEUED:
            self.set_due(stored, due_at, enqueued=None)
            return
        # A conflict: it moved on meanwhile (started by a duplicate, cancelled).
        with contextlib.suppress(StorageConflict):
            self._move(
                stored,
                JobStatus.SCHEDULED,
                [JobRecord.due_ms.set(to_ms(due_at))],
                at=stored.job.scheduled_for,
            )

    def request_cancel(self, job_id: str) -> None:
        try:
            JobRecord(id=job_id).update(
                actions=[JobRecord.cancel_requested.set(True)],
                condition=JobRecord.status == JobStatus.ACTIVE.value,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    def prune_runs(self, task_id: str, count: int) -> int:
        """Delete up to `count` of the task's oldest finished jobs (`keep_runs`).

        Reads oldest first from the `by_task` index and deletes only jobs that
        are terminal on the table itself, so a run still going is never lost.
        Returns how many were deleted.
        """
        deleted = 0
        oldest = JobRecord.by_task.query(task_id, scan_index_forward=True, page_size=count + 5)
        for record in oldest:
            if deleted >= count:
                break
            if JobStatus(record.status) not in TERMINAL:
                continue
            try:
                JobRecord(id=record.id).delete(
                    condition=JobRecord.status.is_in(*(s.value for s in TERMINAL))
                )
            except DeleteError as exc:
                if condition_failed(exc):
                    continue
                raise
            deleted += 1
        return deleted

    # ------------------------------------------------------------ reads
    def get(self, job_id: str) -> StoredJob | None:
        try:
            return self._to_stored(JobRecord.get(job_id, consistent_read=True))
        except JobRecord.DoesNotExist:
            return None

    def cancel_requested(self, job_id: str) -> bool:
        try:
            record = JobRecord.get(
                job_id, consistent_read=True, attributes_to_get=["cancel_requested"]
            )
        except JobRecord.DoesNotExist:
            return True
        return bool(record.cancel_requested)

    def due(self, shard: int, until: datetime) -> list[StoredJob]:
        """Non-terminal jobs of one shard whose watchdog instant is at or before `until`."""
        return [
            self._to_stored(r)
            for r in JobRecord.due.query(str(shard), JobRecord.due_ms <= to_ms(until))
        ]

    def list_project(
        self, project_id: str, *, limit: int, cursor: str | None, where: JobFilter
    ) -> Page[Job]:
        """A project's jobs, newest first, through the index that fits the filters."""
        clauses: list[Condition] = []
        if where.correlation_id is not None:
            key = f"{project_id}#{where.correlation_id}"
            index: Any = JobRecord.by_correlation
            expect = {"project_correlation": key}
        elif where.task_id is not None:
            key = where.task_id
            index = JobRecord.by_task
            expect = {"task_id": key}
            clauses.append(JobRecord.project_id == project_id)
        elif where.status is not None:
            key = f"{project_id}#{where.status.value}"
            index = JobRecord.by_project_status
            expect = {"project_status": key}
        else:
            key = project_id
            index = JobRecord.by_project
            expect = {"project_id": key}
        if where.status is not None and index is not JobRecord.by_project_status:
            clauses.append(JobRecord.status == where.status.value)
        if where.action is not None:
            clauses.append(JobRecord.action == where.action)
        condition: Condition | None = None
        for clause in clauses:
            condition = clause if condition is None else condition & clause
        results = index.query(
            key,
            filter_condition=condition,
            scan_index_forward=False,
            page_size=limit,
            last_evaluated_key=decode_cursor(cursor, expect=expect),
        )
        page = read_page(JobRecord, results, limit)
        return Page([self._to_stored(r).job for r in page.items], page.next_cursor)

    def count_in_status(self, project_id: str, status: JobStatus) -> int:
        """How many of the project's jobs are in `status` (a COUNT Query of one
        index partition: it reads only those jobs, never the table)."""
        return int(JobRecord.by_project_status.count(f"{project_id}#{status.value}"))

    def oldest_in_status(self, project_id: str, status: JobStatus) -> Job | None:
        """The project's longest-waiting job in `status` (first item of its partition)."""
        for record in JobRecord.by_project_status.query(
            f"{project_id}#{status.value}", scan_index_forward=True, limit=1
        ):
            return self._to_stored(record).job
        return None

    def run_before(self, task_id: str, before: datetime) -> StoredJob | None:
        """The task's job with the latest fire time before `before` (one Query
        of one item on `by_task`)."""
        for record in JobRecord.by_task.query(
            task_id,
            JobRecord.scheduled_ms < to_ms(before),
            scan_index_forward=False,
            limit=1,
        ):
            return self._to_stored(record)
        return None

    def runs_of_task(self, task_id: str, *, limit: int, cursor: str | None) -> Page[Job]:
        """A task's jobs, newest fire time first."""
        start = decode_cursor(cursor, expect={"task_id": task_id})
        results = JobRecord.by_task.query(
            task_id, scan_index_forward=False, page_size=limit, last_evaluated_key=start
        )
        page = read_page(JobRecord, results, limit)
        return Page([self._to_stored(r).job for r in page.items], page.next_cursor)

    # ------------------------------------------------------------ records (/v2)
    def count_runs_of_task(self, task_id: str) -> int:
        """How many jobs the task has (a COUNT Query of its `by_task` partition:
        it returns no items, though DynamoDB still reads each one)."""
        return int(JobRecord.by_task.count(task_id))

    def runs_of_task_at(self, task_id: str, *, offset: int, limit: int) -> list[Job]:
        """Up to `limit` of the task's jobs, newest fire time first, after skipping
        the first `offset`. The skipped jobs are read with only their keys
        projected (so their logs and results are not transferred) to find where
        the page starts; then one Query reads the page itself."""
        if limit <= 0:
            return []
        start = None
        if offset > 0:
            skipped = JobRecord.by_task.query(
                task_id,
                scan_index_forward=False,
                limit=offset,
                attributes_to_get=["id", "task_id", "scheduled_ms"],
            )
            if sum(1 for _ in skipped) < offset:
                return []
            start = skipped.last_evaluated_key
            if start is None:  # the offset ends exactly at the last job
                return []
        results = JobRecord.by_task.query(
            task_id, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        return [self._to_stored(r).job for r in results]
