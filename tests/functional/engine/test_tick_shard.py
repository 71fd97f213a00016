"""The tick's fan-out and `tick_shard` (moto).

The minute's `tick` starts one pass per shard: as deployed, an asynchronous
invocation of `tick_shard` each, checked here against moto's Lambda; the
events are handed to the real `tick_shard` handler as Lambda would, with a
context whose remaining time the test sets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import boto3

from app import app
from chalicelib.engine.fanout import LambdaShards, shard_event, tick_shard_function
from chalicelib.engine.tick import STOP_MARGIN_S, Tick
from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from infra.resources import function_name
from tests.conftest import FakeClock
from tests.functional.engine_helpers import ACME, Pipeline, runs
from tests.functional.moto_lambda import docker_free_function


class SteppingContext:
    """A Lambda context whose remaining time drops by `step_s` at every reading."""

    def __init__(self, start_s: float, step_s: float) -> None:
        self._left_s = start_s
        self._step_s = step_s
        self._lock = threading.Lock()

    def get_remaining_time_in_millis(self) -> int:
        with self._lock:
            left, self._left_s = self._left_s, self._left_s - self._step_s
        return int(left * 1000)


def due_by_shard(services: Services) -> dict[int, set[str]]:
    """Task ids per shard, read from the tasks table's `due` index (outside the product)."""
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=services.settings.aws_endpoint_url, region_name="us-east-1"
    )
    found: dict[int, set[str]] = {}
    for shard in range(services.settings.due_shards):
        pages = dynamodb.get_paginator("query").paginate(
            TableName=services.settings.table_name("tasks"),
            IndexName="due",
            KeyConditionExpression="due_shard = :s",
            ExpressionAttributeValues={":s": {"S": str(shard)}},
        )
        found[shard] = {item["id"]["S"] for page in pages for item in page["Items"]}
    return found


def sent_job_ids(pipeline: Pipeline) -> list[str]:
    """Job ids of every message waiting in the jobs queue (taking them)."""
    return [JobMessage.parse(m["Body"]).job_id for m in pipeline.receive()]


def test_the_minute_tick_starts_one_pass_per_shard_and_fires_nothing_itself(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> None:
    make_task()
    clock.advance(10)
    event = pipeline.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    pipeline.client.lambda_.invoke("tick", event)

    assert pipeline.started == [shard_event([s]) for s in range(services.settings.due_shards)]
    assert pipeline.receive() == []  # the firings are the shards' work


def test_the_fan_out_invokes_tick_shard_asynchronously_on_lambda(services: Services) -> None:
    settings = services.settings
    endpoint = settings.aws_endpoint_url
    assert endpoint is not None
    function = docker_free_function(endpoint, tick_shard_function(settings.stage))
    assert function == function_name(settings.stage, "tick_shard")  # as `chalice deploy` names it

    # Lambda queued every pass (202); which function the tick may invoke, and
    # that it invokes that one, is checked under IAM in test_least_privilege.
    LambdaShards(settings).start(range(settings.due_shards))


def test_a_shard_pass_fires_that_shards_due_tasks_and_no_other(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> None:
    tasks = {make_task().id: None for _ in range(30)}
    shards = due_by_shard(services)
    shard = max(shards, key=lambda s: len(shards[s]))
    clock.advance(10)

    pipeline.tick_shard([shard])

    fired = {job_id.split(":")[0] for job_id in sent_job_ids(pipeline)}
    assert fired == shards[shard]
    assert len(fired) < len(tasks)
    for task_id in tasks:
        moved = services.tasks.get(ACME, task_id).next_run_at == clock.now().replace(second=20)
        assert moved == (task_id in shards[shard])
    pipeline.tick()  # the other shards, through the minute tick; this one has nothing due
    assert {job_id.split(":")[0] for job_id in sent_job_ids(pipeline)} == (
        set(tasks) - shards[shard]
    )


def test_a_pass_whose_deadline_runs_out_leaves_the_rest_to_the_next_tick(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> None:
    # 100 tasks over 8 shards: the fullest shard holds at least 13, more than a group.
    for _ in range(100):
        make_task()
    shards = due_by_shard(services)
    shard = max(shards, key=lambda s: len(shards[s]))
    clock.advance(10)

    # Time for one group of ten tasks, then less than the stop margin.
    context = SteppingContext(start_s=STOP_MARGIN_S + 0.5, step_s=1.0)
    app.handler_map["tick_shard"](shard_event([shard]), context)

    first = {job_id.split(":")[0] for job_id in sent_job_ids(pipeline)}
    assert len(first) == 10 and first < shards[shard]
    left = shards[shard] - first
    for task_id in left:  # not reached: still due at the fire time it had
        assert services.tasks.get(ACME, task_id).next_run_at == clock.now()

    pipeline.tick_shard([shard])  # the next tick's pass
    assert {job_id.split(":")[0] for job_id in sent_job_ids(pipeline)} == left


def test_a_shard_pass_started_twice_makes_no_duplicate_job(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> None:
    tasks = [make_task() for _ in range(20)]
    clock.advance(10)
    everything = list(range(services.settings.due_shards))

    # Two invocations with the same shards at once, then a late retry by Lambda.
    racing = [threading.Thread(target=pipeline.tick_shard, args=(everything,)) for _ in range(2)]
    for thread in racing:
        thread.start()
    for thread in racing:
        thread.join()
    pipeline.tick_shard(everything)
    pipeline.deliver()

    for task in tasks:
        [job] = runs(services, task)
        assert job.status is JobStatus.COMPLETE
        assert services.tasks.get(ACME, task.id).next_run_at == clock.now().replace(second=20)


class RefusingQueue(JobQueue):
    """The real queue, except that SQS is made to refuse one task's messages."""

    def __init__(self, services: Services, refused_task: str) -> None:
        super().__init__(services.settings)
        self.refused_task = refused_task
        self.sends: list[int] = []

    def send_many(self, messages: list[tuple[JobMessage, int]]) -> list[JobMessage]:
        self.sends.append(len(messages))

        def refused(message: JobMessage) -> bool:
            return message.job_id.startswith(self.refused_task)

        taken = [(m, delay) for m, delay in messages if not refused(m)]
        return super().send_many(taken) + [m for m, _ in messages if refused(m)]


def test_a_group_sends_in_one_batch_and_a_refused_message_keeps_its_tasks_next_run(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> None:
    group = [make_task() for _ in range(10)]
    refused = group[3]
    queue = RefusingQueue(services, refused.id)
    tick = Tick(
        TaskStore(services.settings, services.tables),
        JobStore(services.settings, services.tables),
        queue,
        clock,
        shards=services.settings.due_shards,
        lookahead_s=services.settings.lookahead_s,
        approvals=services.approvals,
    )
    clock.advance(10)

    report = tick.fire_group(group, clock.now(), clock.now())

    assert queue.sends == [10]  # the ten tasks' messages: one SendMessageBatch
    assert report.messages_sent == 9
    assert report.errors == [f"{refused.id}: SQS refused 1 message(s)"]
    assert {job_id.split(":")[0] for job_id in sent_job_ids(pipeline)} == {
        t.id for t in group if t is not refused
    }
    for task in group:
        moved = services.tasks.get(ACME, task.id).next_run_at == clock.now().replace(second=20)
        assert moved == (task is not refused)

    fire_ms = int(clock.now().timestamp() * 1000)
    clock.advance(5)  # a tick period on: (a) made that job, no tick is sending it now
    pipeline.tick()  # so the next tick repeats (b) for the refused task only
    assert sent_job_ids(pipeline) == [f"{refused.id}:{fire_ms}"]
