"""Reads of a stage's jobs table: one job, a project's jobs through the index
that fits the filters, counts, a task's runs by cursor or by offset, the dead
letters, and the watchdog's due jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.expressions.condition import Condition

from chalicelib.clock import to_ms
from chalicelib.jobs.model import Job, JobStatus
from chalicelib.storage.binding import Tables
from chalicelib.storage.pages import Page, decode_cursor, read_page
from chalicelib.storage.stored_jobs import (
    DEAD_LETTER_PARTITION,
    DeadLetter,
    StoredJob,
    to_dead_letter,
    to_stored,
)


@dataclass(frozen=True)
class JobFilter:
    """`GET /v1/queue/jobs` filters. The most selective one picks the index to
    query (correlation, task, status, else the project's); the rest filter."""

    status: JobStatus | None = None
    action: str | None = None
    task_id: str | None = None
    correlation_id: str | None = None


class JobReads:
    """What `JobStore` reads; it adds the writes."""

    def __init__(self, tables: Tables) -> None:
        self._jobs = tables.jobs

    def get(self, job_id: str) -> StoredJob | None:
        try:
            return to_stored(self._jobs.get(job_id, consistent_read=True))
        except self._jobs.DoesNotExist:
            return None

    def from_row(self, job_id: str, row: dict[str, Any]) -> StoredJob | None:
        """The job a message's row holds (as `create` wrote it), or None if the
        row is not that job's row."""
        try:
            stored = to_stored(self._jobs.from_raw_data(row))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return stored if stored.job.id == job_id else None

    def cancel_requested(self, job_id: str) -> bool:
        try:
            record = self._jobs.get(
                job_id, consistent_read=True, attributes_to_get=["cancel_requested"]
            )
        except self._jobs.DoesNotExist:
            return True
        return bool(record.cancel_requested)

    def list_project(
        self, project_id: str, *, limit: int, cursor: str | None, where: JobFilter
    ) -> Page[Job]:
        """A project's jobs, newest first, through the index that fits the filters."""
        jobs = self._jobs
        clauses: list[Condition] = []
        if where.correlation_id is not None:
            key = f"{project_id}#{where.correlation_id}"
            index: Any = jobs.by_correlation
            expect = {"project_correlation": key}
        elif where.task_id is not None:
            key = where.task_id
            index = jobs.by_task
            expect = {"task_id": key}
            clauses.append(jobs.project_id == project_id)
        elif where.status is not None:
            key = f"{project_id}#{where.status.value}"
            index = jobs.by_project_status
            expect = {"project_status": key}
        else:
            key = project_id
            index = jobs.by_project
            expect = {"project_id": key}
        if where.status is not None and index is not jobs.by_project_status:
            clauses.append(jobs.status == where.status.value)
        if where.action is not None:
            clauses.append(jobs.action == where.action)
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
        page = read_page(jobs, results, limit)
        return Page([to_stored(r).job for r in page.items], page.next_cursor)

    def count_in_status(self, project_id: str, status: JobStatus) -> int:
        """How many of the project's jobs are in `status` (a COUNT Query of one
        index partition: it reads only those jobs, never the table)."""
        return int(self._jobs.by_project_status.count(f"{project_id}#{status.value}"))

    def oldest_in_status(self, project_id: str, status: JobStatus) -> Job | None:
        """The project's longest-waiting job in `status` (first item of its partition)."""
        for record in self._jobs.by_project_status.query(
            f"{project_id}#{status.value}", scan_index_forward=True, limit=1
        ):
            return to_stored(record).job
        return None

    # ------------------------------------------------------------ a task's runs
    def run_before(self, task_id: str, before: datetime) -> StoredJob | None:
        """The task's job with the latest fire time before `before` (one Query
        of one item on `by_task`)."""
        for record in self._jobs.by_task.query(
            task_id,
            self._jobs.scheduled_ms < to_ms(before),
            scan_index_forward=False,
            limit=1,
        ):
            return to_stored(record)
        return None

    def runs_of_task(self, task_id: str, *, limit: int, cursor: str | None) -> Page[Job]:
        """A task's jobs, newest fire time first."""
        start = decode_cursor(cursor, expect={"task_id": task_id})
        results = self._jobs.by_task.query(
            task_id, scan_index_forward=False, page_size=limit, last_evaluated_key=start
        )
        page = read_page(self._jobs, results, limit)
        return Page([to_stored(r).job for r in page.items], page.next_cursor)

    # ------------------------------------------------------------ records (/v2)
    def count_runs_of_task(self, task_id: str) -> int:
        """How many jobs the task has (a COUNT Query of its `by_task` partition:
        it returns no items, though DynamoDB still reads each one)."""
        return int(self._jobs.by_task.count(task_id))

    def runs_of_task_at(self, task_id: str, *, offset: int, limit: int) -> list[Job]:
        """Up to `limit` of the task's jobs, newest fire time first, after skipping
        the first `offset`. The skipped jobs are read with only their keys
        projected (so their logs and results are not transferred) to find where
        the page starts; then one Query reads the page itself."""
        if limit <= 0:
            return []
        start = None
        if offset > 0:
            skipped = self._jobs.by_task.query(
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
        results = self._jobs.by_task.query(
            task_id, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        return [to_stored(r).job for r in results]

    # ------------------------------------------------------------ dead letters
    def dead_letters(self, *, limit: int, cursor: str | None) -> Page[DeadLetter]:
        """Every project's dead letters, newest first."""
        start = decode_cursor(cursor, expect={"dead_letter_key": DEAD_LETTER_PARTITION})
        results = self._jobs.dead_letters.query(
            DEAD_LETTER_PARTITION,
            scan_index_forward=False,
            page_size=limit,
            last_evaluated_key=start,
        )
        page = read_page(self._jobs, results, limit)
        return Page([to_dead_letter(r) for r in page.items], page.next_cursor)

    def count_dead_letters(self, project_id: str) -> int:
        """The project's dead letters (a COUNT Query of the small dead-letter index)."""
        return int(
            self._jobs.dead_letters.count(
                DEAD_LETTER_PARTITION, filter_condition=self._jobs.project_id == project_id
            )
        )

    # ------------------------------------------------------------ watchdog
    def due(self, shard: int, until: datetime) -> list[StoredJob]:
        """Non-terminal jobs of one shard whose watchdog instant is at or before `until`."""
        return [
            to_stored(r)
            for r in self._jobs.due.query(str(shard), self._jobs.due_ms <= to_ms(until))
        ]
