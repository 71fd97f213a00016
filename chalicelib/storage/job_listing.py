"""The stage-wide listing of jobs: every project's, newest `timestamp_ms` first,
through the sparse, sharded `by_resource`, `by_action` and `by_status` indexes
of the jobs table (the Synapse admin surface reads it). Read-only: `JobStore`
writes the keys these indexes are built from.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.expressions.condition import Condition

from chalicelib.jobs.model import JobStatus
from chalicelib.storage.binding import Tables
from chalicelib.storage.tables import JobRecord, shard_of

#: Partitions each value of the stage-wide `by_status` and `by_action` keys is
#: spread over (`<value>#<shard>`). One index partition takes about 1,000 writes
#: a second and every job passes through `active`: spread, a busy stage does not
#: throttle its own job writes on one hot key. A listing reads every shard of
#: the values it asks for. Changing it strands rows keyed under the old count
#: until their next change of status.
LISTING_SHARDS = 4
#: Index items one stage-wide listing may read, whatever its filters discard.
LISTING_READ_BUDGET = 10_000


def listing_shard(job_id: str) -> int:
    return shard_of(job_id, LISTING_SHARDS)


def status_shard(job_id: str, status: JobStatus) -> str:
    """The job's `by_status` key: `<status>#<shard>`."""
    return f"{status.value}#{listing_shard(job_id)}"


def action_shard(job_id: str, action: str) -> str:
    """The job's `by_action` key: `<action>#<shard>`."""
    return f"{action}#{listing_shard(job_id)}"


@dataclass(frozen=True)
class JobSummary:
    """A job as the stage-wide listing indexes hold it (DESIGN §7 Synapse fields)."""

    id: str
    project_id: str
    action: str
    status: JobStatus
    timestamp_ms: int
    resource_id: str | None
    result: Any
    error: str | None


@dataclass(frozen=True)
class StageFilter:
    """Filters of a listing of every project's jobs. `statuses`, `actions`: any
    of these (None: any); `max_timestamp_ms` is inclusive."""

    statuses: frozenset[JobStatus] | None = None
    actions: frozenset[str] | None = None
    resource_id: str | None = None
    max_timestamp_ms: int | None = None


@dataclass(frozen=True)
class StagePage:
    """Up to `limit` matching jobs, newest `timestamp_ms` first.

    `resume_at_ms` is set when matching jobs may remain (the limit was reached,
    or the read budget ran out first): every matching job not in `items` has a
    `timestamp_ms` at most it (`items` may hold some at exactly it, too).
    `queries` and `items_read` are what the listing cost.
    """

    items: list[JobSummary]
    resume_at_ms: int | None
    queries: int
    items_read: int


@dataclass
class _Budget:
    """What one listing may still read, and what it read."""

    left: int
    queries: int = 0
    items_read: int = 0

    def spend(self, page: dict[str, Any]) -> None:
        self.queries += 1
        read = int(page.get("ScannedCount", len(page.get("Items", []))))
        self.items_read += read
        self.left -= read


#: An entry of one partition's newest-first stream: (timestamp_ms, 1, row), or
#: (where it stopped, 0, None) when the read budget ran out before its end.
_Entry = tuple[int, int, JobRecord | None]


class StageListing:
    """Every project's jobs of one stage."""

    def __init__(self, tables: Tables) -> None:
        self._jobs = tables.jobs

    def list_stage(
        self, where: StageFilter, *, limit: int, read_budget: int = LISTING_READ_BUDGET
    ) -> StagePage:
        """Every project's jobs matching `where`, newest `timestamp_ms` first, at
        most `limit` of them, through the index of the most selective
        filter: `by_resource` (one partition), else `by_action` (the shards of
        each action asked for), else `by_status` (the shards of each status
        asked for, or of all).
        `max_timestamp_ms` is part of each Query's key condition; the other
        filters are filter expressions. The partitions are merged newest first
        and read page by page as the merge needs them, so a listing reads about
        `limit` items plus a first page per partition; once the first pages are
        read, it stops at `read_budget` items read in all, however little its
        filters match."""
        budget = _Budget(read_budget)
        if limit <= 0 or frozenset() in (where.statuses, where.actions):
            return StagePage([], None, 0, 0)
        filters: list[Condition] = []
        index: Any
        if where.resource_id is not None:
            index, keys = self._jobs.by_resource, [where.resource_id]
        elif where.actions is not None:
            index = self._jobs.by_action
            keys = [
                f"{action}#{shard}"
                for action in sorted(where.actions)
                for shard in range(LISTING_SHARDS)
            ]
        else:
            index = self._jobs.by_status
            keys = [
                f"{status.value}#{shard}"
                for status in sorted(where.statuses or JobStatus)
                for shard in range(LISTING_SHARDS)
            ]
        if where.statuses is not None and index is not self._jobs.by_status:
            filters.append(self._jobs.status.is_in(*sorted(s.value for s in where.statuses)))
        if where.actions is not None and index is self._jobs.by_resource:
            filters.append(self._jobs.action.is_in(*sorted(where.actions)))
        condition: Condition | None = None
        for clause in filters:
            condition = clause if condition is None else condition & clause
        first_page = max(1, -(-limit // len(keys)))
        streams = [
            self._newest_first(
                index, key, where.max_timestamp_ms, condition, first_page, limit, budget
            )
            for key in keys
        ]
        merged = heapq.merge(*streams, key=lambda entry: (-entry[0], entry[1]))
        items: list[JobSummary] = []
        seen: set[str] = set()
        resume_at: int | None = None
        for timestamp_ms, _, record in merged:
            if record is None or len(items) >= limit:
                # Out of budget, or one past the limit: everything newer is in.
                resume_at = timestamp_ms
                break
            if record.id in seen:
                # It changed status between two partitions' reads: its newest
                # entry came first.
                continue
            seen.add(record.id)
            items.append(self._to_summary(record))
        return StagePage(items, resume_at, budget.queries, budget.items_read)

    def _newest_first(
        self,
        index: Any,
        key: str,
        max_timestamp_ms: int | None,
        condition: Condition | None,
        first_page: int,
        most_page: int,
        budget: _Budget,
    ) -> Iterator[_Entry]:
        """One partition's rows, newest first. Its first page is read now, so
        every partition's first page is read before any second page and where
        a partition stopped is always a key it read; later pages are read as
        the rows are consumed, doubling from `first_page` up to `most_page` (a
        partition that keeps holding the newest takes fewer Queries), while
        the budget lasts."""
        results = index.query(
            key,
            self._jobs.timestamp_ms <= max_timestamp_ms if max_timestamp_ms is not None else None,
            filter_condition=condition,
            scan_index_forward=False,
            page_size=first_page,
        )
        pages = results.page_iter
        page = next(pages, None)
        if page is not None:
            budget.spend(page)
        return self._rows_of(pages, page, first_page, most_page, budget)

    def _rows_of(
        self, pages: Any, page: dict[str, Any] | None, size: int, most_page: int, budget: _Budget
    ) -> Iterator[_Entry]:
        while page is not None:
            for raw in page.get("Items", []):
                record = self._jobs.from_raw_data(raw)
                yield (int(record.timestamp_ms), 1, record)
            last = pages.last_evaluated_key
            if not last:
                return
            if budget.left <= 0:
                yield (int(last["timestamp_ms"]["N"]), 0, None)
                return
            size = min(size * 2, most_page)
            pages.page_size = min(size, budget.left)
            page = next(pages, None)
            if page is not None:
                budget.spend(page)

    @staticmethod
    def _to_summary(r: JobRecord) -> JobSummary:
        return JobSummary(
            id=r.id,
            project_id=r.project_id,
            action=r.action,
            status=JobStatus(r.status),
            timestamp_ms=int(r.timestamp_ms),
            resource_id=r.resource_id,
            result=r.result,
            error=r.error,
        )
