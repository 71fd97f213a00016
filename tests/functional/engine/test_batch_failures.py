"""Partial batch failures: one record never costs its batch a re-run.

Real SQS records (received from moto, shaped as Lambda's event source shapes
them) go to the executor's real Lambda handler with a context whose remaining
time the test sets. The handler answers `batchItemFailures`; the local stack's
poller deletes only the records not reported, as Lambda does.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest

from app import app
from chalicelib import wiring as services_module
from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.settings import Settings
from chalicelib.storage.binding import Tables
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.stored_jobs import StoredJob
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from infra.local_stack import poll_queue, sqs_record
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import ACME, Pipeline, executor_over, runs


class Context:
    """Lambda's context, as far as the executor reads it: the time left."""

    def __init__(self, remaining_s: float) -> None:
        self.remaining_s = remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_s * 1000)


class Outage:
    """Job ids whose DynamoDB reads and SQS sends fail (a partial outage)."""

    def __init__(self) -> None:
        self.job_ids: set[str] = set()

    def check(self, job_id: str) -> None:
        if job_id in self.job_ids:
            raise ConnectionError(f"{job_id}: endpoint unreachable")


class FlakyJobs(JobStore):
    def __init__(self, settings: Settings, tables: Tables, outage: Outage) -> None:
        super().__init__(settings, tables)
        self._outage = outage

    def get(self, job_id: str) -> StoredJob | None:
        self._outage.check(job_id)
        return super().get(job_id)

    def claim(self, stored: StoredJob, *, now: datetime, lease_until: datetime) -> StoredJob:
        # The executor starts from the row its message carries: its first call
        # on the job's item is the claim.
        self._outage.check(stored.job.id)
        return super().claim(stored, now=now, lease_until=lease_until)


class FlakyQueue(JobQueue):
    def __init__(self, settings: Settings, outage: Outage) -> None:
        super().__init__(settings)
        self._outage = outage

    def send(self, message: JobMessage, delay_s: int = 0) -> None:
        self._outage.check(message.job_id)
        super().send(message, delay_s)


@pytest.fixture
def outage(services: Services, clock: FakeClock) -> Iterator[Outage]:
    """The app's executor, over stores that fail for the outage's job ids."""
    failing = Outage()
    settings = services.settings
    executor = executor_over(
        services,
        clock,
        jobs=FlakyJobs(settings, services.tables, failing),
        queue=FlakyQueue(settings, failing),
    )
    services_module.use(services.replace(executor=executor))
    yield failing
    services_module.use(services)


def received(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The jobs queue's visible messages as Lambda's SQS records (not deleted)."""
    arn = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.jobs_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    records: list[dict[str, Any]] = []
    while True:
        messages = pipeline.sqs.receive_message(
            QueueUrl=pipeline.jobs_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return records
        records += [sqs_record(m, arn) for m in messages]


def execute(records: list[dict[str, Any]], remaining_s: float) -> Any:
    return app.handler_map["execute_jobs"]({"Records": records}, Context(remaining_s))


def job_of(record: dict[str, Any]) -> str:
    return JobMessage.parse(record["body"]).job_id


def test_a_record_that_meets_an_infrastructure_error_is_reported_and_the_others_acknowledged(
    services: Services,
    pipeline: Pipeline,
    outage: Outage,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    tasks = [make_task(schedule="0 * * * *") for _ in range(3)]
    for task in tasks:
        services.runs.trigger(ACME, task.id)
    records = received(pipeline)
    assert len(records) == 3
    broken = records[1]
    outage.job_ids.add(job_of(broken))  # neither DynamoDB nor SQS answers for it

    answer = execute(records, remaining_s=900)

    assert answer == {"batchItemFailures": [{"itemIdentifier": broken["messageId"]}]}
    ran = {seen["job"] for seen in calls.seen}
    assert ran == {job_of(r) for r in records} - {job_of(broken)}
    outage.job_ids.clear()
    [job] = [j for task in tasks for j in runs(services, task) if j.id == job_of(broken)]
    assert job.status is not JobStatus.COMPLETE  # for SQS to deliver again


def test_a_record_is_re_sent_when_only_dynamodb_fails_and_so_acknowledged(
    services: Services,
    pipeline: Pipeline,
    outage: Outage,
    make_task: Callable[..., Task],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = make_task(schedule="0 * * * *")
    services.runs.trigger(ACME, task.id)
    [record] = received(pipeline)
    outage.job_ids.add(job_of(record))
    sent: list[tuple[JobMessage, int]] = []

    def send(self: JobQueue, message: JobMessage, delay_s: int = 0) -> None:  # SQS answers
        JobQueue.send(self, message, delay_s)
        sent.append((message, delay_s))

    monkeypatch.setattr(FlakyQueue, "send", send)

    assert execute([record], remaining_s=900) == {"batchItemFailures": []}

    # A fresh message, counted, with a short delay (not the visibility timeout).
    assert sent == [(JobMessage(job_of(record), redeliveries=1), 2)]


def test_a_record_whose_run_would_not_fit_in_the_time_left_is_handed_back_not_started(
    services: Services,
    pipeline: Pipeline,
    calls: Calls,
    make_task: Callable[..., Task],
) -> None:
    short = make_task(schedule="0 * * * *", timeout=60)
    long = make_task(schedule="0 * * * *", timeout=600)
    services.runs.trigger(ACME, short.id)
    services.runs.trigger(ACME, long.id)
    records = received(pipeline)

    # 300 s left: 60 s and its 60 s margin fit, 600 s does not.
    assert execute(records, remaining_s=300) == {"batchItemFailures": []}

    [ran] = calls.seen
    [short_job] = runs(services, short)
    [long_job] = runs(services, long)
    assert ran["job"] == short_job.id
    assert short_job.status is JobStatus.COMPLETE
    assert long_job.status is JobStatus.QUEUED and long_job.attempt == 0
    [handed_back] = received(pipeline)  # sent again at once, for a fresh invocation
    assert job_of(handed_back) == long_job.id

    assert execute([handed_back], remaining_s=900) == {"batchItemFailures": []}
    [long_job] = runs(services, long)
    assert long_job.status is JobStatus.COMPLETE


def test_a_handed_back_record_is_reported_when_it_cannot_be_sent_again(
    services: Services,
    pipeline: Pipeline,
    outage: Outage,
    calls: Calls,
    make_task: Callable[..., Task],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = make_task(schedule="0 * * * *", timeout=600)
    services.runs.trigger(ACME, task.id)
    [record] = received(pipeline)

    def unreachable(self: JobQueue, message: JobMessage, delay_s: int = 0) -> None:
        raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(FlakyQueue, "send", unreachable)

    answer = execute([record], remaining_s=100)

    assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert calls.seen == []


def test_the_local_poller_deletes_only_the_records_not_reported(settings: Settings) -> None:
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"poller-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    stop = threading.Event()
    seen: dict[str, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen["bodies"] = sorted(r["body"] for r in event["Records"])
        seen["remaining_ms"] = context.get_remaining_time_in_millis()
        stop.set()
        [failed] = [r for r in event["Records"] if r["body"] == "m1"]
        return {"batchItemFailures": [{"itemIdentifier": failed["messageId"]}]}

    poller = threading.Thread(
        target=poll_queue, args=(settings.aws_endpoint_url, url, handler, stop, 900)
    )
    poller.start()
    poller.join(timeout=30)
    assert not poller.is_alive()

    assert seen["bodies"] == ["m0", "m1", "m2"]
    assert 890_000 < seen["remaining_ms"] <= 900_000
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"  # m1: SQS's to deliver again


def test_a_stored_timeout_no_invocation_could_hold_fails_the_job_instead_of_looping(
    services: Services,
    pipeline: Pipeline,
    calls: Calls,
    make_task: Callable[..., Task],
    api: Api,
    make_token: Callable[..., Token],
) -> None:
    # A task stored before the bound existed (validation then allowed a year).
    current = make_task(schedule="0 * * * *")
    task = current.model_copy(update={"id": "tsk_stored_before_the_bound", "name": "old"})
    TaskStore(services.settings, services.tables).create(task.model_copy(update={"timeout": 3600}))
    member = make_token("acme")
    shown = api.get(f"/v1/scheduled-tasks/{task.id}", token=member)
    assert shown.status_code == 200  # still readable
    assert body(shown)["timeout"] == 3600
    services.runs.trigger(ACME, task.id)
    [record] = received(pipeline)

    assert execute([record], remaining_s=900) == {"batchItemFailures": []}

    assert calls.seen == []
    [job] = runs(services, task)
    assert job.status is JobStatus.FAILED
    assert job.error == "timeout 3600 s is above 840 s, what one executor invocation holds"
    assert received(pipeline) == []
