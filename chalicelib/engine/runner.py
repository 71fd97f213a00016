"""Running: one job's action in a thread of its own, under its deadline.

The action gets an ActionContext (its job, a capped log, the deadline, the
clock); a run past its timeout is cancelled (a cooperative action stops, a
stuck one is abandoned) and fails with `timeout`. Any exception the action
raises becomes a failed RunResult, never an error of the executor. While it
runs, a watcher turns a stored cancel request into `ctx.cancelled`, and the
run ends `cancelled`; a request the watcher did not see is found by the
recorder (its finishing write is conditioned on it), so it costs no read here.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib.actions import (
    ActionContext,
    ActionFailed,
    LogCapture,
    LogLimitExceeded,
    Registry,
    Report,
)
from chalicelib.clock import Clock
from chalicelib.engine.recorder import RunResult, Sleeper
from chalicelib.jobs.model import JobStatus, is_service_job_id
from chalicelib.settings import Settings
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.storage.tasks import TaskStore

logger = logging.getLogger("tickwork.executor")

#: Least time between a running service run's looks at whether its task was
#: disabled or deleted (made at its cancel checks, so ~10-16 s apart).
SERVICE_CHECK_S = 10
#: The watcher's first look for a cancel request, a second into the run, and
#: its longest pause between looks (the pause doubles up to it). Each look is a
#: read: a 15-minute run reads about 115 times, not 900; a cancel request is
#: seen within CANCEL_CHECK_MAX_S.
CANCEL_CHECK_FIRST_S = 1.0
CANCEL_CHECK_MAX_S = 8.0


def cancel_check_pauses() -> Iterator[float]:
    """The watcher's pauses between its looks for a cancel request: 1, 2, 4, 8, 8, ... s."""
    pause = CANCEL_CHECK_FIRST_S
    while True:
        yield pause
        pause = min(pause * 2, CANCEL_CHECK_MAX_S)


class Runner:
    """Runs a claimed job's action and answers how it went (a RunResult)."""

    def __init__(
        self,
        jobs: JobStore,
        tasks: TaskStore,
        actions: Registry,
        clock: Clock,
        sleep: Sleeper,
        *,
        settings: Settings,
    ) -> None:
        self._jobs = jobs
        self._tasks = tasks
        self._actions = actions
        self._clock = clock
        self._sleep = sleep
        self._settings = settings

    def run(self, stored: StoredJob) -> RunResult:
        job = stored.job
        log = LogCapture(stored.policy.log_max_size, stored.policy.log_on_full, self._clock)
        timeout_s = stored.policy.timeout_s
        ctx = ActionContext(
            job=job,
            log=log,
            deadline=self._clock.now() + timedelta(seconds=timeout_s),
            clock=self._clock,
            settings=self._settings,
        )
        action = self._actions.get(job.action)
        if action is None:
            return RunResult(
                JobStatus.FAILED,
                Report(),
                f"unknown action {job.action!r}",
                log.text,
                log.truncated,
            )
        try:
            args = action.args_model.model_validate(job.args)
        except ValidationError as exc:
            return RunResult(
                JobStatus.FAILED, Report(), f"invalid args: {exc}", log.text, log.truncated
            )

        box: dict[str, Any] = {}
        #: Set by the watcher when it found the stored cancel request.
        requested = threading.Event()

        def target() -> None:
            try:
                box["value"] = action.run(ctx, args)
            except BaseException as exc:  # recorded, never lost
                box["error"] = exc
                box["trace"] = traceback.format_exc(limit=20)

        worker = threading.Thread(target=target, name=f"job-{job.id}", daemon=True)
        worker.start()
        watcher = threading.Thread(
            target=self._watch_cancel,
            args=(ctx, worker, is_service_job_id(job.id), requested),
            name=f"watch-{job.id}",
            daemon=True,
        )
        watcher.start()
        worker.join(timeout_s)
        if worker.is_alive():
            ctx.cancel()  # a cooperative action stops; a stuck one is abandoned
            return RunResult(JobStatus.FAILED, Report(), "timeout", log.text, log.truncated)
        ctx.cancel()  # stops the watcher
        error = box.get("error")
        if isinstance(error, LogLimitExceeded):
            return RunResult(JobStatus.FAILED, Report(), "log limit exceeded", log.text, True)
        if isinstance(error, ActionFailed):
            return RunResult(
                JobStatus.FAILED, Report(failed_num=1), str(error), log.text, log.truncated
            )
        if error is not None:
            log_text = log.text + str(box.get("trace", ""))
            return RunResult(
                JobStatus.FAILED,
                Report(failed_num=1),
                f"{type(error).__name__}: {error}",
                log_text,
                log.truncated,
            )
        value = box.get("value")
        report = value if isinstance(value, Report) else Report(result=value, success_num=1)
        if requested.is_set():
            return RunResult(JobStatus.CANCELLED, report, "cancelled", log.text, log.truncated)
        return RunResult(JobStatus.COMPLETE, report, None, log.text, log.truncated)

    def _watch_cancel(
        self,
        ctx: ActionContext,
        worker: threading.Thread,
        service: bool,
        requested: threading.Event,
    ) -> None:
        """Turn a stored `cancel_requested` into `ctx.cancelled` while the action
        runs. A service run is also stopped (as cancelled) once its task is
        disabled or deleted: a service runs only while it is enabled."""
        elapsed = next_service_check = 0.0
        for pause in cancel_check_pauses():
            if not worker.is_alive() or ctx.wait(pause):
                return
            elapsed += pause
            try:
                if service and elapsed >= next_service_check + SERVICE_CHECK_S:
                    next_service_check = elapsed
                    task = self._tasks.get(ctx.job.task_id or "")
                    if task is None or not task.enabled:
                        self._jobs.request_cancel(ctx.job.id)
                if self._jobs.cancel_requested(ctx.job.id):
                    requested.set()
                    ctx.cancel()
            except Exception:  # throttled: look again after the next pause
                logger.warning("job %s: cancel check failed", ctx.job.id, exc_info=True)
