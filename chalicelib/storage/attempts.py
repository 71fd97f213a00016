"""Attempt storage: one item per attempt of a job, `(job_id, attempt)`, with
its start, end, outcome, error and log.

Logs live here and not on the job: the job's item is copied into several
indexes, and every write of a log there would be written again into each of
them. An attempt is written once, when it ends, by the executor that ran it
(an attempt's number is its claim's, so two executors never write the same
one), and expires with its job: both take the job's `keep_for` from the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import PutError

from chalicelib.clock import from_ms, to_ms
from chalicelib.jobs.model import Attempt, AttemptStatus
from chalicelib.storage.binding import Tables
from chalicelib.storage.errors import condition_failed
from chalicelib.storage.stored_jobs import StoredJob

#: What a job's attempt list reads of each item: all but the log.
_LISTED = ["job_id", "attempt", "status", "started_ms", "finished_ms", "error", "log_truncated"]
#: The error of an attempt whose executor stopped before recording it.
LOST_ERROR = "lease expired: the executor stopped"


@dataclass(frozen=True)
class AttemptLog:
    """One attempt's log (`attempt` 0: the job has not started, so none)."""

    log: str
    truncated: bool
    attempt: int


class AttemptStore:
    """A stage's attempts table."""

    def __init__(self, tables: Tables) -> None:
        self._attempts = tables.attempts

    def record(
        self,
        stored: StoredJob,
        status: AttemptStatus,
        *,
        now: datetime,
        error: str | None,
        log: str,
        log_truncated: bool,
    ) -> None:
        """Keep the attempt `stored` is at (as its claim returned it), ended `now`."""
        job = stored.job
        self._attempts(
            job_id=job.id,
            attempt=job.attempt,
            status=status.value,
            started_ms=to_ms(job.started_at) if job.started_at else None,
            finished_ms=to_ms(now),
            error=error,
            log=log or None,
            log_truncated=log_truncated,
            expires_at_s=now + timedelta(seconds=stored.policy.keep_for_s),
        ).save()

    def lost(self, stored: StoredJob, *, now: datetime) -> None:
        """Keep the attempt of an `active` job whose executor stopped (its lease
        ran out) before it recorded it. An attempt its executor did record, late,
        is left as it is."""
        job = stored.job
        if job.attempt < 1:
            return
        record = self._attempts(
            job_id=job.id,
            attempt=job.attempt,
            status=AttemptStatus.LOST.value,
            started_ms=to_ms(job.started_at) if job.started_at else None,
            error=LOST_ERROR,
            expires_at_s=now + timedelta(seconds=stored.policy.keep_for_s),
        )
        try:
            record.save(condition=self._attempts.job_id.does_not_exist())
        except PutError as exc:
            if not condition_failed(exc):
                raise

    def of(self, job_id: str) -> list[Attempt]:
        """The job's recorded attempts, first first (without their logs: at most
        a job's `max_attempts` small items, one Query)."""
        rows = self._attempts.query(job_id, consistent_read=True, attributes_to_get=_LISTED)
        return [
            Attempt(
                attempt=int(r.attempt),
                status=AttemptStatus(r.status),
                started_at=from_ms(int(r.started_ms)) if r.started_ms else None,
                finished_at=from_ms(int(r.finished_ms)) if r.finished_ms else None,
                error=r.error,
                log_truncated=bool(r.log_truncated),
            )
            for r in rows
        ]

    def log(self, job_id: str, attempt: int) -> AttemptLog | None:
        """Attempt `attempt`'s log; None if that attempt is not recorded."""
        try:
            r = self._attempts.get(
                job_id, attempt, consistent_read=True, attributes_to_get=["log", "log_truncated"]
            )
        except self._attempts.DoesNotExist:
            return None
        return AttemptLog(r.log or "", bool(r.log_truncated), attempt)

    def forget(self, attempts: list[tuple[str, int]]) -> None:
        """Delete these `(job_id, attempts)`: every attempt of each pruned job."""
        with self._attempts.batch_write() as batch:
            for job_id, count in attempts:
                for n in range(1, count + 1):
                    batch.delete(self._attempts(job_id=job_id, attempt=n))
