"""Task storage: rows of the tasks table <-> `Task`, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition, size
from pynamodb.transactions import TransactWrite

from chalicelib.clock import from_ms, to_ms
from chalicelib.settings import Settings
from chalicelib.storage.errors import StorageConflict, condition_failed, failed_positions
from chalicelib.storage.pages import Page, decode_cursor, read_page
from chalicelib.storage.tables import TaskRecord, UniqueRecord, shard_of
from chalicelib.storage.transactions import TransactionConnection
from chalicelib.tasks.model import Task, TaskSpec

#: Spec fields kept as top-level attributes (indexes, filters, pausing) and so
#: not repeated inside the `spec` JSON: each fact is stored once.
_TOP_LEVEL = {"name", "enabled", "action", "group"}


def name_key(project_id: str, name: str) -> str:
    """Key of the uniqueness claim on a task name within a project."""
    return f"task-name#{project_id}#{name}"


@dataclass(frozen=True)
class TaskFilter:
    enabled: bool | None = None
    action: str | None = None
    group: str | None = None

    def condition(self) -> Condition | None:
        condition: Condition | None = None
        for clause in (
            None if self.enabled is None else TaskRecord.enabled == self.enabled,
            None if self.action is None else TaskRecord.action == self.action,
            None if self.group is None else TaskRecord.group == self.group,
        ):
            if clause is not None:
                condition = clause if condition is None else condition & clause
        return condition


@dataclass(frozen=True)
class SlotState:
    """A task's slots and waiting firings, as one read or write left them."""

    #: Jobs holding a slot.
    active: frozenset[str]
    #: `on_overlap: queue` entries (`<fire ms>|<job id>`), oldest firing first.
    queued: list[str]
    #: `on_overlap: buffer_one`: its one waiting firing.
    waiting_job: str | None

    @classmethod
    def of(cls, record: TaskRecord) -> SlotState:
        return cls(
            frozenset(record.active_runs or ()),
            sorted(record.queued_jobs or ()),
            record.waiting_job,
        )


_NO_SLOTS = SlotState(frozenset(), [], None)


class TaskStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._transactions = TransactionConnection(settings)

    # ------------------------------------------------------------ conversion
    def _shard(self, task_id: str) -> str:
        return str(shard_of(task_id, self._settings.due_shards))

    def _to_record(self, task: Task) -> TaskRecord:
        will_fire = task.enabled and task.next_run_at is not None
        return TaskRecord(
            id=task.id,
            project_id=task.project_id,
            name=task.name,
            spec=task.spec().model_dump(mode="json", exclude=_TOP_LEVEL),
            enabled=task.enabled,
            action=task.action,
            group=task.group,
            due_shard=self._shard(task.id) if will_fire else None,
            next_run_ms=to_ms(task.next_run_at) if will_fire and task.next_run_at else None,
            anchor_ms=to_ms(task.anchor_at),
            last_run_ms=to_ms(task.last_run_at) if task.last_run_at else None,
            last_status=task.last_status,
            paused_reason=task.paused_reason,
            consecutive_failures=task.consecutive_failures,
            created_ms=to_ms(task.created_at),
            updated_ms=to_ms(task.updated_at),
            version=task.version,
            changed_by=task.changed_by,
            changed_by_token=task.changed_by_token,
        )

    @staticmethod
    def _to_task(record: TaskRecord) -> Task:
        spec = TaskSpec.model_validate(
            {
                **record.spec,
                "name": record.name,
                "enabled": record.enabled,
                "action": record.action,
                "group": record.group,
            }
        )
        return Task(
            **spec.model_dump(),
            id=record.id,
            project_id=record.project_id,
            next_run_at=from_ms(int(record.next_run_ms)) if record.next_run_ms else None,
            last_run_at=from_ms(int(record.last_run_ms)) if record.last_run_ms else None,
            last_status=record.last_status,
            paused_reason=record.paused_reason,
            consecutive_failures=int(record.consecutive_failures or 0),
            created_at=from_ms(int(record.created_ms)),
            updated_at=from_ms(int(record.updated_ms)),
            version=int(record.version),
            anchor_at=from_ms(int(record.anchor_ms)),
            changed_by=record.changed_by,
            changed_by_token=record.changed_by_token,
        )

    def _connection(self) -> Connection:
        return self._transactions.get()

    # ------------------------------------------------------------ reads
    def get(self, task_id: str) -> Task | None:
        try:
            return self._to_task(TaskRecord.get(task_id, consistent_read=True))
        except TaskRecord.DoesNotExist:
            return None

    def list_project(
        self, project_id: str, *, limit: int, cursor: str | None, where: TaskFilter
    ) -> Page[Task]:
        """A project's tasks ordered by name."""
        start = decode_cursor(cursor, expect={"project_id": project_id})
        results = TaskRecord.by_project.query(
            project_id,
            filter_condition=where.condition(),
            page_size=limit,
            last_evaluated_key=start,
        )
        page = read_page(TaskRecord, results, limit)
        return Page([self._to_task(r) for r in page.items], page.next_cursor)

    # ------------------------------------------------------------ writes
    def create(self, task: Task) -> None:
        """Store a new task and claim its name; StorageConflict("name") if taken."""
        claim = UniqueRecord(key=name_key(task.project_id, task.name), owner=task.id)
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.save(claim, condition=UniqueRecord.key.does_not_exist())
                tx.save(self._to_record(task), condition=TaskRecord.id.does_not_exist())
        except TransactWriteError as exc:
            if 0 in failed_positions(exc):
                raise StorageConflict("name") from exc
            raise

    def replace(self, task: Task, *, expected_version: int, old_name: str) -> None:
        """Write a changed spec (and its schedule state) if `version` still matches.

        Runtime fields the engine owns (`last_run_ms`, `last_status`,
        `consecutive_failures`) are left alone, so a PATCH never undoes a run's
        record; `next_run_ms` is written because a spec change recomputes it.
        """
        record = self._to_record(task)
        actions: list[Any] = [
            TaskRecord.spec.set(record.spec),
            TaskRecord.name.set(record.name),
            TaskRecord.enabled.set(record.enabled),
            TaskRecord.action.set(record.action),
            TaskRecord.group.set(record.group),
            TaskRecord.anchor_ms.set(record.anchor_ms),
            TaskRecord.paused_reason.set(record.paused_reason)
            if record.paused_reason is not None
            else TaskRecord.paused_reason.remove(),
            TaskRecord.updated_ms.set(record.updated_ms),
            TaskRecord.version.set(record.version),
        ]
        if record.changed_by_token is not None:
            actions += [
                TaskRecord.changed_by.set(record.changed_by),
                TaskRecord.changed_by_token.set(record.changed_by_token),
            ]
        if record.next_run_ms is None:
            actions += [TaskRecord.next_run_ms.remove(), TaskRecord.due_shard.remove()]
        else:
            actions += [
                TaskRecord.next_run_ms.set(record.next_run_ms),
                TaskRecord.due_shard.set(record.due_shard),
            ]
        renamed = task.name != old_name
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.update(
                    record,
                    actions=actions,
                    condition=TaskRecord.version == expected_version,
                )
                if renamed:
                    tx.save(
                        UniqueRecord(key=name_key(task.project_id, task.name), owner=task.id),
                        condition=UniqueRecord.key.does_not_exist(),
                    )
                    tx.delete(
                        UniqueRecord(key=name_key(task.project_id, old_name)),
                        condition=UniqueRecord.owner == task.id,
                    )
        except TransactWriteError as exc:
            failed = failed_positions(exc)
            if 0 in failed:
                raise StorageConflict("version") from exc
            if 1 in failed:
                raise StorageConflict("name") from exc
            raise

    def delete(self, task: Task) -> None:
        """Delete a task and release its name; StorageConflict if already gone."""
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.delete(self._to_record(task), condition=TaskRecord.id.exists())
                tx.delete(
                    UniqueRecord(key=name_key(task.project_id, task.name)),
                    condition=UniqueRecord.owner == task.id,
                )
        except TransactWriteError as exc:
            if failed_positions(exc):
                raise StorageConflict("gone") from exc
            raise

    # ------------------------------------------------------------ scheduler state
    def due(self, shard: int, until_ms: int) -> Iterator[Task]:
        """Enabled tasks of one shard whose next firing is at or before `until_ms`,
        earliest first. Lazy: a page is read when the one before is used up, so a
        tick that stops for its deadline reads no more than it fires."""
        for record in TaskRecord.due.query(str(shard), TaskRecord.next_run_ms <= until_ms):
            yield self._to_task(record)

    def advance(self, task: Task, new_next: datetime | None) -> bool:
        """Move `next_run_at` on from the value the caller saw; False if it moved already."""
        assert task.next_run_at is not None
        actions: list[Any] = (
            [TaskRecord.next_run_ms.remove(), TaskRecord.due_shard.remove()]
            if new_next is None
            else [TaskRecord.next_run_ms.set(to_ms(new_next))]
        )
        try:
            TaskRecord(id=task.id).update(
                actions=actions,
                condition=TaskRecord.next_run_ms == to_ms(task.next_run_at),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def active_runs(self, task_id: str) -> tuple[set[str], str | None]:
        """Jobs holding a slot of the task, and its buffered waiting job."""
        try:
            record = TaskRecord.get(
                task_id,
                consistent_read=True,
                attributes_to_get=["active_runs", "waiting_job"],
            )
        except TaskRecord.DoesNotExist:
            return set(), None
        return set(record.active_runs or ()), record.waiting_job

    def take_slot(
        self,
        task_id: str,
        job_id: str,
        parallelism: int | None,
        *,
        queue_turn: str | None = None,
    ) -> bool:
        """Add `job_id` to the task's active runs if fewer than `parallelism` run
        (None: whatever the count). With `queue_turn` (`on_overlap: queue`), only
        while the task's queue is empty or holds the entry `queue_turn` ("": only
        while it is empty). True when the job holds a slot."""
        condition = TaskRecord.id.exists()
        if parallelism is not None:
            free = TaskRecord.active_runs.does_not_exist() | (
                size(TaskRecord.active_runs) < parallelism  # type: ignore[no-untyped-call]
            )
            if queue_turn == "":
                free &= TaskRecord.queued_jobs.does_not_exist()
            elif queue_turn is not None:
                free &= TaskRecord.queued_jobs.does_not_exist() | TaskRecord.queued_jobs.contains(
                    queue_turn
                )
            # A job that holds a slot already (a duplicate delivery, a start that
            # was interrupted) keeps it, whatever waits.
            condition &= TaskRecord.active_runs.contains(job_id) | free
        try:
            TaskRecord(id=task_id).update(
                actions=[TaskRecord.active_runs.add({job_id})], condition=condition
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def slots(self, task_id: str) -> SlotState:
        """The task's slot holders and waiting firings (one consistent read)."""
        try:
            record = TaskRecord.get(
                task_id,
                consistent_read=True,
                attributes_to_get=["active_runs", "queued_jobs", "waiting_job"],
            )
        except TaskRecord.DoesNotExist:
            return _NO_SLOTS
        return SlotState.of(record)

    def join_queue(self, task_id: str, entry: str, queue_max: int) -> bool:
        """Add `entry` to the task's queue while fewer than `queue_max` entries
        wait (an entry already there stays). False when the queue is full (or the
        task is gone): two firings racing for the last place cannot both join."""
        room = TaskRecord.queued_jobs.contains(entry)
        if queue_max > 0:
            room |= TaskRecord.queued_jobs.does_not_exist() | (
                size(TaskRecord.queued_jobs) < queue_max  # type: ignore[no-untyped-call]
            )
        try:
            TaskRecord(id=task_id).update(
                actions=[TaskRecord.queued_jobs.add({entry})],
                condition=TaskRecord.id.exists() & room,
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def leave_queue(self, task_id: str, entry: str) -> None:
        try:
            TaskRecord(id=task_id).update(
                actions=[TaskRecord.queued_jobs.delete({entry})],
                condition=TaskRecord.id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # the task was deleted meanwhile
                raise

    def give_back_slot(self, task_id: str, job_id: str) -> SlotState:
        """Free the job's slot; returns the task's slots and waiting firings as
        that write left them (for a hand-over)."""
        record = TaskRecord(id=task_id)
        try:
            record.update(
                actions=[TaskRecord.active_runs.delete({job_id})],
                condition=TaskRecord.id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # the task was deleted meanwhile
                raise
            return _NO_SLOTS
        return SlotState.of(record)

    def buffer(self, task_id: str, job_id: str) -> str | None:
        """Make `job_id` the task's one waiting firing; returns the one it displaced."""
        for _ in range(5):
            _, previous = self.active_runs(task_id)
            if previous == job_id:
                return None
            unchanged = (
                TaskRecord.waiting_job.does_not_exist()
                if previous is None
                else TaskRecord.waiting_job == previous
            )
            try:
                TaskRecord(id=task_id).update(
                    actions=[TaskRecord.waiting_job.set(job_id)],
                    condition=TaskRecord.id.exists() & unchanged,
                )
            except UpdateError as exc:
                if condition_failed(exc):
                    continue  # another firing got buffered meanwhile: look again
                raise
            return previous
        return None

    def unbuffer(self, task_id: str, job_id: str) -> None:
        try:
            TaskRecord(id=task_id).update(
                actions=[TaskRecord.waiting_job.remove()],
                condition=TaskRecord.waiting_job == job_id,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    def record_run(
        self, task_id: str, *, status: str, at: datetime, failed: bool, pause_after: int
    ) -> int:
        """Note a finished run on the task; pause it after `pause_after` consecutive
        failures (0: never). Returns how many finished runs the task now keeps."""
        actions: list[Any] = [
            TaskRecord.last_run_ms.set(to_ms(at)),
            TaskRecord.last_status.set(status),
            TaskRecord.consecutive_failures.add(1)
            if failed
            else TaskRecord.consecutive_failures.set(0),
            TaskRecord.finished_runs.add(1),
        ]
        record = TaskRecord(id=task_id)
        try:
            record.update(actions=actions, condition=TaskRecord.id.exists())
        except UpdateError as exc:
            if condition_failed(exc):
                return 0
            raise
        failures = int(record.consecutive_failures or 0)
        if failed and pause_after and failures >= pause_after:
            self._pause(task_id, failures)
        return int(record.finished_runs or 0)

    def forget_runs(self, task_id: str, count: int) -> None:
        """`count` finished runs of the task were pruned."""
        try:
            TaskRecord(id=task_id).update(
                actions=[TaskRecord.finished_runs.add(-count)],
                condition=TaskRecord.id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    def _pause(self, task_id: str, failures: int) -> None:
        try:
            TaskRecord(id=task_id).update(
                actions=[
                    TaskRecord.enabled.set(False),
                    TaskRecord.paused_reason.set(
                        f"paused after {failures} consecutive failed runs"
                    ),
                    TaskRecord.next_run_ms.remove(),
                    TaskRecord.due_shard.remove(),
                    TaskRecord.version.add(1),
                ],
                condition=TaskRecord.enabled == True,  # noqa: E712 (a condition, not a test)
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # already disabled: nothing to pause
                raise
