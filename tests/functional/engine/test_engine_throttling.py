"""DynamoDB throttling injected into the engine's calls loses nothing.

The embedded AWS of the local stack answers every Nth DynamoDB request with a
ThrottlingException before moto sees it (as DynamoDB does under load), and
PynamoDB's own retries are turned off, so every throttle reaches Tickwork's
code: the tick, the executor and their recovery paths must absorb them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import wiring as services_module
from chalicelib.actions import Registry
from chalicelib.jobs.model import JobStatus
from chalicelib.settings import Settings
from chalicelib.storage.binding import bind_tables
from chalicelib.tasks.model import TaskSpec
from chalicelib.wiring import Services
from infra.embedded_aws import EmbeddedAws
from infra.local import provision
from tests.conftest import Calls, FakeClock
from tests.functional.engine_helpers import ACME, Pipeline, runs

TASKS = 20
THROTTLED_ROUNDS = 6


class EveryNth:
    """Throttle every `n`th DynamoDB request while switched on."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.on = False
        self.throttled: Counter[str] = Counter()
        self._seen = 0
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> bool:
        with self._lock:
            if not self.on:
                return False
            self._seen += 1
            if self._seen % self.n:
                return False
            self.throttled[operation] += 1
            return True


@pytest.fixture
def throttle() -> EveryNth:
    return EveryNth(4)


@pytest.fixture
def throttled_services(
    throttle: EveryNth, clock: FakeClock, actions: Registry
) -> Iterator[Services]:
    aws = EmbeddedAws(throttle=throttle)
    aws.start()
    try:
        provision(aws.endpoint_url, "throttled")
        settings = Settings(stage="throttled", aws_endpoint_url=aws.endpoint_url, lookahead_s=0.5)
        # No retries inside PynamoDB: every throttle reaches our code.
        tables = bind_tables(settings, max_retry_attempts=0)
        built = Services.build(
            settings, clock=clock, actions=actions, sleep=clock.advance, tables=tables
        )
        services_module.use(built)
        yield built
    finally:
        services_module.use(None)
        aws.stop()


def test_throttled_dynamodb_calls_lose_no_firing_and_run_each_once(
    throttled_services: Services, throttle: EveryNth, clock: FakeClock, calls: Calls
) -> None:
    services = throttled_services
    tasks = [
        services.tasks.create(
            ACME,
            TaskSpec.model_validate(
                {
                    "name": f"t{i}",
                    "schedule": "*/10 * * * * *",
                    "action": "record",
                    "catch_up": "all",
                }
            ),
        )
        for i in range(TASKS)
    ]
    start = clock.now()
    with Client(app) as client:
        pipeline = Pipeline(client, services)
        throttle.on = True
        for _ in range(THROTTLED_ROUNDS):
            clock.advance(10)
            pipeline.tick()
            # A firing may wait on a slot held by a job whose start a throttle
            # interrupted; that job's message comes back seconds later (real
            # time), so the queue need not drain in these instantaneous rounds.
            pipeline.deliver(must_drain=False)
        throttle.on = False
        pipeline.tick()  # the firings that throttled ticks could not make
        pipeline.deliver()
        # No new firings from here (a yearly schedule; disabling would cancel
        # fired-ahead jobs): what follows is recovery only.
        for task in tasks:
            services.tasks.patch(ACME, task.id, {"schedule": "0 0 1 1 *"}, None)
        # Whatever a throttle interrupted is looked after by the next ticks:
        # firings not yet made, and (after REDELIVERY_GRACE) jobs whose message
        # went back to SQS or whose run never began.
        clock.advance(16 * 60)
        for _ in range(3):
            pipeline.tick()
            pipeline.deliver()

    assert sum(throttle.throttled.values()) > 100, throttle.throttled
    fire_times = [start + timedelta(seconds=10 * (k + 1)) for k in range(THROTTLED_ROUNDS)]
    ran: Counter[Any] = Counter(seen["job"] for seen in calls.seen)
    for task in tasks:
        jobs = runs(services, task)
        assert sorted(job.scheduled_for for job in jobs) == fire_times, task.name
        assert {job.status for job in jobs} == {JobStatus.COMPLETE}, task.name
        assert all(ran[job.id] == 1 for job in jobs), task.name
