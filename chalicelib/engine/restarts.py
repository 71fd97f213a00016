"""Restarts: the next run of a service task whose run ended, as its `restart`,
`restart_backoff` and `restart_delay` say.

The restart is stored (dispatched without sending) before the ending run is
recorded, and sent once that run's slot is free for it; a lost send is
brought back by the restart's watchdog instant.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from chalicelib.clock import Clock, to_ms
from chalicelib.engine.dispatch import Dispatcher
from chalicelib.engine.policies import backoff_delay_s
from chalicelib.jobs.model import Job, JobStatus, Trigger, is_service_job_id, next_service_job_id
from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.storage.stored_jobs import RunPolicy, StoredJob
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Kind, Restart, Task

logger = logging.getLogger("tickwork.executor")


class Restarts:
    """Makes and sends the runs that restart ending service runs."""

    def __init__(
        self, tasks: TaskStore, queue: JobQueue, clock: Clock, dispatcher: Dispatcher
    ) -> None:
        self._tasks = tasks
        self._queue = queue
        self._clock = clock
        self._dispatcher = dispatcher

    def create(
        self, stored: StoredJob, status: JobStatus, task: Task | None
    ) -> tuple[JobMessage, int] | None:
        """Store the run that restarts an ending service run, if `restart` asks
        for one; returns its message and delay for `send`.

        Backoff counts consecutive failed runs (k = 1 after a complete run), so
        a crash-looping service slows down and a healthy one restarts after
        `restart_delay`. A cancelled or skipped run is not restarted.
        """
        job = stored.job
        if task is None or not is_service_job_id(job.id):
            return None
        # The task as it is now, not as it was when this run started (perhaps
        # days ago): the restart runs with its current args and approval rule.
        task = self._tasks.get(task.id)
        if task is None or task.kind is not Kind.SERVICE or not task.enabled:
            return None
        failed = status is JobStatus.FAILED
        if not (task.restart is Restart.ALWAYS or (task.restart is Restart.ON_FAILURE and failed)):
            return None
        if status not in (JobStatus.COMPLETE, JobStatus.FAILED):
            return None
        k = stored.restarts + 1 if failed else 1
        now = self._clock.now()
        at = now + timedelta(seconds=backoff_delay_s(task.restart_backoff, task.restart_delay, k))
        # A new run, made afresh rather than copied from the ending one: nothing of
        # that run carries over, its approval least of all (DESIGN §5, HITL). One
        # that requires approval is held for its own decision when it comes up.
        restart = Job(
            id=next_service_job_id(job.id),
            project_id=task.project_id,
            action=task.action,
            args=task.args,
            status=JobStatus.SCHEDULED,
            task_id=task.id,
            trigger=Trigger.RESTART,
            max_attempts=task.retry_attempts + 1,
            scheduled_for=at,
            enqueued_at=now,
            timestamp_ms=to_ms(at),
            requires_approval=task.requires_approval,
            requested_by=task.changed_by,
            requested_by_token=task.changed_by_token,
        )
        dispatched = self._dispatcher.dispatch(
            restart, RunPolicy.of(task), restarts=k if failed else 0, send=False
        )
        logger.info("service %s: %s restarts at %s (k=%d)", task.id, restart.id, at, k)
        return dispatched.message

    def send(self, restart: tuple[JobMessage, int] | None) -> None:
        if restart is None:
            return
        try:
            self._queue.send(*restart)
        except Exception:  # the restart's watchdog instant brings it back
            logger.exception("service restart %s: send failed", restart[0].job_id)
