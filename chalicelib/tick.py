"""The tick: fire due tasks and look after jobs that wait in DynamoDB (DESIGN §1, §2).

Every step reads the sparse, sharded `due` indexes — only tasks that fire
before the horizon and jobs whose watchdog instant has come — so a tick's cost
grows with the work that is due, not with the number of tasks or jobs.

Write-ahead firing, per due task:
  (a) put the job `<task id>:<fire ms>` under attribute_not_exists,
  (b) send its message with DelaySeconds up to its fire time,
  (c) advance the task's `next_run_at` on the condition of its old value.
A crash between two steps repeats the earlier ones at the next tick: (a) is
then a no-op, (b) a duplicate the executor absorbs. Concurrent ticks race on
(a) and (c) and so never create two jobs for one (task, fire time).

The same pass over each shard looks after jobs waiting in DynamoDB (defers,
long retry delays, lost messages, expired leases) and expires approval
requests whose window ran out (their jobs end `rejected`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.approvals import ApprovalService
from chalicelib.clock import Clock, to_ms
from chalicelib.executor import REDELIVERY_GRACE
from chalicelib.jobs import Job, JobStatus, Trigger, firing_job_id, service_job_id
from chalicelib.messaging import MAX_DELAY_S, JobMessage, JobQueue, delay_until
from chalicelib.policies import Firing, plan_firings
from chalicelib.storage.jobs import JobStore, RunPolicy, StoredJob
from chalicelib.storage.tasks import TaskStore
from chalicelib.task_model import Kind, Task

logger = logging.getLogger("tickwork.tick")


#: A firing's job made less than this long ago belongs to a tick still at work.
#: Shorter than any tick period, so the next tick always repairs a crash.
CONCURRENT_TICK_WINDOW = timedelta(seconds=3)


@dataclass
class TickReport:
    """What one tick did, for logs and benchmarks."""

    tasks_read: int = 0
    jobs_created: int = 0
    messages_sent: int = 0
    jobs_read: int = 0
    approvals_expired: int = 0
    errors: list[str] = field(default_factory=list)


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
    ) -> None:
        self._approvals = approvals
        self._tasks = tasks
        self._jobs = jobs
        self._queue = queue
        self._clock = clock
        self._shards = shards
        self._lookahead = timedelta(seconds=lookahead_s)
        self._workers = workers

    def run(self) -> TickReport:
        now = self._clock.now()
        horizon = now + self._lookahead
        report = TickReport()
        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="tick") as pool:
            for shard_report in pool.map(
                lambda s: self._shard(s, now, horizon), range(self._shards)
            ):
                report.tasks_read += shard_report.tasks_read
                report.jobs_created += shard_report.jobs_created
                report.messages_sent += shard_report.messages_sent
                report.jobs_read += shard_report.jobs_read
                report.approvals_expired += shard_report.approvals_expired
                report.errors += shard_report.errors
        return report

    def _shard(self, shard: int, now: datetime, horizon: datetime) -> TickReport:
        """One shard's work. An error (throttling) ends only this shard's part of
        the tick; the next tick reads it again, and nothing due is dropped."""
        report = TickReport()
        try:
            self._fire_shard(shard, now, horizon, report)
        except Exception as exc:
            logger.exception("tick: shard %d", shard)
            report.errors.append(f"shard {shard}: {exc}")
        return report

    def _fire_shard(self, shard: int, now: datetime, horizon: datetime, report: TickReport) -> None:
        due_tasks = self._tasks.due(shard, to_ms(horizon))
        report.tasks_read = len(due_tasks)
        for task in due_tasks:
            try:
                self.fire(task, now, horizon, report)
            except Exception as exc:  # one task must not stop the others
                logger.exception("tick: task %s", task.id)
                report.errors.append(f"{task.id}: {exc}")
        due_jobs = self._jobs.due(shard, horizon)
        report.jobs_read = len(due_jobs)
        for stored in due_jobs:
            try:
                self.look_after(stored, now, report)
            except Exception as exc:
                logger.exception("tick: job %s", stored.job.id)
                report.errors.append(f"{stored.job.id}: {exc}")
        report.approvals_expired = self._approvals.expire_due(shard)

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
        try:
            following = self.fire(task, now, horizon, TickReport())
        except Exception:
            logger.exception("firing task %s at once failed; the tick will", task.id)
            return task
        return task.model_copy(update={"next_run_at": following})

    # ------------------------------------------------------------ firing
    def fire(
        self, task: Task, now: datetime, horizon: datetime, report: TickReport
    ) -> datetime | None:
        """Fire what is due of `task` before `horizon`; returns its new `next_run_at`."""
        plan = plan_firings(task, now=now, horizon=horizon)
        messages: list[tuple[JobMessage, int]] = []
        for firing in plan.firings:
            for job in self._firing_jobs(task, firing, now):
                due_at = max(firing.at, now) + REDELIVERY_GRACE
                if self._jobs.create(job, RunPolicy.of(task), due_at=due_at, now=now):  # (a)
                    report.jobs_created += 1
                elif not self._needs_resend(job.id, now):
                    continue
                messages.append((JobMessage(job.id), delay_until(firing.at, now)))
        if messages:  # (b)
            unsent = self._queue.send_many(messages)
            report.messages_sent += len(messages) - len(unsent)
            if unsent:
                # Leave next_run_at alone: the next tick repeats (a) and (b).
                raise RuntimeError(f"SQS refused {len(unsent)} message(s)")
        self._tasks.advance(task, plan.next_run_at)  # (c)
        return plan.next_run_at

    def _needs_resend(self, job_id: str, now: datetime) -> bool:
        """The job of this firing exists. Made moments ago, a concurrent tick is
        sending it; made earlier, the tick that made it died before sending."""
        stored = self._jobs.get(job_id)
        if stored is None or stored.job.status not in (JobStatus.SCHEDULED, JobStatus.QUEUED):
            return False
        return now - stored.created_at >= CONCURRENT_TICK_WINDOW

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
