"""The tick at scale: how long 10k and 100k firings due in one minute take to send,
for a range of shard counts (`TICKWORK_DUE_SHARDS`).

    .venv/bin/python -m bench.tick_scale                     # 2000 tasks measured
    .venv/bin/python -m bench.tick_scale --tasks 4000 --groups-in-flight 4 --shards 8,16,32,64

What runs is the real code: `Tick.fan_out` (the minute's `tick`) and
`Tick.run_shards` (one `tick_shard` invocation), against moto in its own
process (GROUND.md: moto's CPU is not ours, and its Query looks at the whole
table), with every AWS call made to last at least a stated latency by a botocore
hook (`--dynamodb-ms`, `--query-ms`, `--sqs-ms`; defaults below).

How it scales: shards are independent (each `tick_shard` invocation is its own
Lambda, with its own CPU), so one shard's pass is measured, at `--tasks` tasks
all due at the same second (the worst case: one SendMessageBatch-full group
after another, nothing spread over the minute), and the rest is modelled from
what that pass measured, per firing:

* AWS calls per firing by operation, counted by a botocore `after-call` hook;
* this process's CPU per firing (`time.process_time`; moto runs apart), taken
  as the CPU of a `tick_shard` at 1769 MB, which Lambda gives one full vCPU;
* waiting: per firing, the sum of the stated latencies of its calls, divided
  by the groups a pass has in flight at once (`Tick(groups_in_flight=…)`).

A shard's pass of n firings is then modelled as CPU + waiting (a conservative
sum: it assumes no CPU overlaps any wait) plus a fixed start (`--start-s`: a
cold start's imports, GROUND.md's ~0.7 s, and the event source's delivery).
n is the fullest shard's share: F/S + 3·sqrt(F/S) (crc32 spreads task ids
binomially; three standard deviations). Overall = the fan-out's asynchronous
invocations (8 at a time) + the slowest shard, with every shard running at
once: Lambda starts queued asynchronous invocations without a poller's ramp,
up to the account's concurrency (1,000 by default) and a function's scaling
rate (1,000 more every 10 s; AWS Lambda docs, "Lambda scaling behavior").

Latency defaults (in-region, from AWS's published figures, not measured
here): DynamoDB single-item writes "single-digit milliseconds" → 5 ms; a
Query page 10 ms; SQS SendMessageBatch "tens of milliseconds" → 20 ms; a
Lambda Invoke (Event) 20 ms.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.session

from bench._common import (
    PRINCIPAL,
    BulkTaskStore,
    CallCounter,
    MotoProcess,
    Stopwatch,
    Tally,
    fake_aws_credentials,
    machine_facts,
    quiet_logs,
    table,
)
from bench.tick_cost import CREATED_AT, DUE_SCHEDULE, TICK_AT
from chalicelib.actions import registry
from chalicelib.clock import ManualClock, SortableIds
from chalicelib.engine.fanout import INVOKERS, LambdaShards, tick_shard_function
from chalicelib.engine.tick import GROUP_TASKS, Tick
from chalicelib.settings import Settings
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import TaskSpec
from chalicelib.tasks.service import TaskService
from chalicelib.wiring import Services
from infra.local import provision
from tests.functional.moto_lambda import docker_free_function

FIRINGS = (10_000, 100_000)
SHARDS = (8, 16, 32, 64, 128)
#: What a minute gives: a firing must be sent before its second.
MINUTE_S = 60.0


class Latency:
    """Makes every AWS call of every botocore client made from now on last at
    least its stated latency (moto answers in a few ms; AWS takes its own time)."""

    def __init__(self, per_op_ms: Callable[[str, str], float]) -> None:
        self._per_op_ms = per_op_ms
        self._started = threading.local()

    def install(self) -> Callable[[], None]:
        original = botocore.session.Session.create_client
        latency = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call.*.*", latency._before)
            client.meta.events.register("after-call.*.*", latency._after)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[assignment,method-assign]

        def uninstall() -> None:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]

        return uninstall

    def _before(self, **kwargs: Any) -> None:
        self._started.at = time.perf_counter()

    def _after(self, model: Any, **kwargs: Any) -> None:
        wanted = self._per_op_ms(model.service_model.service_name, model.name) / 1000
        left = wanted - (time.perf_counter() - self._started.at)
        if left > 0:
            time.sleep(left)


@dataclass(frozen=True)
class Latencies:
    dynamodb_ms: float
    query_ms: float
    sqs_ms: float

    lambda_ms: float

    def of(self, service: str, operation: str) -> float:
        if service == "lambda":
            return self.lambda_ms
        if service == "sqs":
            return self.sqs_ms
        return self.query_ms if operation == "Query" else self.dynamodb_ms


@dataclass
class ShardPass:
    """One measured shard pass."""

    firings: int
    tally: Tally
    wall_s: float
    cpu_s: float
    moto_cpu_s: float
    errors: int
    fan_out_calls: int

    def calls_per_firing(self) -> float:
        return self.tally.total() / self.firings

    def cpu_per_firing_s(self) -> float:
        return self.cpu_s / self.firings

    def wait_per_firing_s(self, latencies: Latencies) -> float:
        """Stated latency of one firing's calls, as one group's thread waits for them."""
        total_ms = sum(n * latencies.of(*op) for op, n in self.tally.calls.items())
        return total_ms / 1000 / self.firings


def measure(tasks: int, groups_in_flight: int, counter: CallCounter, shards: int) -> ShardPass:
    with MotoProcess() as moto:
        stage = "scale"
        provision(moto.endpoint_url, stage)
        # One shard holds every task: the measured pass is one shard's of that size.
        settings = Settings(
            stage=stage, aws_endpoint_url=moto.endpoint_url, lookahead_s=75.0, due_shards=1
        )
        clock = ManualClock(CREATED_AT)
        services = Services.build(settings, clock=clock)
        store = BulkTaskStore(settings, services.tables)
        bulk = TaskService(
            store, clock, SortableIds(clock), registry(settings), max_args_bytes=1024
        )
        for i in range(tasks):
            spec = {"name": f"due-{i:06d}", "schedule": DUE_SCHEDULE, "action": "echo"}
            bulk.create(PRINCIPAL, TaskSpec.model_validate(spec))
        store.flush()

        tick = Tick(
            TaskStore(settings, services.tables),
            JobStore(settings, services.tables),
            services.sqs,
            clock,
            shards=1,
            lookahead_s=settings.lookahead_s,
            approvals=services.approvals,
            groups_in_flight=groups_in_flight,
        )
        # Warm clients and the queue URL (a warm invocation's state), nothing due.
        services.sqs.url("jobs")
        tick.run_shards([0])

        docker_free_function(moto.endpoint_url, tick_shard_function(stage))
        fan_out = Tick(
            TaskStore(settings, services.tables),
            JobStore(settings, services.tables),
            services.sqs,
            clock,
            shards=shards,
            lookahead_s=settings.lookahead_s,
            approvals=services.approvals,
            start_shards=LambdaShards(settings).start,
        )
        with counter.measuring() as fanned:
            fan_out.fan_out()

        clock.set(TICK_AT)  # every task is due at 10:00:00, within the lookahead
        moto_before = moto.cpu_seconds()
        with counter.measuring() as tally, Stopwatch() as watch:
            report = tick.run_shards([0])
        moto_cpu = moto.cpu_seconds() - moto_before
    if report.messages_sent != tasks:
        raise SystemExit(f"the pass sent {report.messages_sent} of {tasks}: {report.errors[:3]}")
    return ShardPass(
        firings=tasks,
        tally=tally,
        wall_s=watch.wall_s,
        cpu_s=watch.cpu_s,
        moto_cpu_s=moto_cpu,
        errors=len(report.errors),
        fan_out_calls=fanned.total(),
    )


def fullest_shard(firings: int, shards: int) -> int:
    mean = firings / shards
    return math.ceil(mean + 3 * math.sqrt(mean))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks in the measured shard")
    parser.add_argument("--groups-in-flight", type=int, default=4)
    parser.add_argument("--shards", default=",".join(map(str, SHARDS)))
    parser.add_argument("--dynamodb-ms", type=float, default=5.0)
    parser.add_argument("--query-ms", type=float, default=10.0)
    parser.add_argument("--sqs-ms", type=float, default=20.0)
    parser.add_argument("--lambda-ms", type=float, default=20.0)
    parser.add_argument("--start-s", type=float, default=1.5)
    args = parser.parse_args(argv)
    shard_counts = [int(s) for s in args.shards.split(",")]
    latencies = Latencies(args.dynamodb_ms, args.query_ms, args.sqs_ms, args.lambda_ms)

    fake_aws_credentials()
    quiet_logs()
    counter = CallCounter()
    uninstall_counter = counter.install()
    uninstall_latency = Latency(latencies.of).install()
    try:
        measured = measure(args.tasks, args.groups_in_flight, counter, max(shard_counts))
    finally:
        uninstall_latency()
        uninstall_counter()

    print(f"# tick_scale ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine_facts()})")
    print(
        f"Latency per call: DynamoDB {latencies.dynamodb_ms:g} ms, Query {latencies.query_ms:g}"
        f" ms, SQS {latencies.sqs_ms:g} ms, Lambda Invoke {latencies.lambda_ms:g} ms;"
        f" {args.groups_in_flight} groups of {GROUP_TASKS}"
        f" tasks in flight per shard; start {args.start_s:g} s per invocation.\n"
    )
    print(f"Measured: one shard's pass of {measured.firings} firings due at the same second")
    calls = ", ".join(f"{op} {n}" for (_, op), n in sorted(measured.tally.calls.items()))
    print(
        table(
            ["firings", "wall s (moto)", "CPU s", "moto CPU s", "calls/firing", "errors"],
            [
                [
                    measured.firings,
                    measured.wall_s,
                    measured.cpu_s,
                    measured.moto_cpu_s,
                    measured.calls_per_firing(),
                    measured.errors,
                ]
            ],
        )
    )
    print(f"calls: {calls}; fan-out to {max(shard_counts)} shards: {measured.fan_out_calls} calls")
    cpu = measured.cpu_per_firing_s()
    wait = measured.wait_per_firing_s(latencies) / args.groups_in_flight
    print(
        f"per firing: CPU {cpu * 1000:.2f} ms, waiting {wait * 1000:.2f} ms"
        f" ({measured.wait_per_firing_s(latencies) * 1000:.2f} ms of calls /"
        f" {args.groups_in_flight} in flight)\n"
    )

    rows = []
    for firings in FIRINGS:
        for shards in shard_counts:
            n = fullest_shard(firings, shards)
            shard_s = args.start_s + n * (cpu + wait)
            fan_out_s = math.ceil(shards / INVOKERS) * latencies.lambda_ms / 1000
            overall = fan_out_s + shard_s
            rows.append(
                [
                    firings,
                    shards,
                    n,
                    shard_s,
                    overall,
                    "yes" if overall < MINUTE_S else "no",
                    measured.calls_per_firing() + measured.fan_out_calls / firings,
                ]
            )
    print("Modelled from the measured pass (s = seconds)")
    print(
        table(
            [
                "firings",
                "shards",
                "fullest shard",
                "s/shard",
                "overall s",
                "<1 min",
                "AWS calls/firing",
            ],
            rows,
        )
    )
    for firings in FIRINGS:
        fits = [r[1] for r in rows if r[0] == firings and r[5] == "yes"]
        print(
            f"{firings} firings: fewest shards under the minute: "
            f"{fits[0] if fits else 'none listed'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
