"""Driving the engine on moto: real SQS messages, handed to the real Lambda handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from chalice.local import LambdaContext
from chalice.test import Client

from app import app
from chalicelib.auth.service import Principal, Role
from chalicelib.clock import ManualClock
from chalicelib.engine.executor import Executor
from chalicelib.engine.fanout import shard_event, shards_of
from chalicelib.jobs.model import Job
from chalicelib.jobs.sqs import JobQueue
from chalicelib.storage.attempts import AttemptStore
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import EXECUTOR_TIMEOUT_S, Task
from chalicelib.wiring import Services
from chalicelib.wiring import services as current_services
from infra.local_stack import function_timeout_s

#: `tick_shard`'s Lambda timeout as deployed (.chalice/config.json).
TICK_SHARD_TIMEOUT_MS = function_timeout_s("tick_shard") * 1000

#: The principal engine tests act as.
ACME = Principal("tok_test", "acme", Role.MEMBER, "test")


def runs(services: Services, task: Task) -> list[Job]:
    """A task's jobs, newest first."""
    return services.runs.runs(ACME, task.id, limit=200, cursor=None).items


class Pipeline:
    """Tick and executor through `chalice.test.Client`, with messages read from moto."""

    def __init__(self, client: Client, services: Services) -> None:
        self.client = client
        self.services = services
        settings = services.settings
        self.sqs = boto3.client(
            "sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region
        )
        self.jobs_url = services.sqs.url("jobs")
        self.dlq_url = services.sqs.url("jobs-dlq")
        #: Shard events the minute's tick started, in the order Lambda would queue them.
        self.started: list[dict[str, Any]] = []
        # As deployed the tick invokes `tick_shard` asynchronously; here the events
        # are kept and `tick()` hands each to the real handler, one invocation each.
        services.tick.start_shards = self._queue_shard_events

    def execute(self, event: dict[str, Any]) -> Any:
        """Invoke the executor as Lambda does, with its full timeout ahead of it
        (`client.lambda_.invoke` gives every function 3 s)."""
        context = LambdaContext("execute_jobs", 512, max_runtime_ms=EXECUTOR_TIMEOUT_S * 1000)
        return app.handler_map["execute_jobs"](event, context)

    def _queue_shard_events(self, shards: Sequence[int]) -> None:
        self.started += [shard_event([shard]) for shard in shards]

    def tick(self) -> None:
        """The minute's tick as deployed: EventBridge invokes `tick`, which starts a
        pass per shard; each runs in its own `tick_shard` invocation."""
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        # The services the handlers use now (a test may have installed others).
        current_services().tick.start_shards = self._queue_shard_events
        self.client.lambda_.invoke("tick", event)
        started, self.started = self.started, []
        for shard_pass in started:
            self.tick_shard(shards_of(shard_pass))

    def tick_shard(self, shards: list[int], remaining_ms: int = TICK_SHARD_TIMEOUT_MS) -> Any:
        """Invoke `tick_shard` with the event the tick sends, and a context whose
        time left starts at `remaining_ms` (its full timeout by default)."""
        context = LambdaContext("tick_shard", 1769, max_runtime_ms=remaining_ms)
        return app.handler_map["tick_shard"](shard_event(shards), context)

    def receive(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every visible message of a queue (deleting them, as Lambda does on success)."""
        url = url or self.jobs_url
        taken: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
            )
            messages = response.get("Messages", [])
            if not messages:
                return taken
            taken += [dict(m) for m in messages]
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def deliver(self, times: int = 1, rounds: int = 20, *, must_drain: bool = True) -> int:
        """Hand every queued message to the executor `times` times (duplicate
        deliveries), round after round until the queue stays empty (or, with
        `must_drain=False`, for at most `rounds` rounds). Returns the number of
        messages delivered."""
        delivered = 0
        for _ in range(rounds):
            bodies = [m["Body"] for m in self.receive()]
            if not bodies:
                return delivered
            for start in range(0, len(bodies), 10):
                batch = bodies[start : start + 10]
                for _ in range(times):
                    event = self.client.events.generate_sqs_event(
                        message_bodies=batch, queue_name=self.services.settings.queue_name("jobs")
                    )
                    self.execute(event)
            delivered += len(bodies)
        if must_drain:
            raise AssertionError("the queue never drained")
        return delivered

    def dead_letter_all(self) -> list[str]:
        """Receive every job message without deleting it until SQS moves it to the
        dead-letter queue (its redrive policy), then hand the dead letters to the
        dead-letter handler as Lambda would. Returns their bodies."""
        for _ in range(6):  # maxReceiveCount is 5
            for message in self.sqs.receive_message(QueueUrl=self.jobs_url).get("Messages", []):
                self.sqs.change_message_visibility(
                    QueueUrl=self.jobs_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
        bodies = [m["Body"] for m in self.receive(self.dlq_url)]
        event = self.client.events.generate_sqs_event(
            message_bodies=bodies, queue_name=self.services.settings.queue_name("jobs-dlq")
        )
        self.client.lambda_.invoke("dead_letters", event)
        return bodies


def executor_over(
    services: Services,
    clock: ManualClock,
    *,
    jobs: JobStore | None = None,
    tasks: TaskStore | None = None,
    queue: JobQueue | None = None,
    attempts: AttemptStore | None = None,
) -> Executor:
    """The app's executor over other stores (a test's failing or watching ones);
    its "never early" wait moves the fake clock, as the services fixture's does."""
    return Executor(
        jobs or services.job_store,
        tasks or services.task_store,
        queue or services.sqs,
        services.registry,
        clock,
        clock.advance,
        settings=services.settings,
        approvals=services.approvals,
        attempts=attempts or services.attempt_store,
    )
