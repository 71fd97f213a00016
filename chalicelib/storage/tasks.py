"""Task storage: rows of a stage's tasks table <-> `Task`, in one place; the
name claims (uniques table) written with them; the schedule state the tick
and the executor change (`task_slots` has the slots)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.clock import from_ms, to_ms
from chalicelib.settings import Settings
from chalicelib.storage.binding import Tables
from chalicelib.storage.errors import StorageConflict, condition_failed, failed_positions
from chalicelib.storage.pages import Page, decode_cursor, read_page
from chalicelib.storage.tables import TaskRecord, shard_of
from chalicelib.storage.task_slots import NO_SLOTS, SlotState, TaskSlots
from chalicelib.tasks.model import Task, TaskSpec

#: Spec fields kept as top-level attributes (indexes, filters, pausing) and so
#: not repeated inside the `spec` JSON: each fact is stored once.
_TOP_LEVEL = {"name", "enabled", "action", "group"}


@dataclass(frozen=True)
class RunEnded:
    """What ending a run left on its task."""

    #: The task's slots and waiting firings as the write left them (for a hand-over).
    slots: SlotState
    #: Finished runs the task now keeps.
    kept: int


def name_key(project_id: str, name: str) -> str:
    """Key of the uniqueness claim on a task name within a project."""
    return f"task-name#{project_id}#{name}"


@dataclass(frozen=True)
class TaskFilter:
    enabled: bool | None = None
    action: str | None = None
    group: str | None = None

    def condition(self, tasks: type[TaskRecord]) -> Condition | None:
        """The filter expression on `tasks` (a stage's bound tasks model)."""
        condition: Condition | None = None
        for clause in (
            None if self.enabled is None else tasks.enabled == self.enabled,
            None if self.action is None else tasks.action == self.action,
            None if self.group is None else tasks.group == self.group,
        ):
            if clause is not None:
                condition = clause if condition is None else condition & clause
        return condition


class TaskStore(TaskSlots):
    """A stage's tasks: their definitions, name claims and schedule state, and
    (`TaskSlots`) their slots."""

    def __init__(self, settings: Settings, tables: Tables) -> None:
        super().__init__(tables)
        self._settings = settings
        self._uniques = tables.uniques
        self._connection = tables.connection

    # ------------------------------------------------------------ conversion
    def _shard(self, task_id: str) -> str:
        return str(shard_of(task_id, self._settings.due_shards))

    def _to_record(self, task: Task) -> TaskRecord:
        will_fire = task.enabled and task.next_run_at is not None
        return self._tasks(
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
            last_run_id=task.last_run_id,
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
            last_run_id=record.last_run_id,
            paused_reason=record.paused_reason,
            consecutive_failures=int(record.consecutive_failures or 0),
            created_at=from_ms(int(record.created_ms)),
            updated_at=from_ms(int(record.updated_ms)),
            version=int(record.version),
            anchor_at=from_ms(int(record.anchor_ms)),
            changed_by=record.changed_by,
            changed_by_token=record.changed_by_token,
        )

    # ------------------------------------------------------------ reads
    def get(self, task_id: str) -> Task | None:
        try:
            return self._to_task(self._tasks.get(task_id, consistent_read=True))
        except self._tasks.DoesNotExist:
            return None

    def list_project(
        self, project_id: str, *, limit: int, cursor: str | None, where: TaskFilter
    ) -> Page[Task]:
        """A project's tasks ordered by name."""
        start = decode_cursor(cursor, expect={"project_id": project_id})
        results = self._tasks.by_project.query(
            project_id,
            filter_condition=where.condition(self._tasks),
            page_size=limit,
            last_evaluated_key=start,
        )
        page = read_page(self._tasks, results, limit)
        return Page([self._to_task(r) for r in page.items], page.next_cursor)

    # ------------------------------------------------------------ writes
    def create(self, task: Task) -> None:
        """Store a new task and claim its name; StorageConflict("name") if taken."""
        claim = self._uniques(key=name_key(task.project_id, task.name), owner=task.id)
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(claim, condition=self._uniques.key.does_not_exist())
                tx.save(self._to_record(task), condition=self._tasks.id.does_not_exist())
        except TransactWriteError as exc:
            if 0 in failed_positions(exc):
                raise StorageConflict("name") from exc
            raise

    def replace(self, task: Task, *, expected_version: int, old_name: str) -> None:
        """Write a changed spec (and its schedule state) if `version` still matches.

        Runtime fields the engine owns (`last_run_ms`, `last_status`,
        `last_run_id`, `consecutive_failures`) are left alone, so a PATCH never undoes a run's
        record; `next_run_ms` is written because a spec change recomputes it.
        """
        record = self._to_record(task)
        actions: list[Any] = [
            self._tasks.spec.set(record.spec),
            self._tasks.name.set(record.name),
            self._tasks.enabled.set(record.enabled),
            self._tasks.action.set(record.action),
            self._tasks.group.set(record.group),
            self._tasks.anchor_ms.set(record.anchor_ms),
            self._tasks.paused_reason.set(record.paused_reason)
            if record.paused_reason is not None
            else self._tasks.paused_reason.remove(),
            self._tasks.updated_ms.set(record.updated_ms),
            self._tasks.version.set(record.version),
        ]
        if record.changed_by_token is not None:
            actions += [
                self._tasks.changed_by.set(record.changed_by),
                self._tasks.changed_by_token.set(record.changed_by_token),
            ]
        if record.next_run_ms is None:
            actions += [self._tasks.next_run_ms.remove(), self._tasks.due_shard.remove()]
        else:
            actions += [
                self._tasks.next_run_ms.set(record.next_run_ms),
                self._tasks.due_shard.set(record.due_shard),
            ]
        renamed = task.name != old_name
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(
                    record,
                    actions=actions,
                    condition=self._tasks.version == expected_version,
                )
                if renamed:
                    tx.save(
                        self._uniques(key=name_key(task.project_id, task.name), owner=task.id),
                        condition=self._uniques.key.does_not_exist(),
                    )
                    tx.delete(
                        self._uniques(key=name_key(task.project_id, old_name)),
                        condition=self._uniques.owner == task.id,
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
            with TransactWrite(connection=self._connection) as tx:
                tx.delete(self._to_record(task), condition=self._tasks.id.exists())
                tx.delete(
                    self._uniques(key=name_key(task.project_id, task.name)),
                    condition=self._uniques.owner == task.id,
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
        for record in self._tasks.due.query(str(shard), self._tasks.next_run_ms <= until_ms):
            yield self._to_task(record)

    def advance(self, task: Task, new_next: datetime | None) -> bool:
        """Move `next_run_at` on from the value the caller saw; False if it moved already."""
        assert task.next_run_at is not None
        actions: list[Any] = (
            [self._tasks.next_run_ms.remove(), self._tasks.due_shard.remove()]
            if new_next is None
            else [self._tasks.next_run_ms.set(to_ms(new_next))]
        )
        try:
            self._tasks(id=task.id).update(
                actions=actions,
                condition=self._tasks.next_run_ms == to_ms(task.next_run_at),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def end_run(
        self,
        task_id: str,
        job_id: str,
        *,
        status: str,
        at: datetime,
        failed: bool,
        pause_after: int,
    ) -> RunEnded:
        """A run of the task ended: free its slot and note it (`last_*`, the
        failure streak, the finished-run count) in one write; pause the task
        after `pause_after` consecutive failures (0: never). A deleted task
        gives back nothing."""
        actions: list[Any] = [
            self._tasks.active_runs.delete({job_id}),
            self._tasks.last_run_ms.set(to_ms(at)),
            self._tasks.last_status.set(status),
            self._tasks.last_run_id.set(job_id),
            self._tasks.consecutive_failures.add(1)
            if failed
            else self._tasks.consecutive_failures.set(0),
            self._tasks.finished_runs.add(1),
        ]
        record = self._tasks(id=task_id)
        try:
            record.update(actions=actions, condition=self._tasks.id.exists())
        except UpdateError as exc:
            if condition_failed(exc):
                return RunEnded(NO_SLOTS, kept=0)
            raise
        failures = int(record.consecutive_failures or 0)
        if failed and pause_after and failures >= pause_after:
            self._pause(task_id, failures)
        return RunEnded(SlotState.of(record), kept=int(record.finished_runs or 0))

    def forget_runs(self, task_id: str, count: int) -> None:
        """`count` finished runs of the task were pruned."""
        try:
            self._tasks(id=task_id).update(
                actions=[self._tasks.finished_runs.add(-count)],
                condition=self._tasks.id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    def _pause(self, task_id: str, failures: int) -> None:
        try:
            self._tasks(id=task_id).update(
                actions=[
                    self._tasks.enabled.set(False),
                    self._tasks.paused_reason.set(
                        f"paused after {failures} consecutive failed runs"
                    ),
                    self._tasks.next_run_ms.remove(),
                    self._tasks.due_shard.remove(),
                    self._tasks.version.add(1),
                ],
                condition=self._tasks.enabled == True,  # noqa: E712 (a condition, not a test)
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # already disabled: nothing to pause
                raise
