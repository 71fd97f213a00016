"""The tick: fire due tasks and look after jobs that wait in DynamoDB (DESIGN §1, §2).

Every step reads the sparse, sharded `due` indexes — only tasks that fire
before the horizon and jobs whose watchdog instant has come — so a tick's cost
grows with the work that is due, not with the number of tasks or jobs.

Fan-out: the minute's `tick` only starts one pass per shard (`fan_out`: as
deployed, an asynchronous invocation of `tick_shard` each, chalicelib/engine/fanout.py);
each `tick_shard` invocation runs one shard's pass (`run_shards`), so the shards
are fired concurrently by as many invocations and a minute with 100,000 due
firings takes about as long as one shard's share.
A pass stops taking new tasks when its invocation's time runs short; what it
did not reach stays due, and the next tick takes it.

Write-ahead firing, per group of due tasks:
  (a) for each task, put the job `<task id>:<fire ms>` under attribute_not_exists,
  (b) send the group's messages ten to a SendMessageBatch, each with
      DelaySeconds up to its fire time,
  (c) advance `next_run_at` (on the condition of its old value) of each task
      whose messages SQS all took; a task with a refused message keeps it.
A crash between two steps repeats the earlier ones at the next tick: (a) is
then a no-op, (b) a duplicate the executor absorbs. Concurrent ticks (and a
shard's pass started twice) race on (a) and (c) and so never create two
jobs for one (task, fire time).

The same pass over each shard looks after jobs waiting in DynamoDB (defers,
long retry delays, lost messages, expired leases) and expires approval
requests whose window ran out (their jobs end `rejected`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING

from chalicelib.approvals.service import ApprovalService
from chalicelib.clock import Clock, to_ms
from chalicelib.engine.dispatch import Dispatcher
from chalicelib.engine.fanout import StartShards
from chalicelib.engine.policies import Firing, plan_firings
from chalicelib.jobs.model import Job, JobStatus, Trigger, firing_job_id, service_job_id
from chalicelib.jobs.sqs import (
    MAX_DELAY_S,
    REDELIVERY_GRACE,
    SEND_BATCH_SIZE,
    JobMessage,
    JobQueue,
    delay_until,
)
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import RunPolicy, StoredJob
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Kind, Task

if TYPE_CHECKING:
    # A type only: the tick's functions do not load the executor.
    from chalicelib.engine.executor import RemainingTime

logger = logging.getLogger("tickwork.tick")


#: A firing's job made less than this long ago belongs to a tick still at work.
#: Shorter than any tick period, so the next tick always repairs a crash.
CONCURRENT_TICK_WINDOW = timedelta(seconds=3)
#: Due tasks fired together: one task's firing is usually one message, so a
#: group's messages fill one SendMessageBatch.
GROUP_TASKS = SEND_BATCH_SIZE
#: Seconds of its invocation a shard pass leaves unused: it takes no new group
#: of tasks (nor job, nor approval) once fewer remain. A group in flight needs
#: at most ten puts, one batch and ten updates, plus botocore's retries.
STOP_MARGIN_S = 10.0


@dataclass
class TickReport:
    """What one tick (or one shard pass) did, for logs and benchmarks."""

    tasks_read: int = 0
    jobs_created: int = 0
    messages_sent: int = 0
    jobs_read: int = 0
    approvals_expired: int = 0
    #: Shards whose pass stopped for its deadline; their rest stays due.
    shards_cut_short: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: TickReport) -> None:
        self.tasks_read += other.tasks_read
        self.jobs_created += other.jobs_created
        self.messages_sent += other.messages_sent
        self.jobs_read += other.jobs_read
        self.approvals_expired += other.approvals_expired
        self.shards_cut_short += other.shards_cut_short
        self.errors += other.errors


@dataclass
class _Prepared:
    """A due task after step (a): the messages to send, the next_run_at to set."""

    task: Task
    messages: list[tuple[JobMessage, int]]
    next_run_at: datetime | None


class Tick:
    def __init__(
        self,
        tasks: TaskStore,
        jobs: JobStore,
        queue: JobQueue,
        clock: Clock,
        *,
        shards: int,
        lookahead_s: float,
        approvals: ApprovalService,
        workers: int = 8,
        groups_in_flight: int = 4,
        start_shards: StartShards | None = None,
    ) -> None:
        #: How `fan_out` starts the shards' passes: Lambda as deployed; the local
        #: stack and the tests hand them to the `tick_shard` handler themselves.
        self.start_shards = start_shards
        self._approvals = approvals
        self._tasks = tasks
        self._jobs = jobs
        self._queue = queue
        self._clock = clock
        self._shards = shards
        self._lookahead = timedelta(seconds=lookahead_s)
        self._dispatcher = Dispatcher(jobs, queue, approvals, clock, lookahead_s=lookahead_s)
        self._workers = workers
        self._groups_in_flight = groups_in_flight

    def fan_out(self) -> int:
        """The minute's tick: start one pass per shard through `start_shards`.
        Raises if one could not be started, so the invocation counts as an error
        (EventBridge tries it again; a shard started twice is a duplicate pass,
        which is safe). Returns the number of passes started."""
        if self.start_shards is None:
            raise RuntimeError("this tick has no way to start shard passes")
        shards = list(range(self._shards))
        self.start_shards(shards)
        return len(shards)

    def run(self) -> TickReport:
        """Every shard's pass in this process, without a deadline."""
        return self.run_shards(range(self._shards))

    def run_shards(
        self, shards: Iterable[int], remaining_s: RemainingTime | None = None
    ) -> TickReport:
        """The passes of some shards, concurrently. `remaining_s` gives the seconds
        the invocation has left (None: no deadline)."""
        horizon = self._clock.now() + self._lookahead
        report = TickReport()
        shard_list = sorted(set(shards))
        if not shard_list:
            return report
        workers = min(self._workers, len(shard_list))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tick") as pool:
            for shard_report in pool.map(
                lambda s: self._shard(s, horizon, remaining_s), shard_list
            ):
                report.add(shard_report)
        return report

    def _shard(
        self, shard: int, horizon: datetime, remaining_s: RemainingTime | None
    ) -> TickReport:
        """One shard's work. An error (throttling) ends only this shard's part of
        the tick; the next tick reads it again, and nothing due is dropped."""
        report = TickReport()

        def out_of_time() -> bool:
            return remaining_s is not None and remaining_s() < STOP_MARGIN_S

        try:
            finished = self._fire_shard(shard, horizon, report, out_of_time)
            finished = finished and self._look_after_shard(shard, horizon, report, out_of_time)
            if finished and not out_of_time():
                report.approvals_expired = self._approvals.expire_due(shard)
            else:
                report.shards_cut_short = 1
                logger.warning(
                    "tick: shard %d stopped for its deadline; the next tick goes on", shard
                )
        except Exception as exc:
            logger.exception("tick: shard %d", shard)
            report.errors.append(f"shard {shard}: {exc}")
        return report

    def _fire_shard(
        self,
        shard: int,
        horizon: datetime,
        report: TickReport,
        out_of_time: Callable[[], bool],
    ) -> bool:
        """Fire the shard's due tasks, earliest first (the index's order), a few
        groups at once. False if the deadline stopped it before the last task."""
        due = self._tasks.due(shard, to_ms(horizon))
        in_flight: set[Future[TickReport]] = set()
        finished = True
        with ThreadPoolExecutor(
            max_workers=self._groups_in_flight, thread_name_prefix=f"tick-{shard}"
        ) as pool:
            try:
                for group in _groups(due):
                    if len(in_flight) >= self._groups_in_flight:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        for future in done:
                            report.add(future.result())
                    if out_of_time():
                        finished = False
                        break
                    report.tasks_read += len(group)
                    in_flight.add(pool.submit(self._fire_group_now, group, horizon))
            finally:  # a failed Query still counts what its groups did
                for future in in_flight:
                    report.add(future.result())
        return finished

    def _look_after_shard(
        self,
        shard: int,
        horizon: datetime,
        report: TickReport,
        out_of_time: Callable[[], bool],
    ) -> bool:
        for stored in self._jobs.due(shard, horizon):
            if out_of_time():
                return False
            report.jobs_read += 1
            try:
                self.look_after(stored, self._clock.now(), report)
            except Exception as exc:
                logger.exception("tick: job %s", stored.job.id)
                report.errors.append(f"{stored.job.id}: {exc}")
        return True

    def recover(self) -> int:
        """Re-send every waiting job whose message may be gone (after a restart of a
        stack whose queue did not survive). Returns the number of messages sent."""
        now = self._clock.now()
        report = TickReport()
        for shard in range(self._shards):
            for stored in self._jobs.due(shard, now + timedelta(days=3650)):
                self.look_after(stored, now, report)
        return report.messages_sent

    def fire_soon(self, task: Task) -> Task:
        """Fire a task just created or changed whose first firing comes before
        the next tick could see it (within the lookahead), so it is not late by
        up to a tick period. Best effort: the tick fires it otherwise, and the
        write-ahead steps make firing it from both places safe. Returns the
        task as it now is (its `next_run_at` moved on if it fired)."""
        now = self._clock.now()
        horizon = now + self._lookahead
        if task.next_run_at is None or task.next_run_at > horizon:
            return task
        report = TickReport()
        advanced = self._fire_group([task], now, horizon, report)
        if task.id not in advanced:
            logger.warning(
                "firing task %s at once failed %s; the tick will", task.id, report.errors
            )
            return task
        return task.model_copy(update={"next_run_at": advanced[task.id]})

    # ------------------------------------------------------------ firing
    def _fire_group_now(self, tasks: list[Task], horizon: datetime) -> TickReport:
        """A group of a long pass reads the clock when it starts: a message's
        DelaySeconds counted from the pass's start would arrive late by the time
        the pass took to reach it."""
        return self.fire_group(tasks, self._clock.now(), horizon)

    def fire_group(self, tasks: list[Task], now: datetime, horizon: datetime) -> TickReport:
        """Write-ahead firing of a group of due tasks: (a) each task's jobs, (b) all
        their messages ten to a batch, (c) each task whose messages all went."""
        report = TickReport()
        self._fire_group(tasks, now, horizon, report)
        return report

    def _fire_group(
        self, tasks: list[Task], now: datetime, horizon: datetime, report: TickReport
    ) -> dict[str, datetime | None]:
        """Returns the new `next_run_at` of each task advanced. One task's error
        is recorded and does not stop the others."""
        prepared: list[_Prepared] = []
        for task in tasks:
            try:
                prepared.append(self._write_jobs(task, now, horizon, report))  # (a)
            except Exception as exc:
                logger.exception("tick: task %s", task.id)
                report.errors.append(f"{task.id}: {exc}")
        messages = [message for p in prepared for message in p.messages]
        refused: set[str] = set()
        if messages:  # (b)
            try:
                refused = {m.job_id for m in self._queue.send_many(messages)}
            except Exception as exc:
                logger.exception("tick: sending the messages of %d tasks", len(prepared))
                report.errors += [f"{p.task.id}: {exc}" for p in prepared if p.messages]
                refused = {m.job_id for m, _ in messages}
            report.messages_sent += len(messages) - len(refused)
        advanced: dict[str, datetime | None] = {}
        for p in prepared:
            unsent = sum(1 for m, _ in p.messages if m.job_id in refused)
            if unsent:
                # Leave next_run_at alone: the next tick repeats (a) and (b).
                report.errors.append(f"{p.task.id}: SQS refused {unsent} message(s)")
                continue
            try:
                self._tasks.advance(p.task, p.next_run_at)  # (c)
            except Exception as exc:
                logger.exception("tick: task %s", p.task.id)
                report.errors.append(f"{p.task.id}: {exc}")
                continue
            advanced[p.task.id] = p.next_run_at
        return advanced

    def _write_jobs(
        self, task: Task, now: datetime, horizon: datetime, report: TickReport
    ) -> _Prepared:
        """Step (a) for one task: its firings' jobs, and the messages to send."""
        plan = plan_firings(task, now=now, horizon=horizon)
        messages: list[tuple[JobMessage, int]] = []
        for firing in plan.firings:
            for job in self._firing_jobs(task, firing, now):
                dispatched = self._dispatcher.dispatch(job, RunPolicy.of(task), send=False)
                if dispatched.created:
                    report.jobs_created += 1
                    if dispatched.message is not None:
                        messages.append(dispatched.message)
                elif _needs_resend(dispatched.existing, now):
                    messages.append((JobMessage(job.id), delay_until(firing.at, now)))
        return _Prepared(task, messages, plan.next_run_at)

    def _firing_jobs(self, task: Task, firing: Firing, now: datetime) -> list[Job]:
        """The jobs of one firing: one run, or a service's `instances` first runs."""
        if task.kind is Kind.SERVICE:
            return [
                self._firing_job(task, firing, now, service_job_id(task.id, firing.at, i, 0))
                for i in range(task.instances)
            ]
        return [self._firing_job(task, firing, now, firing_job_id(task.id, firing.at))]

    def _firing_job(self, task: Task, firing: Firing, now: datetime, job_id: str) -> Job:
        ready = firing.at <= now
        return Job(
            id=job_id,
            project_id=task.project_id,
            action=task.action,
            args=task.args,
            status=JobStatus.QUEUED if ready else JobStatus.SCHEDULED,
            task_id=task.id,
            trigger=Trigger.CATCH_UP if firing.missed else Trigger.CRON,
            max_attempts=task.retry_attempts + 1,
            scheduled_for=firing.at,
            enqueued_at=now,
            timestamp_ms=to_ms(firing.at),
            requires_approval=task.requires_approval,
            # Nobody asked for a firing: the task's last changer set it up.
            requested_by=task.changed_by,
            requested_by_token=task.changed_by_token,
        )

    # ------------------------------------------------------------ jobs in DynamoDB
    def look_after(self, stored: StoredJob, now: datetime, report: TickReport) -> None:
        """A job whose watchdog instant came: send it (again) to SQS.

        Scheduled and queued jobs: their time is within the horizon (a long
        defer or retry delay ran out) or their message seems lost. Active jobs:
        the lease ran out, the executor died; the executor restarts the job as a
        new attempt. The next watchdog instant moves on either way.
        """
        job = stored.job
        if job.status not in (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.ACTIVE):
            return
        if job.status is JobStatus.ACTIVE and stored.lease_until and stored.lease_until > now:
            return
        delay = delay_until(job.scheduled_for, now) if job.status is not JobStatus.ACTIVE else 0
        if delay >= MAX_DELAY_S:
            return
        self._queue.send(JobMessage(job.id), delay)
        report.messages_sent += 1
        self._jobs.set_due(stored, max(job.scheduled_for, now) + REDELIVERY_GRACE, enqueued=now)


def _needs_resend(stored: StoredJob | None, now: datetime) -> bool:
    """The job of a firing exists. Made moments ago, a concurrent tick is
    sending it; made earlier, the tick that made it died before sending."""
    if stored is None or stored.job.status not in (JobStatus.SCHEDULED, JobStatus.QUEUED):
        return False
    return now - stored.created_at >= CONCURRENT_TICK_WINDOW


def _groups(tasks: Iterable[Task]) -> Iterator[list[Task]]:
    """Consecutive groups of GROUP_TASKS tasks (the last may be smaller)."""
    it = iter(tasks)
    while group := list(islice(it, GROUP_TASKS)):
        yield group
