"""Job storage: every write to a stage's jobs table (`JobReads` has the reads,
`stored_jobs` the rows and the types they become).

Each change of status is a conditional write on the status (and attempt) the
caller saw, so two executors, a tick and an API call can race without one
overwriting another; terminal states are never left (DESIGN §2.3, §2.5).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.clock import to_ms
from chalicelib.jobs.model import STARTABLE, TERMINAL, Job, JobStatus, can_move
from chalicelib.settings import Settings
from chalicelib.storage.binding import Tables
from chalicelib.storage.errors import StorageConflict, condition_failed
from chalicelib.storage.job_listing import action_shard, status_shard
from chalicelib.storage.job_reads import JobReads
from chalicelib.storage.stored_jobs import (
    DEAD_LETTER_PARTITION,
    Outcome,
    RunPolicy,
    StoredJob,
    new_row,
    to_stored,
)
from chalicelib.storage.tables import JobRecord, shard_of

logger = logging.getLogger("tickwork.jobs")

#: Told of each job this store moved to a terminal state: the job as it was just
#: before (its `started_at` is the last attempt's), the terminal status, and when.
#: Called after the conditional write succeeded, so a job is told once however
#: many deliveries raced to end it.
JobObserver = Callable[[StoredJob, JobStatus, datetime], None]


class JobStore(JobReads):
    """A stage's jobs: what `JobReads` reads, and every write."""

    def __init__(
        self, settings: Settings, tables: Tables, *, observer: JobObserver | None = None
    ) -> None:
        super().__init__(tables)
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

    # ------------------------------------------------------------ writes
    def create(
        self,
        job: Job,
        policy: RunPolicy,
        *,
        due_at: datetime | None,
        now: datetime,
        restarts: int = 0,
    ) -> dict[str, Any] | None:
        """Store a new job unless one with its id exists. Returns the row this call
        wrote (DynamoDB's attribute values, for the job's message), or None if the
        job existed. `due_at`: the tick's first watchdog instant for it (None:
        nothing to watch, e.g. a job awaiting approval, whose request carries the
        deadline)."""
        record = self.new_record(job, policy, due_at=due_at, now=now, restarts=restarts)
        try:
            record.save(condition=self._jobs.id.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return None
            raise
        return record.serialize()

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
        `<row>.id.does_not_exist()`). Its `timestamp_ms` is its fire time
        if it is `scheduled`, else `now`."""
        return new_row(
            self._jobs,
            job,
            policy,
            due_shard=self.shard_of(job.id),
            due_at=due_at,
            now=now,
            restarts=restarts,
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
        condition = (self._jobs.status == job.status.value) & (self._jobs.attempt == job.attempt)
        if also is not None:
            condition &= also
        actions = [
            self._jobs.status.set(new.value),
            self._jobs.project_status.set(f"{job.project_id}#{new.value}"),
            self._jobs.timestamp_ms.set(to_ms(at)),
            self._jobs.status_shard.set(status_shard(job.id, new)),
            # Rows older than the listing indexes join them on their next move.
            self._jobs.action_shard.set(action_shard(job.id, job.action)),
            *actions,
        ]
        if new.terminal:
            actions += [self._jobs.due_shard.remove(), self._jobs.due_ms.remove()]
        return self._jobs(id=job.id), actions, condition

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
            also = self._jobs.lease_until_ms < to_ms(now)
        elif job.status not in STARTABLE:
            raise StorageConflict(f"{job.status} is not startable")
        started = self._move(
            stored,
            JobStatus.ACTIVE,
            [
                self._jobs.attempt.set(job.attempt + 1),
                self._jobs.started_ms.set(to_ms(now)),
                self._jobs.lease_until_ms.set(to_ms(lease_until)),
                self._jobs.due_ms.set(to_ms(lease_until)),
                self._jobs.due_shard.set(self.shard_of(job.id)),
            ],
            at=now,
            also=also,
        )
        return to_stored(started)

    def finish(
        self,
        stored: StoredJob,
        outcome: Outcome,
        *,
        now: datetime,
        unless_cancel_requested: bool = False,
    ) -> None:
        """Record a run's terminal outcome; the row expires `keep_for` later (TTL).
        `unless_cancel_requested`: StorageConflict if a cancel was asked for."""
        expires = now + timedelta(seconds=stored.policy.keep_for_s)
        not_asked = None
        if unless_cancel_requested:
            flag = self._jobs.cancel_requested
            not_asked = (flag == False) | flag.does_not_exist()  # noqa: E712 (a condition)
        self._move(
            stored,
            outcome.status,
            [
                self._jobs.finished_ms.set(to_ms(now)),
                self._jobs.result.set(outcome.result),
                self._jobs.result_truncated.set(outcome.result_truncated),
                self._jobs.error.set(outcome.error)
                if outcome.error is not None
                else self._jobs.error.remove(),
                self._jobs.success_num.set(outcome.success_num),
                self._jobs.failed_num.set(outcome.failed_num),
                self._jobs.skip_num.set(outcome.skip_num),
                self._jobs.expires_at_s.set(expires),
                self._jobs.lease_until_ms.remove(),
            ],
            at=now,
            also=not_asked,
        )
        self._ended(stored, outcome.status, now)

    def retry_later(
        self,
        stored: StoredJob,
        *,
        at: datetime,
        due_at: datetime,
        error: str,
    ) -> None:
        """A failed attempt that will be retried: back to `scheduled` until `at`."""
        self._move(
            stored,
            JobStatus.SCHEDULED,
            [
                self._jobs.scheduled_ms.set(to_ms(at)),
                self._jobs.due_ms.set(to_ms(due_at)),
                self._jobs.error.set(error),
                self._jobs.lease_until_ms.remove(),
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
                self._jobs.dead_letter_key.set(DEAD_LETTER_PARTITION),
                self._jobs.dead_lettered_ms.set(to_ms(now)),
                self._jobs.dead_letter_receives.set(dead_letter_receives),
            ]
        self._move(stored, status, actions, at=now)
        self._ended(stored, status, now)

    def release_actions(self, stored: StoredJob, *, due_at: datetime, now: datetime) -> list[Any]:
        """What releasing a held job to run writes (for a transaction through
        `transition`): handed to SQS now, its watchdog at `due_at`."""
        return [
            self._jobs.enqueued_ms.set(to_ms(now)),
            self._jobs.due_shard.set(self.shard_of(stored.job.id)),
            self._jobs.due_ms.set(to_ms(due_at)),
        ]

    def end_actions(self, stored: StoredJob, *, now: datetime, error: str | None) -> list[Any]:
        """What ending a job that is not running writes (for `end` or a transaction
        through `transition`, followed by `ended`)."""
        expires = now + timedelta(seconds=stored.policy.keep_for_s)
        return [
            self._jobs.finished_ms.set(to_ms(now)),
            self._jobs.error.set(error) if error is not None else self._jobs.error.remove(),
            self._jobs.expires_at_s.set(expires),
        ]

    def ended(self, stored: StoredJob, status: JobStatus, now: datetime) -> None:
        """Tell the observer of a terminal move written in a transaction."""
        self._ended(stored, status, now)

    def take_dead_letter(self, job_id: str) -> bool:
        """Remove the job from the dead letters; True if this call did (so two
        redrives racing move it back once)."""
        try:
            self._jobs(id=job_id).update(
                actions=[
                    self._jobs.dead_letter_key.remove(),
                    self._jobs.dead_lettered_ms.remove(),
                    self._jobs.dead_letter_receives.remove(),
                ],
                condition=self._jobs.dead_letter_key.exists(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------ watchdog
    def set_due(self, stored: StoredJob, due_at: datetime, *, enqueued: datetime | None) -> None:
        """Move the job's next watchdog instant (and note when it was handed to SQS)."""
        actions: list[Any] = [self._jobs.due_ms.set(to_ms(due_at))]
        if enqueued is not None:
            actions.append(self._jobs.enqueued_ms.set(to_ms(enqueued)))
        try:
            self._jobs(id=stored.job.id).update(
                actions=actions,
                condition=(self._jobs.status == stored.job.status.value)
                & (self._jobs.attempt == stored.job.attempt),
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
                [self._jobs.due_ms.set(to_ms(due_at))],
                at=stored.job.scheduled_for,
            )

    def request_cancel(self, job_id: str) -> None:
        try:
            self._jobs(id=job_id).update(
                actions=[self._jobs.cancel_requested.set(True)],
                condition=self._jobs.status == JobStatus.ACTIVE.value,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    # ------------------------------------------------------------ pruning
    def prune_runs(self, task_id: str, count: int) -> list[tuple[str, int]]:
        """Delete up to `count` of the task's oldest finished jobs (`keep_runs`).

        Reads oldest first from the `by_task` index and deletes only jobs that
        are terminal on the table itself, so a run still going is never lost.
        Returns the deleted jobs' ids with their attempt counts (their attempts
        are the caller's to forget).
        """
        deleted: list[tuple[str, int]] = []
        oldest = self._jobs.by_task.query(task_id, scan_index_forward=True, page_size=count + 5)
        for record in oldest:
            if len(deleted) >= count:
                break
            if JobStatus(record.status) not in TERMINAL:
                continue
            try:
                self._jobs(id=record.id).delete(
                    condition=self._jobs.status.is_in(*(s.value for s in TERMINAL))
                )
            except DeleteError as exc:
                if condition_failed(exc):
                    continue
                raise
            deleted.append((record.id, int(record.attempt)))
        return deleted
