"""Tick cost against the number of tasks: 1k, 10k, 100k tasks, of which the same
number (100) is due. What a tick reads and calls must grow with the due tasks,
not with the total.

    .venv/bin/python -m bench.tick_cost                      # sizes 1000,10000,100000
    .venv/bin/python -m bench.tick_cost --sizes 1000,10000 --due 100

Per size: a fresh moto in its own process (GROUND.md: moto's Query cost grows
with the table, so its CPU must not be counted as ours), the stage provisioned
with `infra.local.provision`, then:

* The due tasks (`0 * * * *`, hourly) are created with `TaskService.create`,
  exactly as `POST /v1/scheduled-tasks` does (one TransactWriteItems each).
* The other tasks (daily at a random later hour, so their `next_run_ms` sit in
  the sparse `due` index past the tick's horizon) go through the same
  `TaskService.create` too, over a `TaskStore` whose `create` puts the very
  same two items (`TaskStore._to_record(task)` and the `UniqueRecord` name
  claim) with BatchWriteItem instead of one conditional transaction per task.
  Validation, `next_run_at`, ids and the item layout are the API's; only the
  uniqueness conditions are not checked (the names are unique by
  construction). One "witness" task of the same kind is also made with the
  real store, and its item is compared with a bulk one: the script stops if
  they differ in anything but the values of id, name and next_run_ms.
* One warm-up tick at a time when nothing is due, and a lookup of the queue
  URL (they make the botocore clients and fill the URL cache: the cold-start
  calls), then the measured
  tick with the clock set so that exactly the due tasks are due, each once:
  tasks made at 09:00:30 fire at 10:00:00; the tick runs at 09:59:00 with the
  AWS lookahead of 75 s (horizon 10:00:15).

Printed per size: items read from DynamoDB (Query `ScannedCount`, items of
GetItem/BatchGetItem, counted by a botocore `after-call` hook on every client),
API calls by operation, jobs created, the tick's wall time, this process's CPU
time during the tick (`time.process_time`, all threads) and moto's CPU. No Scan
is made anywhere (the table counts come from DescribeTable).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3

from bench._common import (
    PRINCIPAL,
    CallCounter,
    MotoProcess,
    Stopwatch,
    Tally,
    create_tasks_in_bulk,
    fake_aws_credentials,
    quiet_logs,
    table,
)
from chalicelib.clock import ManualClock
from chalicelib.settings import Settings
from chalicelib.storage.binding import bind_tables
from chalicelib.tasks.model import TaskSpec
from chalicelib.wiring import Services
from infra.local import provision

CREATED_AT = datetime(2027, 1, 4, 9, 0, 30, tzinfo=UTC)
IDLE_TICK_AT = datetime(2027, 1, 4, 9, 30, 0, tzinfo=UTC)  # nothing due before 10:00
TICK_AT = datetime(2027, 1, 4, 9, 59, 0, tzinfo=UTC)  # horizon 10:00:15: the hourly ones
DUE_SCHEDULE = "0 * * * *"


def later_schedule(rng: random.Random) -> str:
    """Daily at a time after the measured tick's horizon (10:00:15 on the day)."""
    return f"{rng.randrange(60)} {rng.randrange(11, 24)} * * *"


@dataclass
class SizeResult:
    size: int
    due: int
    write_s: float
    warmup: Tally
    tally: Tally
    tasks_read: int
    jobs_created: int
    messages_sent: int
    errors: int
    wall_s: float
    cpu_s: float
    moto_cpu_s: float
    table_items: int


def run_size(
    size: int, due: int, counter: CallCounter, seed: int, read_timeout_s: float
) -> SizeResult:
    rng = random.Random(seed)
    with MotoProcess() as moto:
        stage = f"bench{size}"
        provision(moto.endpoint_url, stage)
        settings = Settings(stage=stage, aws_endpoint_url=moto.endpoint_url, lookahead_s=75.0)
        clock = ManualClock(CREATED_AT)
        tables = bind_tables(settings, read_timeout_s=read_timeout_s)
        services = Services.build(settings, clock=clock, tables=tables)

        with Stopwatch() as writing:
            for i in range(due):
                due_spec = {"name": f"due-{i:06d}", "schedule": DUE_SCHEDULE, "action": "echo"}
                services.tasks.create(PRINCIPAL, TaskSpec.model_validate(due_spec))
            create_tasks_in_bulk(
                services,
                moto.endpoint_url,
                size - due,
                lambda: later_schedule(rng),
                progress=lambda n: print(f"  {size}: {n + due} tasks written", flush=True),
            )
        dynamodb = boto3.client(
            "dynamodb", endpoint_url=moto.endpoint_url, region_name=settings.region
        )
        table_items = int(
            dynamodb.describe_table(TableName=settings.table_name("tasks"))["Table"]["ItemCount"]
        )

        clock.set(IDLE_TICK_AT)
        with counter.measuring() as warmup:
            idle = services.tick.run()
            # The queue URL is looked up on the first send and cached. Done here so
            # the measured tick is a warm one: looked up from the tick's 8 threads
            # at once, it costs up to 8 GetQueueUrl (see bench/README.md).
            services.sqs.url("jobs")
        assert idle.tasks_read == 0 and idle.jobs_created == 0, idle

        clock.set(TICK_AT)
        moto_before = moto.cpu_seconds()
        with counter.measuring() as tally, Stopwatch() as tick:
            report = services.tick.run()
        moto_cpu = moto.cpu_seconds() - moto_before
    return SizeResult(
        size=size,
        due=due,
        write_s=writing.wall_s,
        warmup=warmup,
        tally=tally,
        tasks_read=report.tasks_read,
        jobs_created=report.jobs_created,
        messages_sent=report.messages_sent,
        errors=len(report.errors),
        wall_s=tick.wall_s,
        cpu_s=tick.cpu_s,
        moto_cpu_s=moto_cpu,
        table_items=table_items,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated task counts (default 1000,10000,100000)",
    )
    parser.add_argument("--due", type=int, default=100, help="due tasks per size (100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=600,
        help="pynamodb read timeout, s (600; its default 30 is too short for moto's "
        "Queries over 100k items, which read the whole table)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size <= args.due for size in sizes):
        parser.error("every size must be larger than --due")

    fake_aws_credentials()
    quiet_logs()
    counter = CallCounter()
    counter.install()
    results: list[SizeResult] = []
    for size in sizes:
        print(f"size {size}: writing tasks ...", flush=True)
        result = run_size(size, args.due, counter, args.seed, args.read_timeout)
        results.append(result)
        print(
            f"size {size}: {result.table_items} task items in the table, written in "
            f"{result.write_s:.0f} s; tick: {result.tally.read()} items read, "
            f"{result.tally.total()} calls, {result.wall_s * 1000:.0f} ms wall, "
            f"{result.cpu_s * 1000:.0f} ms CPU",
            flush=True,
        )

    print()
    print(f"Load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"One tick with {args.due} due tasks (after a warm-up tick), by total tasks:")
    print(
        table(
            [
                "tasks",
                "due",
                "tasks read",
                "jobs created",
                "msgs sent",
                "items read",
                "items returned",
                "DynamoDB calls",
                "SQS calls",
                "errors",
                "wall ms",
                "CPU ms",
                "moto CPU ms",
            ],
            [
                [
                    r.size,
                    r.due,
                    r.tasks_read,
                    r.jobs_created,
                    r.messages_sent,
                    r.tally.read(),
                    sum(r.tally.items_returned.values()),
                    r.tally.total("dynamodb"),
                    r.tally.total("sqs"),
                    r.errors,
                    round(r.wall_s * 1000),
                    round(r.cpu_s * 1000),
                    round(r.moto_cpu_s * 1000),
                ]
                for r in results
            ],
        )
    )
    print()
    print("Calls of the measured tick by operation (items read in brackets):")
    ops = sorted({op for r in results for op in r.tally.calls})
    print(
        table(
            ["service", "operation", *[f"{r.size} tasks" for r in results]],
            [
                [
                    service,
                    operation,
                    *[_with_items(r.tally, (service, operation)) for r in results],
                ]
                for service, operation in ops
            ],
        )
    )
    print()
    print("Warm-up (a tick with nothing due, and the queue URL lookup): calls by operation")
    ops = sorted({op for r in results for op in r.warmup.calls})
    print(
        table(
            ["service", "operation", *[f"{r.size} tasks" for r in results]],
            [[s, o, *[_with_items(r.warmup, (s, o)) for r in results]] for s, o in ops],
        )
    )
    return 0


def _with_items(tally: Tally, op: tuple[str, str]) -> str:
    calls = tally.calls.get(op, 0)
    items = tally.items_scanned.get(op)
    return f"{calls} ({items})" if items else str(calls)


if __name__ == "__main__":
    sys.exit(main())
