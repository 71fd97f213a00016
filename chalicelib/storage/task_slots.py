"""A task's slots and waiting firings (`parallelism`, `on_overlap`): the set of
jobs holding a slot, the `queue` of firings waiting oldest first, and the one
`buffer_one` firing, each changed by a conditional write so that racing firings
and deliveries cannot take more slots or places than there are."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import size

from chalicelib.storage.binding import Tables
from chalicelib.storage.errors import condition_failed
from chalicelib.storage.tables import TaskRecord


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


#: What a deleted task gives back.
NO_SLOTS = SlotState(frozenset(), [], None)


class TaskSlots:
    """The slots of a stage's tasks (`TaskStore` adds the rest of a task)."""

    def __init__(self, tables: Tables) -> None:
        self._tasks = tables.tasks

    def active_runs(self, task_id: str) -> tuple[set[str], str | None]:
        """Jobs holding a slot of the task, and its buffered waiting job."""
        try:
            record = self._tasks.get(
                task_id,
                consistent_read=True,
                attributes_to_get=["active_runs", "waiting_job"],
            )
        except self._tasks.DoesNotExist:
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
        condition = self._tasks.id.exists()
        if parallelism is not None:
            free = self._tasks.active_runs.does_not_exist() | (
                size(self._tasks.active_runs) < parallelism  # type: ignore[no-untyped-call]
            )
            if queue_turn == "":
                free &= self._tasks.queued_jobs.does_not_exist()
            elif queue_turn is not None:
                free &= self._tasks.queued_jobs.does_not_exist() | self._tasks.queued_jobs.contains(
                    queue_turn
                )
            # A job that holds a slot already (a duplicate delivery, a start that
            # was interrupted) keeps it, whatever waits.
            condition &= self._tasks.active_runs.contains(job_id) | free
        try:
            self._tasks(id=task_id).update(
                actions=[self._tasks.active_runs.add({job_id})], condition=condition
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def slots(self, task_id: str) -> SlotState:
        """The task's slot holders and waiting firings (one consistent read)."""
        try:
            record = self._tasks.get(
                task_id,
                consistent_read=True,
                attributes_to_get=["active_runs", "queued_jobs", "waiting_job"],
            )
        except self._tasks.DoesNotExist:
            return NO_SLOTS
        return SlotState.of(record)

    def join_queue(self, task_id: str, entry: str, queue_max: int) -> bool:
        """Add `entry` to the task's queue while fewer than `queue_max` entries
        wait (an entry already there stays). False when the queue is full (or the
        task is gone): two firings racing for the last place cannot both join."""
        room = self._tasks.queued_jobs.contains(entry)
        if queue_max > 0:
            room |= self._tasks.queued_jobs.does_not_exist() | (
                size(self._tasks.queued_jobs) < queue_max  # type: ignore[no-untyped-call]
            )
        try:
            self._tasks(id=task_id).update(
                actions=[self._tasks.queued_jobs.add({entry})],
                condition=self._tasks.id.exists() & room,
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def leave_queue(self, task_id: str, entry: str) -> None:
        try:
            self._tasks(id=task_id).update(
                actions=[self._tasks.queued_jobs.delete({entry})],
                condition=self._tasks.id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # the task was deleted meanwhile
                raise

    def give_back_slot(self, task_id: str, job_id: str) -> SlotState:
        """Free the job's slot; returns the task's slots and waiting firings as
        that write left them (for a hand-over)."""
        record = self._tasks(id=task_id)
        try:
            record.update(
                actions=[self._tasks.active_runs.delete({job_id})],
                condition=self._tasks.id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # the task was deleted meanwhile
                raise
            return NO_SLOTS
        return SlotState.of(record)

    def buffer(self, task_id: str, job_id: str) -> str | None:
        """Make `job_id` the task's one waiting firing; returns the one it displaced."""
        for _ in range(5):
            _, previous = self.active_runs(task_id)
            if previous == job_id:
                return None
            unchanged = (
                self._tasks.waiting_job.does_not_exist()
                if previous is None
                else self._tasks.waiting_job == previous
            )
            try:
                self._tasks(id=task_id).update(
                    actions=[self._tasks.waiting_job.set(job_id)],
                    condition=self._tasks.id.exists() & unchanged,
                )
            except UpdateError as exc:
                if condition_failed(exc):
                    continue  # another firing got buffered meanwhile: look again
                raise
            return previous
        return None

    def unbuffer(self, task_id: str, job_id: str) -> None:
        try:
            self._tasks(id=task_id).update(
                actions=[self._tasks.waiting_job.remove()],
                condition=self._tasks.waiting_job == job_id,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
