"""A job's message carries its row as its creator wrote it: the executor starts
from it without reading the job, and a row gone stale (the job changed after
the message was sent) is caught by the conditional writes (chalicelib/jobs/sqs.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

from chalicelib import wiring as services_module
from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.sqs import MAX_ROW_BYTES, JobMessage, with_row
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock
from tests.functional.engine_helpers import ACME, Pipeline, executor_over, runs


class UnreadableJobs(JobStore):
    """A job store whose `get` fails: whatever runs did not read the job."""

    def get(self, job_id: str) -> StoredJob | None:
        raise AssertionError(f"read job {job_id}")


def test_a_job_starts_from_its_row_without_reading_the_job(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule="0 * * * *")
    services.runs.trigger(ACME, task.id)
    [message] = pipeline.receive()
    assert JobMessage.parse(message["Body"]).row is not None
    unreading = executor_over(
        services, clock, jobs=UnreadableJobs(services.settings, services.tables)
    )
    services_module.use(services.replace(executor=unreading))
    try:
        assert unreading.handle_batch([message["Body"]]) == []
    finally:
        services_module.use(services)
    [job] = runs(services, task)
    assert (job.status, job.attempt) == (JobStatus.COMPLETE, 1)
    assert [seen["job"] for seen in calls.seen] == [job.id]


def test_a_job_cancelled_after_its_message_was_sent_never_runs_and_frees_its_slot(
    services: Services,
    pipeline: Pipeline,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    task = make_task(schedule="0 * * * *")
    job = services.runs.trigger(ACME, task.id)
    services.queue.cancel(ACME, job.id)  # its message, row and all, is on its way
    pipeline.deliver()
    assert calls.seen == []
    [ended] = runs(services, task)
    assert ended.status is JobStatus.CANCELLED
    assert services.task_store.active_runs(task.id) == (set(), None)
    # The slot is free: the next run starts.
    again = services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    assert [seen["job"] for seen in calls.seen] == [again.id]


def test_a_message_carries_the_row_only_while_a_batch_of_them_stays_one_billed_request() -> None:
    small = {"id": {"S": "job_1"}, "args": {"S": json.dumps({"n": 1})}}
    assert with_row("job_1", small).row == small
    large = {"id": {"S": "job_1"}, "args": {"S": "x" * MAX_ROW_BYTES}}
    assert with_row("job_1", large).row is None
    assert JobMessage.parse(with_row("job_1", small).body()) == JobMessage("job_1", row=small)
    # Re-sent after an infrastructure error: counted, and read afresh.
    assert with_row("job_1", small).again() == JobMessage("job_1", redeliveries=1)
