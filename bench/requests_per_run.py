"""AWS requests per cron run: what one firing of a scheduled task costs in API calls.

    .venv/bin/python -m bench.requests_per_run             # 20 every-minute tasks
    .venv/bin/python -m bench.requests_per_run --tasks 50

On moto in this process (ThreadedMotoServer), with the services built as the
functional tests build them (`Services.build(settings, clock=ManualClock, ...)`,
lookahead 0.5 s so the tick at a fire time sends with no SQS delay). K tasks
with `* * * * *` are created through `TaskService.create`; then, for two
consecutive minutes, the tick runs at the fire time and the messages it sent
are handed to `Executor.handle_batch` in batches of `--batch-size` (default 10,
the `execute_jobs` event source's batch size; Lambda's poller hands over what
it received, up to that many), inside `JobMetrics.batched()` as the
`execute_jobs` handler does. `--batch-size 1` is one message per invocation,
the most an idle queue costs. The first minute is cold (clients made, queue URL looked up), the
second is the steady state the table shows.

Every call is counted with a botocore `after-call` hook registered on every
client the code makes (pynamodb's per-model and transaction connections, the
SQS client of `chalicelib.jobs.sqs`), by patching
`botocore.session.Session.create_client` (see `bench._common.CallCounter`).
The benchmark's own receive/delete calls stand in for Lambda's poller and are
counted apart: they are not Tickwork's code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bench._common import (
    CallCounter,
    InProcessMotoCpu,
    Op,
    Stopwatch,
    Tally,
    fake_aws_credentials,
    moto_stage,
    quiet_logs,
    table,
)
from chalicelib.auth.service import Principal, Role
from chalicelib.clock import ManualClock
from chalicelib.engine.fanout import tick_shard_function
from chalicelib.jobs.model import JobStatus
from chalicelib.settings import Settings
from chalicelib.tasks.model import TaskSpec
from chalicelib.wiring import Services
from tests.functional.moto_lambda import docker_free_function

PRINCIPAL = Principal("tok_bench", "bench", Role.MEMBER, "bench")
CREATED_AT = datetime(2027, 1, 4, 9, 0, 30, tzinfo=UTC)
FIRST_FIRE = datetime(2027, 1, 4, 9, 1, 0, tzinfo=UTC)


class Poller:
    """Lambda's SQS event source: receive, then delete what was handled."""

    def __init__(self, endpoint: str, queue_name: str, tickwork: CallCounter) -> None:
        self.sqs: Any = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        tickwork.detach(self.sqs)
        self.counter = CallCounter()
        self.counter.attach(self.sqs)
        self.url: str = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]

    def take(self, expected: int) -> list[str]:
        bodies: list[str] = []
        for _ in range(100):
            response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                if len(bodies) >= expected:
                    return bodies
                continue
            bodies += [m["Body"] for m in messages]
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        raise RuntimeError(f"got {len(bodies)} of {expected} messages")


@dataclass
class Timing:
    """Wall and CPU seconds of some timed blocks (invocations), summed."""

    wall_s: float = 0.0
    #: This process's CPU less the in-process moto's (`InProcessMotoCpu`).
    cpu_s: float = 0.0
    #: The in-process moto's CPU meanwhile, left out of `cpu_s`.
    moto_cpu_s: float = 0.0
    invocations: int = 0

    def add(self, watch: Stopwatch) -> None:
        self.wall_s += watch.wall_s
        self.cpu_s += watch.cpu_s
        self.moto_cpu_s += watch.not_ours_s
        self.invocations += 1


@dataclass
class Minute:
    """One minute's tick and the executor on the messages it sent."""

    tick: Tally
    executor: Tally
    #: The benchmark's stand-in for Lambda's SQS poller: not Tickwork's code.
    poller: Tally
    tick_time: Timing
    #: One invocation per batch handed to the executor.
    executor_time: Timing
    #: Bytes of the largest message body the tick sent.
    largest_body: int


@dataclass
class QueueJobs:
    """Queue jobs submitted through the API (`POST /v1/queue/jobs`), then executed."""

    jobs: int
    #: The API requests, one per job: the route with its token check.
    api: Tally
    api_time: Timing
    #: One `TokenService.authenticate`, what each API request does first.
    authenticate: Tally
    executor: Tally
    poller: Tally
    executor_time: Timing
    largest_body: int


@dataclass
class Measured:
    """What `measure` ran and counted."""

    tasks: int
    batch_size: int
    due_shards: int
    create: Tally
    cold: Minute
    warm: Minute
    #: A tick with nothing due, over all `due_shards` shards.
    idle: Tally
    idle_time: Timing
    #: The minute's `tick` fanning out to every shard, when asked for.
    fan_out: Tally | None = None
    fan_out_time: Timing | None = None
    queue: QueueJobs | None = None


def one_minute(
    services: Services,
    clock: ManualClock,
    poller: Poller,
    counter: CallCounter,
    at: datetime,
    k: int,
    batch_size: int,
    not_ours: Callable[[], float] | None = None,
) -> Minute:
    """Tick at a fire time, then execute each job it sent."""
    clock.set(at)
    tick_time = Timing()
    with counter.measuring() as tick, Stopwatch(not_ours) as watch:
        report = services.tick.run()
    tick_time.add(watch)
    if report.jobs_created != k or report.errors:
        raise RuntimeError(f"tick at {at}: {report}")
    poller.counter.take()
    bodies = poller.take(k)
    executor, executor_time = execute(services, counter, bodies, batch_size, not_ours)
    return Minute(
        tick,
        executor,
        poller.counter.take(),
        tick_time,
        executor_time,
        max((len(b.encode()) for b in bodies), default=0),
    )


def execute(
    services: Services,
    counter: CallCounter,
    bodies: list[str],
    batch_size: int,
    not_ours: Callable[[], float] | None = None,
) -> tuple[Tally, Timing]:
    """Hand the messages to the executor in batches, as the `execute_jobs` handler
    does; the calls and the time of each batch (one invocation)."""
    executor, timing = Tally(), Timing()
    for start in range(0, len(bodies), batch_size):
        with (
            counter.measuring() as one,
            Stopwatch(not_ours) as watch,
            services.metrics.batched(),  # as `on_jobs` does
        ):
            services.executor.handle_batch(bodies[start : start + batch_size])
        executor = executor + one
        timing.add(watch)
    return executor, timing


def measure(
    *,
    tasks: int = 20,
    keep_runs: int | None = None,
    batch_size: int = 10,
    due_shards: int | None = None,
    fan_out: bool = False,
    queue_jobs: int = 0,
    attribute: bool = True,
) -> Measured:
    """Create `tasks` every-minute tasks on a fresh moto in this process, run two
    minutes of ticks and executor batches, then a tick with nothing due.

    `due_shards`: the stage's shard count (default: Settings'). `fan_out`: also
    time the minute's `tick` starting every shard's pass (asynchronous Invoke calls
    to a code-free `tick_shard` on moto). `queue_jobs`: then submit that many `echo`
    jobs through the API's route and execute them. `attribute`: note the code path
    of every call (costs CPU; the timings are then less our code's own). Times are
    wall and this process's CPU without moto's (`InProcessMotoCpu`)."""
    fake_aws_credentials()
    quiet_logs()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    counter = CallCounter(attribute=attribute)
    moto_cpu = InProcessMotoCpu()
    undo = [counter.install(), moto_cpu.install()]
    try:
        with moto_stage() as (stage_settings, endpoint):
            settings = (
                replace(stage_settings, due_shards=due_shards) if due_shards else stage_settings
            )
            return _measure(
                settings,
                endpoint,
                counter,
                moto_cpu.seconds,
                tasks=tasks,
                keep_runs=keep_runs,
                batch_size=batch_size,
                fan_out=fan_out,
                queue_jobs=queue_jobs,
            )
    finally:
        for step in reversed(undo):
            step()


def _measure(
    settings: Settings,
    endpoint: str,
    counter: CallCounter,
    not_ours: Callable[[], float],
    *,
    tasks: int,
    keep_runs: int | None,
    batch_size: int,
    fan_out: bool,
    queue_jobs: int,
) -> Measured:
    k = tasks
    clock = ManualClock(CREATED_AT)
    services = Services.build(settings, clock=clock, sleep=clock.advance)

    counter.take()
    with counter.measuring() as create:
        created = [
            services.tasks.create(
                PRINCIPAL,
                TaskSpec.model_validate(
                    {
                        "name": f"minutely-{i:03d}",
                        "schedule": "* * * * *",
                        "action": "echo",
                        "args": {"n": i},
                        **({"keep_runs": keep_runs} if keep_runs else {}),
                    }
                ),
            )
            for i in range(k)
        ]

    poller = Poller(endpoint, settings.queue_name("jobs"), counter)

    cold = one_minute(services, clock, poller, counter, FIRST_FIRE, k, batch_size, not_ours)
    warm = one_minute(
        services,
        clock,
        poller,
        counter,
        FIRST_FIRE + timedelta(minutes=1),
        k,
        batch_size,
        not_ours,
    )
    clock.set(FIRST_FIRE + timedelta(minutes=1, seconds=30))
    idle_time = Timing()
    with counter.measuring() as idle, Stopwatch(not_ours) as watch:
        services.tick.run()
    idle_time.add(watch)

    statuses: Counter[str] = Counter()
    for task in created:
        for job in services.runs.runs(PRINCIPAL, task.id, limit=10, cursor=None).items:
            statuses[job.status.value] += 1
    kept = min(2, keep_runs or 2)
    if statuses != Counter({JobStatus.COMPLETE.value: kept * k}):
        raise RuntimeError(f"runs did not all complete: {dict(statuses)}")

    measured = Measured(k, batch_size, settings.due_shards, create, cold, warm, idle, idle_time)
    if fan_out:
        docker_free_function(endpoint, tick_shard_function(settings.stage))
        services.tick.fan_out()  # the cold one: the Lambda client made
        fan_out_time = Timing()
        with counter.measuring() as fanned, Stopwatch(not_ours) as watch:
            services.tick.fan_out()
        fan_out_time.add(watch)
        measured.fan_out, measured.fan_out_time = fanned, fan_out_time
    if queue_jobs:
        measured.queue = _queue_jobs(services, poller, counter, queue_jobs, batch_size, not_ours)
    return measured


def _queue_jobs(
    services: Services,
    poller: Poller,
    counter: CallCounter,
    n: int,
    batch_size: int,
    not_ours: Callable[[], float],
) -> QueueJobs:
    """`n` echo jobs submitted through the API's route (chalice.test.Client, with a
    member token), one request each after a warm-up one, then executed."""
    from chalice.test import Client

    from app import app
    from chalicelib import wiring

    issued = services.tokens.issue(PRINCIPAL.project_id, Role.MEMBER, "bench")
    headers = {"Authorization": f"Bearer {issued.secret}", "Content-Type": "application/json"}
    with counter.measuring() as authenticate:
        services.tokens.authenticate(issued.secret)
    wiring.use(services)
    try:
        with Client(app) as client:

            def submit(i: int) -> str:
                body = json.dumps({"action": "echo", "args": {"i": i}}).encode()
                response = client.http.post("/v1/queue/jobs", headers=headers, body=body)
                if response.status_code != 202:
                    raise RuntimeError(f"submit answered {response.status_code}: {response.body!r}")
                return str(json.loads(response.body)["id"])

            # The first request imports and builds the routes: a cold start's, not a job's.
            submit(-1)
            poller.take(1)
            api, api_time = Tally(), Timing()
            ids = []
            for i in range(n):
                with counter.measuring() as one, Stopwatch(not_ours) as watch:
                    ids.append(submit(i))
                api = api + one
                api_time.add(watch)
    finally:
        wiring.use(None)
    poller.counter.take()
    bodies = poller.take(n)
    executor, executor_time = execute(services, counter, bodies, batch_size, not_ours)
    for job_id in ids:
        if services.queue.get(PRINCIPAL, job_id).status != JobStatus.COMPLETE:
            raise RuntimeError(f"queue job {job_id} did not complete")
    return QueueJobs(
        n,
        api,
        api_time,
        authenticate,
        executor,
        poller.counter.take(),
        executor_time,
        max((len(b.encode()) for b in bodies), default=0),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="every-minute tasks (20)")
    parser.add_argument(
        "--keep-runs",
        type=int,
        help="the tasks' keep_runs (default: the API's, 100); 1 makes every run of the "
        "steady minute prune the previous one",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10,
        help="messages per executor invocation (10, the event source's batch size)",
    )
    args = parser.parse_args(argv)
    report(measure(tasks=args.tasks, keep_runs=args.keep_runs, batch_size=args.batch_size))
    return 0


def report(measured: Measured) -> None:
    k, create, cold, idle = measured.tasks, measured.create, measured.cold, measured.idle
    tick, executor, poller = measured.warm.tick, measured.warm.executor, measured.warm.poller
    ops: list[Op] = sorted(set(tick.calls) | set(executor.calls))

    def per(tally: Tally, op: Op) -> float:
        return tally.calls.get(op, 0) / k

    rows: list[list[object]] = [
        [
            s,
            o,
            tick.calls.get((s, o), 0),
            per(tick, (s, o)),
            per(executor, (s, o)),
            per(tick, (s, o)) + per(executor, (s, o)),
        ]
        for s, o in ops
    ]
    total_tick, total_executor = tick.total(), executor.total()
    rows.append(
        [
            "all",
            "",
            total_tick,
            total_tick / k,
            total_executor / k,
            (total_tick + total_executor) / k,
        ]
    )
    print(f"AWS API calls per cron run, {k} tasks firing every minute (steady minute):")
    print(
        table(
            ["service", "operation", "tick (all)", "tick / task", "executor / job", "per run"],
            rows,
        )
    )
    print()
    print(
        f"DynamoDB items read per run: tick {tick.read() / k:.2f}, executor "
        f"{executor.read() / k:.2f} ("
        + ", ".join(f"{o} {n / k:.2f}" for (_, o), n in sorted(executor.items_scanned.items()))
        + ")"
    )
    print()
    print("Where the calls come from (per fired task / per job):")
    sources = sorted(
        [("tick", *key, n) for key, n in tick.callers.items()]
        + [("executor", *key, n) for key, n in executor.callers.items()]
    )
    print(
        table(
            ["phase", "service", "operation", "code path (innermost first)", "calls"],
            [[phase, s, o, path, n / k] for phase, s, o, path, n in sources],
        )
    )
    print()
    failed = tick.errors + executor.errors
    print(f"Failed calls (conditions etc.) in the steady minute: {dict(failed) or 'none'}")
    print(f"A tick with nothing due: {dict(_named(idle))}")
    print(f"Creating one task (TaskService.create): {_per_k(create, k)}")
    cold_extra = (cold.tick + cold.executor).calls - (tick + executor).calls
    print(f"First (cold) minute, calls beyond the steady one: {dict(_named_counter(cold_extra))}")
    print(
        f"Lambda's poller stand-in (not Tickwork code), per message: {_per_k(poller, k)}"
        " (batches of 10; the real poller also long-polls while idle)"
    )


def _named(tally: Tally) -> Counter[str]:
    return _named_counter(tally.calls)


def _named_counter(calls: Counter[Op]) -> Counter[str]:
    return Counter({f"{s}.{o}": n for (s, o), n in calls.items()})


def _per_k(tally: Tally, k: int) -> str:
    return ", ".join(f"{name} {n / k:.2f}" for name, n in sorted(_named(tally).items()))


if __name__ == "__main__":
    sys.exit(main())
