"""The executor: claim a job, apply its task's policies, run its action, record it.

One SQS message carries one job id. Everything the executor decides is made
safe against duplicate deliveries and crashes by conditional writes:
a job starts only through `JobStore.claim` from a startable status (or from
`active` once its lease ran out), and a finished job is never touched again.

Batch failures: `handle_batch` never raises for one record; it answers the
records SQS must deliver again, which the handler reports as partial batch
failures (the event source has `ReportBatchItemFailures`; docs/deploy.md), so
one record never costs its batch a re-run. A record that meets an
infrastructure error is re-sent as a fresh message with a growing delay,
counted in the message (seconds, where a reported record would wait out the
queue's visibility timeout); after MAX_REDELIVERIES its job is failed with the
error. Only when that re-send fails too is the record reported: SQS delivers it
again after the visibility timeout, and its redrive policy (maxReceiveCount)
moves it to the dead-letter queue at last, whose handler fails the job. A record
whose run would not fit in the invocation's remaining time is not started but
handed back the same way. The job's watchdog instant in the `due` index brings
back whatever is lost besides, so nothing loops forever or disappears.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from chalicelib.actions import (
    ActionContext,
    ActionFailed,
    LogCapture,
    LogLimitExceeded,
    Registry,
    Report,
)
from chalicelib.clock import Clock, to_ms
from chalicelib.engine.dispatch import Dispatcher
from chalicelib.engine.policies import backoff_delay_s, previous_fire_time
from chalicelib.jobs.model import (
    STARTABLE,
    Job,
    JobStatus,
    Trigger,
    backfill_job_id,
    firing_job_id,
    is_service_job_id,
    is_user_job_key,
    next_service_job_id,
)
from chalicelib.jobs.sqs import (
    ARRIVE_EARLY_S,
    MAX_DELAY_S,
    REDELIVERY_GRACE,
    JobMessage,
    JobQueue,
    delay_until,
)
from chalicelib.settings import Settings
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.jobs import JobStore, Outcome, RunPolicy, StoredJob
from chalicelib.storage.tasks import SlotState, TaskStore
from chalicelib.tasks.model import (
    EXECUTOR_TIMEOUT_S,
    MAX_RUN_TIMEOUT_S,
    RUN_MARGIN_S,
    Backoff,
    Kind,
    OnOverlap,
    Restart,
    Task,
)

if TYPE_CHECKING:  # approvals imports this module
    from chalicelib.approvals.service import ApprovalService

logger = logging.getLogger("tickwork.executor")

#: Added to a run's timeout to make its lease: claiming and recording. A run
#: starts only with its timeout plus this margin left in its invocation, so its
#: lease ends by the invocation's deadline (EXECUTOR_TIMEOUT_S), and that comes
#: long before the jobs queue's visibility timeout (6 x 900 s, infra/resources.py):
#: a message SQS delivers again after an executor died finds that lease run out.
LEASE_MARGIN_S = RUN_MARGIN_S
#: A message more than this early goes back to SQS; less, and the executor waits.
MAX_EARLY_WAIT_S = ARRIVE_EARLY_S + 1.0
#: Re-sends of one message after infrastructure errors before the job is failed.
MAX_REDELIVERIES = 5
#: Largest stored result, in bytes of JSON (DESIGN §6).
MAX_RESULT_BYTES = 64 * 1024
#: How often a running service run looks whether its task was disabled or deleted.
SERVICE_CHECK_S = 10

Sleeper = Callable[[float], None]
#: Seconds left in the executor's invocation (Lambda's `get_remaining_time_in_millis`).
RemainingTime = Callable[[], float]
T = TypeVar("T")

#: Tries of each write that records a finished run, and the first pause between them.
RECORD_ATTEMPTS = 6
RECORD_BACKOFF_S = 0.05


@dataclass(frozen=True)
class RunResult:
    status: JobStatus
    report: Report
    error: str | None
    log: str
    log_truncated: bool


def cap_result(result: Any) -> tuple[Any, bool]:
    """A result that fits MAX_RESULT_BYTES, and whether it was cut."""
    try:
        text = json.dumps(result, default=str)
    except (TypeError, ValueError):
        text = json.dumps(repr(result))
        result = json.loads(text)
    if len(text.encode()) <= MAX_RESULT_BYTES:
        return json.loads(text), False
    head = text.encode()[: MAX_RESULT_BYTES - 200].decode(errors="ignore")
    return {"truncated": True, "size": len(text.encode()), "head": head}, True


def queue_entry(stored: StoredJob) -> str:
    """A firing's place in its task's queue: fire time first, so entries sort
    oldest first as strings."""
    return f"{to_ms(stored.job.scheduled_for):015d}|{stored.job.id}"


def _lane(body: str) -> str:
    """Records of one task's firings share a lane; anything else has its own."""
    try:
        job_id = JobMessage.parse(body).job_id
    except ValueError:
        return body
    if is_user_job_key(job_id):  # a user's `default/a:b` is no firing of `default/a`
        return job_id
    task_id, sep, _ = job_id.partition(":")
    return task_id if sep else job_id


def _fire_order(body: str) -> tuple[int, str]:
    try:
        job_id = JobMessage.parse(body).job_id
    except ValueError:
        return (0, body)
    if is_user_job_key(job_id):
        return (0, job_id)
    _, _, fire_ms = job_id.partition(":")
    head = fire_ms.split(":")[0]
    return (int(head) if head.isdigit() else 0, job_id)


class Executor:
    def __init__(
        self,
        jobs: JobStore,
        tasks: TaskStore,
        queue: JobQueue,
        actions: Registry,
        clock: Clock,
        sleep: Sleeper,
        *,
        settings: Settings,
        approvals: ApprovalService,
    ) -> None:
        self._settings = settings
        self._approvals = approvals
        self._dispatcher = Dispatcher(
            jobs, queue, approvals, clock, lookahead_s=settings.lookahead_s
        )
        self._jobs = jobs
        self._tasks = tasks
        self._queue = queue
        self._actions = actions
        self._clock = clock
        self._sleep = sleep

    # ------------------------------------------------------------ batches
    def handle_batch(
        self, bodies: list[str], remaining_s: RemainingTime | None = None
    ) -> list[int]:
        """Handle one SQS batch; never raises for a single record (see module doc).
        Returns the indexes in `bodies` of the records SQS must deliver again.

        Records of different tasks run side by side: each may wait for its own
        second, and one slow action must not make the others late. Firings of
        one task (ids `<task id>:<fire ms>`) run one after another, oldest
        first, as catch-up `all` promises. With `remaining_s` (the invocation's
        time left), a run starts only if its timeout fits in it.
        """
        lanes: dict[str, list[int]] = {}
        for index, body in enumerate(bodies):
            lanes.setdefault(_lane(body), []).append(index)

        def handle_lane(indexes: list[int]) -> list[int]:
            ordered = sorted(indexes, key=lambda i: _fire_order(bodies[i]))
            return [i for i in ordered if self._handle_record(bodies[i], remaining_s)]

        if len(lanes) == 1:
            return handle_lane(next(iter(lanes.values())))
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="lane") as pool:
            failed = [i for lane in pool.map(handle_lane, lanes.values()) for i in lane]
        return sorted(failed)

    def _handle_record(self, body: str, remaining_s: RemainingTime | None) -> bool:
        """Handle one record; True if SQS must deliver it again."""
        try:
            message = JobMessage.parse(body)
        except ValueError:
            logger.error("dropping a message that is not a job: %r", body[:200])
            return False
        try:
            self.handle(message, remaining_s)
        except Exception as exc:  # one record must not fail its batch
            logger.exception("job %s: infrastructure error", message.job_id)
            return not self._redeliver(message, exc)
        return False

    def _redeliver(self, message: JobMessage, exc: Exception) -> bool:
        """Re-send a message after an infrastructure error, or fail its job after
        MAX_REDELIVERIES. False when neither could be done: SQS must deliver it again."""
        try:
            if message.redeliveries >= MAX_REDELIVERIES:
                stored = self._jobs.get(message.job_id)
                if stored is not None and not stored.job.status.terminal:
                    self._end_or_ignore(stored, JobStatus.FAILED, f"infrastructure error: {exc}")
                return True
            again = JobMessage(message.job_id, message.redeliveries + 1)
            self._queue.send(again, delay_s=2**again.redeliveries)
        except Exception:
            logger.exception("job %s: not re-sent; handed back to SQS", message.job_id)
            return False
        return True

    def handle_dead_letters(self, bodies: list[str], receives: list[int]) -> None:
        """Messages SQS gave up on: their jobs end `failed` with the reason."""
        for body, count in zip(bodies, receives, strict=True):
            try:
                message = JobMessage.parse(body)
            except ValueError:
                logger.error("dead letter that is not a job: %r", body[:200])
                continue
            stored = self._jobs.get(message.job_id)
            if stored is None or stored.job.status.terminal:
                continue
            running = stored.job.status is JobStatus.ACTIVE and (
                stored.lease_until is not None and stored.lease_until > self._clock.now()
            )
            if running:  # only a job whose executor is gone may be failed here
                continue
            reason = f"dead-lettered: message received {count} times without completing"
            task = self._tasks.get(stored.job.task_id) if stored.job.task_id else None
            # Also listed among the dead letters (GET /v1/queue/dead-letters) until redriven.
            self._end_job(stored, JobStatus.FAILED, reason, task, dead_letter_receives=count)

    # ------------------------------------------------------------ one job
    def handle(self, message: JobMessage, remaining_s: RemainingTime | None = None) -> None:
        stored = self._jobs.get(message.job_id)
        if stored is None:
            logger.warning("job %s does not exist; message dropped", message.job_id)
            return
        job = stored.job
        now = self._clock.now()
        if job.status.terminal or job.status is JobStatus.AWAITING_APPROVAL:
            return  # a duplicate delivery, or not ours to start
        if job.status is JobStatus.ACTIVE and stored.lease_until and stored.lease_until > now:
            return  # running elsewhere: a duplicate delivery
        wait_s = (job.scheduled_for - now).total_seconds()
        if wait_s > MAX_EARLY_WAIT_S:
            self._queue.send(message, delay_until(job.scheduled_for, now))
            return
        if wait_s > 0:
            self._sleep(wait_s)  # never early (DESIGN §2.8)

        task = self._tasks.get(job.task_id) if job.task_id else None
        if job.task_id and task is None and job.status in STARTABLE:
            self._end_or_ignore(stored, JobStatus.CANCELLED, "task deleted")
            return
        scheduled_firing = job.trigger in (Trigger.CRON, Trigger.CATCH_UP, Trigger.RESTART)
        if task is not None and not task.enabled and scheduled_firing and job.status in STARTABLE:
            # Fired ahead within the lookahead (or a service restart), then the
            # task was disabled.
            self._end_or_ignore(stored, JobStatus.CANCELLED, "task disabled")
            self._pass_on_turn(stored, task)
            return
        if job.status in STARTABLE and job.expires_at is not None and now > job.expires_at:
            self._end_or_ignore(
                stored, JobStatus.EXPIRED, "expired: not started before its deadline"
            )
            if task is not None:
                self._pass_on_turn(stored, task)
            return
        if job.status in STARTABLE and self._approvals.needs_hold(job):
            self._approvals.hold(stored)  # the decision (or expiry) moves it on
            return
        if job.status is JobStatus.ACTIVE and job.attempt >= job.max_attempts:
            # Its executor died on the last attempt: nothing left to try.
            self._end_job(stored, JobStatus.FAILED, "lease expired: the executor stopped", task)
            return
        if remaining_s is not None and not self._fits(stored, message, remaining_s(), task):
            return
        if task is not None and not self._take_slot(stored, task):
            return
        lease_until = self._clock.now() + timedelta(
            seconds=stored.policy.timeout_s + LEASE_MARGIN_S
        )
        try:
            claimed = self._jobs.claim(stored, now=self._clock.now(), lease_until=lease_until)
        except StorageConflict:
            again = self._claim_after_conflict(stored, task, lease_until)
            if again is None:
                return
            claimed = again
        result = self._run(claimed)
        self._record(claimed, result, task)

    def _fits(
        self, stored: StoredJob, message: JobMessage, remaining_s: float, task: Task | None
    ) -> bool:
        """Whether the run, its claim and its record fit in the invocation's
        remaining time. One that does not is sent again at once, for an
        invocation that has the time; one that no invocation could hold (a
        timeout stored before the bound existed) fails."""
        needed_s = stored.policy.timeout_s + LEASE_MARGIN_S
        if needed_s <= remaining_s:
            return True
        if needed_s > EXECUTOR_TIMEOUT_S:
            reason = (
                f"timeout {stored.policy.timeout_s:g} s is above {MAX_RUN_TIMEOUT_S} s, "
                "what one executor invocation holds"
            )
            self._end_job(stored, JobStatus.FAILED, reason, task)
            return False
        logger.info(
            "job %s: %.0f s left in this invocation, its run needs %.0f s; sent again",
            stored.job.id,
            remaining_s,
            needed_s,
        )
        self._queue.send(message, 0)
        return False

    # ------------------------------------------------------------ slots
    def _take_slot(self, stored: StoredJob, task: Task) -> bool:
        """Apply `on_overlap` against `parallelism`. True when the job may start."""
        job = stored.job
        if task.kind is Kind.SERVICE:
            return self._take_service_slot(stored, task)
        policy = task.on_overlap
        if policy is OnOverlap.ALLOW:
            return self._tasks.take_slot(task.id, job.id, None)
        if policy is OnOverlap.QUEUE:
            return self._take_slot_in_turn(stored, task)
        if self._tasks.take_slot(task.id, job.id, task.parallelism):
            if policy is OnOverlap.BUFFER_ONE:
                self._tasks.unbuffer(task.id, job.id)
            return True
        if self._free_stale_slots(task) and self._tasks.take_slot(
            task.id, job.id, task.parallelism
        ):
            return True
        if policy is OnOverlap.SKIP:
            self._end_or_ignore(stored, JobStatus.SKIPPED, "skipped: parallelism reached")
            return False
        if policy is OnOverlap.TERMINATE:
            self._terminate_oldest(task)
            return self._tasks.take_slot(task.id, job.id, None)
        if policy is OnOverlap.BUFFER_ONE:
            _, waiting = self._tasks.active_runs(task.id)
            if waiting is not None and waiting != job.id and self._is_newer(waiting, job.id):
                self._end_or_ignore(stored, JobStatus.SKIPPED, "skipped: a newer firing waits")
                return False
            displaced = self._tasks.buffer(task.id, job.id)
            if displaced:
                older = self._jobs.get(displaced)
                if older is not None and older.job.status in STARTABLE:
                    self._end_or_ignore(older, JobStatus.SKIPPED, "skipped: a newer firing waits")
            # Take again once buffered: a slot that came free since the failed take
            # was given back by a run that found no waiting firing to wake.
            if self._tasks.take_slot(task.id, job.id, task.parallelism):
                self._tasks.unbuffer(task.id, job.id)
                return True
        return self._wait_for_slot(stored)

    def _wait_for_slot(self, stored: StoredJob) -> bool:
        """Wait as `scheduled`, sending nothing: the run that frees a slot wakes
        the firing (`_hand_over`), and the watchdog instant REDELIVERY_GRACE from
        now brings it back if that wake-up is lost. False (it does not start now)."""
        self._jobs.wait_for_slot(stored, self._clock.now() + REDELIVERY_GRACE)
        return False

    def _take_slot_in_turn(self, stored: StoredJob, task: Task) -> bool:
        """`on_overlap: queue`: firings take free slots oldest first.

        A firing that finds no slot joins the task's queue; a free slot then
        goes to the oldest waiting firing, not to whichever newer firing comes
        by first (which would starve a waiting one when runs take longer than
        the schedule's period). The fast path, an empty queue and a free slot,
        is one conditional write. At most `queue_max` firings wait: joining is
        a conditional write on the queue's size, and a firing that finds it
        full ends `skipped`.
        """
        job = stored.job
        entry = queue_entry(stored)
        # SQS does not keep order: the previous firing's message may come after
        # this one's. While that firing has yet to start, this one queues
        # behind it instead of taking the free slot first.
        before = self._earlier_run_pending(stored, task)
        if not before and self._tasks.take_slot(task.id, job.id, task.parallelism, queue_turn=""):
            return True  # the queue is empty: nothing to leave
        joined = self._tasks.join_queue(task.id, entry, task.queue_max)
        if not joined and not self._join_after_full(task, entry):
            error = f"skipped: queue full ({task.queue_max} firings wait)"
            self._end_or_ignore(stored, JobStatus.SKIPPED, error)
            return False
        # Take again once in the queue: a slot that came free since the failed
        # take was given back by a run that saw no entry of ours to wake.
        state = self._tasks.slots(task.id)
        holders = state.active - {job.id}
        free = task.parallelism - len(holders)
        ahead = self._waiting_ahead(task, entry, state, limit=max(free, 1))
        if ahead == 0 and free <= 0 and self._free_stale_slots(task, holders):
            free = 1
        if (
            not before
            and ahead < free
            and self._tasks.take_slot(task.id, job.id, task.parallelism, queue_turn=entry)
        ):
            self._tasks.leave_queue(task.id, entry)
            return True
        return self._wait_for_slot(stored)

    def _earlier_run_pending(self, stored: StoredJob, task: Task) -> bool:
        """Whether the task's run just before this one has yet to start (its
        message not yet delivered): then it goes first, and wakes this one when
        it ends. Not with `queue_max` 0, where nothing may wait."""
        if task.queue_max == 0:
            return False
        earlier = self._run_before(stored.job, task)
        return earlier is not None and earlier.job.status in STARTABLE

    def _run_before(self, job: Job, task: Task) -> StoredJob | None:
        """The task's run just before `job`. A schedule's firing (and a
        backfilled one) has a deterministic id, so the one before it is one
        GetItem of the previous fire time's id; any other run looks on the
        task's `by_task` index (one Query of one item on DynamoDB)."""
        if job.trigger in (Trigger.CRON, Trigger.CATCH_UP, Trigger.BACKFILL):
            at = previous_fire_time(task, job.scheduled_for)
            if at is None:
                return None
            if job.trigger is Trigger.BACKFILL:
                return self._jobs.get(backfill_job_id(task.id, at))
            return self._jobs.get(firing_job_id(task.id, at))
        return self._jobs.run_before(task.id, job.scheduled_for)

    def _join_after_full(self, task: Task, entry: str) -> bool:
        """The queue was full. With a slot free as well, its entries may be of
        firings that ended after they were woken (cancelled before their
        delivery), and no run is left to drop them: hand the free slots over,
        which drops dead entries, and try to join once more."""
        if task.queue_max == 0:
            return False
        state = self._tasks.slots(task.id)
        if len(state.active) >= task.parallelism:
            return False  # the next run to end drops any dead entries
        self._hand_over(task, state)
        return self._tasks.join_queue(task.id, entry, task.queue_max)

    def _waiting_ahead(self, task: Task, entry: str, state: SlotState, *, limit: int) -> int:
        """How many firings older than `entry` still wait (counted up to `limit`);
        drops entries of firings that ended while waiting (cancelled, expired)."""
        ahead = 0
        for other in state.queued:
            if other >= entry or ahead >= limit:
                break
            job_id = other.partition("|")[2]
            if job_id in state.active:
                continue  # it holds a slot already and is leaving the queue
            waiting = self._jobs.get(job_id)
            if waiting is not None and waiting.job.status in STARTABLE:
                ahead += 1
            else:
                self._tasks.leave_queue(task.id, other)
        return ahead

    def _hand_over(self, task: Task, state: SlotState) -> None:
        """Slots came free (`state` as the write that freed them left it): wake
        as many waiting firings as slots are free, oldest first. Waiting firings
        send nothing, so this is what starts them (the watchdog is the backstop).
        Entries of firings that ended while waiting are dropped on the way, so a
        dead entry never takes a live one's wake-up; a duplicate wake-up is
        harmless (the firing finds it is not its turn, or that it runs)."""
        free = task.parallelism - len(state.active)
        for entry in state.queued:
            if free <= 0:
                return
            job_id = entry.partition("|")[2]
            if job_id in state.active:
                continue
            waiting = self._jobs.get(job_id)
            if waiting is None or waiting.job.status not in STARTABLE:
                self._tasks.leave_queue(task.id, entry)
                continue
            self._queue.send(JobMessage(job_id), 0)
            free -= 1
        if free > 0 and state.waiting_job is not None and state.waiting_job not in state.active:
            self._queue.send(JobMessage(state.waiting_job), 0)  # buffer_one's one firing

    def _pass_on_turn(self, stored: StoredJob, task: Task) -> None:
        """A firing ended without running (its task disabled, its deadline past),
        perhaps woken for a free slot: drop its queue entry and wake the next
        waiting firing in its place."""
        if task.on_overlap not in (OnOverlap.QUEUE, OnOverlap.BUFFER_ONE):
            return
        entry = queue_entry(stored)
        state = self._tasks.slots(task.id)
        if entry in state.queued:
            self._tasks.leave_queue(task.id, entry)
            state = dataclasses.replace(state, queued=[e for e in state.queued if e != entry])
        elif state.waiting_job != stored.job.id:
            return  # it was not waiting: no wake-up to pass on
        self._hand_over(task, state)

    def _claim_after_conflict(
        self, stored: StoredJob, task: Task | None, lease_until: datetime
    ) -> StoredJob | None:
        """The claim met a changed job. A woken firing whose first delivery was
        just recording its wait (`queued` -> `scheduled`) is still startable and
        holds the slot it was woken for: claim it as it is now, or nobody would
        start it until the watchdog. A job another delivery claimed is that
        delivery's; one that ended gives back the slot taken for it."""
        fresh = self._jobs.get(stored.job.id)
        if fresh is not None and fresh.job.status in STARTABLE:
            with contextlib.suppress(StorageConflict):
                return self._jobs.claim(fresh, now=self._clock.now(), lease_until=lease_until)
            return None
        if task is not None and (fresh is None or fresh.job.status.terminal):
            self._hand_over(task, self._tasks.give_back_slot(task.id, stored.job.id))
        return None

    def _take_service_slot(self, stored: StoredJob, task: Task) -> bool:
        """A service run starts while fewer than `instances` runs are active; a
        run beyond that (after `instances` went down, or a stray restart) is
        `skipped`, which ends its lineage. `on_overlap` does not apply."""
        job_id = stored.job.id
        if self._tasks.take_slot(task.id, job_id, task.instances):
            return True
        if self._free_stale_slots(task) and self._tasks.take_slot(task.id, job_id, task.instances):
            return True
        reason = f"skipped: the service already runs {task.instances} instance(s)"
        self._end_or_ignore(stored, JobStatus.SKIPPED, reason)
        return False

    def _is_newer(self, other_id: str, job_id: str) -> bool:
        other = self._jobs.get(other_id)
        mine = self._jobs.get(job_id)
        if other is None or mine is None or other.job.status not in STARTABLE:
            return False
        return other.job.scheduled_for > mine.job.scheduled_for

    def _free_stale_slots(self, task: Task, holders: frozenset[str] | None = None) -> bool:
        """Give back slots held by jobs that ended or vanished (a crash between a
        run's end and its slot's release). True if any slot was freed."""
        if holders is None:
            holders = frozenset(self._tasks.active_runs(task.id)[0])
        freed = False
        for holder in holders:
            stored = self._jobs.get(holder)
            if stored is None or stored.job.status.terminal:
                self._tasks.give_back_slot(task.id, holder)
                freed = True
        return freed

    def _terminate_oldest(self, task: Task) -> None:
        holders, _ = self._tasks.active_runs(task.id)
        running = [s for s in (self._jobs.get(h) for h in holders) if s is not None]
        if not running:
            return
        oldest = min(running, key=lambda s: s.job.started_at or s.job.scheduled_for)
        self._jobs.request_cancel(oldest.job.id)
        self._tasks.give_back_slot(task.id, oldest.job.id)

    # ------------------------------------------------------------ running
    def _run(self, stored: StoredJob) -> RunResult:
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
            args=(ctx, worker, is_service_job_id(job.id)),
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
        if self._durably(lambda: self._jobs.cancel_requested(job.id)):
            return RunResult(JobStatus.CANCELLED, report, "cancelled", log.text, log.truncated)
        return RunResult(JobStatus.COMPLETE, report, None, log.text, log.truncated)

    def _watch_cancel(self, ctx: ActionContext, worker: threading.Thread, service: bool) -> None:
        """Turn a stored `cancel_requested` into `ctx.cancelled` while the action
        runs. A service run is also stopped (as cancelled) once its task is
        disabled or deleted: a service runs only while it is enabled."""
        seconds = 0
        while worker.is_alive() and not ctx.wait(1.0):
            seconds += 1
            try:
                if service and seconds % SERVICE_CHECK_S == 0:
                    task = self._tasks.get(ctx.job.task_id or "")
                    if task is None or not task.enabled:
                        self._jobs.request_cancel(ctx.job.id)
                if self._jobs.cancel_requested(ctx.job.id):
                    ctx.cancel()
            except Exception:  # throttled: look again in a second
                logger.warning("job %s: cancel check failed", ctx.job.id, exc_info=True)

    # ------------------------------------------------------------ recording
    def _record(self, stored: StoredJob, run: RunResult, task: Task | None) -> None:
        job = stored.job
        now = self._clock.now()
        if run.status is JobStatus.FAILED and job.attempt < job.max_attempts:
            delay = backoff_delay_s(
                Backoff(stored.policy.retry_backoff), stored.policy.retry_delay_s, job.attempt
            )
            at = now + timedelta(seconds=delay)
            # Short delays ride on an SQS delay; longer ones wait for the tick.
            via_sqs = delay < MAX_DELAY_S
            self._durably(
                lambda: self._jobs.retry_later(
                    stored,
                    at=at,
                    due_at=at + REDELIVERY_GRACE if via_sqs else at,
                    error=run.error or "failed",
                    log=run.log,
                    log_truncated=run.log_truncated,
                )
            )
            if task is not None:
                freed = self._durably(lambda: self._tasks.give_back_slot(task.id, job.id))
                self._durably(lambda: self._hand_over(task, freed))
            if via_sqs:
                self._durably(lambda: self._queue.send(JobMessage(job.id), delay_until(at, now)))
            return
        result, cut = cap_result(run.report.result)
        outcome = Outcome(
            status=run.status,
            result=result,
            result_truncated=cut,
            error=run.error,
            log=run.log,
            log_truncated=run.log_truncated,
            success_num=run.report.success_num,
            failed_num=run.report.failed_num,
            skip_num=run.report.skip_num,
        )
        started = job.started_at or now
        logger.info(
            "%s %s attempt %d: started %.0f ms after its time, ran %.0f ms",
            job.id,
            run.status.value,
            job.attempt,
            (started - job.scheduled_for).total_seconds() * 1000,
            (now - started).total_seconds() * 1000,
        )
        # Write-ahead, as the tick fires: the restart exists before this run
        # ends, and is sent once this run's slot is free for it.
        restart = self._durably(lambda: self._create_restart(stored, run.status, task))
        try:
            self._durably(lambda: self._jobs.finish(stored, outcome, now=now))
        except StorageConflict:
            logger.warning("job %s changed while running; outcome not recorded", job.id)
        if task is not None:
            freed = self._durably(lambda: self._tasks.give_back_slot(task.id, job.id))
            self._durably(lambda: self._hand_over(task, freed))
            kept = self._durably(
                lambda: self._tasks.record_run(
                    task.id,
                    status=run.status.value,
                    at=job.started_at or now,
                    failed=run.status is JobStatus.FAILED,
                    pause_after=task.pause_after_failures,
                )
            )
            if kept > task.keep_runs:
                self._prune(task, kept - task.keep_runs)
        self._send_restart(restart)

    def _durably(self, step: Callable[[], T]) -> T:
        """Run one write that records a run whose action already ran, retrying
        infrastructure errors (throttling, a dropped connection) in place: giving
        up would leave the job to its lease, and so run the action again.
        A StorageConflict is an answer, not a failure, and is not retried."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                return step()
            except StorageConflict:
                raise
            except Exception:
                if attempt == RECORD_ATTEMPTS:
                    raise
                logger.warning("recording a run: attempt %d failed; again", attempt, exc_info=True)
                self._sleep(RECORD_BACKOFF_S * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _prune(self, task: Task, excess: int) -> None:
        """Delete the task's oldest finished runs beyond `keep_runs`. Best effort:
        a failure leaves them to the next run's pruning and to `keep_for`'s TTL."""
        try:
            deleted = self._jobs.prune_runs(task.id, excess)
            if deleted:
                self._tasks.forget_runs(task.id, deleted)
        except Exception:
            logger.exception("task %s: pruning old runs failed", task.id)

    def _end_job(
        self,
        stored: StoredJob,
        status: JobStatus,
        error: str,
        task: Task | None,
        *,
        dead_letter_receives: int | None = None,
    ) -> None:
        """End a job that is not running now, freeing its slot and restarting a
        service run as its `restart` policy says."""
        restart = self._create_restart(stored, status, task)
        self._end_or_ignore(stored, status, error, dead_letter_receives=dead_letter_receives)
        if task is not None:
            self._hand_over(task, self._tasks.give_back_slot(task.id, stored.job.id))
        self._send_restart(restart)

    # ------------------------------------------------------------ services
    def _create_restart(
        self, stored: StoredJob, status: JobStatus, task: Task | None
    ) -> tuple[JobMessage, int] | None:
        """Store the run that restarts an ending service run, if `restart` asks
        for one; returns its message and delay for `_send_restart`.

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

    def _send_restart(self, restart: tuple[JobMessage, int] | None) -> None:
        if restart is None:
            return
        try:
            self._queue.send(*restart)
        except Exception:  # the restart's watchdog instant brings it back
            logger.exception("service restart %s: send failed", restart[0].job_id)

    def _end_or_ignore(
        self,
        stored: StoredJob,
        status: JobStatus,
        error: str | None,
        *,
        dead_letter_receives: int | None = None,
    ) -> None:
        # A job that moved on meanwhile keeps its new state.
        with contextlib.suppress(StorageConflict):
            self._jobs.end(
                stored,
                status,
                now=self._clock.now(),
                error=error,
                dead_letter_receives=dead_letter_receives,
            )
